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
import logging

import click
import numpy as np

from bob.bio.base.algorithm import Distance
from bob.pipelines import wrap
from dask.delayed import Delayed
from sklearn.pipeline import Pipeline, make_pipeline

from bob_facerev import failures
from bob_facerev.batching import (
    STAGE_LOG_ENV,
    OptionalExtraInputWrapper,
    TemplateBatchingCheckpointWrapper,
    TemplateBatchingWrapper,
    batch_checkpointed_steps,
)
from bob_facerev.distributed import GPURoutedPipelineSimple
from bob_facerev.scoring import IndexedReferences

logger = logging.getLogger(__name__)

__all__ = [
    "CosineSimilarity", "OneBlockError", "FacerevPipelineSimple", "embedding_transformer",
    "verification_pipeline", "partition_count",
    # the batching wrappers (bob_facerev.batching), public here too
    "STAGE_LOG_ENV", "OptionalExtraInputWrapper", "TemplateBatchingWrapper",
    "TemplateBatchingCheckpointWrapper", "batch_checkpointed_steps",
]


class CosineSimilarity(IndexedReferences, Distance):
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

#: partitions per worker and group: the last tasks are short, so the workers finish together
PARTITIONS_PER_WORKER = 4


def partition_count(n_samples, n_workers):
    """Dask partitions for ``n_samples`` templates on ``n_workers`` workers.

    :data:`PARTITIONS_PER_WORKER` per worker while partitions hold at most ``MAX_PARTITION``
    templates (more partitions beyond), but none smaller than ``MIN_PARTITION`` templates:
    each partition is one batched call of every step, and pays a task's overhead once.  (Dask's
    own default, about 100 partitions, gives LFW-sized groups partitions of a few images; one
    partition per worker left one worker idle while the other finished its last large one.)
    """
    n_workers = max(1, int(n_workers))
    wanted = max(PARTITIONS_PER_WORKER * n_workers, -(-n_samples // MAX_PARTITION))
    return max(1, min(wanted, n_samples // MIN_PARTITION))


@contextlib.contextmanager
def _partitioned(transformer, n_samples, client=None):
    """Size the partitions of Bob's ``ToDaskBag`` steps left at Dask's default (in the block).

    Only steps without ``npartitions`` and ``partition_size`` (no ``--dask-n-partitions`` /
    ``--dask-partition-size`` given) change, to :func:`partition_count` partitions of equal
    size for the client's workers (given as a partition size: Dask's ``npartitions`` can leave
    a last partition of a few samples); they are restored afterwards.
    """
    from bob.pipelines.wrappers import ToDaskBag

    from bob_facerev.distributed import _inner_estimators

    bags = [est for est in _inner_estimators(transformer) if isinstance(est, ToDaskBag)
            and est.npartitions is None and est.partition_size is None]
    if bags:
        count = partition_count(n_samples, _n_workers(client))
        for bag in bags:
            bag.partition_size = max(1, -(-n_samples // count))
    try:
        yield
    finally:
        for bag in bags:
            bag.partition_size = None


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
