"""PE-MIU in ``bob bio pipeline simple``: a generated CSV database of random vectors, run with
``--no-dask`` and with ``-l local-parallel``; identical scores, genuine above impostor, and the
protected templates keyed by the sample keys."""

import csv
import glob
import os
import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

DIM, K, SEED = 128, 16, 5
N_SUBJECTS, N_ENROLL, N_PROBE = 5, 2, 2

CONFIG = """
import numpy as np
from bob.bio.base.database import CSVDatabase, FileSampleLoader
from bob.bio.base.pipelines import PipelineSimple
from bob.pipelines import wrap
from sklearn.pipeline import make_pipeline

from bob_facerev.protection.comparator import PEMIUComparator
from bob_facerev.protection.pemiu import PEMIU

database = CSVDatabase(
    name="pemiu-toy",
    protocol="default",
    dataset_protocols_path={protocols!r},
    transformer=make_pipeline(
        FileSampleLoader(data_loader=np.load, dataset_original_directory={data!r},
                         extension=".npy")
    ),
)
pipeline = PipelineSimple(
    wrap(["sample"], make_pipeline(PEMIU(block_size={K}, seed={SEED}))),
    PEMIUComparator(block_size={K}),
)
"""


def _make_database(root):
    rng = np.random.default_rng(0)
    data = root / "data"
    proto = root / "protocols" / "default" / "dev"
    data.mkdir(parents=True)
    proto.mkdir(parents=True)
    rows = {"for_enrolling.csv": [], "for_probing.csv": []}
    raw = {}
    for s in range(N_SUBJECTS):
        centre = rng.standard_normal(DIM)
        for i in range(N_ENROLL + N_PROBE):
            path = f"s{s}/{i}"
            x = (centre + 0.2 * rng.standard_normal(DIM)).astype(np.float32)
            (data / f"s{s}").mkdir(exist_ok=True)
            np.save(data / f"{path}.npy", x)
            raw[path] = x
            if i < N_ENROLL:
                rows["for_enrolling.csv"].append((path, f"s{s}", f"s{s}"))
            else:
                rows["for_probing.csv"].append((path, f"s{s}", f"s{s}_{i}"))
    for name, lines in rows.items():
        with open(proto / name, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "subject_id", "template_id"])
            w.writerows(lines)
    config = root / "config.py"
    config.write_text(CONFIG.format(protocols=str(root / "protocols"), data=str(data), K=K,
                                    SEED=SEED))
    return config, raw


def _run(config, output, *options):
    bob = shutil.which("bob") or os.path.join(os.path.dirname(sys.executable), "bob")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        [bob, "bio", "pipeline", "simple", str(config), "-o", str(output), *options],
        capture_output=True, text=True, timeout=600, env=env,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return pd.read_csv(output / "scores-dev.csv")


def _checkpoints(output):
    """Protected templates checkpointed by the pipeline, by sample key."""
    import bob.io.base

    found = {}
    for path in glob.glob(str(output / "**" / "*.h5"), recursive=True):
        rel = os.path.relpath(path, output)
        if "pemiu" not in rel.lower():
            continue
        key = rel.split(os.sep, 1)[1][: -len(".h5")]
        found[key] = np.asarray(bob.io.base.load(path))
    return found


@pytest.mark.slow
def test_pipeline_simple_no_dask_and_local_parallel_agree(tmp_path):
    from bob_facerev.protection.comparator import pemiu_scores
    from bob_facerev.protection.pemiu import PEMIU

    config, raw = _make_database(tmp_path)
    a = _run(config, tmp_path / "no-dask", "--no-dask")
    b = _run(config, tmp_path / "dask", "-l", "local-parallel")

    cols = ["probe_template_id", "bio_ref_template_id"]
    a = a.sort_values(cols).reset_index(drop=True)
    b = b.sort_values(cols).reset_index(drop=True)
    assert len(a) == N_SUBJECTS * N_PROBE * N_SUBJECTS
    pd.testing.assert_frame_equal(a, b)

    genuine = a[a.probe_subject_id == a.bio_ref_subject_id].score
    impostor = a[a.probe_subject_id != a.bio_ref_subject_id].score
    assert len(genuine) == N_SUBJECTS * N_PROBE
    assert genuine.min() > impostor.max()

    # the wrapped PEMIU received each sample's key: the scores equal those of templates
    # protected here with the same keys (max fusion over the enrollment samples)
    keys = sorted(raw)
    protected = dict(zip(keys, PEMIU(K, seed=SEED).transform(
        np.stack([raw[k] for k in keys]), keys=keys)))
    for row in a.sample(12, random_state=0).itertuples():
        s = int(row.bio_ref_template_id[1:])
        enroll = np.stack([protected[f"s{s}/{i}"] for i in range(N_ENROLL)])
        probe = protected[row.probe_template_id.replace("_", "/")][None]
        assert row.score == pytest.approx(pemiu_scores(enroll, probe, K).max(), abs=1e-6)

    # and the checkpointed protected templates are those same arrays, identical in both runs
    # (without --memory, Bob checkpoints the transformer's output as <output>/pemiu/<key>.h5)
    ca, cb = _checkpoints(tmp_path / "no-dask"), _checkpoints(tmp_path / "dask")
    assert set(ca) == set(cb) == set(keys)
    for k in keys:
        np.testing.assert_array_equal(ca[k], cb[k])
        np.testing.assert_array_equal(ca[k], protected[k])
    # different keys got different permutations (raw vectors of a subject are close, but their
    # protected templates are not)
    assert not np.allclose(protected["s0/0"], protected["s0/1"], atol=0.5)
