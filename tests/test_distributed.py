"""GPU routing on Dask: annotated steps run on GPU workers only, scores do not change, and a GPU
route without a GPU worker fails fast."""

import csv
import os
import time

import dask
import dask.bag
import numpy as np
import pytest

from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.pipeline import make_pipeline

import bob.pipelines

from bob_facerev import dask_clusters as fc
from bob_facerev import distributed as fd

from score_checks import assert_scores_agree

DIM = 16


def _worker_address():
    try:
        from distributed import get_worker

        return get_worker().address
    except ValueError:  # not on a distributed worker
        return "local"


class LoggingProjection(TransformerMixin, BaseEstimator):
    """A fixed random projection (the test's "extractor") that logs where it ran."""

    def __init__(self, log_dir=None, gpu=True, dim=DIM, seed=0):
        self.log_dir = log_dir
        self.gpu = gpu
        self.dim = dim
        self.seed = seed

    def fit(self, X, y=None):
        return self

    def transform(self, X):
        X = np.asarray(X, dtype=np.float64)
        W = np.random.default_rng(self.seed).standard_normal((X.shape[1], self.dim))
        if self.log_dir is not None:
            name = "gpu" if self.gpu else "cpu"
            with open(os.path.join(self.log_dir, f"{name}-{os.getpid()}.log"), "a") as f:
                f.write(f"{_worker_address()}\t{len(X)}\n")
        return X @ W

    def _more_tags(self):
        return {"requires_fit": False, "stateless": True, fd.GPU_TAG: self.gpu}


def _read_log(log_dir, name):
    rows = []
    for fn in os.listdir(log_dir):
        if fn.startswith(name + "-"):
            with open(os.path.join(log_dir, fn)) as f:
                rows += [line.split("\t") for line in f.read().splitlines()]
    return {addr for addr, _ in rows}, sum(int(n) for _, n in rows)


# ------------------------------------------------------------------------------------------
# tags and unit-level behaviour (no cluster)


def test_wants_gpu_sees_through_wrappers():
    gpu = LoggingProjection(gpu=True)
    cpu = LoggingProjection(gpu=False)
    assert fd.wants_gpu(gpu) and not fd.wants_gpu(cpu)
    wrapped = bob.pipelines.wrap(["sample", "dask"], make_pipeline(cpu, gpu))
    flags = [fd.wants_gpu(step) for _, step in wrapped.steps]
    # ToDaskBag, cpu, gpu
    assert flags == [False, False, True]
    assert fd.wants_gpu(make_pipeline(cpu, gpu))
    assert not fd.wants_gpu(make_pipeline(cpu))


def test_resolve_routing_mode():
    assert fd.resolve_routing_mode(True) == "require"
    assert fd.resolve_routing_mode(False) == "off"
    assert fd.resolve_routing_mode("AUTO") == "auto"
    with pytest.raises(ValueError, match="gpu_routing='gpu'"):
        fd.resolve_routing_mode("gpu")


def test_require_without_distributed_client_is_an_error(monkeypatch):
    monkeypatch.setattr(fd, "_default_client", lambda: None)
    transformer = bob.pipelines.wrap(["sample", "dask"], make_pipeline(LoggingProjection()))
    with pytest.raises(fd.GPURoutingError, match="no distributed Dask client"):
        fd.route_to_gpu(transformer, gpu_routing="require")
    assert fd.route_to_gpu(transformer, gpu_routing="auto") == []
    assert not any(isinstance(s, fd.RoutedDaskWrapper) for _, s in transformer.steps)


def test_annotation_survives_delayed_but_not_bag_optimisation():
    """Why :func:`compute` exists: bag optimisation flattens the graph (annotations lost),
    delayed optimisation (what Bob's score writers compute) keeps it."""
    from dask.base import collections_to_dsk
    from dask.highlevelgraph import HighLevelGraph

    b = dask.bag.from_sequence(range(4), npartitions=2)
    with dask.annotate(resources={"GPU": 1}):
        b = b.map_partitions(lambda p: [x + 1 for x in p])
    b = b.map_partitions(lambda p: [x * 2 for x in p])
    assert not isinstance(collections_to_dsk([b], optimize_graph=True), HighLevelGraph)
    hlg = collections_to_dsk([b], optimize_graph=False)
    assert [l.annotations for l in hlg.layers.values() if l.annotations] == [{"resources": {"GPU": 1}}]
    delayed = dask.delayed(list)(b)
    hlg = collections_to_dsk([delayed], optimize_graph=True)
    assert isinstance(hlg, HighLevelGraph)
    assert any(l.annotations == {"resources": {"GPU": 1}} for l in hlg.layers.values())


