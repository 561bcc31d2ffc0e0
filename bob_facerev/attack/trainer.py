"""Training of the reconstruction attack, resumable and deterministic on CPU.

:func:`train_generator` follows the study's recipe by default (Adam, lr 1e-3, StepLR(10, 0.5), batch 32,
100 epochs, 90/10 split with seed 2021, loss weights 0.1 and 0.005). Every epoch it writes, atomically,
into the output folder:

``last.pt``
    Generator, optimiser, scheduler, (AMP scaler,) epoch, RNG states, history and metadata.
``best.pt``
    Generator and metadata of the best epoch: the highest validation RSR (type-I at ``select_fmr``)
    when decision ``thresholds`` are given, else the lowest validation loss.
``log.csv``
    One row per epoch: learning rate, training and validation loss terms, speed, data-wait share,
    and with ``thresholds`` the validation RSR (:mod:`bob_facerev.attack.validation`).
``grids/epoch_NNN.png``
    Real (top row) and reconstructed (bottom row) validation faces.

A run interrupted at any point and restarted with ``resume=True`` ends with exactly the weights of the
uninterrupted run on CPU: the data order of epoch ``e`` depends only on ``(seed, e)``, and the
checkpoint holds everything else that changes. Checkpoints load with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import csv
import logging
import os
import random
import time

import numpy as np
import torch

from ..utils import atomic_path
from .dataset import (
    ReconstructionDataset,
    file_digest,
    flip_faces,
    flipped_embeddings,
    load_training_set,
    protect_embeddings,
    split_indices,
)
from ..protection.setting import Protection
from .generator import Generator
from .losses import TERMS, ReconstructionLoss

logger = logging.getLogger(__name__)

#: format tag stored in every checkpoint
CHECKPOINT_FORMAT = "bob_facerev.generator/1"

#: the study's recipe (Shahreza et al. 2022, as used by Osorio-Roig et al. 2023)
RECIPE = dict(
    epochs=100,
    batch_size=32,
    lr=1e-3,
    lr_step=10,
    lr_gamma=0.5,
    w_ssim=0.1,
    w_id=0.005,
    seed=0,
    split_seed=2021,
    validation_fraction=0.1,
    max_samples=None,
)

#: this project's additions to the recipe, with the values that reproduce the study
EXTENSIONS = dict(id_loss="study", weight_decay=0.0, flip=False, patience=None, select_fmr=0.001)

#: what quick mode (CPU demos) changes in the recipe
QUICK = dict(epochs=3, max_samples=128)

#: what checkpoints written before :data:`EXTENSIONS` existed did
_BEFORE_EXTENSIONS = dict(EXTENSIONS, select="val_loss", thresholds=None)

#: recipe entries that may change when resuming (the others must match the checkpoint)
RESUMABLE_CHANGES = ("epochs", "patience")

CSV_COLUMNS = (
    ["epoch", "lr"]
    + [f"train_{t}" for t in TERMS]
    + [f"val_{t}" for t in TERMS]
    + ["images_per_s", "data_wait_share", "seconds", "best"]
)


def resolve_device(device=None):
    """``"auto"``/None -> ``cuda`` when available, else ``cpu``; otherwise ``torch.device(device)``."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


# --------------------------------------------------------------------------- checkpoints


def atomic_torch_save(obj, path):
    """``torch.save`` written atomically (:func:`bob_facerev.utils.atomic_path`): readers never
    see a partial file."""
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def _rng_state(device):
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *map(float, np_state[2:])],
        "python": [random.getstate()[0], list(random.getstate()[1]), random.getstate()[2]],
    }
    if device.type == "cuda":
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state):
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


def read_checkpoint(path, device="cpu"):
    """Load a generator checkpoint file (``weights_only=True``) and check its layout.

    Raises
    ------
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
    state = read_checkpoint(path, device=device)
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


# --------------------------------------------------------------------------- training


class _Deterministic:
    """Context: deterministic torch algorithms on, restored on exit."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.previous = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
        if self.enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.previous[0], warn_only=self.previous[1])


