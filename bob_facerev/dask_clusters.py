"""The Dask clients behind ``-l facerev-*``: CPU workers plus workers advertising a GPU.

:func:`local_client`, :func:`local_gpu_client`, :func:`slurm_gpu_client` and
:func:`sge_gpu_client` build the clients of the ``dask.client`` entry points (``-l facerev-local``,
``facerev-local-gpu``, ``facerev-slurm-gpu``, ``facerev-sge-gpu``). Their GPU workers advertise
``resources={"GPU": 1}``, which :mod:`bob_facerev.distributed` routes the GPU steps to. Importing
this module starts nothing; the config modules call these functions when Bob loads them.
The internals of distributed and dask-jobqueue they rely on are reached through
:mod:`bob_facerev.dask_internals`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

from distributed.core import Status
from distributed.diagnostics.plugin import WorkerPlugin

from .dask_internals import cluster_name, correct_state, job_kwargs
from .distributed import GPU_RESOURCE


def _rc():
    from .rc import user_defaults

    return user_defaults()


def _cpu_count():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def count_gpus() -> int:
    """Number of NVIDIA GPUs visible here (``CUDA_VISIBLE_DEVICES``, else ``nvidia-smi -L``)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return len([v for v in visible.split(",") if v.strip() not in ("", "-1")])
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return 0
    try:
        out = subprocess.run([smi, "-L"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return 0
    return sum(1 for line in out.splitlines() if line.startswith("GPU "))


class GPUPoolMixin:
    """SpecCluster mixin: a fixed pool of GPU workers next to a scalable CPU pool.

    ``scale(n)`` (what ``--dask-n-workers`` calls) sets the number of CPU workers and never touches
    the GPU workers, which advertise ``resources={"GPU": 1}``. Adaptive scaling is not supported.
    """

    _gpu_worker_names: tuple = ()

    def _add_gpu_workers(self, specs):
        """Add ``{name: spec}`` GPU workers and start (or submit) them."""
        self._gpu_worker_names = tuple(self._gpu_worker_names) + tuple(specs)
        self.worker_spec.update(specs)
        correct_state(self)

    def scale(self, n=0, memory=None, cores=None, jobs=0):
        if memory is not None or cores is not None:
            raise ValueError(
                f"{type(self).__name__}.scale takes a number of CPU workers (n or jobs), not "
                f"memory={memory!r} / cores={cores!r}."
            )
        n = max(int(n or 0), int(jobs or 0))
        gpu = set(self._gpu_worker_names)
        if self.status in (Status.closing, Status.closed):
            gpu = set()  # closing the cluster: every worker goes
        cpu = [name for name in self.worker_spec if name not in gpu]
        while len(cpu) > n:
            del self.worker_spec[cpu.pop()]
        while len(cpu) < n:
            spec = self.new_worker_spec()
            self.worker_spec.update(spec)
            cpu.extend(spec)
        correct_state(self, wait=False)


#: Bob config key: how ``-l facerev-local`` starts its worker processes (fork or spawn)
START_METHOD = "bob_facerev.dask.start_method"


def _cuda_initialized():
    torch = sys.modules.get("torch")
    return bool(torch is not None and torch.cuda.is_initialized())


def start_method(rc=None):
    """How :func:`local_client` starts its workers: ``bob_facerev.dask.start_method``, else
    ``"fork"`` on Linux unless this process has initialised CUDA, else ``"spawn"``.

    A forked worker starts with this process's imports (under ``bob``, the whole CLI: torch,
    Bob); a spawned one imports them again, about 9 s per worker on a 2-core machine, before
    its first task. Workers the nanny restarts later are spawned (Dask's default).
    """
    from .rc import get as rc_get

    method = rc_get(START_METHOD, None, _rc() if rc is None else rc)
    if method is None:
        linux = sys.platform.startswith("linux")
        method = "fork" if linux and not _cuda_initialized() else "spawn"
    if method not in ("fork", "spawn", "forkserver"):
        raise ValueError(f"{START_METHOD} = {method!r}: use fork, spawn or forkserver "
                         f"(bob config set {START_METHOD} spawn)")
    return method


class ThreadLimit(WorkerPlugin):
    """Worker plugin: at most ``n`` threads in the worker's torch and BLAS/OpenMP pools.

    A spawned worker gets ``OMP_NUM_THREADS=1`` (Dask's pre-spawn environment) before torch is
    imported; a forked one inherits pools sized for the whole machine, which this shrinks.
    """

    name = "bob_facerev-thread-limit"

    def __init__(self, n=1):
        self.n = int(n)

    def setup(self, worker):
        from threadpoolctl import threadpool_limits

        threadpool_limits(self.n)
        torch = sys.modules.get("torch")
        if torch is not None:
            torch.set_num_threads(self.n)


def local_client(n_workers=None, dashboard_address=":8787", method=None):
    """``-l facerev-local``: a LocalCluster of worker processes, one thread each.

    Parameters
    ----------
    n_workers : int or None
        Default: the number of cores available to this process.
    dashboard_address : str
        Where the dashboard listens (``":0"``: any free port).
    method : str or None
        How the workers start (``fork``, ``spawn``, ``forkserver``); default
        :func:`start_method`.
    """
    import dask
    from distributed import Client, LocalCluster

    method = start_method() if method is None else method
    with dask.config.set({"distributed.worker.multiprocessing-method": method}):
        cluster = LocalCluster(
            n_workers=n_workers or _cpu_count(),
            threads_per_worker=1,
            processes=True,
            dashboard_address=dashboard_address,
        )
    client = Client(cluster)
    client.register_plugin(ThreadLimit(1))
    return client


def local_gpu_client(
    n_cpu_workers=None,
    n_gpu_workers=None,
    processes=True,
    resource=GPU_RESOURCE,
    dashboard_address=":8787",
):
    """``-l facerev-local-gpu``: CPU workers plus workers advertising ``resources={"GPU": 1}``.

    Each GPU worker sees one device (``CUDA_VISIBLE_DEVICES``). On a machine without a GPU, one
    "GPU" worker still starts (it computes on the CPU): that is how routing is tested.

    Parameters
    ----------
    n_cpu_workers : int or None
        Default ``bob_facerev.dask.cpu_workers`` (Bob config), else ``max(1, cores - GPU workers)``.
    n_gpu_workers : int or None
        Default ``bob_facerev.dask.gpu_workers``, else the number of GPUs visible, at least 1.
    processes : bool
        Worker processes (default) or threads in this process (``False``: fast to start, tests).
    resource : str
        The advertised resource name.
    dashboard_address : str
        Where the dashboard listens (``":0"``: any free port).

    Returns
    -------
    distributed.Client
    """
    from distributed import Client, LocalCluster

    from .rc import get as rc_get

    rc = _rc()
    n_gpus = count_gpus()
    if n_gpu_workers is None:
        n_gpu_workers = int(rc_get("bob_facerev.dask.gpu_workers", max(1, n_gpus), rc))
    if n_cpu_workers is None:
        n_cpu_workers = int(rc_get("bob_facerev.dask.cpu_workers",
                                   max(1, _cpu_count() - n_gpu_workers), rc))

    class GPULocalCluster(GPUPoolMixin, LocalCluster):
        pass

    cluster = GPULocalCluster(
        n_workers=n_cpu_workers,
        threads_per_worker=1,
        processes=processes,
        dashboard_address=dashboard_address,
    )
    specs = {}
    for i in range(n_gpu_workers):
        options = dict(cluster.new_spec["options"], resources={resource: 1})
        if processes and n_gpus:
            options["env"] = {"CUDA_VISIBLE_DEVICES": str(i % n_gpus)}
        specs[f"gpu-{i}"] = {"cls": cluster.new_spec["cls"], "options": options}
    cluster._add_gpu_workers(specs)
    client = Client(cluster)
    client.wait_for_workers(n_cpu_workers + n_gpu_workers, timeout=120)
    return client


#: Bob config keys of the batch-system clients, with their defaults
JOBQUEUE_DEFAULTS = {
    "bob_facerev.dask.cpu_workers": 8,
    "bob_facerev.dask.gpu_workers": 1,
    "bob_facerev.dask.cpu_memory": "8GB",
    "bob_facerev.dask.gpu_memory": "32GB",
    "bob_facerev.dask.walltime": "08:00:00",
    "bob_facerev.dask.log_directory": "./logs",
    "bob_facerev.dask.local_directory": None,  # worker scratch dir; None: the batch system's default
    "bob_facerev.slurm.account": None,  # falls back to Bob's `slurm.account`
    "bob_facerev.slurm.cpu_partition": None,  # None: the site's default partition
    "bob_facerev.slurm.gpu_partition": "gpu",
    "bob_facerev.slurm.gres": "gpu:1",
    "bob_facerev.sge.project": None,  # falls back to Bob's `sge.project`
    "bob_facerev.sge.cpu_queue": "all.q",
    "bob_facerev.sge.gpu_queue": "gpu.q",
    "bob_facerev.sge.gpu_resource_spec": "gpu=1",  # qsub -l for GPU jobs
}


def jobqueue_settings(rc=None) -> dict:
    """The batch-system settings: :data:`JOBQUEUE_DEFAULTS` overridden by the Bob config."""
    from .rc import get as rc_get

    rc = _rc() if rc is None else rc
    out = {key: rc_get(key, default, rc) for key, default in JOBQUEUE_DEFAULTS.items()}
    if out["bob_facerev.slurm.account"] is None:
        out["bob_facerev.slurm.account"] = rc.get("slurm.account", None)
    if out["bob_facerev.sge.project"] is None:
        out["bob_facerev.sge.project"] = rc.get("sge.project", None)
    return out


def jobqueue_job_options(kind, gpu, settings=None, resource=GPU_RESOURCE) -> dict:
    """Job options (``dask_jobqueue`` job keyword arguments) for one CPU or GPU worker job.

    Parameters
    ----------
    kind : {"slurm", "sge"}
    gpu : bool
        GPU job: GPU partition/queue, GPU request (``--gres`` / ``-l``), and the worker advertises
        ``--resources GPU=1``.
    settings : dict or None
        From :func:`jobqueue_settings` (default: read the Bob config).

    Returns
    -------
    dict
    """
    s = jobqueue_settings() if settings is None else settings
    options = dict(
        cores=1,
        processes=1,
        memory=s["bob_facerev.dask.gpu_memory" if gpu else "bob_facerev.dask.cpu_memory"],
        walltime=s["bob_facerev.dask.walltime"],
        log_directory=s["bob_facerev.dask.log_directory"],
        job_script_prologue=[f"export PYTHONPATH={os.pathsep.join(sys.path)}"],
    )
    if s["bob_facerev.dask.local_directory"]:
        options["local_directory"] = s["bob_facerev.dask.local_directory"]
    if kind == "slurm":
        options["account"] = s["bob_facerev.slurm.account"]
        options["queue"] = s["bob_facerev.slurm.gpu_partition" if gpu else "bob_facerev.slurm.cpu_partition"]
        options["job_extra_directives"] = [f"--gres={s['bob_facerev.slurm.gres']}"] if gpu else []
    elif kind == "sge":
        options["project"] = s["bob_facerev.sge.project"]
        options["queue"] = s["bob_facerev.sge.gpu_queue" if gpu else "bob_facerev.sge.cpu_queue"]
        options["resource_spec"] = s["bob_facerev.sge.gpu_resource_spec"] if gpu else None
    else:
        raise ValueError(f"kind={kind!r}: use 'slurm' or 'sge'.")
    if gpu:
        options["worker_extra_args"] = ["--resources", f"{resource}=1"]
    return options


def jobqueue_cluster_class(kind):
    """A dask-jobqueue cluster class (SLURM or SGE) with a fixed GPU pool (:class:`GPUPoolMixin`)."""
    import dask_jobqueue

    base = {"slurm": dask_jobqueue.SLURMCluster, "sge": dask_jobqueue.SGECluster}.get(kind)
    if base is None:
        raise ValueError(f"kind={kind!r}: use 'slurm' or 'sge'.")
    return type(f"GPUPool{base.__name__}", (GPUPoolMixin, base), {"__module__": __name__})


def jobqueue_gpu_client(kind, n_cpu_workers=None, n_gpu_workers=None, settings=None):
    """A client on a SLURM or SGE cluster: a CPU pool plus GPU workers advertising ``GPU``.

    The scheduler runs here; each worker is one batch job (one process, one core) submitted on
    creation. Settings come from the Bob config (see :data:`JOBQUEUE_DEFAULTS`).
    """
    from distributed import Client

    s = jobqueue_settings() if settings is None else settings
    n_cpu = int(s["bob_facerev.dask.cpu_workers"] if n_cpu_workers is None else n_cpu_workers)
    n_gpu = int(s["bob_facerev.dask.gpu_workers"] if n_gpu_workers is None else n_gpu_workers)
    cls = jobqueue_cluster_class(kind)
    cluster = cls(n_workers=0, **jobqueue_job_options(kind, gpu=False, settings=s))
    gpu_options = dict(job_kwargs(cluster), **jobqueue_job_options(kind, gpu=True, settings=s))
    cluster.scale(n_cpu)
    cluster._add_gpu_workers(
        {f"{cluster_name(cluster)}-gpu-{i}": {"cls": cluster.job_cls, "options": gpu_options}
         for i in range(n_gpu)}
    )
    return Client(cluster)


def slurm_gpu_client(**kwargs):
    """``-l facerev-slurm-gpu``: see :func:`jobqueue_gpu_client`."""
    return jobqueue_gpu_client("slurm", **kwargs)


def sge_gpu_client(**kwargs):
    """``-l facerev-sge-gpu``: see :func:`jobqueue_gpu_client`."""
    return jobqueue_gpu_client("sge", **kwargs)
