"""Dask distribution for bob_facerev: GPU routing and the clusters behind ``-l facerev-*``.

GPU routing
-----------
An estimator asks for a GPU with the scikit-learn tag ``facerev_gpu``::

    class FaceEmbedding(TransformerMixin, BaseEstimator):
        def _more_tags(self):
            return {"requires_fit": False, "facerev_gpu": True}

When a pipeline runs on a ``distributed`` client, :func:`route_to_gpu` (called by
:class:`GPURoutedPipelineSimple` right before the graph is built) replaces the
:class:`bob.pipelines.DaskWrapper` of every such step by a :class:`RoutedDaskWrapper`, which builds
that step's tasks inside ``dask.annotate(resources={"GPU": 1})``: the scheduler then places them only
on workers started with ``--resources GPU=1`` (``resources={"GPU": 1}``). Every other step runs
anywhere. Bob's SampleWrapper computes lazily (``DelayedSample``: the work happens in whichever
later task first reads ``.data``), so routed steps, and the step just before each of them,
materialise their output inside their own tasks.

Two dask facts this module is built around (dask/distributed 2024.5.2):

* Passing ``resources=`` to ``compute`` restricts *every* task of the graph and hangs when the CPU
  workers cannot take them; annotations are per layer and do not.
* Annotations live on the high-level graph. ``dask.bag``'s low-level optimisation (cull + fuse)
  flattens the graph and drops them, so computing a *bag* with the default ``optimize_graph=True``
  silently loses the routing. ``bob bio pipeline simple`` computes a ``Delayed`` (the score
  writer's ``post_process``), whose optimisation only culls, so the routing survives there. Compute
  bags yourself with :func:`compute` (``optimize_graph=False``).

A client with no GPU worker would keep GPU tasks waiting forever: :func:`check_gpu_routing` refuses
that case with a :class:`GPURoutingError` before anything is computed.

Clusters
--------
:func:`local_client`, :func:`local_gpu_client`, :func:`slurm_gpu_client` and
:func:`sge_gpu_client` build the clients of the ``dask.client`` entry points (``-l facerev-local``,
``facerev-local-gpu``, ``facerev-slurm-gpu``, ``facerev-sge-gpu``). Importing this module starts
nothing; the config modules call these functions when Bob loads them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import subprocess
import sys

import dask

from bob.bio.base.pipelines import PipelineSimple
from distributed.core import Status
from bob.pipelines.sample import DelayedSample, Sample, SampleSet
from bob.pipelines.wrappers import DaskWrapper, ToDaskBag
from sklearn.pipeline import Pipeline

logger = logging.getLogger(__name__)

#: the scikit-learn tag an estimator sets to ask for a GPU worker
GPU_TAG = "facerev_gpu"

#: the worker resource GPU tasks are annotated with (one unit per task)
GPU_RESOURCE = "GPU"

#: accepted values of ``gpu_routing``
ROUTING_MODES = ("auto", "require", "off")

#: the Bob configuration key (``bob config set bob_facerev.gpu_routing require``) read when
#: ``gpu_routing`` is not given
ROUTING_RC_KEY = "bob_facerev.gpu_routing"


class GPURoutingError(RuntimeError):
    """GPU routing was requested but the Dask client cannot run GPU tasks."""


# ---------------------------------------------------------------------------------------------
# which estimators want a GPU


def _inner_estimators(estimator):
    """Yield ``estimator`` and everything it wraps (bob wrappers' ``estimator``, Pipeline steps)."""
    seen = set()
    stack = [estimator]
    while stack:
        est = stack.pop()
        if est is None or isinstance(est, str) or id(est) in seen:
            continue
        seen.add(id(est))
        yield est
        if isinstance(est, Pipeline):
            stack.extend(step for _, step in est.steps)
        inner = getattr(est, "estimator", None)
        if inner is not None:
            stack.append(inner)


def wants_gpu(estimator) -> bool:
    """Whether ``estimator`` (or anything it wraps) sets the ``facerev_gpu`` tag.

    Parameters
    ----------
    estimator : object
        A scikit-learn estimator, possibly wrapped by bob.pipelines (Sample, Checkpoint, Dask
        wrappers) or a :class:`sklearn.pipeline.Pipeline`.

    Returns
    -------
    bool
    """
    for est in _inner_estimators(estimator):
        more_tags = getattr(est, "_more_tags", None)
        if more_tags is None or isinstance(est, Pipeline):
            continue
        try:
            if more_tags().get(GPU_TAG, False):
                return True
        except AttributeError:  # a wrapper forwarding to something without tags
            continue
    return False


# ---------------------------------------------------------------------------------------------
# annotated dask wrapper


def materialize(samples):
    """Evaluate lazy samples now: ``DelayedSample`` -> ``Sample`` (data and delayed attributes).

    Bob's SampleWrapper returns ``DelayedSample`` objects whose ``data`` is computed when first
    read, i.e. in whichever later task reads it. A routed step must compute in its own task.
    """
    out = []
    for s in samples:
        if isinstance(s, SampleSet):
            out.append(SampleSet(materialize(s.samples), parent=s))
        elif isinstance(s, DelayedSample):
            lazy = {k: getattr(s, k) for k in (s._delayed_attributes or {})}
            out.append(Sample(s.data, parent=s, **lazy))
        else:
            out.append(s)
    return out


class RoutedDaskWrapper(DaskWrapper):
    """A :class:`bob.pipelines.DaskWrapper` that computes in its own tasks, optionally on workers
    with given resources.

    Each partition task materialises its output samples (:func:`materialize`), so the work of
    this step happens in this step's task rather than lazily in a later one. With ``resources``,
    ``fit`` and the transform-like methods build their tasks inside
    ``dask.annotate(resources=resources)``, so a ``distributed`` scheduler places them only on
    workers that advertise those resources.

    Parameters
    ----------
    estimator : object
        The (sample-wrapped) estimator, as for :class:`~bob.pipelines.DaskWrapper`.
    resources : dict or None
        Worker resources each task needs, e.g. ``{"GPU": 1}``; ``None``: any worker.
    **kwargs
        Passed to :class:`~bob.pipelines.DaskWrapper`.
    """

    def __init__(self, estimator, resources=None, **kwargs):
        super().__init__(estimator, **kwargs)
        self.resources = resources

    @classmethod
    def from_dask_wrapper(cls, wrapper, resources=None):
        """Return a :class:`RoutedDaskWrapper` with the state (fitted or not) of ``wrapper``."""
        new = cls.__new__(cls)
        new.__dict__.update(wrapper.__dict__)
        new.resources = resources
        return new

    def _annotation(self):
        if not self.resources:
            return contextlib.nullcontext()
        return dask.annotate(resources=dict(self.resources))

    def _dask_transform(self, X, method_name):
        def _transf(X_line, dask_state):
            return materialize(getattr(dask_state, method_name)(X_line))

        # a readable task name in dask's dashboard and graphs
        _transf.__name__ = f"{type(self.estimator).__name__}.{method_name}"
        with self._annotation():
            return X.map_partitions(_transf, dask.delayed(self._dask_state))

    def fit(self, X, y=None, **fit_params):
        with self._annotation():
            return super().fit(X, y, **fit_params)


# ---------------------------------------------------------------------------------------------
# checking the client


def _worker_resources(client) -> dict:
    """``{address: resources}`` of the workers connected to ``client``'s scheduler."""
    workers = client.scheduler_info().get("workers", {})
    return {addr: dict(info.get("resources") or {}) for addr, info in workers.items()}


def gpu_workers(client, resource=GPU_RESOURCE) -> list:
    """Addresses of the connected workers that advertise ``resource``."""
    return sorted(a for a, r in _worker_resources(client).items() if r.get(resource, 0) > 0)


def _spec_has_resource(options, resource):
    res = options.get("resources")
    if isinstance(res, dict) and res.get(resource, 0) > 0:
        return True
    args = list(options.get("worker_extra_args") or []) + list(options.get("extra") or [])
    return any(
        a == "--resources" and i + 1 < len(args) and f"{resource}=" in str(args[i + 1])
        for i, a in enumerate(args)
    )


def planned_gpu_workers(client, resource=GPU_RESOURCE) -> int:
    """How many ``resource`` workers the client's cluster has asked for (connected or not).

    Counts the entries of the cluster's ``worker_spec`` (SpecCluster, LocalCluster, dask-jobqueue
    clusters) whose options advertise ``resource``, and the queues of a Bob
    ``SGEMultipleQueuesCluster`` whose spec does (its adaptive scaling starts them on demand).
    A batch job may wait in its queue for a long time: tasks wait for it, which is not a hang.
    """
    cluster = getattr(client, "cluster", None)
    if cluster is None:
        return 0
    n = 0
    for spec in (getattr(cluster, "worker_spec", None) or {}).values():
        if _spec_has_resource(spec.get("options", {}) or {}, resource):
            n += 1
    for spec in (getattr(cluster, "sge_job_spec", None) or {}).values():
        if _spec_has_resource(spec, resource):
            n += 1
    return n


def check_gpu_routing(client, resource=GPU_RESOURCE) -> list:
    """Make sure ``client`` can run tasks that need ``resource``; fail fast if it cannot.

    Parameters
    ----------
    client : distributed.Client
    resource : str

    Returns
    -------
    list of str
        Addresses of the connected workers advertising ``resource`` (empty when they are only
        planned, e.g. GPU jobs still waiting in a batch queue).

    Raises
    ------
    GPURoutingError
        When no worker advertises ``resource`` and the cluster plans none: the GPU tasks would wait
        forever.
    """
    found = gpu_workers(client, resource)
    if found:
        return found
    if planned_gpu_workers(client, resource):
        logger.info(
            "No %s worker connected yet, but the cluster has requested some: %s tasks wait for "
            "them.",
            resource,
            resource,
        )
        return found
    workers = _worker_resources(client)
    described = (
        ", ".join(f"{a} resources={r}" for a, r in sorted(workers.items())) or "no workers at all"
    )
    raise GPURoutingError(
        f"GPU routing was requested, but no worker of the Dask client {client!r} advertises the "
        f"{resource!r} resource (found: {described}); its GPU tasks would wait forever. "
        f"Fix: run with `-l facerev-local-gpu` (or a cluster whose GPU workers start with "
        f"`--resources {resource}=1`, e.g. `-l facerev-slurm-gpu` / `-l facerev-sge-gpu`), or turn "
        f"routing off with gpu_routing='off' / 'auto' "
        f"(`bob config set {ROUTING_RC_KEY} auto`), or run with `--no-dask`."
    )


def _default_client():
    try:
        from distributed import default_client

        return default_client()
    except (ImportError, ValueError):
        return None


def resolve_routing_mode(gpu_routing=None) -> str:
    """Normalise ``gpu_routing`` (``"auto"``, ``"require"``, ``"off"``, ``True``, ``False``, ``None``).

    ``None`` reads the Bob configuration key ``bob_facerev.gpu_routing`` (default ``"auto"``).
    """
    if gpu_routing is None:
        from . import rc

        gpu_routing = rc.get(ROUTING_RC_KEY, "auto")
    if gpu_routing is True:
        return "require"
    if gpu_routing is False:
        return "off"
    mode = str(gpu_routing).lower()
    if mode not in ROUTING_MODES:
        raise ValueError(
            f"gpu_routing={gpu_routing!r} is not one of {ROUTING_MODES} (or True/False); "
            f"fix the value or the `{ROUTING_RC_KEY}` Bob config key."
        )
    return mode


# ---------------------------------------------------------------------------------------------
# routing a pipeline


def _dask_steps(transformer):
    """Indices of the DaskWrapper steps (not ToDaskBag) of a dask-wrapped Pipeline."""
    if not isinstance(transformer, Pipeline):
        return []
    return [
        i
        for i, (_, step) in enumerate(transformer.steps)
        if isinstance(step, DaskWrapper) and not isinstance(step.estimator, ToDaskBag)
    ]


def route_to_gpu(transformer, gpu_routing="require", client=None, resources=None):
    """Route the GPU steps of a dask-wrapped transformer to GPU workers.

    Call it after ``bob.pipelines.wrap(["dask"], ...)`` (Bob's ``dask_bio_pipeline``) and before
    building the graph. Steps are modified in place: each :class:`~bob.pipelines.DaskWrapper`
    whose estimator :func:`wants_gpu` becomes a :class:`RoutedDaskWrapper` with ``resources``;
    the step just before it becomes a :class:`RoutedDaskWrapper` without resources, so that its
    (lazy) work is done on a CPU worker rather than inside the GPU task.

    Parameters
    ----------
    transformer : sklearn.pipeline.Pipeline or object
        The transformer of a ``PipelineSimple`` (a Pipeline of DaskWrapper steps when dask-wrapped;
        anything else is left untouched).
    gpu_routing : {"require", "auto", "off"} or bool or None
        ``"require"``: route, and raise :class:`GPURoutingError` if the client has no GPU worker
        (connected or planned). ``"auto"``: route only when it has one. ``"off"``: do nothing.
        ``None`` reads the ``bob_facerev.gpu_routing`` Bob config key (default ``"auto"``).
    client : distributed.Client or None
        The client that will compute the graph; ``None`` takes the default client.
    resources : dict or None
        Worker resources a GPU task needs; ``None`` means ``{"GPU": 1}``.

    Returns
    -------
    list of str
        Names of the routed (GPU) steps; empty when nothing was routed.

    Raises
    ------
    GPURoutingError
        ``"require"`` with no distributed client, or with a client without GPU workers.
    """
    mode = resolve_routing_mode(gpu_routing)
    resources = dict(resources or {GPU_RESOURCE: 1})
    if mode == "off":
        return []
    dask_steps = _dask_steps(transformer)
    gpu_steps = [i for i in dask_steps if wants_gpu(transformer.steps[i][1].estimator)]
    if not gpu_steps:
        return []
    client = client if client is not None else _default_client()
    resource = next(iter(resources))
    if client is None:
        if mode == "require":
            raise GPURoutingError(
                "GPU routing was requested, but there is no distributed Dask client to route to "
                "(the graph would run on a local scheduler that ignores worker resources). Fix: "
                "run with `-l facerev-local-gpu` or another client with GPU workers, or use "
                "gpu_routing='auto'/'off'."
            )
        return []
    if mode == "auto":
        if not gpu_workers(client, resource) and not planned_gpu_workers(client, resource):
            logger.info("No %s worker on %r: GPU steps run on any worker.", resource, client)
            return []
    else:
        check_gpu_routing(client, resource)
    steps = transformer.steps
    for i in dask_steps:
        name, step = steps[i]
        if i in gpu_steps:
            routed_resources = resources
        elif i + 1 in gpu_steps:
            routed_resources = None
        else:
            continue
        if isinstance(step, RoutedDaskWrapper):
            step.resources = routed_resources
        else:
            steps[i] = (name, RoutedDaskWrapper.from_dask_wrapper(step, resources=routed_resources))
    routed = [steps[i][0] for i in gpu_steps]
    logger.info("GPU routing %s -> workers with %s", routed, resources)
    return routed


def compute(collection, client, **kwargs):
    """Compute a dask collection on ``client`` keeping resource annotations.

    ``dask.bag``'s graph optimisation drops annotations (see the module docstring), so this
    computes with ``optimize_graph=False``.
    """
    kwargs.setdefault("optimize_graph", False)
    return collection.compute(scheduler=client, **kwargs)


class GPURoutedPipelineSimple(PipelineSimple):
    """A ``PipelineSimple`` whose GPU steps run on GPU workers under Dask.

    Same parameters as :class:`bob.bio.base.pipelines.PipelineSimple`, plus:

    Parameters
    ----------
    gpu_routing : {"auto", "require", "off"} or bool or None
        See :func:`route_to_gpu`; default ``None`` reads the ``bob_facerev.gpu_routing`` Bob config
        key, itself defaulting to ``"auto"`` (route when the client has GPU workers).
    gpu_resources : dict or None
        Worker resources a GPU task needs (default ``{"GPU": 1}``).
    client : distributed.Client or None
        The client to check; ``None`` uses the default client (the one ``-l`` created).

    Notes
    -----
    Routing happens in ``__call__``, after ``bob bio pipeline simple`` has dask-wrapped the
    transformer, and before the graph is built; with ``--no-dask`` nothing changes.  There, too,
    Bob's checkpoint wrappers of template-batching steps are made to batch across templates
    (:func:`bob_facerev.pipelines.batch_checkpointed_steps`).
    """

    def __init__(
        self,
        transformer,
        biometric_algorithm,
        score_writer=None,
        gpu_routing=None,
        gpu_resources=None,
        client=None,
    ):
        super().__init__(transformer, biometric_algorithm, score_writer=score_writer)
        self.gpu_routing = gpu_routing
        self.gpu_resources = gpu_resources
        self.client = client

    def __call__(self, *args, **kwargs):
        from bob_facerev.pipelines import batch_checkpointed_steps

        batch_checkpointed_steps(self.transformer)  # Bob's checkpoints: one template per call
        route_to_gpu(
            self.transformer,
            gpu_routing=self.gpu_routing,
            client=self.client,
            resources=self.gpu_resources,
        )
        return super().__call__(*args, **kwargs)

    def __getstate__(self):
        # the pipeline travels to workers inside the score-writing tasks; a client does not pickle
        state = self.__dict__.copy()
        state["client"] = None
        return state


# ---------------------------------------------------------------------------------------------
# clusters


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
        self.sync(self._correct_state)

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
        self.loop.add_callback(self._correct_state)


def local_client(n_workers=None, dashboard_address=":8787"):
    """``-l facerev-local``: a LocalCluster of worker processes, one thread each.

    Parameters
    ----------
    n_workers : int or None
        Default: the number of cores available to this process.
    dashboard_address : str
        Where the dashboard listens (``":0"``: any free port).
    """
    from distributed import Client, LocalCluster

    cluster = LocalCluster(
        n_workers=n_workers or _cpu_count(),
        threads_per_worker=1,
        processes=True,
        dashboard_address=dashboard_address,
    )
    return Client(cluster)


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
    gpu_options = dict(cluster._job_kwargs, **jobqueue_job_options(kind, gpu=True, settings=s))
    cluster.scale(n_cpu)
    cluster._add_gpu_workers(
        {f"{cluster._name}-gpu-{i}": {"cls": cluster.job_cls, "options": gpu_options} for i in range(n_gpu)}
    )
    return Client(cluster)


def slurm_gpu_client(**kwargs):
    """``-l facerev-slurm-gpu``: see :func:`jobqueue_gpu_client`."""
    return jobqueue_gpu_client("slurm", **kwargs)


def sge_gpu_client(**kwargs):
    """``-l facerev-sge-gpu``: see :func:`jobqueue_gpu_client`."""
    return jobqueue_gpu_client("sge", **kwargs)
