"""Bob pipelines built from the package's parts.

:func:`embedding_transformer`: raw face photo -> aligned crop -> embedding, as Bob sample
transformers.  :func:`verification_pipeline`: that transformer (+ PE-MIU protection) and a
comparator, as a ``bob.bio.base`` :class:`~bob.bio.base.pipelines.PipelineSimple` that
``bob bio pipeline simple`` runs (``-p facerev-dlib``, ``-p facerev-arcface-pemiu-k32``, ...).

Building a pipeline loads no weights and reads no configuration: the networks load on the first
sample, so listing resources and ``--help`` work without ArcFace/ElasticFace weights.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from functools import partial

import click
import numpy as np

from bob.bio.base.algorithm import Distance
from bob.pipelines import CheckpointWrapper, DelayedSample, Sample, SampleSet, SampleWrapper, wrap
from bob.pipelines.wrappers import DelayedSamplesCall
from dask.delayed import Delayed
from sklearn.pipeline import Pipeline, make_pipeline

from bob_facerev import failures
from bob_facerev.distributed import GPURoutedPipelineSimple

logger = logging.getLogger(__name__)


class CosineSimilarity(Distance):
    """Raw cosine similarity, ``cos(r, p)`` in ``[-1, 1]``, as a Bob ``BioAlgorithm``.

    Bob's :class:`~bob.bio.base.algorithm.Distance` scores ``-cosine_distance = cos - 1``; the
    study's thresholds (e.g. ArcFace 0.2476 at FMR 0.1 %) are on ``cos`` itself, so this adds the 1
    back. Enrollment features are averaged (Bob's default) and probe/enroll scores fused with max.

    Failed samples (NaN embeddings, see :mod:`bob_facerev.failures`) are left out of their
    template; a template without a valid sample is NaN and scores NaN.
    """

    def __init__(self, average_on_enroll=True, average_probes=False, **kwargs):
        super().__init__(
            distance_function="cosine",
            factor=-1,
            average_on_enroll=average_on_enroll,
            average_probes=average_probes,
            **kwargs,
        )

    def create_templates(self, list_of_feature_sets, enroll):
        """Bob's templates from the valid features of each set (NaN when there is none)."""
        return super().create_templates(
            [_valid_or_nan(features) for features in list_of_feature_sets], enroll
        )

    def compare(self, enroll_templates, probe_templates):
        """``(N, M)`` cosine similarities of N enrollment and M probe templates (NaN for failed
        templates)."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return 1.0 + super().compare(enroll_templates, probe_templates)


def _valid_or_nan(features):
    """The valid features of a set; one NaN feature when none is valid (a failed template)."""
    valid = failures.valid_features(features)
    if valid or not len(features):
        return valid
    size = max((np.asarray(f).size for f in features if f is not None), default=1)
    return [failures.failed_embedding(max(size, 1))]


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
    file named by ``$FACEREV_STAGE_LOG`` when set (Dask workers inherit it), for
    ``benchmarks/pipeline_scale.py``."""
    timings = " ".join(f"{k} {v:.2f} s" for k, v in seconds.items())
    logger.debug("%s: %d samples, %s", stage, n_samples, timings)
    path = os.environ.get(STAGE_LOG_ENV)
    if path:
        line = json.dumps({"stage": stage, "samples": n_samples, "pid": os.getpid(), **seconds})
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


def embedding_transformer(
    model="dlib", checkpoint=None, annotator=None, batch_size=32, device=None, fallback=True,
    failed_as_nan=False, n_jobs=None,
):
    """Raw photos (+ optional eye annotations) -> embeddings, as Bob sample transformers.

    Parameters
    ----------
    model : str
        Registry name (see :func:`bob_facerev.face.registry.get_model_spec`).
    checkpoint : str, optional
        Weights file of ArcFace/ElasticFace (default: ``bob config``).
    annotator : optional
        Annotator used by the crop step for samples without annotations (default: the crop
        step's own, :class:`bob_facerev.face.annotator.DlibAnnotator`).
    batch_size : int
        Crops per forward pass.
    device : str, optional
        Torch device (default: CUDA when available).
    fallback : bool or dict
        The crop step's fallback when no face is found (see
        :class:`~bob_facerev.face.crop.FaceCropper`); False: such samples fail.
    failed_as_nan : bool
        Failed samples come out as NaN embeddings (:mod:`bob_facerev.failures`) instead of
        None.
    n_jobs : int or None
        Processes the crop step (face detection + alignment) splits its images over: None
        (default) = the available cores, but serial inside a Dask worker; 1 = serial.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``[FaceCropper(model), FaceEmbedding(model)]``, each wrapped by
        :class:`TemplateBatchingWrapper` (a ``bob.pipelines`` SampleWrapper that batches the
        samples of all templates): ``Sample`` s of ``(3, H, W)`` uint8 RGB photos -> ``Sample`` s
        of ``(d,)`` float32 L2-normalised embeddings. Samples that failed (no face found and
        ``fallback=False``) are dropped from the embedding step (their data is None, or NaN
        with ``failed_as_nan``).  To skip detection on photos of known geometry (LFW), pass
        ``annotator=FixedAnnotator()`` (:class:`bob_facerev.face.annotator.FixedAnnotator`).
    """
    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.face.registry import get_model_spec

    spec = get_model_spec(model)  # fail early on unknown names
    cropper = FaceCropper(model=model, annotator=annotator, fallback=fallback)
    embedding = FaceEmbedding(
        model=model, checkpoint=checkpoint, batch_size=batch_size, device=device
    )
    return make_pipeline(
        # its tags ask Bob for annotations, fallback eyes and keys
        TemplateBatchingWrapper(cropper, n_jobs=n_jobs),
        TemplateBatchingWrapper(embedding,
                                failed_size=spec.embedding_size if failed_as_nan else None),
    )


class OneBlockError(click.ClickException, ValueError):
    """PE-MIU with one block (K = d): a :class:`ValueError` for library code, and one ``Error:``
    line (no traceback) when ``bob bio pipeline simple -p CONFIG`` loads such a pipeline."""


def verification_pipeline(
    model="dlib", block_size=None, checkpoint=None, annotator=None, batch_size=32, device=None,
    fallback=True, n_jobs=None,
):
    """A face verification pipeline for ``bob bio pipeline simple``.

    Parameters
    ----------
    model : str
        Registry name (``"dlib"``, ``"arcface"``, ``"elasticface"``, ...).
    block_size : int, optional
        PE-MIU block size ``K``: when set, every template's blocks are shuffled at random (one
        permutation per sample, derived from its key: reproducible across runs and Dask) and
        compared with :class:`~bob_facerev.protection.comparator.PEMIUComparator`; when None,
        unprotected embeddings are compared by :class:`CosineSimilarity`.
    checkpoint, annotator, batch_size, device, fallback, n_jobs
        See :func:`embedding_transformer`. Failed samples carry NaN embeddings: their
        comparisons score NaN and the run's summary counts them (:class:`FacerevPipelineSimple`).

    Returns
    -------
    FacerevPipelineSimple
    """
    transformer = embedding_transformer(
        model, checkpoint=checkpoint, annotator=annotator, batch_size=batch_size, device=device,
        fallback=fallback, failed_as_nan=True, n_jobs=n_jobs,
    )
    if block_size is None:
        return FacerevPipelineSimple(transformer, CosineSimilarity())

    from bob_facerev.face.registry import get_model_spec
    from bob_facerev.protection.comparator import PEMIUComparator
    from bob_facerev.protection.pemiu import PEMIU, n_blocks

    d = get_model_spec(model).embedding_size
    if n_blocks(d, block_size) < 2:  # K must divide d and leave two blocks: fail now
        raise OneBlockError(
            f"verification_pipeline({model!r}, block_size={block_size}): K={block_size} is the "
            f"whole {d}-d {model} embedding, one block, so PE-MIU would leave the templates "
            f"unprotected; use K={d // 2} (2 blocks) or smaller (-p facerev-{model}-pemiu-k{d // 2})")
    pemiu = wrap(["sample"], PEMIU(block_size=block_size))  # per-sample key -> permutation
    protected = Pipeline(transformer.steps + [("pemiu", pemiu)])
    return FacerevPipelineSimple(protected, PEMIUComparator(block_size=block_size))


class FacerevPipelineSimple(GPURoutedPipelineSimple):
    """The package's ``PipelineSimple``: GPU routing, and a summary of failures at the end.

    While scoring it counts the enrolled and probed samples that failed (NaN embeddings) or
    were cropped at the fallback geometry; after the score file is written it logs one line and
    writes ``<scores>.failures.json`` (:func:`bob_facerev.failures.report`), with or without
    Dask.
    """

    def _templates(self, samples, enroll):
        with _partitioned(self.transformer, len(samples), self.client):
            features = self.transformer.transform(samples)
        templates = self.biometric_algorithm.create_templates_from_samplesets(features, enroll)
        counts = self.__dict__.setdefault("_failure_counts", {})
        counts["references" if enroll else "probes"] = failures.count_features(features)
        return templates

    def enroll_templates(self, biometric_reference_samples):
        return self._templates(biometric_reference_samples, enroll=True)

    def probe_templates(self, probe_samples):
        return self._templates(probe_samples, enroll=False)

    def post_process(self, score_paths, filename):
        result = super().post_process(score_paths, filename)
        counts = self.__dict__.pop("_failure_counts", {})
        references, probes = counts.get("references"), counts.get("probes")
        if isinstance(result, Delayed):
            return failures.reporting_delayed(result, references, probes, filename)
        failures.report(filename, references, probes)
        return result

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_failure_counts", None)
        return state


#: samples per Dask partition: at least this many (full batches), at most ``MAX`` (memory)
MIN_PARTITION, MAX_PARTITION = 64, 1000


def partition_count(n_samples, n_workers):
    """Dask partitions for ``n_samples`` templates on ``n_workers`` workers.

    One partition per worker while partitions hold at most ``MAX_PARTITION`` templates (more
    partitions beyond), but none smaller than ``MIN_PARTITION`` templates: each partition is one
    batched call of every step, and pays a task's overhead once.  (Dask's own default, about 100
    partitions, gives LFW-sized groups partitions of a few images.)
    """
    n_workers = max(1, int(n_workers))
    wanted = max(n_workers, -(-n_samples // MAX_PARTITION))
    return max(1, min(wanted, n_samples // MIN_PARTITION))


@contextlib.contextmanager
def _partitioned(transformer, n_samples, client=None):
    """Size the partitions of Bob's ``ToDaskBag`` steps left at Dask's default (in the block).

    Only steps without ``npartitions`` and ``partition_size`` (no ``--dask-n-partitions`` /
    ``--dask-partition-size`` given) change, to :func:`partition_count` for the client's
    workers; they are restored afterwards.
    """
    from bob.pipelines.wrappers import ToDaskBag

    from bob_facerev.distributed import _inner_estimators

    bags = [est for est in _inner_estimators(transformer) if isinstance(est, ToDaskBag)
            and est.npartitions is None and est.partition_size is None]
    if bags:
        count = partition_count(n_samples, _n_workers(client))
        for bag in bags:
            bag.npartitions = count
    try:
        yield
    finally:
        for bag in bags:
            bag.npartitions = None


def _n_workers(client=None):
    """Workers of ``client`` (default: the current Dask client), else the available cores."""
    from bob_facerev.face.parallel import available_cores

    try:
        if client is None:
            from distributed import default_client

            client = default_client()
        return len(client.scheduler_info()["workers"]) or available_cores()
    except (ImportError, ValueError, AttributeError, KeyError):
        return available_cores()
