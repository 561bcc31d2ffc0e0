"""Generator checkpoints: the file format, atomic writes, reading, loading and resume checks.

A checkpoint is a dict saved with ``torch.save`` and read with ``torch.load(weights_only=True)``:
``format`` (:data:`CHECKPOINT_FORMAT`), ``generator`` (weights), ``metadata`` (extractor, embedding
size, protection, training set digest, the ``recipe`` dict, epoch, ...), and in ``last.pt`` also
``optimizer``, ``scheduler``, ``scaler``, ``epoch``, ``rng``, ``history`` and ``best``, everything
:class:`~bob_facerev.attack.trainer.Trainer` needs to resume a run exactly.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from ..utils import atomic_path
from .dataset import file_digest
from .generator import Generator
from .recipe import STUDY

#: format tag stored in every checkpoint
CHECKPOINT_FORMAT = "bob_facerev.generator/1"

#: what checkpoints written before the project's recipe extensions existed did
_BEFORE_EXTENSIONS = dict(
    {name: getattr(STUDY, name) for name in ("id_loss", "weight_decay", "flip", "patience",
                                             "select_fmr")},
    select="val_loss", thresholds=None,
)

#: recipe entries that may change when resuming (the others must match the checkpoint)
RESUMABLE_CHANGES = ("epochs", "patience")

#: metadata entries that must match the checkpoint when resuming
_SAME_ON_RESUME = ("model", "embedding_size", "id_model", "protection", "block_size",
                   "moved_blocks", "protection_seed", "training_set_sha256")


def stored_recipe(recipe, w_id, split, thresholds):
    """The ``recipe`` dict a checkpoint stores (its keys and order are the checkpoint format).

    Parameters
    ----------
    recipe : Recipe
        The run's :class:`~bob_facerev.attack.recipe.Recipe`.
    w_id : float
        The identity weight actually used (0 without an identity network).
    split : {"file", "random"}
        Where the train/validation split came from.
    thresholds : dict or None
        ``{fmr: threshold}`` of the validation RSR.
    """
    r = recipe
    return dict(
        epochs=int(r.epochs), batch_size=int(r.batch_size), lr=float(r.lr), lr_step=int(r.lr_step),
        lr_gamma=float(r.lr_gamma), w_ssim=float(r.w_ssim), w_id=float(w_id), seed=int(r.seed),
        split_seed=int(r.split_seed), validation_fraction=float(r.validation_fraction),
        max_samples=None if r.max_samples is None else int(r.max_samples), split=split,
        optimizer="AdamW" if r.weight_decay > 0 else "Adam", scheduler="StepLR",
        id_loss=str(r.id_loss), weight_decay=float(r.weight_decay), flip=bool(r.flip),
        patience=None if r.patience is None else int(r.patience),
        select="val_loss" if thresholds is None else f"type1@{float(r.select_fmr):g}",
        thresholds=None if thresholds is None else {f"{k:g}": v for k, v in sorted(thresholds.items())},
    )


def generator_metadata(model, embedding_size, id_model, protection, protection_seed, training_set,
                       training_set_metadata, sizes, recipe, threshold_source):
    """The ``metadata`` dict of a checkpoint (without the per-epoch ``epoch`` and ``val_loss``).

    Parameters
    ----------
    model, id_model : str
        The attacked extractor and that of the identity term (``"none"``).
    embedding_size : int
    protection : Protection
        Stored as plain fields, read back with
        :meth:`~bob_facerev.protection.setting.Protection.from_kind`.
    protection_seed : int
    training_set : str or os.PathLike
        Its absolute path, size and SHA-256 are stored.
    training_set_metadata : dict
        Its plain (str, number, bool, None) entries are stored.
    sizes : tuple of int
        ``(n_train, n_validation)``.
    recipe : dict
        :func:`stored_recipe`.
    threshold_source : str or None
        Where the validation thresholds came from.
    """
    return dict(
        format=CHECKPOINT_FORMAT,
        model=str(model),
        embedding_size=int(embedding_size),
        id_model=id_model,
        protection=protection.kind,
        block_size=protection.block_size,
        moved_blocks=protection.moved_blocks,
        protection_seed=int(protection_seed),
        training_set=os.path.abspath(os.fspath(training_set)),
        training_set_bytes=os.path.getsize(training_set),
        training_set_sha256=file_digest(training_set),
        training_set_metadata={k: v for k, v in training_set_metadata.items()
                               if isinstance(v, (str, int, float, bool, type(None)))},
        n_train=int(sizes[0]),
        n_validation=int(sizes[1]),
        recipe=recipe,
        threshold_source=threshold_source,
    )


def atomic_torch_save(obj, path):
    """``torch.save`` written atomically (:func:`bob_facerev.utils.atomic_path`): readers never
    see a partial file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def rng_state(device):
    """The torch, numpy, python (and CUDA) random states, in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    """Restore what :func:`rng_state` saved."""
    torch.set_rng_state(state["torch"])
    name, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((name, keys.numpy().astype(np.uint32), int(pos), int(has_gauss), cached))
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _resolve_checkpoint_path(path):
    path = os.fspath(path)
    if os.path.isdir(path):
        for name in ("best.pt", "last.pt"):
            if os.path.isfile(os.path.join(path, name)):
                return os.path.join(path, name)
        raise FileNotFoundError(f"no best.pt or last.pt generator checkpoint in folder {path!r}")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"generator checkpoint {path!r} does not exist")
    return path


def read_generator_checkpoint(path, device="cpu"):
    """Load a generator checkpoint (``weights_only=True``) and check its layout.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file, or a training output folder (``best.pt``, else ``last.pt``).
    device : str or torch.device
        Where the tensors are loaded.

    Returns
    -------
    dict
        The whole checkpoint: ``format``, ``generator``, ``metadata`` (and in ``last.pt`` the
        optimiser, scheduler, RNG states, history, ...).

    Raises
    ------
    FileNotFoundError
        No such file, or a folder without ``best.pt``/``last.pt``.
    ValueError
        The file is corrupt, truncated or not a bob_facerev generator checkpoint.
    """
    path = _resolve_checkpoint_path(path)
    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling failure means an unusable file
        raise ValueError(
            f"cannot read generator checkpoint {path!r}: the file is corrupt, truncated or not a "
            f"torch checkpoint ({type(e).__name__}: {e})"
        ) from e
    if (
        not isinstance(state, dict)
        or state.get("format") != CHECKPOINT_FORMAT
        or not isinstance(state.get("generator"), dict)
        or not isinstance(state.get("metadata"), dict)
    ):
        raise ValueError(
            f"{path!r} is not a bob_facerev generator checkpoint (expected a dict with format "
            f"{CHECKPOINT_FORMAT!r}, 'generator' weights and 'metadata'); train one with "
            "`bob facerev train`"
        )
    return state


def load_generator(path, model=None, embedding_size=None, device="cpu"):
    """Load a trained generator.

    Parameters
    ----------
    path : str or os.PathLike
        A checkpoint file (``best.pt``/``last.pt``) or a training output folder (``best.pt`` is used,
        else ``last.pt``).
    model : str, optional
        The extractor whose embeddings will be inverted; refused if the generator was trained for
        another one.
    embedding_size : int, optional
        Refused if the generator was trained for another embedding size.
    device : str or torch.device

    Returns
    -------
    generator : Generator
        In evaluation mode on ``device``.
    metadata : dict
        ``model``, ``embedding_size``, ``protection``, ``block_size``, ``moved_blocks``,
        ``training_set``/``training_set_sha256``/``training_set_bytes``, ``recipe``, ``epoch``, ...

    Raises
    ------
    ValueError
        Corrupt file, or a generator made for another extractor or embedding size.
    """
    device = torch.device(device)
    state = read_generator_checkpoint(path, device=device)
    path = _resolve_checkpoint_path(path)
    meta = dict(state["metadata"])
    trained_model = meta.get("model")
    trained_size = int(meta.get("embedding_size", -1))
    if model is not None and str(model) != str(trained_model):
        raise ValueError(
            f"generator checkpoint {path!r} was trained for the {trained_model!r} extractor "
            f"({trained_size}-d embeddings), not for {model!r}: use a generator trained on {model!r} "
            "embeddings (`bob facerev train` with model="
            f"{model!r})"
        )
    if embedding_size is not None and int(embedding_size) != trained_size:
        raise ValueError(
            f"generator checkpoint {path!r} was trained for {trained_size}-d embeddings (extractor "
            f"{trained_model!r}), but {int(embedding_size)}-d embeddings were given: use a generator "
            "trained for this embedding size"
        )
    generator = Generator(trained_size)
    try:
        generator.load_state_dict(state["generator"])
    except RuntimeError as e:
        raise ValueError(f"generator checkpoint {path!r} has weights that do not fit: {e}") from e
    return generator.to(device).eval(), meta


def check_resume(previous, current, path):
    """Refuse to resume a checkpoint whose metadata ``previous`` differs from the run's
    ``current`` (only :data:`RESUMABLE_CHANGES` may differ; checkpoints older than the recipe
    extensions count as having the study's values)."""
    mismatch = []
    for key in _SAME_ON_RESUME:
        if previous.get(key) != current.get(key):
            mismatch.append(f"{key}: checkpoint {previous.get(key)!r}, now {current.get(key)!r}")
    for key, value in current["recipe"].items():
        before = previous["recipe"].get(key, _BEFORE_EXTENSIONS.get(key))  # older checkpoints
        if key not in RESUMABLE_CHANGES and before != value:
            mismatch.append(f"recipe.{key}: checkpoint {before!r}, now {value!r}")
    if mismatch:
        raise ValueError(
            f"cannot resume from {path!r}: the run differs from the checkpoint ("
            + "; ".join(mismatch)
            + "). Use the same settings (only epochs may grow) or another output folder."
        )
