"""Settings of the attack grid: :class:`GridConfig` (what a ``bob facerev grid`` config file
sets) and :func:`validate_grid`, which checks a whole configuration before any work starts.

:mod:`bob_facerev.experiment` re-exports both; :func:`~bob_facerev.experiment.run_grid` runs them.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

from .attack.chain import VARIANTS
from .experiment_layout import GridLayout
from .protection.setting import Protection, study_grid


@dataclasses.dataclass
class GridConfig:
    """Settings of :func:`~bob_facerev.experiment.run_grid`; a config file for ``bob facerev grid``
    sets these names.

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
        Default :func:`~bob_facerev.protection.setting.study_grid` for the model's embedding size.
    variants : tuple of str
        Names of :data:`~bob_facerev.attack.chain.VARIANTS` (``register_variant`` adds some).
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
        names = tuple(VARIANTS)
        bad = [v for v in self.variants if v not in VARIANTS]
        if bad:
            hints = "".join(_did_you_mean(v, names) for v in bad)
            raise ValueError(f"unknown attack variant(s) {bad}{hints}; use some of {names}")
        if not self.variants:
            raise ValueError(f"no attack variant given; use some of {names}")


# --------------------------------------------------------------------------- validation
# Everything a grid needs is checked before any work: a typo must not surface after hours of
# bona fide scoring and generator training.

#: train_generator arguments that the grid sets itself (not part of ``GridConfig.train``)
_GRID_SETS = ("training_set", "output", "model", "resume", "protection", "protection_seed")

#: ``GridConfig.train`` keys of the grid's own (not train_generator arguments)
_GRID_TRAIN_KEYS = ("keep_last_checkpoint",)


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

    allowed = (set(inspect.signature(train_generator).parameters) - set(_GRID_SETS)) | set(
        _GRID_TRAIN_KEYS)
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
        GridLayout(cfg.output).training_set.is_file()
    ):
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
