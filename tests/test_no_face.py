"""Photos without a detected face: fail-safe crop, NaN scores, and the run's failure summary.

An LFW-shaped folder is generated from the bundled demo faces plus two face-less photos (a grey
wall enrolled, a noise field probed), with View 2-style pairs: one photo per template, the
protocol that stopped on real LFW with Bob's "None of the enrollment samples were valid".
"""

import csv
import logging
import math
import shutil

import numpy as np
import pytest

from PIL import Image

from bob_facerev import failures
from bob_facerev.database.demo import demo_directory

# LFW name -> demo photos (in order: Name_0001.jpg, Name_0002.jpg, ...)
PEOPLE = {
    "Jacinda_Ardern": ["ardern_1.jpg", "ardern_2.jpg"],
    "Joe_Biden": ["biden_1.jpg"],
    "Emmanuel_Macron": ["macron_1.jpg", "macron_2.jpg"],
    "Barack_Obama": ["obama_1.jpg", "obama_2.jpg", "obama_3.jpg", "obama_4.jpg"],
    "Rishi_Sunak": ["sunak_1.jpg"],
}
NO_FACE = {"Grey_Wall": "grey", "Noise_Field": "noise"}  # no detectable face
GENUINE = [("Barack_Obama", 1, 2), ("Jacinda_Ardern", 1, 2), ("Emmanuel_Macron", 1, 2)]
IMPOSTOR = [
    ("Grey_Wall", 1, "Barack_Obama", 3),  # enrolled photo without a face
    ("Joe_Biden", 1, "Noise_Field", 1),  # probed photo without a face
    ("Rishi_Sunak", 1, "Barack_Obama", 4),
]
FAILED_PAIRS = {("Grey_Wall/Grey_Wall_0001", "Barack_Obama/Barack_Obama_0003"),
                ("Joe_Biden/Joe_Biden_0001", "Noise_Field/Noise_Field_0001")}


def no_face_image(kind, shape=(250, 250)):
    rng = np.random.default_rng(0)
    if kind == "grey":
        return np.clip(128 + rng.normal(0, 3, (*shape, 3)), 0, 255).astype(np.uint8)
    return rng.integers(0, 256, (*shape, 3), dtype=np.uint8)


def make_lfw(root):
    """An LFW tree (``Name/Name_0001.jpg``), View 2-style ``pairs.txt`` and gender lists."""
    images = root / "lfw"
    demo = demo_directory() / "images"
    for name, photos in PEOPLE.items():
        (images / name).mkdir(parents=True)
        for i, photo in enumerate(photos, start=1):
            shutil.copy(demo / photo, images / name / f"{name}_{i:04d}.jpg")
    for name, kind in NO_FACE.items():
        (images / name).mkdir(parents=True)
        Image.fromarray(no_face_image(kind)).save(images / name / f"{name}_0001.jpg")
    lines = [f"1\t{len(GENUINE)}"]
    lines += [f"{a}\t{i}\t{j}" for a, i, j in GENUINE]
    lines += [f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in IMPOSTOR]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    (root / "female_names.txt").write_text("Jacinda_Ardern_0001.jpg\n")
    males = [f"{n}_0001.jpg" for n in PEOPLE if n != "Jacinda_Ardern"]
    (root / "male_names.txt").write_text("\n".join(males) + "\n")
    return images


@pytest.fixture(scope="module")
def lfw(tmp_path_factory):
    from bob_facerev.database.lfw import build_lfw

    root = tmp_path_factory.mktemp("lfw")
    images = make_lfw(root)
    protocols, _ = build_lfw(images, root / "protocols", progress=False)
    return images, protocols


def _configs(tmp_path, lfw, fallback):
    images, protocols = lfw
    tmp_path.mkdir(parents=True, exist_ok=True)
    database = tmp_path / "database.py"
    database.write_text(
        "from bob_facerev.database.lfw import lfw_database\n"
        f"database = lfw_database('view2', {str(protocols)!r}, {str(images)!r})\n"
    )
    pipeline = tmp_path / "pipeline.py"
    pipeline.write_text(
        "from bob_facerev.pipelines import verification_pipeline\n"
        f"pipeline = verification_pipeline('dlib', fallback={fallback!r}, device='cpu')\n"
    )
    return database, pipeline


def _read_scores(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["bio_ref_template_id"], r["probe_template_id"]): float(r["score"]) for r in rows}


def _run(tmp_path, lfw, fallback, dask_client=None):
    """``bob bio pipeline simple -d <LFW> -p <dlib> --no-dask`` (CLI) or on a Dask client."""
    database, pipeline = _configs(tmp_path, lfw, fallback)
    output = tmp_path / "out"
    if dask_client is None:
        from bob.bio.base.script.pipeline_simple import pipeline_simple
        from click.testing import CliRunner

        result = CliRunner().invoke(
            pipeline_simple,
            ["-d", str(database), "-p", str(pipeline), "-o", str(output), "--no-dask"],
            catch_exceptions=False,
        )
        assert result.exit_code == 0, result.output
    else:
        from bob.bio.base import load_resource
        from bob.bio.base.pipelines.entry_points import execute_pipeline_simple

        execute_pipeline_simple(
            load_resource(str(pipeline), "pipeline"),
            load_resource(str(database), "database"),
            dask_client,
            groups=["dev"],
            output=str(output),
            write_metadata_scores=True,
            checkpoint=False,
            dask_n_partitions=None,
            dask_partition_size=None,
            dask_n_workers=None,
        )
    return output / "scores-dev.csv"


