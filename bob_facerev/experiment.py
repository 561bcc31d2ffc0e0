"""The attack experiment: protected templates in, reconstructed faces out, scores and rates.

:func:`run_grid` runs the study's protocol for one extractor, every step cached so that an
interrupted run resumes where it stopped:

1. **bona fide scores**: ``bob bio pipeline simple`` (:func:`~bob.bio.base.pipelines.
   entry_points.execute_pipeline_simple`) on the bona fide database (LFW View 2 by default),
   unprotected, and with PE-MIU for the block sizes of ``verification_block_sizes``;
2. **training set**: the attacker's faces (FFHQ by default) cropped and embedded once
   (:func:`~bob_facerev.attack.dataset.build_training_set`);
3. **generators**: the study's generator trained on unprotected embeddings, and, for the
   ``"protected"`` variant, one per protection trained on protected embeddings
   (:func:`~bob_facerev.attack.trainer.train_generator`, resumable);
4. **attack**: for each protection (unprotected, PE-MIU with ``P`` blocks moved, PE-MIU random
   per template) and each variant, the attack samples' templates go through the chain
   ``PEMIU -> [Deshuffler] -> Reconstruct -> FaceEmbedding`` (Bob sample transformers; on Dask
   when a client is given, reconstruction and extraction routed to GPU workers), and the
   reconstructions are scored against the original image (type-I) and the subject's other
   images (type-II);
5. **score files**: one Bob CSV file per protection and variant, bona fide rows and attack rows
   (``probe_attack_type = reconstruction``), which ``bob vuln metrics``, ``bob vuln det`` and
   ``bob facerev rsr`` read;
6. **report**: the RSR tables, heatmaps, DET plot and face grids of ``bob facerev rsr``.

Variants
--------
``"study"``
    The generator trained on unprotected embeddings, applied to protected templates (the
    study's table).
``"deshuffle"``
    The block order is first restored without the key
    (:class:`~bob_facerev.attack.deshuffle.Deshuffler` fitted on the attacker's unprotected
    training embeddings), then the study's generator.
``"protected"``
    A generator trained on templates protected the same way (an attacker who knows K and P, or
    that templates are shuffled at random).
"""

from __future__ import annotations

import dataclasses
import json
import logging

from pathlib import Path

import numpy as np

from .utils import atomic_savez, atomic_write_text

logger = logging.getLogger(__name__)

#: attack variants, in the order of the tables
VARIANTS = ("study", "deshuffle", "protected")

#: block counts and moved blocks of the study's grid (512-d: K = 32, 64, 128)
STUDY_GRID = {16: (4, 8, 12, 16), 8: (2, 4, 8), 4: (2, 3, 4)}

#: block counts of the random-per-template rows (512-d: K = 16, 32, 64, 128)
STUDY_RANDOM_BLOCKS = (32, 16, 8, 4)


@dataclasses.dataclass(frozen=True)
class Protection:
    """One protection setting of the grid.

    ``block_size=None`` is the unprotected baseline; ``moved_blocks=None`` with a block size is
    PE-MIU with a random permutation per template.
    """

    block_size: int | None = None
    moved_blocks: int | None = None

    @property
    def name(self):
        if self.block_size is None:
            return "none"
        p = "random" if self.moved_blocks is None else self.moved_blocks
        return f"k{self.block_size}-p{p}"

    def transformer(self, seed=0):
        """The PE-MIU transformer, or None when unprotected."""
        if self.block_size is None:
            return None
        from .protection.pemiu import PEMIU

        return PEMIU(block_size=self.block_size, moved_blocks=self.moved_blocks, seed=seed)