def test_job_scripts_request_gpus():
    settings = dict(fc.JOBQUEUE_DEFAULTS)
    settings["bob_facerev.slurm.gpu_partition"] = "gpuq"
    settings["bob_facerev.slurm.account"] = "proj"
    import dask_jobqueue

    for kind, job_cls, gpu_line in (
        ("slurm", dask_jobqueue.slurm.SLURMJob, "#SBATCH --gres=gpu:1"),
        ("sge", dask_jobqueue.sge.SGEJob, "#$ -l gpu=1"),
    ):
        cpu = job_cls("tcp://h:1", name="w", **fc.jobqueue_job_options(kind, False, settings))
        gpu = job_cls("tcp://h:1", name="w", **fc.jobqueue_job_options(kind, True, settings))
        cpu, gpu = cpu.job_script(), gpu.job_script()
        assert gpu_line in gpu and gpu_line not in cpu
        assert "--resources GPU=1" in gpu and "--resources" not in cpu
    slurm = fc.jobqueue_job_options("slurm", True, settings)
    assert slurm["queue"] == "gpuq" and slurm["account"] == "proj"


def test_importing_the_module_starts_nothing():
    """Importing bob_facerev.distributed or dask_clusters creates no client (the config modules do, when loaded)."""
    import subprocess
    import sys

    code = (
        "import bob_facerev.distributed, bob_facerev.dask_clusters, distributed\n"
        "try:\n    distributed.default_client()\nexcept ValueError:\n    print('no client')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "no client", out.stderr[-2000:]


# ------------------------------------------------------------------------------------------
# clusters


@pytest.fixture(scope="module")
def gpu_client():
    """One CPU worker and one worker advertising GPU=1, threads in this process."""
    client = fc.local_gpu_client(n_cpu_workers=1, n_gpu_workers=1, processes=False, dashboard_address=":0")
    yield client
    client.close()
    client.cluster.close()


@pytest.fixture(scope="module")
def cpu_client():
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    client = Client(cluster, set_as_default=False)
    yield client
    client.close()
    cluster.close()


@pytest.mark.slow
def test_local_gpu_client_advertises_and_scales(gpu_client):
    res = fd._worker_resources(gpu_client)
    assert sorted(r.get("GPU", 0) for r in res.values()) == [0, 1]
    assert len(fd.check_gpu_routing(gpu_client)) == 1
    # scale() sizes the CPU pool only
    gpu_client.cluster.scale(2)
    gpu_client.wait_for_workers(3, timeout=30)
    assert sorted(r.get("GPU", 0) for r in fd._worker_resources(gpu_client).values()) == [0, 0, 1]
    gpu_client.cluster.scale(1)
    deadline = time.time() + 30
    while len(fd._worker_resources(gpu_client)) != 2 and time.time() < deadline:
        time.sleep(0.1)
    assert sorted(r.get("GPU", 0) for r in fd._worker_resources(gpu_client).values()) == [0, 1]


@pytest.mark.slow
def test_gpu_steps_run_only_on_gpu_worker(gpu_client, tmp_path):
    gpu_addr = fd.gpu_workers(gpu_client)
    transformer = bob.pipelines.wrap(
        ["sample", "dask"],
        make_pipeline(
            LoggingProjection(str(tmp_path), gpu=False, seed=1),
            LoggingProjection(str(tmp_path), gpu=True, seed=2),
        ),
        npartitions=8,
    )
    assert fd.route_to_gpu(transformer, gpu_routing="require", client=gpu_client) == [
        "loggingprojection-2"
    ]
    X = np.random.default_rng(0).standard_normal((32, DIM))
    samples = [bob.pipelines.Sample(x, key=str(i)) for i, x in enumerate(X)]
    out = fd.compute(transformer.transform(samples), gpu_client)
    W1 = np.random.default_rng(1).standard_normal((DIM, DIM))
    W2 = np.random.default_rng(2).standard_normal((DIM, DIM))
    np.testing.assert_allclose(np.stack([s.data for s in out]), X @ W1 @ W2)
    gpu_seen, n_gpu = _read_log(tmp_path, "gpu")
    cpu_seen, n_cpu = _read_log(tmp_path, "cpu")
    assert n_gpu == n_cpu == 32
    assert gpu_seen == set(gpu_addr)
    assert cpu_seen <= set(fd._worker_resources(gpu_client))


@pytest.mark.slow
def test_gpu_route_without_gpu_worker_fails_fast(cpu_client):
    transformer = bob.pipelines.wrap(["sample", "dask"], make_pipeline(LoggingProjection()))
    start = time.time()
    with pytest.raises(fd.GPURoutingError) as err:
        fd.route_to_gpu(transformer, gpu_routing="require", client=cpu_client)
    assert time.time() - start < 10
    msg = str(err.value)
    assert "no worker of the Dask client" in msg and "'GPU'" in msg
    assert "facerev-local-gpu" in msg and "resources={}" in msg
    # auto: no GPU worker, so no routing
    assert fd.route_to_gpu(transformer, gpu_routing="auto", client=cpu_client) == []


# ------------------------------------------------------------------------------------------
# a small PipelineSimple end to end, the way `bob bio pipeline simple` runs it


def _make_database(root, n_subjects=6, per_subject=4, dim=8, seed=0):
    from bob.bio.base.database import CSVDatabase, FileSampleLoader

    rng = np.random.default_rng(seed)
    data = root / "data"
    proto = root / "protocols" / "default" / "dev"
    data.mkdir(parents=True)
    proto.mkdir(parents=True)
    rows = {"enroll": [], "probe": []}
    for s in range(n_subjects):
        mean = rng.standard_normal(dim)
        for i in range(per_subject):
            path = f"s{s}_{i}"
            np.save(data / f"{path}.npy", mean + 0.5 * rng.standard_normal(dim))
            which = "enroll" if i == 0 else "probe"
            tid = f"s{s}" if which == "enroll" else f"s{s}_{i}"
            rows[which].append((path, f"s{s}", tid))
    for which, fn in (("enroll", "for_enrolling.csv"), ("probe", "for_probing.csv")):
        with open(proto / fn, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "subject_id", "template_id"])
            w.writerows(rows[which])
    return CSVDatabase(
        name="toy",
        protocol="default",
        dataset_protocols_path=str(root / "protocols"),
        transformer=make_pipeline(
            FileSampleLoader(data_loader=np.load, dataset_original_directory=str(data), extension=".npy")
        ),
    )


