"""Batching across templates: Bob hands transformers one template at a time; these wrappers
flatten every template of a call (a Dask partition, or the whole group without Dask) so the heavy
steps (detection, crop, embedding) see full batches, and write Bob's checkpoints once.

:func:`~bob_facerev.pipelines.embedding_transformer` puts them around its steps
(:func:`batch_checkpointed_steps` under Bob's checkpoints).
"""

from __future__ import annotations

import json
import logging
import os
import time
from functools import partial

from bob.pipelines import CheckpointWrapper, DelayedSample, Sample, SampleSet, SampleWrapper
from bob.pipelines.wrappers import DelayedSamplesCall

from bob_facerev import failures

logger = logging.getLogger(__name__)


class OptionalExtraInputWrapper(SampleWrapper):
    """Bob's SampleWrapper, passing None for the extra inputs a sample does not have.

    The crop step asks for each sample's ``annotations``; samples of a plain folder of photos
    (or a CSV without eye columns) have none, and the crop step annotates them itself.  Such
    samples get ``annotations = None`` (set on the sample, so it is also visible downstream).

    An estimator with a ``transform_with_annotations`` method (the crop step) also gives each
    output sample (and its input sample, once computed) the annotations it used
    (``sample.annotations``, computed with the data), so a crop at the fallback geometry is
    recorded in the sample (``annotations["facerev_fallback"]``). A crop read back from a
    checkpoint of an earlier run does not know how it was made (its annotations are the
    database's).
    """

    def _samples_transform(self, samples, method_name):
        if len(samples) and not isinstance(samples[0], SampleSet):
            for sample in samples:
                for _, attr in self.transform_extra_arguments or ():
                    if not hasattr(sample, attr):
                        setattr(sample, attr, None)
            with_annotations = getattr(self.estimator, "transform_with_annotations", None)
            if method_name == "transform" and with_annotations is not None:
                return self._transform_with_annotations(samples, with_annotations)
        return super()._samples_transform(samples, method_name)

    def _transform_with_annotations(self, samples, method):
        kwargs = {arg: [getattr(s, attr) for s in samples]
                  for arg, attr in self.transform_extra_arguments or ()}
        call = DelayedSamplesCall(partial(method, **kwargs), f"{self}.transform", samples,
                                  sample_attribute=self.input_attribute)
        return [
            DelayedSample(partial(_pair_item, call, i, 0, None), parent=s,
                          delayed_attributes={"annotations": partial(
                              _pair_item, call, i, 1, getattr(s, "annotations", None))})
            for i, s in enumerate(samples)
        ]


def _pair_item(call, index, item, default):
    """Item ``item`` of the ``(crop, annotations)`` pair ``call(index)``; ``default`` if None.

    The input sample gets the annotations used too: Bob's CheckpointWrapper re-reads a saved
    crop as a new sample made from the input sample, which then still says how it was cropped.
    """
    pair = call(index)
    if pair is None:
        return default
    call.samples[index].annotations = pair[1]
    return pair[item]


