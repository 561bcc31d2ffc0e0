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
   ``PEMIU -> [variant's steps] -> Reconstruct -> FaceEmbedding`` (Bob sample transformers; on
   Dask when a client is given, reconstruction and extraction routed to GPU workers), and the
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

More variants are registered in :data:`bob_facerev.attack.chain.VARIANTS`
(:func:`~bob_facerev.attack.chain.register_variant`). Every path of the output folder is
:class:`~bob_facerev.experiment_layout.GridLayout`'s.
"""

from __future__ import annotations

import dataclasses
import json
import logging

from pathlib import Path

import numpy as np

from .attack.chain import attack_scores
from .attack.samples import database_samples, embed_samples, run_transformer, subject_of
# GridConfig and validate_grid are imported from here by config files and commands
from .experiment_config import GridConfig, load_database, validate_grid  # noqa: F401
from .experiment_layout import GridLayout
from .protection.setting import Protection
from .utils import atomic_savez, atomic_write_text

logger = logging.getLogger(__name__)


# --------------------------------------------------------------------------- the steps


def _bona_fide(cfg, out, dask_client, block_size=None):
    """Run ``bob bio pipeline simple`` on the bona fide database; returns its score file."""
    from bob.bio.base.pipelines.entry_points import execute_pipeline_simple

    from .pipelines import verification_pipeline

    layout = GridLayout(out)
    folder, scores = layout.verification_folder(block_size), layout.verification_scores(block_size)
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
        checkpoint_dir=str(layout.verification_cache(block_size)),
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
    subjects = [subject_of(s) for s in database_samples(load_database(cfg.bona_fide_database))]
    if not has_identities(subjects):
        raise ValueError(
            f"bona fide database {name!r} has no subject identities (each of its {len(subjects)} "
            "templates is its own subject): thresholds from its scores would count the same person "
            "photographed twice as an impostor. Set threshold_scores to a bona fide score file of "
            f"the {cfg.model!r} extractor on a data set with identities (CFP-FF, LFW View 2)"
        )
    return _bona_fide(cfg, out, dask_client), f"thresholds from the bona fide database {name}"


def _training_set(cfg, out, dask_client):
    path = Path(cfg.training_set) if cfg.training_set else GridLayout(out).training_set
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

    protection = Protection.parse(protection)
    folder = GridLayout(out).generator_folder(protection)
    # the study's generator keeps the default seed; done.json records the plain fields
    seeded = dict(protection_seed=cfg.seed) if protection.protected else {}
    record = dict(protection=protection.kind, **seeded)
    if protection.protected:
        record.update(block_size=protection.block_size, moved_blocks=protection.moved_blocks)
    train = dict(cfg.train)
    keep_last = train.pop("keep_last_checkpoint", True)
    # a finished run whose last.pt was dropped (keep_last_checkpoint=False) is not trained again
    done, recipe = folder / "done.json", json.dumps({**record, **train}, sort_keys=True,
                                                    default=str)
    if done.is_file() and (folder / "best.pt").is_file() and done.read_text() == recipe:
        return str(folder / "best.pt")
    train_generator(str(training_set), str(folder), model=cfg.model, resume=True,
                    protection=protection, **seeded, **train)
    if not keep_last:
        # resume needs last.pt (weights + optimiser state) only while training is unfinished
        atomic_write_text(done, recipe)
        (folder / "last.pt").unlink(missing_ok=True)
    return str(folder / "best.pt")


class GridTools:
    """The attacker's tools a variant picks from (see :mod:`bob_facerev.attack.chain`): the
    study's generator (trained at once), a generator per protection and a de-shuffler per block
    size (trained or fitted when first asked for)."""

    def __init__(self, cfg, out, training_set):
        from .attack.chain import DeshufflerCache

        self.cfg, self.out, self.training_set = cfg, out, training_set
        self.study_generator = _generator(cfg, out, training_set)
        self.deshufflers = DeshufflerCache(training_set, cfg.deshuffle_scorer)

    def protected_generator(self, protection):
        return _generator(self.cfg, self.out, self.training_set, protection)

    def deshuffler(self, block_size):
        return self.deshufflers(block_size)


@dataclasses.dataclass
class _Attacked:
    """The attacked samples and the bona fide references, embedded once for every cell."""

    samples: list
    X: np.ndarray
    references: list
    R: np.ndarray
    n_samples: int
    n_references: int
    bona_fide_rows: object
    originals_shown: np.ndarray

    @property
    def shown(self):
        return self.samples[: len(self.originals_shown)]

    def templates(self):
        from bob.pipelines import Sample

        return [Sample(x, parent=s) for s, x in zip(self.samples, self.X)]


def _embed_attacked(cfg, layout, dask_client, bona_fide_file):
    """Embed the attacked templates and the subjects' other images; write their embeddings."""
    from .attack.samples import attack_faces
    from .evaluation.score_files import read_vuln_scores

    attack_all = database_samples(load_database(cfg.attack_database))
    reference_all = database_samples(load_database(cfg.bona_fide_database))
    embed = dict(checkpoint=cfg.checkpoint, dask_client=dask_client, batch_size=cfg.batch_size,
                 gpu_routing=cfg.gpu_routing, fallback=cfg.fallback)
    samples, X = embed_samples(attack_all, cfg.model, layout.cache("attack"), **embed)
    references, R = embed_samples(reference_all, cfg.model, layout.cache("bona_fide"), **embed)
    atomic_savez(
        layout.attack_embeddings,
        embeddings=X,
        keys=np.asarray([str(s.key) for s in samples]),
        subject_ids=np.asarray([subject_of(s) for s in samples]),
        gender=np.asarray([str(getattr(s, "gender", "")) for s in samples]),
    )
    return _Attacked(samples, X, references, R, len(attack_all), len(reference_all),
                     read_vuln_scores(bona_fide_file)[0],
                     attack_faces(samples[: cfg.n_faces], cfg.model))