def _run_pipeline(database, out_dir, log_dir, client, gpu_routing):
    from bob.bio.base.algorithm import Distance
    from bob.bio.base.pipelines import execute_pipeline_simple

    transformer = bob.pipelines.wrap(
        ["sample"],
        make_pipeline(
            LoggingProjection(str(log_dir), gpu=False, dim=8, seed=3),
            LoggingProjection(str(log_dir), gpu=True, dim=8, seed=4),
        ),
    )
    pipeline = fd.GPURoutedPipelineSimple(
        transformer, Distance(), gpu_routing=gpu_routing, client=client
    )
    execute_pipeline_simple(
        pipeline,
        database,
        client,
        groups=["dev"],
        output=str(out_dir),
        write_metadata_scores=True,
        checkpoint=False,
        dask_n_partitions=4,
        dask_partition_size=None,
        dask_n_workers=None,
    )
    with open(out_dir / "scores-dev.csv") as f:
        rows = list(csv.DictReader(f))
    return {(r["probe_template_id"], r["bio_ref_template_id"]): float(r["score"]) for r in rows}


@pytest.mark.slow
def test_pipeline_scores_agree_and_routed(gpu_client, cpu_client, tmp_path):
    database = _make_database(tmp_path / "db")
    runs = {}
    for name, client, routing in (
        ("nodask", None, "off"),
        ("local", cpu_client, "auto"),
        ("local-gpu", gpu_client, "require"),
    ):
        log = tmp_path / f"log-{name}"
        log.mkdir()
        runs[name] = _run_pipeline(database, tmp_path / f"out-{name}", log, client, routing)
        runs[name + "-log"] = (_read_log(log, "gpu"), _read_log(log, "cpu"))
    assert len(runs["nodask"]) == 6 * 6 * 3  # every probe against every reference
    pairs = sorted(runs["nodask"])
    for name in ("local", "local-gpu"):
        assert sorted(runs[name]) == pairs
        assert_scores_agree([runs[name][p] for p in pairs], [runs["nodask"][p] for p in pairs])
    # the GPU step ran only on the GPU worker, through Bob's own compute path
    (gpu_seen, n_gpu), (cpu_seen, n_cpu) = runs["local-gpu-log"]
    assert gpu_seen == set(fd.gpu_workers(gpu_client)) and n_gpu == 24
    assert n_cpu == 24
    assert runs["nodask-log"][0][0] == {"local"}


def test_start_method_of_facerev_local(monkeypatch):
    import sys

    from bob_facerev.dask_clusters import START_METHOD, start_method

    monkeypatch.setattr(sys, "platform", "linux")
    assert start_method(rc={}) == "fork"  # workers start with this process's imports
    assert start_method(rc={START_METHOD: "spawn"}) == "spawn"
    with pytest.raises(ValueError, match=f"{START_METHOD} = 'thread'.*spawn"):
        start_method(rc={START_METHOD: "thread"})
    monkeypatch.setattr("bob_facerev.dask_clusters._cuda_initialized", lambda: True)
    assert start_method(rc={}) == "spawn"  # a forked child cannot use CUDA
    monkeypatch.setattr(sys, "platform", "darwin")
    monkeypatch.setattr("bob_facerev.dask_clusters._cuda_initialized", lambda: False)
    assert start_method(rc={}) == "spawn"
