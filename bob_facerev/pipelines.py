"""Bob pipelines built from the package's parts.

:func:`embedding_transformer`: raw face photo -> aligned crop -> embedding, as Bob sample
transformers.  :func:`verification_pipeline`: that transformer (+ PE-MIU protection) and a
comparator, as a ``bob.bio.base`` :class:`~bob.bio.base.pipelines.PipelineSimple` that
``bob bio pipeline simple`` runs (``-p facerev-dlib``, ``-p facerev-arcface-pemiu-k32``, ...).

Building a pipeline loads no weights and reads no configuration: the networks load on the first
sample, so listing resources and ``--help`` work without ArcFace/ElasticFace weights.
"""

from __future__ import annotations

from bob.bio.base.algorithm import Distance
from bob.pipelines import SampleSet, SampleWrapper, wrap
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


def embedding_transformer(
    model="dlib", checkpoint=None, annotator=None, batch_size=32, device=None
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

    Returns
    -------
    sklearn.pipeline.Pipeline
        ``[FaceCropper(model), FaceEmbedding(model)]``, each wrapped by ``bob.pipelines``'
        SampleWrapper: ``Sample`` s of ``(3, H, W)`` uint8 RGB photos -> ``Sample`` s of ``(d,)``
        float32 L2-normalised embeddings. Samples where no face is found are dropped from the
        embedding step (their data is None).
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
        OptionalExtraInputWrapper(cropper),  # its tags ask Bob for annotations (and keys)
        wrap(["sample"], embedding),
    )


def verification_pipeline(
    model="dlib", block_size=None, checkpoint=None, annotator=None, batch_size=32, device=None
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
    checkpoint, annotator, batch_size, device
        See :func:`embedding_transformer`.

    Returns
    -------
    bob.bio.base.pipelines.PipelineSimple
    """
    transformer = embedding_transformer(
        model, checkpoint=checkpoint, annotator=annotator, batch_size=batch_size, device=device
    )
    if block_size is None:
        return GPURoutedPipelineSimple(transformer, CosineSimilarity())

    from bob_facerev.face.registry import get_model_spec
    from bob_facerev.protection.pemiu import PEMIU, PEMIUComparator, n_blocks

    n_blocks(get_model_spec(model).embedding_size, block_size)  # K must divide d: fail now
    pemiu = wrap(["sample"], PEMIU(block_size=block_size))  # per-sample key -> permutation
    protected = Pipeline(transformer.steps + [("pemiu", pemiu)])
    return GPURoutedPipelineSimple(protected, PEMIUComparator(block_size=block_size))
