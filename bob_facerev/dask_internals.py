"""The one place that touches private attributes of bob.pipelines, distributed and dask-jobqueue.

GPU routing (:mod:`bob_facerev.distributed`) and the GPU-pool clusters
(:mod:`bob_facerev.dask_clusters`) need a few internals those packages do not publish. Every
such access goes through a function or class of this module, and ``tests/test_dask_internals.py``
checks each one against the installed versions (it exists, and behaves as assumed), so that a
dependency upgrade that moves it fails loudly there rather than deep inside a pipeline run.

=====================================  ==========================================================
internal                                used for
=====================================  ==========================================================
``DelayedSample._delayed_attributes``   :func:`delayed_attribute_names`: materialising a lazy
                                        sample's delayed attributes (``annotations``, ...)
``DaskWrapper._dask_state``             :class:`PartitionHookedDaskWrapper`: the estimator state
                                        each partition task receives
``DaskWrapper._dask_transform``         :class:`PartitionHookedDaskWrapper`: the hook every
                                        transform-like method of Bob's wrapper calls
``DaskWrapper.__dict__`` (all state)    :func:`rewrap`: a wrapper of another class with the same
                                        (fitted) state
``SpecCluster._correct_state``          :func:`correct_state`: start/stop workers after
                                        ``worker_spec`` changed
``JobQueueCluster._job_kwargs``         :func:`job_kwargs`: the job options the cluster was
                                        built with
``JobQueueCluster._name``               :func:`cluster_name`: the prefix of its worker names
=====================================  ==========================================================
"""

from __future__ import annotations

import dask

from bob.pipelines.wrappers import DaskWrapper


# --------------------------------------------------------------------------- bob.pipelines
def delayed_attribute_names(sample) -> list:
    """Names of the attributes a ``bob.pipelines.DelayedSample`` computes on first access.

    ``DelayedSample._delayed_attributes`` is ``None`` or ``{name: callable}``.
    """
    return list(getattr(sample, "_delayed_attributes", None) or {})


class PartitionHookedDaskWrapper(DaskWrapper):
    """A ``bob.pipelines.DaskWrapper`` whose per-partition tasks a subclass builds.

    Bob's wrapper sends ``transform``, ``decision_function``, ``predict``, ``predict_proba``
    and ``score`` through its private ``_dask_transform(X, method_name)``; this class takes that
    hook and hands subclasses the public :meth:`map_method` with the estimator state
    (``_dask_state``). The default reproduces Bob's behaviour (without Bob's
    ``transform_tag`` resource tags).
    """

    def _dask_transform(self, X, method_name):
        return self.map_method(X, method_name, self._dask_state)

    def map_method(self, X, method_name, state):
        """Build the tasks of ``method_name`` over the partitions of the bag ``X``.

        Parameters
        ----------
        X : dask.bag.Bag
            Samples.
        method_name : str
            ``"transform"``, ``"predict"``, ...
        state : object
            The wrapped estimator; wrap it in ``dask.delayed`` (where the tasks are built: that
            is where dask annotations apply) to ship it once to the workers.
        """

        def _call(partition, estimator):
            return getattr(estimator, method_name)(partition)

        return X.map_partitions(_call, dask.delayed(state))


def rewrap(wrapper, cls, **attributes):
    """``wrapper``'s whole state (fitted or not) in a new ``cls`` instance, plus ``attributes``.

    Bob's wrappers keep all their state in the instance ``__dict__``.
    """
    new = cls.__new__(cls)
    new.__dict__.update(wrapper.__dict__)
    new.__dict__.update(attributes)
    return new


# --------------------------------------------------------------------------- distributed
def correct_state(cluster, wait=True):
    """Make a ``SpecCluster`` start/stop workers to match its ``worker_spec``.

    ``wait=True`` blocks until done (``cluster.sync``); ``False`` schedules it on the cluster's
    event loop (what ``SpecCluster.scale`` does).
    """
    if wait:
        return cluster.sync(cluster._correct_state)
    cluster.loop.add_callback(cluster._correct_state)
    return None


# --------------------------------------------------------------------------- dask-jobqueue
def job_kwargs(cluster) -> dict:
    """The job options (cores, memory, queue, ...) a ``dask_jobqueue`` cluster was built with."""
    return dict(cluster._job_kwargs)


def cluster_name(cluster) -> str:
    """The name a ``dask_jobqueue`` cluster prefixes its worker names with."""
    return cluster._name