class TemplateBatchingWrapper(OptionalExtraInputWrapper):
    """SampleWrapper that transforms the samples of all templates in one call.

    Bob's :class:`~bob.pipelines.SampleWrapper` calls its estimator once per
    :class:`~bob.pipelines.SampleSet`: on LFW, whose templates hold one image, the extractor
    would see one-image batches (a one-image forward of the dlib network costs several times its
    share of a batch on CPU).  This wrapper flattens the SampleSets it is given (all of them
    without Dask; those of one bag partition under Dask), runs the estimator once on all their
    samples, and rebuilds the SampleSets, so the extractor sees full batches whatever the
    template structure.  Outputs are lazy, as Bob's: the work happens on first access.

    Parameters
    ----------
    estimator : object
        The wrapped transformer.
    n_jobs : int or None
        1 (default): one call in this process.  Otherwise ``transform`` is split over processes
        (:func:`bob_facerev.face.parallel.parallel_transform`; None = the available cores,
        serial inside a Dask worker); for per-image steps such as face detection and cropping.
    failed_size : int or None
        When set, samples that come in failed (None data) come out as NaN embeddings of this
        size (:func:`bob_facerev.failures.failed_embedding`) instead of None.
    **kwargs
        Passed to :class:`~bob.pipelines.SampleWrapper`.
    """

    def __init__(self, estimator, n_jobs=1, failed_size=None, **kwargs):
        super().__init__(estimator, **kwargs)
        self.n_jobs = n_jobs
        self.failed_size = failed_size

    def _samples_transform(self, samples, method_name):
        if len(samples) and isinstance(samples[0], SampleSet):
            flat = [s for sset in samples for s in sset.samples]
            out = self._samples_transform(flat, method_name) if flat else []
            return _regroup(samples, out)
        if not len(samples) or method_name != "transform" or self.output_attribute != "data":
            return super()._samples_transform(samples, method_name)
        for sample in samples:  # as OptionalExtraInputWrapper does
            for _, attr in self.transform_extra_arguments or ():
                if not hasattr(sample, attr):
                    setattr(sample, attr, None)
        if getattr(self.estimator, "transform_with_annotations", None) is not None:
            # the crop step: each output sample also gets the annotations its crop used
            call = _BatchCall(self, samples, "transform_with_annotations")
            return [
                DelayedSample(partial(_pair_item, call, i, 0, None), parent=s,
                              delayed_attributes={"annotations": partial(
                                  _pair_item, call, i, 1, getattr(s, "annotations", None))})
                for i, s in enumerate(samples)
            ]
        call = _BatchCall(self, samples)
        return [DelayedSample(partial(call, index=i), parent=s) for i, s in enumerate(samples)]


class _BatchCall:
    """One lazy call of a :class:`TemplateBatchingWrapper`'s estimator for many samples.

    Like Bob's ``DelayedSamplesCall``, but each input is read once (a Bob ``DelayedSample``
    loads its data again at every access: Bob's call read every image three times), the extra
    arguments are those of the valid samples only, and the call may run over processes.
    """

    def __init__(self, wrapper, samples, method="transform"):
        self.wrapper = wrapper
        self.samples = samples
        self.method = method
        self.output = None

    def _compute(self):
        from bob_facerev.face.parallel import effective_n_jobs, parallel_transform

        w = self.wrapper
        start = time.perf_counter()
        data = [s.data for s in self.samples]
        read = time.perf_counter() - start
        if w.input_attribute != "data":
            inputs = [getattr(s, w.input_attribute) for s in self.samples]
        else:
            inputs = data
        valid = [i for i, d in enumerate(data) if d is not None]
        output = [None] * len(self.samples)
        if valid:
            kwargs = {arg: [getattr(self.samples[i], attr) for i in valid]
                      for arg, attr in w.transform_extra_arguments or ()}
            X = [inputs[i] for i in valid]
            if effective_n_jobs(w.n_jobs) > 1:
                result = parallel_transform(w.estimator, X, n_jobs=w.n_jobs, method=self.method,
                                            **kwargs)
            else:
                result = getattr(w.estimator, self.method)(X, **kwargs)
            if len(result) != len(valid):
                raise RuntimeError(f"{w.estimator}.transform got {len(valid)} samples but "
                                   f"returned {len(result)}")
            for i, y in zip(valid, result):
                output[i] = y
        if w.failed_size is not None:
            output = [failures.failed_embedding(w.failed_size) if y is None else y
                      for y in output]
        _log_stage(type(w.estimator).__name__, len(self.samples), read=read,
                   transform=time.perf_counter() - start - read)
        return output

    def __call__(self, index):
        if self.output is None:
            self.output = self._compute()
        return self.output[index]


#: environment variable: a file to which every batched step appends one line of timings
STAGE_LOG_ENV = "FACEREV_STAGE_LOG"


def _log_stage(stage, n_samples, **seconds):
    """Log (debug) the seconds of one batched call; also append them as a JSON line to the
    file named by ``$FACEREV_STAGE_LOG`` when set (Dask workers inherit it), with the process
    and the time it ended (``end``, seconds since the epoch), for
    ``benchmarks/pipeline_scale.py``."""
    timings = " ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
    logger.debug("%s: %d samples, %s", stage, n_samples, timings)
    path = os.environ.get(STAGE_LOG_ENV)
    if path:
        line = json.dumps({"stage": stage, "samples": n_samples, "pid": os.getpid(),
                           "end": time.time(), **seconds})
        with open(path, "a") as f:  # one short append per call: lines stay whole
            f.write(line + "\n")