def _seed_worker(worker_id):
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _to_images(faces, device):
    return faces.to(device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def compute_id_targets(criterion, faces, indices, device, batch_size=64, progress=False, flip=False):
    """Identity-network embeddings of the real faces ``faces[indices]``, as an ``(N, d_id)`` tensor
    indexed like ``faces`` (rows outside ``indices`` are zero); of their mirror images with
    ``flip=True``."""
    out = None
    it = range(0, len(indices), batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="identity targets", unit="batch", leave=False)
    for start in it:
        idx = indices[start : start + batch_size]
        batch = flip_faces(faces[idx]) if flip else faces[idx]
        emb = criterion.embed(_to_images(torch.from_numpy(batch), device))
        if out is None:
            out = torch.zeros((len(faces), emb.shape[1]), dtype=torch.float32, device=device)
        out[torch.as_tensor(idx, device=device)] = emb
    return out


def _run_epoch(generator, criterion, loader, device, id_targets, optimizer=None, scaler=None,
               amp=False, progress=False, desc=""):
    """One pass; trains when ``optimizer`` is given. Returns (mean terms, n images, data wait s, s)."""
    training = optimizer is not None
    generator.train(training)
    sums = {t: torch.zeros((), dtype=torch.float64, device=device) for t in TERMS}
    n = 0
    wait = 0.0
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    it = iter(loader)
    step = 0
    while True:
        t0 = time.perf_counter()
        try:
            faces, embeddings, idx = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t0
        real = _to_images(faces, device)
        embeddings = embeddings.to(device, non_blocking=True)
        real_id = id_targets[idx.to(device)] if id_targets is not None else None
        with torch.set_grad_enabled(training), torch.autocast(device.type, enabled=amp):
            generated = generator(embeddings)
        with torch.set_grad_enabled(training):
            loss, terms = criterion(generated, real, real_id)
        if training:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.scale(loss).backward()
                scaler.step(optimizer)
                scaler.update()
            else:
                loss.backward()
                optimizer.step()
        b = len(faces)
        for t in TERMS:
            sums[t] += terms[t].double() * b
        n += b
        step += 1
        if bar is not None:
            bar.update(1)
            if step % 10 == 1 or step == len(loader):
                bar.set_postfix({t: f"{(sums[t] / n).item():.4f}" for t in TERMS}, refresh=False)
    if bar is not None:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    means = {t: (sums[t] / max(n, 1)).item() for t in TERMS}
    return means, n, wait, seconds


def _save_grid(generator, faces, embeddings, path, device):
    from PIL import Image

    generator.eval()
    with torch.no_grad():
        out = generator(torch.as_tensor(embeddings, device=device).float())
    fake = (out * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    real = np.asarray(faces, dtype=np.uint8)
    rows = [np.concatenate(list(real), axis=2), np.concatenate(list(fake), axis=2)]
    grid = np.concatenate(rows, axis=1).transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp)


def _write_csv(path, history):
    extra = [k for k in (history[-1] if history else {}) if k not in CSV_COLUMNS]  # validation RSR
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS) + extra)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k) for k in list(CSV_COLUMNS) + extra})


def _check_resume(previous, current, path):
    mismatch = []
    for key in ("model", "embedding_size", "id_model", "protection", "block_size", "moved_blocks",
                "protection_seed", "training_set_sha256"):
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


def _identity_network(id_network, id_model, id_checkpoint, model, w_id):
    """``(network or None, name, w_id)`` of the identity term (``"none"``, 0 when off)."""
    if id_network is not None:
        id_name = getattr(id_network, "model_name", type(id_network).__name__)
    elif w_id > 0 and (id_model is None or str(id_model).lower() != "none"):
        id_name = str(id_model or model)
        from ..face.network import load_embedding_network

        id_network = load_embedding_network(id_name, id_checkpoint)
    else:
        id_name = "none"
    if id_name == "none" or w_id == 0:
        return None, "none", 0.0
    return id_network, id_name, w_id


