"""GPU routing of Dask pipelines: the steps that need a GPU run on workers that advertise one.

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
The clients of ``-l facerev-*`` (CPU workers plus workers advertising ``GPU``) are built in
:mod:`bob_facerev.dask_clusters`. The internals of bob.pipelines this module relies on are reached
through :mod:`bob_facerev.dask_internals`.
"""

from __future__ import annotations

import contextlib
import logging

import dask

from bob.bio.base.pipelines import PipelineSimple
from bob.pipelines.sample import DelayedSample, Sample, SampleSet
from bob.pipelines.wrappers import DaskWrapper, ToDaskBag
from sklearn.pipeline import Pipeline

from .dask_internals import PartitionHookedDaskWrapper, delayed_attribute_names, rewrap

logger = logging.getLogger(__name__)

#: the scikit-learn tag an estimator sets to ask for a GPU worker
GPU_TAG = "facerev_gpu"

#: the worker resource GPU tasks are annotated with (one unit per task)
GPU_RESOURCE = "GPU"

#: accepted values of ``gpu_routing``
ROUTING_MODES = ("auto", "require", "off")

#: the Bob configuration key (``bob config set facerev.gpu_routing require``) read when
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
            lazy = {k: getattr(s, k) for k in delayed_attribute_names(s)}
            out.append(Sample(s.data, parent=s, **lazy))
        else:
            out.append(s)
    return out


class RoutedDaskWrapper(PartitionHookedDaskWrapper):
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
        return rewrap(wrapper, cls, resources=resources)

    def _annotation(self):
        if not self.resources:
            return contextlib.nullcontext()
        return dask.annotate(resources=dict(self.resources))

    def map_method(self, X, method_name, state):
        """Tasks of ``method_name`` per partition, materialised, under the resource annotation."""

        def _transf(X_line, dask_state):
            return materialize(getattr(dask_state, method_name)(X_line))

        # a readable task name in dask's dashboard and graphs
        _transf.__name__ = f"{type(self.estimator).__name__}.{method_name}"
        with self._annotation():
            return X.map_partitions(_transf, dask.delayed(state))

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
    (:func:`bob_facerev.pipelines.batch_checkpointed_steps`), and Bob's checkpoint wrapper of an
    indexed comparator to score through the index
    (:func:`bob_facerev.scoring.index_checkpointed_references`).
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
        from bob_facerev.scoring import index_checkpointed_references

        batch_checkpointed_steps(self.transformer)  # Bob's checkpoints: one template per call
        index_checkpointed_references(self.biometric_algorithm)  # Bob's wrapper: N x M scan
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