def _regroup(samplesets, flat_outputs):
    """SampleSets like ``samplesets`` holding the consecutive items of ``flat_outputs``."""
    sets, start = [], 0
    for sset in samplesets:
        end = start + len(sset.samples)
        sets.append(SampleSet(flat_outputs[start:end], parent=sset))
        start = end
    return sets


class TemplateBatchingCheckpointWrapper(CheckpointWrapper):
    """Bob's CheckpointWrapper, transforming the samples of all its SampleSets at once.

    Bob's checkpointing (``bob bio pipeline simple`` without ``--memory``) wraps each step in a
    :class:`~bob.pipelines.CheckpointWrapper`, which computes and saves one SampleSet at a time:
    the :class:`TemplateBatchingWrapper` inside would again see one template per call.  This
    subclass flattens the SampleSets first (the checkpoint files are the same);
    :func:`batch_checkpointed_steps` puts it in place of Bob's.

    It also spares Bob's disk round trips: Bob writes each output, reads it back to test the
    file, and hands on a sample that reads the file again at every access of its data (the
    next step, the failure count and the templates each read it).  Here each computed output
    is written once (atomically, as Bob does) and handed on with its data in memory; outputs
    found on disk are read once, on first access.
    """

    def _checkpoint_transform(self, samples, method_name):
        if len(samples) and isinstance(samples[0], SampleSet):
            flat = [s for sset in samples for s in sset.samples]
            out = self._checkpoint_transform(flat, method_name) if flat else []
            return _regroup(samples, list(out))
        if self.features_dir is None or self.sample_attribute != "data" or not len(samples):
            return super()._checkpoint_transform(samples, method_name)
        paths = [self.make_path(s) for s in samples]
        todo = [i for i, p in enumerate(paths)
                if self.force or p is None or not os.path.isfile(p)]
        computed = getattr(self.estimator, method_name)([samples[i] for i in todo]) if todo else []
        if len(computed) != len(todo):
            raise RuntimeError(f"{self.estimator}.{method_name} got {len(todo)} samples but "
                               f"returned {len(computed)}")
        out = [None] * len(samples)
        saving = 0.0
        for i, feat in zip(todo, computed):
            data = feat.data  # computes the whole batch on the first sample
            start = time.perf_counter()
            if paths[i] is not None and data is not None:
                self._save_data(data, paths[i])
            saving += time.perf_counter() - start
            out[i] = Sample(data, parent=feat)  # annotations etc. are copied, data kept
        if todo:
            inner = getattr(self.estimator, "estimator", self.estimator)
            _log_stage(f"checkpoint {type(inner).__name__}", len(todo), save=saving)
        for i, (s, p) in enumerate(zip(samples, paths)):
            if out[i] is None:
                out[i] = DelayedSample(_LoadOnce(self.load_func, p), parent=s)
        return out

    def _save_data(self, data, path):
        """Write ``data`` to ``path`` with Bob's save function, atomically (no read-back)."""
        from bob_facerev.utils import atomic_path

        with atomic_path(path) as tmp:
            self.save_func(data, str(tmp))


class _LoadOnce:
    """``load(path)`` on the first call, the same object afterwards."""

    def __init__(self, load, path):
        self.load = load
        self.path = path
        self.value = None

    def __call__(self):
        if self.value is None:
            self.value = self.load(self.path)
        return self.value


def batch_checkpointed_steps(transformer):
    """Let Bob's checkpointed steps batch across templates (in place).

    Every :class:`~bob.pipelines.CheckpointWrapper` in ``transformer`` (Pipeline steps, Dask
    wrappers) that wraps a :class:`TemplateBatchingWrapper` becomes a
    :class:`TemplateBatchingCheckpointWrapper` (same state, one more method); called by
    :class:`~bob_facerev.distributed.GPURoutedPipelineSimple` before it runs.

    Returns
    -------
    int
        The number of wrappers changed.
    """
    from bob_facerev.distributed import _inner_estimators

    changed = 0
    for est in _inner_estimators(transformer):
        if (
            type(est) is CheckpointWrapper
            and isinstance(getattr(est, "estimator", None), TemplateBatchingWrapper)
        ):
            est.__class__ = TemplateBatchingCheckpointWrapper
            changed += 1
    return changed