def _attacked_network(network, model, id_network, id_name, needed, device):
    """The attacked extractor's network (flips, validation RSR) on ``device`` in evaluation mode:
    given, the identity network when it is the attacked model (white-box), else loaded (its
    configured weights); None when not ``needed``."""
    if not needed:
        return None
    if network is None and id_network is not None and id_name == str(model):
        network = id_network
    if network is None:
        from ..face.network import load_embedding_network

        network = load_embedding_network(str(model))
    return network.to(device).eval()


def _flips(data, train_idx, network, protection_args, device, enabled):
    """Protected embeddings of the mirrored training faces (computed once), or None."""
    if not enabled:
        return None
    flipped = flipped_embeddings(data["faces"], train_idx, network, device=device)
    keys = [f"{k}#flip" for k in data["keys"]]  # per-template randomness of its own
    out = protect_embeddings(flipped, keys, *protection_args)  # (protection, seed)
    out[np.setdiff1d(np.arange(len(out)), train_idx)] = 0
    return out


def _id_targets(criterion, faces, train_idx, val_idx, device, flip, progress):
    """Identity targets of the real faces (and, with ``flip``, of the mirrored training faces at
    rows ``N + i``), or None without an identity term."""
    if not criterion.uses_id:
        return None
    targets = compute_id_targets(criterion, faces, np.concatenate([train_idx, val_idx]), device,
                                 progress=progress)
    if flip:
        mirrored = compute_id_targets(criterion, faces, train_idx, device, progress=progress, flip=True)
        targets = torch.cat([targets, mirrored])
    return targets


def _selection(val_terms, rsr, select_fmr):
    """The score ``best.pt`` maximises: ``(type-I RSR at select_fmr, -validation loss)`` with
    thresholds, else ``(-validation loss,)``."""
    loss = -float(val_terms["total"])
    if not rsr:
        return [loss]
    from .validation import rsr_column

    return [float(rsr[rsr_column("type1", select_fmr)]), loss]


def _is_better(score, best):
    previous = best.get("score")
    if previous is None and best.get("val_loss") is not None:  # checkpoints before EXTENSIONS
        previous = [-best["val_loss"]]
    return previous is None or list(score) > list(previous)


def _stop_early(patience, epochs_done, best):
    """Whether ``patience`` epochs have passed without a better one."""
    return (patience is not None and best.get("epoch") is not None
            and epochs_done - int(best["epoch"]) >= int(patience))


def _epoch_rsr(generator, network, embeddings, data, val_idx, thresholds, device):
    """The validation RSR columns of one epoch (:mod:`~bob_facerev.attack.validation`); ``{}``
    without thresholds."""
    if thresholds is None:
        return {}
    from .dataset import has_identities
    from .validation import validation_rsr

    templates = data["embeddings"][val_idx]
    templates = templates / np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
    subjects = data["subjects"]
    subjects = subjects[val_idx] if has_identities(subjects) else None
    return validation_rsr(generator, network, embeddings[val_idx], templates, thresholds, device,
                          subjects=subjects)


def _rsr_text(rsr, epoch_bar=None):
    """``", RSR@0.1% 45.0% ..."`` for the progress line (and the epoch bar); ``""`` without."""
    if not rsr:
        return ""
    from .validation import describe

    text = describe(rsr)
    if epoch_bar is not None:
        epoch_bar.set_postfix_str(text)
    return ", " + text


