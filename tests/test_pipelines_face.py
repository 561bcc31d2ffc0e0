"""Face verification pipelines: construction (fast) and `bob bio pipeline simple` runs (slow)."""

import csv
import os
from functools import partial

import click
import numpy as np
import pytest
from bob.pipelines import Sample, SampleSet, wrap
from sklearn.base import BaseEstimator, TransformerMixin
from score_checks import assert_scores_agree

from bob_facerev.pipelines import (
    CosineSimilarity,
    OptionalExtraInputWrapper,
    TemplateBatchingWrapper,
    embedding_transformer,
    verification_pipeline,
)


def test_cosine_similarity_is_raw_cosine():
    rng = np.random.default_rng(0)
    enroll, probe = rng.normal(size=(3, 8)), rng.normal(size=(4, 8))
    expected = (enroll / np.linalg.norm(enroll, axis=1, keepdims=True)) @ (
        probe / np.linalg.norm(probe, axis=1, keepdims=True)
    ).T
    algo = CosineSimilarity()
    templates = algo.create_templates([[e] for e in enroll], enroll=True)
    probes = algo.create_templates([[p] for p in probe], enroll=False)
    np.testing.assert_allclose(algo.compare(templates, probes), expected, atol=1e-12)


def test_pipelines_build_without_weights(tmp_path, monkeypatch):
    """Building (what `-p facerev-arcface...` does) must not need weights nor the config."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # empty bob config
    from bob.bio.base.pipelines import PipelineSimple

    from bob_facerev.protection.comparator import PEMIUComparator
    from bob_facerev.protection.pemiu import PEMIU

    p = verification_pipeline("arcface")
    assert isinstance(p, PipelineSimple) and isinstance(p.biometric_algorithm, CosineSimilarity)
    cropper, embedding = (step.estimator for _, step in p.transformer.steps)
    assert (cropper.model, embedding.model) == ("arcface", "arcface")
    assert not hasattr(embedding, "network_")

    k = verification_pipeline("elasticface", block_size=64)
    assert isinstance(k.biometric_algorithm, PEMIUComparator)
    assert k.biometric_algorithm.block_size == 64
    pemiu = k.transformer.steps[-1][1].estimator
    assert isinstance(pemiu, PEMIU) and pemiu.block_size == 64 and pemiu.moved_blocks is None

    with pytest.raises(ValueError, match="known models"):
        verification_pipeline("facenet")
    with pytest.raises(ValueError):  # K must divide d = 128
        verification_pipeline("dlib", block_size=48)


def test_config_modules_expose_the_setup_py_names(tmp_path, monkeypatch):
    """Every ``-p facerev-MODEL[-pemiu-kK]`` resource loads, with its K; none has K = d."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    import importlib.metadata
    import re

    from bob_facerev.face.registry import get_model_spec

    eps = [ep for ep in importlib.metadata.entry_points(group="bob.bio.pipeline")
           if ep.name.startswith("facerev-")]
    models = set()
    for ep in eps:
        model, k = re.fullmatch(r"facerev-([a-z]+)(?:-pemiu-k(\d+))?", ep.name).groups()
        models.add(model)
        pipeline = ep.load()
        if k is None:
            assert pipeline.biometric_algorithm.__class__.__name__ == "CosineSimilarity"
            continue
        assert pipeline.biometric_algorithm.block_size == int(k)
        assert int(k) < get_model_spec(model).embedding_size, ep.name  # at least two blocks
    assert models == {"dlib", "arcface", "elasticface", "sface"}
    assert "facerev-arcface-pemiu-k128" in {ep.name for ep in eps}
    assert "facerev-dlib-pemiu-k128" not in {ep.name for ep in eps}


def test_one_block_pipeline_is_refused_in_one_line():
    """K = d: one block, nothing to shuffle; a ValueError, and a click error for ``bob bio``."""
    with pytest.raises(ValueError, match="one block") as info:
        verification_pipeline("dlib", block_size=128)
    assert isinstance(info.value, click.ClickException)
    assert "\n" not in str(info.value) and "facerev-dlib-pemiu-k64" in str(info.value)


def test_samples_without_annotations_get_none():
    from sklearn.base import BaseEstimator

    class Echo(BaseEstimator):
        def _more_tags(self):
            extra = (("annotations", "annotations"),)
            return {"requires_fit": False, "bob_transform_extra_input": extra}

        def transform(self, X, annotations):
            return [a for a in annotations]

    w = OptionalExtraInputWrapper(Echo())
    eyes = {"leye": (1, 2), "reye": (1, 0)}
    out = w.transform([Sample(1, key="a"), Sample(2, key="b", annotations=eyes)])
    assert [s.data for s in out] == [None, eyes]
    sets = w.transform([SampleSet([Sample(1, key="a")], key="s")])
    assert sets[0].samples[0].data is None


