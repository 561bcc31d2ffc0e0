"""One test per private attribute of bob.pipelines, distributed and dask-jobqueue the package uses.

Every such access goes through bob_facerev.dask_internals; these tests check each internal still
exists and behaves as that module assumes, so a dependency upgrade fails here, loudly.
"""

import time

import dask
import dask.bag
import numpy as np
import pytest

from sklearn.base import BaseEstimator, TransformerMixin

import bob.pipelines

from bob.pipelines.sample import DelayedSample, Sample
from bob.pipelines.wrappers import DaskWrapper

from bob_facerev import dask_internals as di


class _Scale(TransformerMixin, BaseEstimator):
    def __init__(self, factor=2.0):
        self.factor = factor

    def fit(self, X, y=None):
        self.offset_ = 1.0
        return self

    def transform(self, X):
        return [np.asarray(x) * self.factor + getattr(self, "offset_", 0.0) for x in X]

    def _more_tags(self):
        return {"requires_fit": False}


def _dask_wrapped(estimator):
    """A SampleWrapper'd estimator inside Bob's DaskWrapper (what ``wrap(["dask"])`` makes)."""
    wrapped = bob.pipelines.wrap(["sample", "dask"], estimator)
    assert isinstance(wrapped, DaskWrapper)
    return wrapped


def _bag(n=4):
    samples = [Sample(np.full(2, float(i)), key=str(i)) for i in range(n)]
    return dask.bag.from_sequence(samples, npartitions=2)


# --------------------------------------------------------------------------- bob.pipelines
def test_delayed_sample_delayed_attributes():
    """``DelayedSample._delayed_attributes``: None, or ``{name: callable}`` of lazy attributes."""
    calls = []

    def annotations():
        calls.append(1)
        return {"leye": (1, 2)}

    s = DelayedSample(lambda: np.zeros(2), delayed_attributes={"annotations": annotations})
    assert isinstance(s._delayed_attributes, dict)
    assert di.delayed_attribute_names(s) == ["annotations"]
    assert not calls  # listing the names computes nothing
    assert s.annotations == {"leye": (1, 2)} and calls == [1]
    plain = DelayedSample(lambda: np.zeros(2))
    assert plain._delayed_attributes is None and di.delayed_attribute_names(plain) == []
    # a child sample inherits them (materialize relies on reading them from any DelayedSample)
    child = DelayedSample(lambda: np.ones(2), parent=s)
    assert di.delayed_attribute_names(child) == ["annotations"]


def test_dask_wrapper_dask_state_is_the_wrapped_estimator():
    """``DaskWrapper._dask_state``: the (sample-wrapped) estimator the tasks call."""
    wrapped = _dask_wrapped(_Scale(3.0))
    assert wrapped._dask_state is wrapped.estimator
    out = wrapped._dask_state.transform([Sample(np.ones(2))])
    np.testing.assert_array_equal(out[0].data, [3.0, 3.0])


def test_dask_wrapper_dask_transform_is_the_hook_of_every_method():
    """``DaskWrapper._dask_transform(X, method_name)``: what transform & co. call."""
    seen = []

    class Hooked(di.PartitionHookedDaskWrapper):
        def map_method(self, X, method_name, state):
            seen.append((method_name, state))
            return super().map_method(X, method_name, state)

    wrapped = di.rewrap(_dask_wrapped(_Scale(2.0)), Hooked)
    out = wrapped.transform(_bag()).compute(scheduler="single-threaded")
    assert [m for m, _ in seen] == ["transform"] and seen[0][1] is wrapped.estimator
    np.testing.assert_array_equal(np.stack([s.data for s in out]),
                                  [[0, 0], [2, 2], [4, 4], [6, 6]])
    for method in ("transform", "decision_function", "predict", "predict_proba", "score"):
        calls = []
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(DaskWrapper, "_dask_transform", lambda self, X, name: calls.append(name))
            getattr(DaskWrapper(_Scale()), method)(None)
        assert calls == [method]


def test_dask_wrapper_state_lives_in_its_dict():
    """``rewrap``: Bob's wrappers keep all their (fitted) state in ``__dict__``."""
    class _Fitted(_Scale):
        def _more_tags(self):
            return {"requires_fit": True}

    wrapped = _dask_wrapped(_Fitted(2.0))
    wrapped.fit(_bag())
    assert wrapped._dask_state is not wrapped.estimator  # Bob's fit: the fitted state (persisted)

    class Other(di.PartitionHookedDaskWrapper):
        pass

    new = di.rewrap(wrapped, Other, resources={"GPU": 1})
    assert isinstance(new, Other) and new.resources == {"GPU": 1}
    assert new._dask_state is wrapped._dask_state and new.fit_tag == wrapped.fit_tag
    out = new.transform(_bag(2)).compute(scheduler="single-threaded")
    np.testing.assert_array_equal(out[1].data, [3.0, 3.0])  # 1 * 2 + the fitted offset 1


# --------------------------------------------------------------------------- distributed
def test_spec_cluster_correct_state_starts_and_stops_workers():
    """``SpecCluster._correct_state``: (re)conciles running workers with ``worker_spec``."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=0, processes=False, dashboard_address=":0") as cluster:
        assert callable(cluster._correct_state)
        cluster.worker_spec["extra"] = cluster.new_spec
        di.correct_state(cluster)
        assert list(cluster.workers) == ["extra"]
        cluster.worker_spec["later"] = cluster.new_spec
        di.correct_state(cluster, wait=False)
        deadline = time.time() + 30
        while len(cluster.workers) < 2 and time.time() < deadline:
            time.sleep(0.05)
        assert sorted(cluster.workers) == ["extra", "later"]
        del cluster.worker_spec["extra"]
        di.correct_state(cluster)
        assert list(cluster.workers) == ["later"]


# --------------------------------------------------------------------------- dask-jobqueue
@pytest.fixture(scope="module")
def slurm_cluster():
    dask_jobqueue = pytest.importorskip("dask_jobqueue")
    cluster = dask_jobqueue.SLURMCluster(cores=1, processes=1, memory="1GB", n_workers=0,
                                         queue="cpuq", scheduler_options={"dashboard_address": ":0"})
    yield cluster
    cluster.close()


def test_jobqueue_cluster_job_kwargs(slurm_cluster):
    """``JobQueueCluster._job_kwargs``: the job options the cluster was built with."""
    kw = di.job_kwargs(slurm_cluster)
    assert kw["cores"] == 1 and kw["memory"] == "1GB" and kw["queue"] == "cpuq"
    kw["queue"] = "changed"  # a copy: changing it leaves the cluster alone
    assert slurm_cluster._job_kwargs["queue"] == "cpuq"
    # the options of a new worker's job are these (what GPU workers extend)
    spec = next(iter(slurm_cluster.new_worker_spec().values()))
    assert spec["options"]["queue"] == "cpuq" and spec["cls"] is slurm_cluster.job_cls


def test_jobqueue_cluster_name_prefixes_worker_names(slurm_cluster):
    """``JobQueueCluster._name``: the prefix of the cluster's worker names."""
    name = di.cluster_name(slurm_cluster)
    assert isinstance(name, str) and name
    assert all(str(w).startswith(f"{name}-") for w in slurm_cluster.new_worker_spec())