def _run_cell(cfg, cell, protection, variant, tools, attacked, dask_client):
    """One grid cell: the chain built once, reconstructions embedded, scores written last."""
    from .attack.chain import build_chain
    from .evaluation.faces import save_faces
    from .evaluation.score_files import export_measure_files, protection_metadata, write_vuln_scores

    chain = build_chain(protection, variant, tools, cfg.model, checkpoint=cfg.checkpoint,
                        seed=cfg.seed, batch_size=cfg.batch_size)
    images = run_transformer(chain[:-1], attacked.templates(), dask_client, cfg.gpu_routing)
    result = run_transformer(chain[-1:], images, dask_client, cfg.gpu_routing)
    Y = np.stack([np.asarray(r.data, dtype=np.float32) for r in result])
    atomic_savez(cell.reconstructed, keys=np.asarray([str(s.key) for s in attacked.samples]),
                 embeddings=Y)
    # the face grid: originals and the first reconstructions
    shown = attacked.shown
    save_faces(cell.faces, attacked.originals_shown,
               np.stack([r.data for r in images[: len(shown)]]),
               [subject_of(s) for s in shown], row_labels=[f"{variant} {protection.name}"])
    # the type-I score files last: their presence marks the cell done
    rows = attack_scores(attacked.samples, attacked.X, Y, attacked.references, attacked.R)
    for comparison, attack_rows in sorted(rows.items(), reverse=True):
        if attack_rows:
            path = cell.scores_of(comparison)
            write_vuln_scores(path, attacked.bona_fide_rows, attack_rows,
                              metadata=protection_metadata(cfg.model, protection, variant,
                                                           comparison))
            # plain-text copies for `bob measure det|metrics|hist` and `bob bio det`
            export_measure_files(path)


def _face_grid(layout, attacked, cells):
    """One grid of every cell: originals over one row of reconstructions per cell."""
    from .evaluation.faces import load_faces, save_faces

    rows = [load_faces(c.faces) for c in cells]
    save_faces(layout.faces, attacked.originals_shown,
               np.stack([r["reconstructions"] for r in rows]),
               [subject_of(s) for s in attacked.shown],
               row_labels=[r["row_labels"][0] for r in rows])


# --------------------------------------------------------------------------- the grid


def run_grid(cfg, dask_client=None, force=False, progress=True):
    """Run the attack grid of ``cfg`` (a :class:`GridConfig`); returns the score files.

    Every finished step is kept in ``cfg.output`` (:class:`~bob_facerev.experiment_layout.
    GridLayout`) and skipped when the command runs again (pass ``force=True`` to recompute the
    attack scores).

    Returns
    -------
    dict
        ``bona_fide`` (score file), ``verification`` ({K: score file}), ``scores`` (list of
        attack score files), ``faces`` (list of face-grid ``.npz`` files).
    """
    from tqdm import tqdm

    protections = validate_grid(cfg)  # before any work: a typo fails now, not in hours
    layout = GridLayout(cfg.output)
    out = layout.output
    out.mkdir(parents=True, exist_ok=True)
    # 1. bona fide scores (thresholds) and PE-MIU verification
    bona_fide_file, thresholds_from = _threshold_scores(cfg, out, dask_client)
    verification = {k: _bona_fide(cfg, out, dask_client, block_size=k)
                    for k in cfg.verification_block_sizes}
    # 2.-3. the attacker's data and the study's generator
    training_set = _training_set(cfg, out, dask_client)
    tools = GridTools(cfg, out, training_set)
    # 4. the attacked templates and the subjects' other images, then every cell
    attacked = _embed_attacked(cfg, layout, dask_client, bona_fide_file)
    jobs = [(p, v) for p in protections for v in cfg.variants if p.protected or v == "study"]
    cells = [layout.cell(v, p) for p, v in jobs]
    for (protection, variant), cell in tqdm(list(zip(jobs, cells)), desc="attack grid",
                                            disable=not progress):
        if force or not cell.done():
            _run_cell(cfg, cell, protection, variant, tools, attacked, dask_client)
    _face_grid(layout, attacked, cells)
    summary = _summary(cfg, layout, bona_fide_file, verification, thresholds_from, attacked,
                       [c.scores for c in cells], training_set)
    atomic_write_text(layout.summary, json.dumps(summary, indent=2))
    return summary


def _summary(cfg, layout, bona_fide_file, verification, thresholds_from, attacked, score_files,
             training_set):
    """What :func:`run_grid` returns and writes to ``grid.json``."""
    return {
        "bona_fide": str(bona_fide_file),
        "verification": {int(k): str(v) for k, v in verification.items()},
        "scores": [str(p) for p in score_files],
        "faces": str(layout.faces),
        "model": cfg.model,
        "thresholds_from": thresholds_from,
        "n_attacked": len(attacked.samples),
        # victims (and bona fide samples) without an embedding: left out, counted here
        "n_attack_failed": attacked.n_samples - len(attacked.samples),
        "n_reference_failed": attacked.n_references - len(attacked.references),
        "bona_fide_failures": _failures_of(bona_fide_file),
        "output": str(layout.output),
        "attack_embeddings": str(layout.attack_embeddings),
        # what was run, for the report's header
        **{k: _name(getattr(cfg, k)) for k in
           ("bona_fide_database", "attack_database", "training_database")},
        "n_training": _n_training(training_set),
        "train": {k: v for k, v in cfg.train.items() if isinstance(v, (int, float, str))},
    }


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
    return GridLayout(summary["output"]).cell(variant, protection).read_reconstructed()