class BatchRecorder(TransformerMixin, BaseEstimator):
    """Doubles its inputs and records the size of every call (and the process it ran in)."""

    calls = []

    def _more_tags(self):
        return {"requires_fit": False}

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        BatchRecorder.calls.append(len(X))
        return [np.array([2 * x, os.getpid()]) for x in X]


def _templates(sizes):
    return [
        SampleSet([Sample(10 * t + i, key=f"t{t}/{i}") for i in range(n)], key=f"t{t}",
                  template_id=f"t{t}")
        for t, n in enumerate(sizes)
    ]


def test_template_batching_makes_one_call_per_group():
    sizes = (1, 3, 1, 2)
    BatchRecorder.calls = []
    bob_sets = wrap(["sample"], BatchRecorder()).transform(_templates(sizes))
    [s.data for sset in bob_sets for s in sset.samples]
    assert BatchRecorder.calls == list(sizes)  # Bob's SampleWrapper: one call per template

    BatchRecorder.calls = []
    sets = TemplateBatchingWrapper(BatchRecorder()).transform(_templates(sizes))
    assert BatchRecorder.calls == []  # lazy, as Bob's
    data = [[s.data[0] for s in sset.samples] for sset in sets]
    assert BatchRecorder.calls == [sum(sizes)]
    assert data == [[2 * (10 * t + i) for i in range(n)] for t, n in enumerate(sizes)]
    assert [sset.template_id for sset in sets] == ["t0", "t1", "t2", "t3"]
    assert [s.key for s in sets[1].samples] == ["t1/0", "t1/1", "t1/2"]


def test_template_batching_keeps_failed_samples_failed():
    sets = _templates((2, 2))
    sets[0].samples[1] = Sample(None, key="t0/1")
    BatchRecorder.calls = []
    out = TemplateBatchingWrapper(BatchRecorder()).transform(sets)
    got = [[None if s.data is None else s.data[0] for s in ss.samples] for ss in out]
    assert got == [[0, None], [20, 22]] and BatchRecorder.calls == [3]


def test_template_batching_reads_each_input_once_and_aligns_extra_arguments():
    from bob.pipelines import DelayedSample

    class Annotated(BaseEstimator):
        def _more_tags(self):
            return {"requires_fit": False,
                    "bob_transform_extra_input": (("annotations", "annotations"),)}

        def transform(self, X, annotations):
            return [(x, a) for x, a in zip(X, annotations)]

    reads = []

    def loader(value):
        reads.append(value)
        return None if value == 1 else value

    samples = [DelayedSample(partial(loader, v), key=str(v), annotations=f"a{v}") for v in range(4)]
    out = [s.data for s in TemplateBatchingWrapper(Annotated()).transform(samples)]
    assert sorted(reads) == [0, 1, 2, 3]  # Bob's DelayedSamplesCall reads each one 3 times
    # sample 1 failed: the others keep their own annotations
    assert out == [(0, "a0"), None, (2, "a2"), (3, "a3")]


def test_template_batching_in_processes():
    sizes = (3, 1, 4, 2, 6)
    serial = TemplateBatchingWrapper(BatchRecorder()).transform(_templates(sizes))
    parallel = TemplateBatchingWrapper(BatchRecorder(), n_jobs=2).transform(_templates(sizes))
    values = [[s.data[0] for s in ss.samples] for ss in parallel]
    assert values == [[s.data[0] for s in ss.samples] for ss in serial]
    pids = {s.data[1] for ss in parallel for s in ss.samples}
    assert os.getpid() not in pids and 1 <= len(pids) <= 2  # ran in (up to 2) child processes