@pytest.fixture(scope="module")
def local_parallel():
    """What ``-l local-parallel`` builds (bob.pipelines: worker processes, estimators pickled)."""
    from bob.pipelines.distributed import get_local_parallel_client

    client = get_local_parallel_client(parallel=2)
    yield client
    client.close()
    client.cluster.close()


def _check(score_file, fallback, caplog):
    scores = _read_scores(score_file)
    expected = {(f"{a}/{a}_{i:04d}", f"{a}/{a}_{j:04d}") for a, i, j in GENUINE}
    expected |= {(f"{a}/{a}_{i:04d}", f"{b}/{b}_{j:04d}") for a, i, b, j in IMPOSTOR}
    assert set(scores) == expected  # a complete score file
    for pair, score in scores.items():
        assert math.isnan(score) == (not fallback and pair in FAILED_PAIRS), (pair, score)
    genuine = [scores[p] for p in expected if p[0].split("/")[0] == p[1].split("/")[0]]
    impostor = [s for p, s in scores.items() if p[0].split("/")[0] != p[1].split("/")[0]]
    assert min(genuine) > np.nanmax(impostor)
    summary = failures.read_summary(score_file)
    failed = 0 if fallback else 1
    assert summary["comparisons"] == 6 and summary["nan"] == 2 * failed
    assert summary["references"] == {"samples": 6, "failed": failed, "fallback": 1 - failed}
    assert summary["probes"] == {"samples": 6, "failed": failed, "fallback": 1 - failed}
    line = failures.summary_line(summary)
    assert line in caplog.text  # logged where the run was started
    assert f"comparisons: {2 * failed} of 6 scored NaN" in line
    return scores


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [True, False])
def test_lfw_with_face_less_photos_no_dask(tmp_path, lfw, fallback, caplog):
    with caplog.at_level(logging.INFO, logger="bob_facerev"):
        score_file = _run(tmp_path, lfw, fallback)
    scores = _check(score_file, fallback, caplog)
    if fallback:
        # the per-sample warnings come from the crop step's worker processes (not captured
        # here); the run's summary counts the fallback crops
        assert "cropped at the fallback geometry" in caplog.text
        assert all(np.isfinite(s) for s in scores.values())


@pytest.mark.slow
@pytest.mark.parametrize("fallback", [True, False])
def test_lfw_with_face_less_photos_local_parallel(tmp_path, lfw, fallback, local_parallel, caplog):
    with caplog.at_level(logging.INFO, logger="bob_facerev"):
        dask_file = _run(tmp_path / "dask", lfw, fallback, local_parallel)
    dask_scores = _check(dask_file, fallback, caplog)
    plain = _read_scores(_run(tmp_path / "plain", lfw, fallback))
    for pair, score in plain.items():
        assert (math.isnan(score) and math.isnan(dask_scores[pair])) or score == pytest.approx(
            dask_scores[pair], abs=1e-6), pair


def test_failed_samples_carry_nan_and_fallback_is_recorded():
    """In the embedding transformer: the fallback flag on the sample, NaN for failures."""
    from bob.pipelines import Sample

    from bob_facerev.pipelines import embedding_transformer

    noise = no_face_image("noise", (120, 100)).transpose(2, 0, 1)
    face = np.asarray(Image.open(demo_directory() / "images" / "obama_1.jpg").convert("RGB"))
    samples = [Sample(noise, key="noise"), Sample(face.transpose(2, 0, 1), key="obama")]
    with_fallback = embedding_transformer("dlib", device="cpu").transform(samples)
    assert [s.annotations["facerev_fallback"] for s in with_fallback] == [True, False]
    assert all(np.isfinite(s.data).all() and s.data.shape == (128,) for s in with_fallback)
    without = embedding_transformer("dlib", device="cpu", fallback=False,
                                    failed_as_nan=True).transform(samples)
    assert np.isnan(without[0].data).all() and without[0].data.shape == (128,)
    np.testing.assert_allclose(without[1].data, with_fallback[1].data, rtol=0, atol=1e-6)
    assert failures.count_samples(without) == {"samples": 2, "failed": 1, "fallback": 0}
    assert failures.count_samples(with_fallback) == {"samples": 2, "failed": 0, "fallback": 1}
    plain = embedding_transformer("dlib", device="cpu", fallback=False).transform(samples)
    assert plain[0].data is None  # Bob's convention outside the verification pipelines


def test_summary_of_a_score_file(tmp_path):
    scores = tmp_path / "scores-dev.csv"
    scores.write_text("probe_template_id,bio_ref_template_id,score\na,b,0.5\na,c,nan\nd,b,nan\n")
    summary = failures.report(scores, {"samples": 3, "failed": 1, "fallback": 0},
                              [{"samples": 1, "failed": 1, "fallback": 0},
                               {"samples": 1, "failed": 0, "fallback": 1}])
    assert summary["comparisons"] == 3 and summary["nan"] == 2
    assert summary["probes"] == {"samples": 2, "failed": 1, "fallback": 1}
    assert failures.read_summary(scores) == summary
    assert "comparisons: 2 of 3 scored NaN" in failures.summary_line(summary)
    four = tmp_path / "scores-dev"
    four.write_text("a a b 0.5\na a c nan\n")
    assert failures.count_scores(four) == {"comparisons": 2, "nan": 1}