def study_grid(embedding_size, fixed=STUDY_GRID, random_blocks=STUDY_RANDOM_BLOCKS):
    """The study's protections for an embedding size, defined by block counts.

    For 512-d embeddings: K=32 with P=4, 8, 12, 16; K=64 with P=2, 4, 8; K=128 with P=2, 3, 4;
    and random per-template shuffles with K=16, 32, 64, 128. For the 128-d default model the
    same block counts give K=8, 16, 32 (and 4 to 32 for the random rows).

    Returns
    -------
    list of Protection
        The unprotected baseline first.
    """
    grid = [Protection()]
    for blocks, moved in fixed.items():
        if embedding_size % blocks:
            raise ValueError(
                f"{blocks} blocks do not divide a {embedding_size}-d embedding; give the grid "
                "as block counts that divide the embedding size"
            )
        grid += [Protection(embedding_size // blocks, int(p)) for p in moved]
    for blocks in random_blocks:
        if embedding_size % blocks == 0 and embedding_size // blocks >= 1:
            grid.append(Protection(embedding_size // blocks, None))
    return grid


@dataclasses.dataclass
class GridConfig:
    """Settings of :func:`run_grid`; a config file for ``bob facerev grid`` sets these names.

    Parameters
    ----------
    model : str
        The attacked extractor (registry name).
    checkpoint : str or None
        Its weights (ArcFace/ElasticFace; default: ``bob config``).
    bona_fide_database, attack_database, training_database : str or database
        Bob database resources (names of ``bob.bio.database`` entry points) or objects: the bona
        fide comparisons that set thresholds, the attacked templates (one image per subject), and
        the attacker's faces (ignored when ``training_set`` exists).
    threshold_scores : str or None
        A bona fide score file (``scores-dev.csv``) of the same extractor on a data set *with*
        subject identities (CFP-FF, LFW View 2) to take the thresholds from. Needed when the bona
        fide database has no identities (every template its own subject, e.g. UTKFace): its
        "impostor" scores would include the same person twice. Used whenever set.
    training_set : str or None
        A cached training set (``.npz``); default ``<output>/training_set.npz``, built from
        ``training_database``.
    protections : list of Protection or None
        Default :func:`study_grid` for the model's embedding size.
    variants : tuple of str
        Among :data:`VARIANTS`.
    verification_block_sizes : tuple of int
        PE-MIU verification runs on the bona fide database (their EER goes in the report).
    train : dict
        Keyword arguments of :func:`~bob_facerev.attack.trainer.train_generator` (recipe), and
        ``keep_last_checkpoint`` (default True): False removes ``last.pt`` once training is
        finished (``done.json`` records the recipe; a run with another recipe trains anew),
        keeping only ``best.pt`` (the demo: its output folder stays small).
    deshuffle_scorer : str
        Scorer of the :class:`~bob_facerev.attack.deshuffle.Deshuffler`.
    seed : int
        Seed of the PE-MIU permutations.
    n_faces : int
        Subjects shown in the face grids.
    batch_size : int
        Images or templates per forward pass (extraction, reconstruction).
    gpu_routing : {"auto", "require", "off"}
        With a Dask client: run extraction and reconstruction on workers that advertise a
        ``GPU`` resource (see :func:`bob_facerev.distributed.route_to_gpu`); ``"require"``
        refuses a client without such workers.
    output : str
        Output folder.
    fallback : bool
        Crop photos without a detected face at their database's fallback geometry (see
        :mod:`bob_facerev.face.crop`); False: such samples fail (NaN bona fide scores, victims
        left out), and are counted in ``grid.json``.
    """

    model: str = "dlib"
    checkpoint: str | None = None
    bona_fide_database: object = "facerev-lfw-view2"
    attack_database: object = "facerev-lfw-attack"
    training_database: object = "facerev-ffhq"
    training_set: str | None = None
    threshold_scores: str | None = None
    protections: list | None = None
    variants: tuple = ("study", "deshuffle")
    verification_block_sizes: tuple = ()
    train: dict = dataclasses.field(default_factory=dict)
    deshuffle_scorer: str = "mean"
    seed: int = 0
    n_faces: int = 8
    batch_size: int = 32
    gpu_routing: str = "auto"
    output: str = "results/grid"
    fallback: bool = True

    @classmethod
    def from_file(cls, path, **overrides):
        """Read a Bob-style config file (Python; module-level names as the fields)."""
        from clapper.config import load

        import inspect

        module = load([str(path)])
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in vars(module).items() if k in names}
        unknown = sorted(
            k for k, v in vars(module).items()
            if k not in names and not k.startswith("_")
            and not (inspect.ismodule(v) or inspect.isclass(v) or callable(v))
        )
        if unknown:  # most likely a typo: refuse rather than run hours with the default
            hints = "; ".join(f"{k!r}{_did_you_mean(k, names)}" for k in unknown)
            raise ValueError(f"{path} sets {hints}, which {'is' if len(unknown) == 1 else 'are'} "
                             f"not grid setting(s); the settings are: {', '.join(sorted(names))}")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def __post_init__(self):
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            hints = "".join(_did_you_mean(v, VARIANTS) for v in bad)
            raise ValueError(f"unknown attack variant(s) {bad}{hints}; use some of {VARIANTS}")
        if not self.variants:
            raise ValueError(f"no attack variant given; use some of {VARIANTS}")


# --------------------------------------------------------------------------- validation
# Everything a grid needs is checked before any work: a typo must not surface after hours of
# bona fide scoring and generator training.

#: train_generator arguments that the grid sets itself (not part of ``GridConfig.train``)
_GRID_SETS = ("training_set", "output", "model", "resume", "protection", "block_size",
              "moved_blocks", "protection_seed")


def _did_you_mean(name, choices):
    import difflib

    close = difflib.get_close_matches(str(name), [str(c) for c in choices], n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _check_blocks(d, block_size, moved_blocks, what):
    from .protection.pemiu import fixed_permutation, n_blocks

    try:
        n = n_blocks(d, block_size)
        if n < 2 and moved_blocks != 0:
            raise ValueError(f"K={block_size} is the whole {d}-d embedding (one block, no "
                             f"protection); use a smaller K (at most {d // 2})")
        if moved_blocks is not None:
            fixed_permutation(n, moved_blocks)
    except ValueError as e:
        raise ValueError(f"{what}: {e}") from None


def _check_database(cfg, field):
    value = getattr(cfg, field)
    if not isinstance(value, str):
        return
    import importlib.metadata

    names = [ep.name for ep in importlib.metadata.entry_points(group="bob.bio.database")]
    if value not in names and not Path(value).is_file():
        raise ValueError(f"{field} = {value!r} is not a bob.bio.database resource"
                         f"{_did_you_mean(value, names)}; `bob facerev resources` lists ours")
    try:
        load_database(value)
    except Exception as e:  # noqa: BLE001  a resource that fails to load: say which one
        message = getattr(e, "message", None) or str(e)
        raise ValueError(f"{field} = {value!r}: {message}") from e


def validate_grid(cfg):
    """Check a :class:`GridConfig` completely before any work; raise a one-line ``ValueError``.

    Checks the model name, that the databases resolve (a database that is not configured, a
    resource name with a typo; the training database only when the training set must be built),
    that every protection and verification block size suits the embedding size, the keys of
    ``train`` (arguments of :func:`~bob_facerev.attack.trainer.train_generator`), the variants,
    the de-shuffling scorer and the GPU routing.

    Returns
    -------
    list of Protection
        The protections the grid will run.
    """
    import inspect

    from .face.registry import get_model_spec

    spec = get_model_spec(cfg.model)
    d = spec.embedding_size
    protections = list(cfg.protections) if cfg.protections is not None else study_grid(d)
    for p in protections:
        if not isinstance(p, Protection):
            raise ValueError(f"protections must be Protection(K, P) objects, got {p!r}")
        if p.block_size is not None:
            _check_blocks(d, p.block_size, p.moved_blocks, f"protection {p.name} on {cfg.model}")
    for k in cfg.verification_block_sizes:
        _check_blocks(d, k, None, f"verification_block_sizes {k} on {cfg.model}")
    from .attack.trainer import train_generator

    allowed = set(inspect.signature(train_generator).parameters) - set(_GRID_SETS)
    for key in cfg.train:
        if key not in allowed:
            raise ValueError(f"train = dict({key}=...): not a training setting"
                             f"{_did_you_mean(key, allowed)}; use some of {sorted(allowed)}")
    if cfg.deshuffle_scorer not in ("mean", "gaussian"):
        raise ValueError(f"deshuffle_scorer = {cfg.deshuffle_scorer!r}: use 'mean' or 'gaussian'")
    if cfg.gpu_routing not in ("auto", "require", "off"):
        raise ValueError(f"gpu_routing = {cfg.gpu_routing!r}: use 'auto', 'require' or 'off'")
    fields = ["bona_fide_database", "attack_database"]
    if not (cfg.training_set and Path(cfg.training_set).is_file()) and not (
        Path(cfg.output) / "training_set.npz"
    ).is_file():
        fields.append("training_database")
    for field in fields:
        _check_database(cfg, field)
    return protections


def load_database(database):
    """A database object from an object or a ``bob.bio.database`` resource name."""
    if not isinstance(database, str):
        return database
    from clapper.config import load

    return load([database], entry_point_group="bob.bio.database", attribute_name="database")


# --------------------------------------------------------------------------- embeddings


def _samples(database, group="dev"):
    """All samples of a database group (references and probes, each sample once, by key)."""
    refs = database.references(group=group)
    probes = database.probes(group=group)
    seen, out = set(), []
    for sset in list(refs) + list(probes):
        for s in sset.samples if hasattr(sset, "samples") else [sset]:
            if s.key not in seen:
                seen.add(s.key)
                out.append(s)
    return out


def _subject(sample):
    return str(getattr(sample, "subject_id", getattr(sample, "template_id", sample.key)))


def _template(sample):
    return str(getattr(sample, "template_id", sample.key))


def _compute(transformer, samples, dask_client, gpu_routing="auto", npartitions=None):
    """Run a Bob sample transformer, on Dask (GPU steps routed) when a client is given."""
    if dask_client is None:
        return transformer.transform(samples)
    import bob.pipelines

    from .distributed import compute, route_to_gpu

    n = npartitions or max(1, min(len(samples), _n_workers(dask_client) * 2))
    dask_transformer = bob.pipelines.wrap(["dask"], transformer, npartitions=n)
    route_to_gpu(dask_transformer, gpu_routing=gpu_routing, client=dask_client)
    return list(compute(dask_transformer.transform(samples), dask_client))


def _n_workers(client):
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    except Exception:  # noqa: BLE001 - a client without scheduler info still computes
        return 1


def embed_samples(samples, model, cache_dir, checkpoint=None, dask_client=None, batch_size=32,
                  gpu_routing="auto", fallback=True):
    """Crop and embed Bob samples, with a per-sample cache (Bob's CheckpointWrapper).

    Returns
    -------
    samples : list
        The samples with an embedding (same order as given). Samples without one (no face found
        and no fallback crop, see :mod:`bob_facerev.face.crop`) are dropped, logged one by one
        and counted in one summary line.
    X : ndarray, (N, d) float32
        Their L2-normalised embeddings.
    """
    import bob.pipelines

    from .pipelines import embedding_transformer

    transformer = bob.pipelines.wrap(
        ["checkpoint"],
        embedding_transformer(model, checkpoint=checkpoint, batch_size=batch_size,
                              fallback=fallback),
        features_dir=str(cache_dir),
        model_path=str(cache_dir),
    )
    from .failures import is_failed

    out = _compute(transformer, samples, dask_client, gpu_routing)
    kept, X = [], []
    for original, result in zip(samples, out):
        data = result.data
        if is_failed(data):
            logger.warning("no face found in sample %s: left out of the attack", original.key)
            continue
        kept.append(original)
        X.append(np.asarray(data, dtype=np.float32))
    if not X:
        raise ValueError("no face was found in any sample: check the database's images")
    if len(kept) < len(samples):
        logger.warning("%s: no embedding for %d of %d samples (no face found); they are left "
                       "out of the attack", cache_dir, len(samples) - len(kept), len(samples))
    return kept, np.stack(X)


def attack_faces(samples, model):
    """The original faces of ``samples`` as the attack sees them: the model's crop at 112x112
    (at their database's fallback geometry where no face is found)."""
    from .face.crop import FaceCropper, to_attack_size

    cropper = FaceCropper(model=model)
    crops = cropper.transform(
        [s.data for s in samples],
        annotations=[getattr(s, "annotations", None) for s in samples],
        fallback_eyes=[getattr(s, "fallback_eyes", None) for s in samples],
    )
    return np.stack([to_attack_size(c) for c in crops])


# --------------------------------------------------------------------------- the chain


def attack_chain(protection, variant, generator, model, deshuffler=None, checkpoint=None,
                 seed=0, batch_size=32, embed=True):
    """The attack as Bob sample transformers: protect, [de-shuffle], reconstruct, [embed].

    Parameters
    ----------
    protection : Protection
    variant : str
        One of :data:`VARIANTS` (``"deshuffle"`` needs ``deshuffler``).
    generator : str
        Generator checkpoint.
    model, checkpoint : str
        The extractor that judges the reconstructions.
    deshuffler : Deshuffler, optional
        Fitted on the attacker's unprotected embeddings.
    embed : bool
        End with the extractor (else the chain returns the reconstructed images).

    Returns
    -------
    sklearn.pipeline.Pipeline
        Each step wrapped by ``bob.pipelines``' SampleWrapper (PE-MIU gets the sample keys).
    """
    import bob.pipelines

    from sklearn.pipeline import Pipeline

    from .attack.transformer import Reconstruct
    from .face.extractor import FaceEmbedding

    steps = []
    pemiu = protection.transformer(seed)
    if pemiu is not None:
        steps.append(("pemiu", pemiu))
    if variant == "deshuffle" and protection.block_size is not None:
        if deshuffler is None:
            raise ValueError("the 'deshuffle' variant needs a fitted Deshuffler")
        steps.append(("deshuffle", deshuffler))
    steps.append(("reconstruct", Reconstruct(generator, model=model, batch_size=batch_size)))
    if embed:
        steps.append(("embed", FaceEmbedding(model=model, checkpoint=checkpoint, batch_size=batch_size)))
    return bob.pipelines.wrap(["sample"], Pipeline(steps))


def attack_scores(attack_samples, originals, reconstructed, references, reference_embeddings):
    """Type-I and type-II attack rows.

    Parameters
    ----------
    attack_samples : list of Sample
        The attacked samples.
    originals, reconstructed : ndarray (N, d)
        Embeddings of the original images and of their reconstructions (L2-normalised).
    references : list of Sample
        Bona fide samples (the subjects' other images, for type-II).
    reference_embeddings : ndarray (M, d)

    Returns
    -------
    dict
        ``{"type-I": rows, "type-II": rows}``, rows as dicts for
        :func:`~bob_facerev.evaluation.rsr.write_vuln_scores`.
    """
    type1 = np.sum(originals * reconstructed, axis=1)
    rows = {"type-I": [], "type-II": []}
    for s, score in zip(attack_samples, type1):
        rows["type-I"].append(_row(s, s, score))
    by_subject = {}
    for j, r in enumerate(references):
        by_subject.setdefault(_subject(r), []).append(j)
    for i, s in enumerate(attack_samples):
        others = [j for j in by_subject.get(_subject(s), []) if references[j].key != s.key]
        scores = reference_embeddings[others] @ reconstructed[i] if others else []
        for j, score in zip(others, scores):
            rows["type-II"].append(_row(s, references[j], score))
    return rows


def _row(probe, reference, score):
    return {
        "probe_template_id": _template(probe),
        "probe_subject_id": _subject(probe),
        "probe_key": str(probe.key),
        "bio_ref_template_id": _template(reference),
        "bio_ref_subject_id": _subject(reference),
        "bio_ref_key": str(reference.key),
        "score": float(score),
    }


# --------------------------------------------------------------------------- the grid


def _bona_fide(cfg, out, dask_client, block_size=None):
    """Run ``bob bio pipeline simple`` on the bona fide database; returns its score file."""
    from bob.bio.base.pipelines.entry_points import execute_pipeline_simple

    from .pipelines import verification_pipeline

    name = "bona_fide" if block_size is None else f"verification_pemiu_k{block_size}"
    folder = out / name
    scores = folder / "scores-dev.csv"
    if scores.is_file():
        logger.info("bona fide scores found: %s", scores)
        return scores
    pipeline = verification_pipeline(
        cfg.model, block_size=block_size, checkpoint=cfg.checkpoint, batch_size=cfg.batch_size,
        fallback=cfg.fallback,
    )
    pipeline.gpu_routing, pipeline.client = cfg.gpu_routing, dask_client
    # the extraction steps share one cache with the attack (the same step names)
    execute_pipeline_simple(
        pipeline,
        load_database(cfg.bona_fide_database),
        dask_client,
        ["dev"],
        str(folder),
        write_metadata_scores=True,
        checkpoint=True,
        dask_n_partitions=None,
        dask_partition_size=None,
        dask_n_workers=None,
        checkpoint_dir=str(out / "cache" / name),
    )
    if not scores.is_file():
        raise RuntimeError(f"bob bio pipeline simple wrote no {scores}: see the log above")
    return scores


def _threshold_scores(cfg, out, dask_client):
    """``(score file, note)``: the bona fide scores the thresholds come from, and where from.

    The bona fide database's own scores when it has subject identities; else ``threshold_scores``,
    which must hold genuine comparisons; a database without identities and no such file is refused
    before any work starts.
    """
    from .attack.dataset import has_identities
    from .attack.validation import thresholds_from_scores

    name = cfg.bona_fide_database if isinstance(cfg.bona_fide_database, str) else "bona fide database"
    if cfg.threshold_scores is not None:
        thresholds_from_scores(cfg.threshold_scores)  # refuses a file without genuine comparisons
        note = f"thresholds from {cfg.threshold_scores} (threshold_scores), not from {name}"
        logger.warning("%s", note)
        return Path(cfg.threshold_scores), note
    subjects = [_subject(s) for s in _samples(load_database(cfg.bona_fide_database))]
    if not has_identities(subjects):
        raise ValueError(
            f"bona fide database {name!r} has no subject identities (each of its {len(subjects)} "
            "templates is its own subject): thresholds from its scores would count the same person "
            "photographed twice as an impostor. Set threshold_scores to a bona fide score file of "
            f"the {cfg.model!r} extractor on a data set with identities (CFP-FF, LFW View 2)"
        )
    return _bona_fide(cfg, out, dask_client), f"thresholds from the bona fide database {name}"


def _training_set(cfg, out, dask_client):
    path = Path(cfg.training_set) if cfg.training_set else out / "training_set.npz"
    if path.is_file():
        return path
    from .attack.dataset import build_training_set

    logger.info("building the attacker's training set %s", path)
    database = load_database(cfg.training_database)
    build_training_set(database, cfg.model, str(path), checkpoint=cfg.checkpoint)
    return path


def _generator(cfg, out, training_set, protection=None):
    """Train (or resume, or reuse) a generator; returns its checkpoint folder."""
    from .attack.trainer import train_generator

    if protection is None or protection.block_size is None:
        folder = out / "generators" / "study"
        kwargs = dict(protection="none")
    else:
        folder = out / "generators" / f"protected-{protection.name}"
        kwargs = dict(
            protection="random" if protection.moved_blocks is None else "fixed",
            block_size=protection.block_size,
            moved_blocks=protection.moved_blocks,
            protection_seed=cfg.seed,
        )
    train = dict(cfg.train)
    keep_last = train.pop("keep_last_checkpoint", True)
    # a finished run whose last.pt was dropped (keep_last_checkpoint=False) is not trained again
    done, recipe = folder / "done.json", json.dumps({**kwargs, **train}, sort_keys=True,
                                                    default=str)
    if done.is_file() and (folder / "best.pt").is_file() and done.read_text() == recipe:
        return str(folder / "best.pt")
    train_generator(str(training_set), str(folder), model=cfg.model, resume=True,
                    **kwargs, **train)
    if not keep_last:
        # resume needs last.pt (weights + optimiser state) only while training is unfinished
        atomic_write_text(done, recipe)
        (folder / "last.pt").unlink(missing_ok=True)
    return str(folder / "best.pt")


def run_grid(cfg, dask_client=None, force=False, progress=True):
    """Run the attack grid of ``cfg`` (a :class:`GridConfig`); returns the score files.

    Every finished step is kept in ``cfg.output`` and skipped when the command runs again (pass
    ``force=True`` to recompute the attack scores).

    Returns
    -------
    dict
        ``bona_fide`` (score file), ``verification`` ({K: score file}), ``scores`` (list of
        attack score files), ``faces`` (list of face-grid ``.npz`` files).
    """
    from tqdm import tqdm

    from .attack.deshuffle import Deshuffler
    from .attack.dataset import load_training_set
    from .evaluation.plots import load_faces, save_faces
    from .evaluation.rsr import (
        export_measure_files,
        protection_metadata,
        read_vuln_scores,
        write_vuln_scores,
    )

    protections = validate_grid(cfg)  # before any work: a typo fails now, not in hours
    out = Path(cfg.output)
    out.mkdir(parents=True, exist_ok=True)

    # 1. bona fide scores (thresholds) and PE-MIU verification
    bona_fide_file, thresholds_from = _threshold_scores(cfg, out, dask_client)
    verification = {
        k: _bona_fide(cfg, out, dask_client, block_size=k) for k in cfg.verification_block_sizes
    }
    bona_fide_rows, _ = read_vuln_scores(bona_fide_file)

    # 2.-3. the attacker's data and the study's generator
    training_set = _training_set(cfg, out, dask_client)
    study_generator = _generator(cfg, out, training_set)
    deshuffler_cache = {}

    def deshuffler(block_size):
        if block_size not in deshuffler_cache:
            if "attacker" not in deshuffler_cache:  # the training set's faces are large: read once
                deshuffler_cache["attacker"] = load_training_set(str(training_set))["embeddings"]
            attacker = deshuffler_cache["attacker"]
            deshuffler_cache[block_size] = Deshuffler(
                block_size=block_size, scorer=cfg.deshuffle_scorer
            ).fit(attacker)
        return deshuffler_cache[block_size]

    # 4. the attacked templates and the subjects' other images
    attack_db = load_database(cfg.attack_database)
    bona_fide_db = load_database(cfg.bona_fide_database)
    attack_all, reference_all = _samples(attack_db), _samples(bona_fide_db)
    attack_samples, X = embed_samples(
        attack_all, cfg.model, out / "cache" / "attack", cfg.checkpoint, dask_client,
        cfg.batch_size, cfg.gpu_routing, cfg.fallback,
    )
    references, R = embed_samples(
        reference_all, cfg.model, out / "cache" / "bona_fide", cfg.checkpoint,
        dask_client, cfg.batch_size, cfg.gpu_routing, cfg.fallback,
    )
    atomic_savez(
        out / "attack_embeddings.npz",
        embeddings=X,
        keys=np.asarray([str(s.key) for s in attack_samples]),
        subject_ids=np.asarray([_subject(s) for s in attack_samples]),
        gender=np.asarray([str(getattr(s, "gender", "")) for s in attack_samples]),
    )
    shown = attack_samples[: cfg.n_faces]
    originals_shown = attack_faces(shown, cfg.model)

    from bob.pipelines import Sample

    template_samples = [
        Sample(x, parent=s) for s, x in zip(attack_samples, X)
    ]

    jobs = [
        (p, v)
        for p in protections
        for v in cfg.variants
        if not (p.block_size is None and v != "study")
    ]
    score_files, face_files = [], []
    for protection, variant in tqdm(jobs, desc="attack grid", disable=not progress):
        folder = out / "scores" / variant / protection.name
        score_file = folder / "scores-dev.csv"
        faces_file = folder / "faces.npz"
        score_files.append(score_file)
        face_files.append(faces_file)
        done = score_file.is_file() and (folder / "scores-dev-attack.txt").is_file()
        if done and not force:
            continue
        generator = (
            _generator(cfg, out, training_set, protection)
            if variant == "protected"
            else study_generator
        )
        kwargs = dict(
            deshuffler=deshuffler(protection.block_size)
            if variant == "deshuffle" and protection.block_size is not None
            else None,
            checkpoint=cfg.checkpoint,
            seed=cfg.seed,
            batch_size=cfg.batch_size,
        )
        chain = attack_chain(protection, variant, generator, cfg.model, **kwargs)
        result = _compute(chain, template_samples, dask_client, cfg.gpu_routing)
        Y = np.stack([np.asarray(r.data, dtype=np.float32) for r in result])
        atomic_savez(folder / "reconstructed.npz",
                     keys=np.asarray([str(s.key) for s in attack_samples]), embeddings=Y)
        # the face grid: originals and their reconstructions (computed locally, few faces)
        images_chain = attack_chain(protection, variant, generator, cfg.model, embed=False, **kwargs)
        recon = np.stack([r.data for r in images_chain.transform(template_samples[: len(shown)])])
        save_faces(faces_file, originals_shown, recon, [_subject(s) for s in shown],
                   row_labels=[f"{variant} {protection.name}"])
        # the type-I score files last: their presence marks the cell done
        rows = attack_scores(attack_samples, X, Y, references, R)
        for comparison, attack_rows in sorted(rows.items(), reverse=True):
            path = score_file if comparison == "type-I" else folder / "scores-dev-type2.csv"
            metadata = protection_metadata(
                cfg.model,
                protection.block_size,
                protection.moved_blocks if protection.block_size is not None else None,
                variant=variant,
                comparison=comparison,
            )
            if attack_rows:
                write_vuln_scores(path, bona_fide_rows, attack_rows, metadata=metadata)
                # plain-text copies for `bob measure det|metrics|hist` and `bob bio det`
                export_measure_files(path)

    # one grid of every setting: originals over one row of reconstructions per setting
    rows = [load_faces(f) for f in face_files]
    save_faces(
        out / "faces.npz",
        originals_shown,
        np.stack([r["reconstructions"] for r in rows]),
        [_subject(s) for s in shown],
        row_labels=[r["row_labels"][0] for r in rows],
    )

    summary = {
        "bona_fide": str(bona_fide_file),
        "verification": {int(k): str(v) for k, v in verification.items()},
        "scores": [str(p) for p in score_files],
        "faces": str(out / "faces.npz"),
        "model": cfg.model,
        "thresholds_from": thresholds_from,
        "n_attacked": len(attack_samples),
        # victims (and bona fide samples) without an embedding: left out, counted here
        "n_attack_failed": len(attack_all) - len(attack_samples),
        "n_reference_failed": len(reference_all) - len(references),
        "bona_fide_failures": _failures_of(bona_fide_file),
        "output": str(out),
        "attack_embeddings": str(out / "attack_embeddings.npz"),
        # what was run, for the report's header
        **{k: _name(getattr(cfg, k)) for k in
           ("bona_fide_database", "attack_database", "training_database")},
        "n_training": _n_training(training_set),
        "train": {k: v for k, v in cfg.train.items() if isinstance(v, (int, float, str))},
    }
    atomic_write_text(out / "grid.json", json.dumps(summary, indent=2))
    return summary


def _name(database):
    """A database resource's name, or its class name when an object was given."""
    return database if isinstance(database, str) else type(database).__name__


def _n_training(training_set):
    with np.load(training_set, allow_pickle=False) as z:
        return int(len(z["embeddings"])) if "embeddings" in z.files else None


def _failures_of(score_file):
    """The failure summary of a bona fide run (:func:`bob_facerev.failures.read_summary`)."""
    from .failures import read_summary

    return read_summary(score_file)


def load_reconstructed(summary, protection, variant="study"):
    """Keys and embeddings of the reconstructions of one grid cell (``reconstructed.npz``)."""
    folder = Path(summary["output"]) / "scores" / variant / protection.name
    with np.load(folder / "reconstructed.npz", allow_pickle=False) as z:
        return [str(k) for k in z["keys"]], z["embeddings"]


def verification_table(summary, fmrs=(0.001, 0.01, 0.1)):
    """Markdown table of the verification runs: EER and FNMR at FMR, unprotected vs PE-MIU.

    Parameters
    ----------
    summary : dict
        What :func:`run_grid` returns (``bona_fide`` and ``verification`` score files).

    Returns
    -------
    str
        Empty when the grid ran no PE-MIU verification.
    """
    import bob.measure
    import pandas as pd

    from .evaluation.rsr import read_vuln_scores, split_bona_fide

    files = {"none": summary["bona_fide"]}
    files.update({str(k): v for k, v in sorted(summary.get("verification", {}).items())})
    if len(files) == 1:
        return ""
    rows = []
    for k, path in files.items():
        neg, pos = split_bona_fide(read_vuln_scores(path)[0])
        row = {"K": k, "genuine": len(pos), "impostor": len(neg),
               "EER %": 100 * bob.measure.eer(neg, pos)}
        for fmr in fmrs:
            threshold = bob.measure.far_threshold(neg, pos, fmr)
            row[f"FNMR % @ FMR {100 * fmr:g} %"] = 100 * bob.measure.farfrr(neg, pos, threshold)[1]
        rows.append(row)
    return pd.DataFrame(rows).to_markdown(index=False, floatfmt=".2f")