def test_checkpointed_steps_batch_across_templates(tmp_path):
    from sklearn.pipeline import make_pipeline

    from bob_facerev.pipelines import TemplateBatchingCheckpointWrapper, batch_checkpointed_steps

    sizes = (1, 3, 1, 2)
    pipe = make_pipeline(TemplateBatchingWrapper(BatchRecorder()))
    # as bob bio pipeline simple does without --memory
    pipe.steps[0] = ("rec", wrap(["checkpoint"], pipe.steps[0][1], features_dir=str(tmp_path)))
    BatchRecorder.calls = []
    [s.data for ss in pipe.transform(_templates(sizes)) for s in ss.samples]
    assert BatchRecorder.calls == list(sizes)  # Bob's CheckpointWrapper: one call per template
    for path in tmp_path.rglob("*.h5"):
        path.unlink()

    assert batch_checkpointed_steps(pipe) == 1
    assert isinstance(pipe.steps[0][1], TemplateBatchingCheckpointWrapper)
    BatchRecorder.calls = []
    sets = pipe.transform(_templates(sizes))
    data = [[int(s.data[0]) for s in ss.samples] for ss in sets]
    assert BatchRecorder.calls == [sum(sizes)]
    assert data == [[2 * (10 * t + i) for i in range(n)] for t, n in enumerate(sizes)]
    assert len(list(tmp_path.rglob("*.h5"))) == sum(sizes)
    # each output was written once and handed on in memory (Bob reads it back at every access)
    step = pipe.steps[0][1]
    reads = []
    step.load_func = lambda path, load=step.load_func: reads.append(path) or load(path)
    assert [[int(s.data[0]) for s in ss.samples] for ss in sets] == data and reads == []
    # a second run reads the checkpoints, each file once however often its data is read
    BatchRecorder.calls = []
    again = pipe.transform(_templates(sizes))
    assert [[int(s.data[0]) for s in ss.samples] for ss in again] == data
    assert [[int(s.data[0]) for s in ss.samples] for ss in again] == data
    assert BatchRecorder.calls == [] and len(reads) == len(set(reads)) == sum(sizes)


def test_dask_partitions_hold_full_batches():
    from bob.pipelines.wrappers import ToDaskBag
    from sklearn.pipeline import make_pipeline

    from bob_facerev.face.parallel import available_cores
    from bob_facerev.pipelines import _partitioned, partition_count

    assert partition_count(1500, 2) == 8  # four per worker (Dask's default: 100 of 15)
    assert partition_count(9000, 2) == 9  # at most 1,000 templates each
    assert partition_count(500, 2) == 7 and partition_count(10, 2) == 1  # at least 64
    default, user = ToDaskBag(), ToDaskBag(npartitions=7)
    pipe = make_pipeline(default, user)
    with _partitioned(pipe, 500):
        # no Dask client here: four partitions per available core, at least 64 templates each
        bag = default.transform(list(range(500)))
        assert bag.npartitions == partition_count(500, available_cores())
        sizes = bag.map_partitions(lambda p: [len(p)]).compute(scheduler="sync")
        assert max(sizes) - min(sizes) < len(sizes)  # equal partitions, none of a few samples
        assert user.npartitions == 7  # the user's choice stays
    assert default.npartitions is None and default.partition_size is None  # restored


def test_n_jobs_checks_and_dask_workers_stay_serial():
    from distributed import Client, LocalCluster

    from bob_facerev.face.parallel import available_cores, effective_n_jobs

    assert effective_n_jobs(None) == available_cores() and effective_n_jobs(3) == 3
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="n_jobs"):
            effective_n_jobs(bad)
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        assert client.submit(effective_n_jobs, None).result() == 1
        assert client.submit(effective_n_jobs, 4).result() == 1


# --------------------------------------------------------------------------------------------
# real runs on the bundled demo faces (dlib model, offline)


def _read_scores(path):
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {(r["probe_template_id"], r["bio_ref_template_id"]): r for r in rows}


def _check_separation(scores):
    genuine, impostor = [], []
    for r in scores.values():
        same = r["probe_subject_id"] == r["bio_ref_subject_id"]
        (genuine if same else impostor).append(float(r["score"]))
    assert len(genuine) == 5 and len(impostor) == 20
    assert min(genuine) > max(impostor)


