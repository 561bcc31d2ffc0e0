"""Run a per-image transformer (face detection, cropping) in worker processes.

dlib's HOG detector is single-threaded and costs about 0.1 s per 250x250 photo with one
upsampling; on a multi-core machine the crop step splits its images over processes.  Inside a
Dask worker (which already runs one task per core) or a daemon process, it stays serial, so
nothing is oversubscribed.
"""

from __future__ import annotations

import logging
import os

logger = logging.getLogger(__name__)


def available_cores():
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _in_dask_worker():
    try:
        from distributed import get_worker
    except ImportError:
        return False
    try:
        get_worker()
    except ValueError:
        return False
    return True


def effective_n_jobs(n_jobs=None):
    """Processes to use for ``n_jobs``: None means the available cores, but 1 inside a Dask
    worker or a daemon process (which cannot have children); an int >= 1 is used as given."""
    import multiprocessing

    if n_jobs is not None and (not isinstance(n_jobs, int) or isinstance(n_jobs, bool)
                               or n_jobs < 1):
        raise ValueError(f"n_jobs={n_jobs!r}: use None (all cores) or an integer >= 1")
    if n_jobs == 1 or multiprocessing.current_process().daemon or _in_dask_worker():
        return 1
    return available_cores() if n_jobs is None else n_jobs


def _transform_chunk(args):
    estimator, method, X, kwargs = args
    return list(getattr(estimator, method)(X, **kwargs))


def parallel_transform(estimator, X, n_jobs=None, min_per_job=2, method="transform", **kwargs):
    """``estimator.transform(X, **kwargs)`` split over processes, order kept.

    Parameters
    ----------
    estimator : object
        Picklable, with ``transform(X, **kwargs)`` returning one output per input, independent
        of the other inputs (e.g. :class:`~bob_facerev.face.crop.FaceCropper`).
    X : list
        Inputs.
    n_jobs : int or None
        See :func:`effective_n_jobs`.
    min_per_job : int
        Fewer inputs than ``2 * min_per_job`` are transformed in this process.
    method : str
        The estimator's method to call (``"transform"``, or e.g. the crop step's
        ``"transform_with_annotations"``).
    **kwargs : list
        Per-input arguments (``annotations=[...]``, ``key=[...]``), split like ``X``.

    Returns
    -------
    list
        The outputs, in the order of ``X``.
    """
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    X = list(X)
    kwargs = {k: (None if v is None else list(v)) for k, v in kwargs.items()}
    jobs = min(effective_n_jobs(n_jobs), len(X) // max(1, min_per_job))
    if jobs <= 1:
        return list(getattr(estimator, method)(X, **kwargs))
    # ~4 chunks per process balance the load; each chunk pickles the (model-free) estimator
    n_chunks = min(len(X), 4 * jobs)
    bounds = [round(i * len(X) / n_chunks) for i in range(n_chunks + 1)]
    tasks = [
        (estimator, method, X[a:b], {k: (None if v is None else v[a:b]) for k, v in kwargs.items()})
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    logger.debug("%s.transform: %d inputs on %d processes", type(estimator).__name__, len(X), jobs)
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        return [y for chunk in pool.map(_transform_chunk, tasks) for y in chunk]