def train_generator(
    training_set,
    output,
    *,
    model=None,
    id_model=None,
    id_checkpoint=None,
    id_network=None,
    protection=None,
    protection_seed=0,
    epochs=RECIPE["epochs"],
    batch_size=RECIPE["batch_size"],
    lr=RECIPE["lr"],
    lr_step=RECIPE["lr_step"],
    lr_gamma=RECIPE["lr_gamma"],
    w_ssim=RECIPE["w_ssim"],
    w_id=RECIPE["w_id"],
    id_loss=EXTENSIONS["id_loss"],
    weight_decay=EXTENSIONS["weight_decay"],
    flip=EXTENSIONS["flip"],
    thresholds=None,
    select_fmr=EXTENSIONS["select_fmr"],
    patience=EXTENSIONS["patience"],
    attacked_network=None,
    seed=RECIPE["seed"],
    split_seed=RECIPE["split_seed"],
    validation_fraction=RECIPE["validation_fraction"],
    max_samples=RECIPE["max_samples"],
    quick=False,
    device="auto",
    amp=False,
    workers=0,
    resume=False,
    grid_size=8,
    deterministic=None,
    progress=True,
    checkpoint_every=1,
    save_grids=True,
):
    """Train the reconstruction generator on a cached training set.

    Parameters
    ----------
    training_set : str or os.PathLike
        ``.npz`` file from :func:`bob_facerev.attack.dataset.build_training_set`.
    output : str or os.PathLike
        Folder for checkpoints, log and grids.
    model : str, optional
        The extractor that made the embeddings; default: the training set's metadata (they must agree).
    id_model : str, optional
        Extractor of the identity loss: default the attacked ``model`` (white-box); another registry
        name for a proxy; ``"none"`` for no identity term.
    id_checkpoint : str, optional
        Weights of ``id_model`` (default: configured/bundled).
    id_network : torch.nn.Module, optional
        A ready identity network (``(N, 3, h, w)`` in [0, 1] -> ``(N, d)``); overrides ``id_model``.
    protection : Protection, str or None
        The protection applied to the training embeddings
        (:class:`~bob_facerev.protection.setting.Protection` or its name, e.g. ``"k32-p4"``):
        None or ``"none"`` (the study's generator), PE-MIU with a fixed permutation (K, P), or
        PE-MIU with a random block order per template (``"k32-prandom"``).
    protection_seed : int
        Seed of the PE-MIU permutation(s).
    epochs, batch_size, lr, lr_step, lr_gamma, w_ssim, w_id : study recipe
        Adam(lr), StepLR(lr_step, lr_gamma), loss weights.
    id_loss : {"study", "cosine"}
        The identity term: the study's embedding MSE, or the scale-free ``1 - cos``
        (:class:`~bob_facerev.attack.losses.ReconstructionLoss`).
    weight_decay : float
        Decoupled weight decay (AdamW) when > 0; 0 is the study's Adam.
    flip : bool
        Add every training face mirrored, with the mirrored face's own embedding computed once by
        the attacked extractor (:func:`~bob_facerev.attack.dataset.flipped_embeddings`).
    thresholds : dict or str, optional
        Decision thresholds ``{fmr: threshold}`` of the attacked extractor, or the path of a bona
        fide score file of that extractor on a data set *with identities* (CFP-FF, LFW View 2;
        :func:`~bob_facerev.attack.validation.thresholds_from_scores`). When given, every epoch
        logs the share of validation reconstructions accepted at each (type-I, and type-II where
        the training set has subjects), and ``best.pt`` is the epoch with the highest type-I rate
        at ``select_fmr`` (ties: lower validation loss).
    select_fmr : float
        The FMR whose validation RSR chooses ``best.pt`` and drives ``patience``.
    patience : int, optional
        Stop after this many epochs without a better one (early stopping); None trains all epochs.
    attacked_network : torch.nn.Module, optional
        The attacked extractor's network for flips and the validation RSR (default: the identity
        network when it is the attacked model, else loaded from ``model``).
    seed : int
        Initial weights and data order.
    split_seed, validation_fraction : int, float
        The random train/validation split (study: 2021, 0.1), used unless the training set file
        carries its database's own split (``validation`` flags, e.g. FFHQ's seeded 90/10).
    max_samples : int, optional
        Use a random subset of the training set (after ``split_seed``).
    quick : bool
        CPU demo: at most 3 epochs and 128 samples.
    device : str
        ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda:0"``, ...
    amp : bool
        Mixed precision (float16 autocast + gradient scaling), CUDA only (ignored on CPU, with a warning).
    workers : int
        DataLoader worker processes.
    resume : bool
        Continue from ``output/last.pt`` (same settings; ``epochs`` may grow). Without it, an output
        folder that already holds a checkpoint is refused.
    grid_size : int
        Faces in the per-epoch PNG grid.
    save_grids : bool
        Write the per-epoch PNG grid (``grids/epoch_NNN.png``); off for short demo runs.
    deterministic : bool, optional
        Deterministic algorithms (default: on for CPU, off for CUDA where it costs speed).
    progress : bool or "epochs"
        Progress bars: True, one per epoch (over its batches); ``"epochs"``, one over the epochs
        (for many short epochs); False, none.
    checkpoint_every : int
        Write ``last.pt``, ``best.pt`` and ``log.csv`` every this many epochs, and always after
        the last one (``best.pt`` holds the best epoch's weights, kept in memory in between). A
        run interrupted between checkpoints resumes from the last one written.

    Returns
    -------
    dict
        ``history`` (list of per-epoch dicts as in ``log.csv``), ``best_epoch``, ``best_val_loss``,
        ``last``, ``best``, ``metadata``, ``stopped_early``.
    """
    device = resolve_device(device)
    if amp and device.type != "cuda":
        logger.warning("mixed precision (amp) is only used on CUDA; training in float32 on %s", device)
        amp = False
    if deterministic is None:
        deterministic = device.type == "cpu"
    if quick:
        epochs = min(int(epochs), QUICK["epochs"])
        max_samples = min(int(max_samples or QUICK["max_samples"]), QUICK["max_samples"])
    protection = Protection.parse(protection)
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("lr_step", lr_step),
                        ("checkpoint_every", checkpoint_every),
                        ("patience", 1 if patience is None else patience)):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    if float(weight_decay) < 0:
        raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
    from .validation import resolve_thresholds

    thresholds, threshold_source = resolve_thresholds(thresholds)
    if thresholds is not None and float(select_fmr) not in thresholds:
        raise ValueError(f"select_fmr={select_fmr} has no threshold: give one of {sorted(thresholds)}")
    output = os.fspath(output)
    os.makedirs(output, exist_ok=True)
    last_path = os.path.join(output, "last.pt")
    best_path = os.path.join(output, "best.pt")

    # ---- data
    data = load_training_set(training_set)
    data_model = data["metadata"].get("model")
    if model is None:
        model = data_model
    if model is None:
        raise ValueError(
            f"training set {os.fspath(training_set)!r} does not say which extractor made its "
            "embeddings: pass model=... (e.g. 'dlib')"
        )
    if data_model is not None and str(data_model) != str(model):
        raise ValueError(
            f"training set {os.fspath(training_set)!r} holds {data_model!r} embeddings, but model="
            f"{model!r} was asked: use a training set built with {model!r}"
        )
    n_file, embedding_size = data["embeddings"].shape
    used = np.arange(n_file)
    if max_samples is not None and int(max_samples) < n_file:
        used = np.sort(np.random.RandomState(split_seed).permutation(n_file)[: int(max_samples)])
    if data["validation"] is not None and max_samples is None:
        split = "file"  # the database's own split (FFHQ: seeded 90/10)
        train_idx, val_idx = np.flatnonzero(~data["validation"]), np.flatnonzero(data["validation"])
    else:
        split = "random"
        train_pos, val_pos = split_indices(len(used), validation_fraction, split_seed)
        train_idx, val_idx = used[train_pos], used[val_pos]
    embeddings = protect_embeddings(data["embeddings"], data["keys"], protection, protection_seed)

    if thresholds is not None and not len(val_idx):
        raise ValueError("a validation RSR needs validation samples: set validation_fraction > 0")
    id_network, id_name, w_id = _identity_network(id_network, id_model, id_checkpoint, model, w_id)
    attacked_network = _attacked_network(attacked_network, model, id_network, id_name,
                                         needed=flip or thresholds is not None, device=device)
    flipped = _flips(data, train_idx, attacked_network,
                     (protection, protection_seed), device, flip)

    recipe = dict(
        epochs=int(epochs), batch_size=int(batch_size), lr=float(lr), lr_step=int(lr_step),
        lr_gamma=float(lr_gamma), w_ssim=float(w_ssim), w_id=float(w_id), seed=int(seed),
        split_seed=int(split_seed), validation_fraction=float(validation_fraction),
        max_samples=None if max_samples is None else int(max_samples), split=split,
        optimizer="AdamW" if weight_decay > 0 else "Adam", scheduler="StepLR",
        id_loss=str(id_loss), weight_decay=float(weight_decay), flip=bool(flip),
        patience=None if patience is None else int(patience),
        select="val_loss" if thresholds is None else f"type1@{float(select_fmr):g}",
        thresholds=None if thresholds is None else {f"{k:g}": v for k, v in sorted(thresholds.items())},
    )
    metadata = dict(
        format=CHECKPOINT_FORMAT,
        model=str(model),
        embedding_size=int(embedding_size),
        id_model=id_name,
        protection=protection.kind,  # plain fields, read back with Protection.from_kind
        block_size=protection.block_size,
        moved_blocks=protection.moved_blocks,
        protection_seed=int(protection_seed),
        training_set=os.path.abspath(os.fspath(training_set)),
        training_set_bytes=os.path.getsize(training_set),
        training_set_sha256=file_digest(training_set),
        training_set_metadata={k: v for k, v in data["metadata"].items()
                               if isinstance(v, (str, int, float, bool, type(None)))},
        n_train=int(len(train_idx)),
        n_validation=int(len(val_idx)),
        recipe=recipe,
        threshold_source=threshold_source,
    )

    with _Deterministic(deterministic):
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        generator = Generator(embedding_size).to(device)
        criterion = ReconstructionLoss(w_ssim=w_ssim, w_id=w_id, id_network=id_network,
                                       id_loss=id_loss).to(device)
        optimizer = (torch.optim.AdamW(generator.parameters(), lr=lr, weight_decay=weight_decay)
                     if weight_decay > 0 else torch.optim.Adam(generator.parameters(), lr=lr))
        scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=lr_step, gamma=lr_gamma)
        scaler = torch.amp.GradScaler("cuda") if amp else None

        start_epoch, history, best = 0, [], {"epoch": None, "val_loss": None}
        if os.path.exists(last_path) and not resume:
            raise ValueError(
                f"{output!r} already holds a training checkpoint: pass --resume (resume=True) to "
                "continue it, or choose another output folder"
            )
        if resume and os.path.exists(last_path):
            state = read_checkpoint(last_path, device=device)
            _check_resume(state["metadata"], metadata, last_path)
            generator.load_state_dict(state["generator"])
            optimizer.load_state_dict(state["optimizer"])
            scheduler.load_state_dict(state["scheduler"])
            if scaler is not None and state.get("scaler"):
                scaler.load_state_dict(state["scaler"])
            _set_rng_state(state["rng"])
            start_epoch = int(state["epoch"])
            if start_epoch > int(epochs):  # never report a later epoch as the one asked for
                raise ValueError(
                    f"cannot resume {last_path!r} at {epochs} epoch(s): it already finished "
                    f"{start_epoch}; ask for at least {start_epoch} epochs (-e {start_epoch}), "
                    "or train into another output folder"
                )
            history = list(state["history"])
            best = dict(state["best"])
            logger.info("resuming %s at epoch %d of %d", last_path, start_epoch + 1, epochs)
        elif resume:
            logger.info("no checkpoint in %s: starting from scratch", output)

        id_targets = None
        if start_epoch < epochs:
            id_targets = _id_targets(criterion, data["faces"], train_idx, val_idx, device, flip,
                                     progress)

        train_set = ReconstructionDataset(data["faces"], embeddings, train_idx, flipped)
        val_set = ReconstructionDataset(data["faces"], embeddings, val_idx)
        loader_gen = torch.Generator()
        pin = device.type == "cuda"
        train_loader = torch.utils.data.DataLoader(
            train_set, batch_size=batch_size, shuffle=True, drop_last=len(train_set) > batch_size,
            num_workers=workers, generator=loader_gen, worker_init_fn=_seed_worker, pin_memory=pin,
            persistent_workers=False,
        )
        val_loader = torch.utils.data.DataLoader(
            val_set, batch_size=batch_size, shuffle=False, num_workers=workers, pin_memory=pin
        )
        grid_idx = (val_idx if len(val_idx) else train_idx)[:grid_size]

        epoch_bar, best_state = None, None
        if progress == "epochs":  # one bar over the epochs (many short epochs: demos)
            from tqdm import tqdm

            epoch_bar = tqdm(total=epochs, initial=start_epoch, desc="training", unit="epoch")
        stopped = False
        for epoch in range(start_epoch, epochs):
            if _stop_early(patience, epoch, best):
                stopped = True
                logger.info("early stop after epoch %d: no better epoch than %d in %d epochs",
                            epoch, best["epoch"], patience)
                break
            loader_gen.manual_seed(int(seed) * 1_000_003 + epoch)
            lr_now = optimizer.param_groups[0]["lr"]
            train_terms, n, wait, seconds = _run_epoch(
                generator, criterion, train_loader, device, id_targets, optimizer, scaler, amp,
                progress is True, desc=f"epoch {epoch + 1}/{epochs}",
            )
            if epoch_bar is not None:
                epoch_bar.update(1)
                epoch_bar.set_postfix(loss=f"{train_terms['total']:.4f}", refresh=False)
            scheduler.step()
            if len(val_set):
                val_terms, *_ = _run_epoch(generator, criterion, val_loader, device, id_targets,
                                           amp=amp, progress=False)
            else:
                val_terms = dict(train_terms)
            rsr = _epoch_rsr(generator, attacked_network, embeddings, data, val_idx, thresholds, device)
            score = _selection(val_terms, rsr, select_fmr)
            is_best = _is_better(score, best)
            if is_best:
                best = {"epoch": epoch + 1, "val_loss": float(val_terms["total"]), "score": score}
            row = {"epoch": epoch + 1, "lr": lr_now, "images_per_s": n / seconds,
                   "data_wait_share": wait / seconds, "seconds": seconds, "best": int(is_best)}
            row.update({f"train_{t}": v for t, v in train_terms.items()})
            row.update({f"val_{t}": v for t, v in val_terms.items()})
            row.update(rsr)
            history.append(row)
            if save_grids and len(grid_idx):
                _save_grid(generator, data["faces"][grid_idx], embeddings[grid_idx],
                           os.path.join(output, "grids", f"epoch_{epoch + 1:03d}.png"), device)

            meta = dict(metadata, epoch=epoch + 1, val_loss=float(val_terms["total"]))
            state = {
                "format": CHECKPOINT_FORMAT,
                "generator": generator.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "epoch": epoch + 1,
                "rng": _rng_state(device),
                "history": history,
                "best": best,
                "metadata": meta,
            }
            if is_best:
                best_state = {"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "metadata": meta,
                              "generator": {k: v.detach().clone()
                                            for k, v in state["generator"].items()}}
            # a checkpoint every checkpoint_every epochs, at the last epoch and before an early
            # stop (the next epoch's _stop_early sees the same history on resume)
            if ((epoch + 1) % int(checkpoint_every) == 0 or epoch + 1 == epochs
                    or _stop_early(patience, epoch + 1, best)):
                if best_state is not None:
                    atomic_torch_save(best_state, best_path)
                    best_state = None
                atomic_torch_save(state, last_path)
                _write_csv(os.path.join(output, "log.csv"), history)
            rsr_text = _rsr_text(rsr, epoch_bar)
            logger.info(
                "epoch %d/%d: train %.5f (mse %.5f dssim %.5f id %.5f), validation %.5f%s%s, "
                "%.1f images/s, data wait %.1f%%",
                epoch + 1, epochs, train_terms["total"], train_terms["mse"], train_terms["dssim"],
                train_terms["id"], val_terms["total"], rsr_text, " (best)" if is_best else "",
                row["images_per_s"], 100 * row["data_wait_share"],
            )

    if epoch_bar is not None:
        epoch_bar.close()

    return {
        "history": history,
        "best_epoch": best["epoch"],
        "best_val_loss": best["val_loss"],
        "last": last_path,
        "best": best_path,
        "metadata": metadata,
        "stopped_early": stopped,
    }