def _cli_no_dask(pipeline, output):
    from bob.bio.base.script.pipeline_simple import pipeline_simple
    from click.testing import CliRunner

    result = CliRunner().invoke(
        pipeline_simple,
        ["-d", "facerev-demo", "-p", pipeline, "-o", str(output), "--no-dask"],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return _read_scores(output / "scores-dev.csv")


@pytest.fixture(scope="module")
def no_dask_scores(tmp_path_factory):
    """`bob bio pipeline simple -d facerev-demo -p NAME --no-dask` scores, run once per NAME."""
    cache = {}

    def run(pipeline):
        if pipeline not in cache:
            cache[pipeline] = _cli_no_dask(pipeline, tmp_path_factory.mktemp(pipeline))
        return cache[pipeline]

    return run


@pytest.fixture(scope="module")
def local_parallel():
    """The `-l local-parallel` client of bob.pipelines (worker processes: estimators pickled)."""
    from bob.pipelines.distributed import get_local_parallel_client

    client = get_local_parallel_client(parallel=2)
    yield client
    client.close()
    client.cluster.close()


def _dask_run(pipeline, output, client, n_partitions=None):
    from bob.bio.base import load_resource
    from bob.bio.base.pipelines.entry_points import execute_pipeline_simple

    execute_pipeline_simple(
        load_resource(pipeline, "pipeline"),
        load_resource("facerev-demo", "database"),
        client,
        groups=["dev"],
        output=str(output),
        write_metadata_scores=True,
        checkpoint=True,
        dask_n_partitions=n_partitions,
        dask_partition_size=None,
        dask_n_workers=None,
    )
    return _read_scores(output / "scores-dev.csv")


@pytest.fixture(scope="module")
def facerev_local():
    """``-l facerev-local``: two worker processes forked from this pytest process after it has
    run torch's OpenMP and BLAS pools on two threads (their threads do not survive a fork)."""
    import torch

    from bob_facerev.dask_clusters import local_client

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    x = torch.rand(8, 3, 64, 64)
    torch.nn.functional.conv2d(x, torch.rand(16, 3, 3, 3)).relu_().sum().item()
    (x.flatten(1) @ x.flatten(1).T).sum().item()
    torch.set_num_threads(threads)
    client = local_client(n_workers=2, dashboard_address=":0", method="fork")
    yield client
    client.close()
    client.cluster.close()


def _worker_threads():
    import threadpoolctl
    import torch

    return torch.get_num_threads(), {p["num_threads"] for p in threadpoolctl.threadpool_info()}


@pytest.mark.slow
def test_facerev_local_forked_workers_agree_with_no_dask(tmp_path, no_dask_scores,
                                                         facerev_local):
    threads = facerev_local.run(_worker_threads)
    assert len(threads) == 2 and all(t == (1, {1}) for t in threads.values()), threads
    plain = no_dask_scores("facerev-dlib")
    dask = _dask_run("facerev-dlib", tmp_path / "facerev-local", facerev_local)
    assert set(dask) == set(plain)
    pairs = sorted(plain)
    assert_scores_agree([float(dask[p]["score"]) for p in pairs],
                        [float(plain[p]["score"]) for p in pairs])


@pytest.mark.slow
@pytest.mark.parametrize("pipeline,n_partitions", [("facerev-dlib", None),  # the package's
                                                   ("facerev-dlib", 5),  # other batches
                                                   ("facerev-dlib-pemiu-k32", 5)])
def test_bob_bio_pipeline_simple_demo(pipeline, n_partitions, tmp_path, no_dask_scores,
                                      local_parallel):
    plain = no_dask_scores(pipeline)
    _check_separation(plain)
    dask = _dask_run(pipeline, tmp_path / "local-parallel", local_parallel, n_partitions)
    assert set(dask) == set(plain)
    pairs = sorted(plain)
    assert_scores_agree([float(dask[p]["score"]) for p in pairs],
                        [float(plain[p]["score"]) for p in pairs])


@pytest.mark.slow
def test_demo_scores_equal_a_direct_computation(no_dask_scores):
    """The pipeline's cosine scores equal crop -> embed -> cosine done by hand."""
    from bob.bio.base import load_resource

    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding

    scores = no_dask_scores("facerev-dlib")
    db = load_resource("facerev-demo", "database")
    cropper, extractor = FaceCropper("dlib"), FaceEmbedding("dlib", device="cpu")

    def embed(sampleset):
        crops = cropper.transform([s.data for s in sampleset.samples])
        return extractor.transform(crops).mean(axis=0)

    refs = {r.template_id: embed(r) for r in db.references()}
    for probe in db.probes():
        p = embed(probe)
        for ref_id, r in refs.items():
            expected = r @ p / np.linalg.norm(r) / np.linalg.norm(p)
            got = float(scores[(probe.template_id, ref_id)]["score"])
            assert got == pytest.approx(expected, abs=1e-5)
    # and the transformer alone gives the same unit-norm embeddings
    t = embedding_transformer("dlib", device="cpu")
    out = t.transform(db.references()[:1])
    np.testing.assert_allclose(out[0].samples[0].data, extractor.transform(
        cropper.transform([db.references()[0].samples[0].data]))[0], atol=1e-6)
