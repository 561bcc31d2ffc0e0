"""Bob pipelines built from the package's parts.

:func:`embedding_transformer`: raw face photo -> aligned crop -> embedding, as Bob sample
transformers.  :func:`verification_pipeline`: that transformer (+ PE-MIU protection) and a
comparator, as a ``bob.bio.base`` :class:`~bob.bio.base.pipelines.PipelineSimple` that
``bob bio pipeline simple`` runs (``-p facerev-dlib``, ``-p facerev-arcface-pemiu-k32``, ...).

Building a pipeline loads no weights and reads no configuration: the networks load on the first
sample, so listing resources and ``--help`` work without ArcFace/ElasticFace weights.
"""

from __future__ import annotations

from functools import partial

from bob.bio.base.algorithm import Distance
from bob.pipelines import CheckpointWrapper, DelayedSample, SampleSet, SampleWrapper, wrap
from sklearn.pipeline import Pipeline, make_pipeline

from bob_facerev.distributed import GPURoutedPipelineSimple


class CosineSimilarity(Distance):
    """Raw cosine similarity, ``cos(r, p)`` in ``[-1, 1]``, as a Bob ``BioAlgorithm``.

    Bob's :class:`~bob.bio.base.algorithm.Distance` scores ``-cosine_distance = cos - 1``; the
    study's thresholds (e.g. ArcFace 0.2476 at FMR 0.1 %) are on ``cos`` itself, so this adds the 1
    back. Enrollment features are averaged (Bob's default) and probe/enroll scores fused with max.
    """

    def __init__(self, average_on_enroll=True, average_probes=False, **kwargs):
        super().__init__(
            distance_function="cosine",
            factor=-1,
            average_on_enroll=average_on_enroll,
            average_probes=average_probes,
            **kwargs,
        )

    def compare(self, enroll_templates, probe_templates):
        """``(N, M)`` cosine similarities of N enrollment and M probe templates."""
        return 1.0 + super().compare(enroll_templates, probe_templates)


class OptionalExtraInputWrapper(SampleWrapper):
    """Bob's SampleWrapper, passing None for the extra inputs a sample does not have.

    The crop step asks for each sample's ``annotations``; samples of a plain folder of photos
    (or a CSV without eye columns) have none, and the crop step annotates them itself.  Such
    samples get ``annotations = None`` (set on the sample, so it is also visible downstream).
    """

    def _samples_transform(self, samples, method_name):
        if len(samples) and not isinstance(samples[0], SampleSet):
            for sample in samples:
                for _, attr in self.transform_extra_arguments or ():
                    if not hasattr(sample, attr):
                        setattr(sample, attr, None)
        return super()._samples_transform(samples, method_name)


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
    **kwargs
        Passed to :class:`~bob.pipelines.SampleWrapper`.
    """

    def __init__(self, estimator, n_jobs=1, **kwargs):
        super().__init__(estimator, **kwargs)
        self.n_jobs = n_jobs

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
        call = _BatchCall(self, samples)
        return [DelayedSample(partial(call, index=i), parent=s) for i, s in enumerate(samples)]


class _BatchCall:
    """One lazy call of a :class:`TemplateBatchingWrapper`'s estimator for many samples.

    Like Bob's ``DelayedSamplesCall``, but each input is read once (a Bob ``DelayedSample``
    loads its data again at every access: Bob's call read every image three times), the extra
    arguments are those of the valid samples only, and the call may run over processes.
    """

    def __init__(self, wrapper, samples):
        self.wrapper = wrapper
        self.samples = samples
        self.output = None

    def _compute(self):
        from bob_facerev.face.parallel import effective_n_jobs, parallel_transform

        w = self.wrapper
        data = [s.data for s in self.samples]
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
                result = parallel_transform(w.estimator, X, n_jobs=w.n_jobs, **kwargs)
            else:
                result = w.estimator.transform(X, **kwargs)
            if len(result) != len(valid):
                raise RuntimeError(f"{w.estimator}.transform got {len(valid)} samples but "
                                   f"returned {len(result)}")
            for i, y in zip(valid, result):
                output[i] = y
        return output

    def __call__(self, index):
        if self.output is None:
            self.output = self._compute()
        return self.output[index]


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
    """

    def _checkpoint_transform(self, samples, method_name):
        if len(samples) and isinstance(samples[0], SampleSet):
            flat = [s for sset in samples for s in sset.samples]
            out = super()._checkpoint_transform(flat, method_name) if flat else []
            return _regroup(samples, list(out))
        return super()._checkpoint_transform(samples, method_name)


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
    model="dlib", checkpoint=None, annotator=None, batch_size=32, device=None, n_jobs=None
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
    n_jobs : int or None
        Processes the crop step (face detection + alignment) splits its images over: None
        (default) = the available cores, but serial inside a Dask worker; 1 = serial.

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``[FaceCropper(model), FaceEmbedding(model)]``, each wrapped by
        :class:`TemplateBatchingWrapper` (a ``bob.pipelines`` SampleWrapper that batches the
        samples of all templates): ``Sample`` s of ``(3, H, W)`` uint8 RGB photos -> ``Sample`` s
        of ``(d,)`` float32 L2-normalised embeddings. Samples where no face is found are dropped
        from the embedding step (their data is None).  To skip detection on photos of known
        geometry (LFW), pass ``annotator=FixedAnnotator()``
        (:class:`bob_facerev.face.annotator.FixedAnnotator`).
    """
    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.face.registry import get_model_spec

    get_model_spec(model)  # fail early on unknown names
    cropper = FaceCropper(model=model, annotator=annotator)
    embedding = FaceEmbedding(
        model=model, checkpoint=checkpoint, batch_size=batch_size, device=device
    )
    return make_pipeline(
        # its tags ask Bob for annotations (and keys)
        TemplateBatchingWrapper(cropper, n_jobs=n_jobs),
        TemplateBatchingWrapper(embedding),
    )


def verification_pipeline(
    model="dlib", block_size=None, checkpoint=None, annotator=None, batch_size=32, device=None,
    n_jobs=None,
):
    """A face verification pipeline for ``bob bio pipeline simple``.

    Parameters
    ----------
    model : str
        Registry name (``"dlib"``, ``"arcface"``, ``"elasticface"``, ...).
    block_size : int, optional
        PE-MIU block size ``K``: when set, every template's blocks are shuffled at random (one
        permutation per sample, derived from its key: reproducible across runs and Dask) and
        compared with :class:`~bob_facerev.protection.pemiu.PEMIUComparator`; when None,
        unprotected embeddings are compared by :class:`CosineSimilarity`.
    checkpoint, annotator, batch_size, device, n_jobs
        See :func:`embedding_transformer`.

    Returns
    -------
    bob.bio.base.pipelines.PipelineSimple
    """
    transformer = embedding_transformer(
        model, checkpoint=checkpoint, annotator=annotator, batch_size=batch_size, device=device,
        n_jobs=n_jobs,
    )
    if block_size is None:
        return GPURoutedPipelineSimple(transformer, CosineSimilarity())

    from bob_facerev.face.registry import get_model_spec
    from bob_facerev.protection.pemiu import PEMIU, PEMIUComparator, n_blocks

    n_blocks(get_model_spec(model).embedding_size, block_size)  # K must divide d: fail now
    pemiu = wrap(["sample"], PEMIU(block_size=block_size))  # per-sample key -> permutation
    protected = Pipeline(transformer.steps + [("pemiu", pemiu)])
    return GPURoutedPipelineSimple(protected, PEMIUComparator(block_size=block_size))
