"""Training of the reconstruction attack, resumable and deterministic on CPU.

:class:`Trainer` trains a generator with a :class:`~bob_facerev.attack.recipe.Recipe` (the study's
recipe by default: Adam, lr 1e-3, StepLR(10, 0.5), batch 32, 100 epochs, 90/10 split with seed 2021,
loss weights 0.1 and 0.005); :func:`train_generator` is the same with the recipe given as keywords.
Every epoch (or every ``checkpoint_every`` epochs) it writes, atomically, into the output folder:

``last.pt``
    Generator, optimiser, scheduler, (AMP scaler,) epoch, RNG states, history and metadata
    (:mod:`bob_facerev.attack.checkpoint`).
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

import logging
import os
import random

import numpy as np
import torch

from ..protection.setting import Protection
from ..utils import resolve_device
from .checkpoint import (
    CHECKPOINT_FORMAT,
    atomic_torch_save,
    check_resume,
    generator_metadata,
    load_generator,  # re-exported: `from bob_facerev.attack.trainer import load_generator`
    read_generator_checkpoint,
    rng_state,
    set_rng_state,
    stored_recipe,
)
from .dataset import (
    ReconstructionDataset,
    load_training_set,
    protect_embeddings,
    training_set_model,
    training_split,
)
from .epoch import (
    Deterministic,
    attacked_network,
    identity_network,
    identity_targets,
    run_epoch,
    save_grid,
    seed_worker,
    training_flips,
    write_log,
)
from .generator import Generator
from .losses import ReconstructionLoss
from .recipe import STUDY, Recipe
from .validation import (
    epoch_rsr,
    is_better,
    resolve_thresholds,
    rsr_text,
    selection_score,
    stop_early,
)

__all__ = ["CHECKPOINT_FORMAT", "Trainer", "load_generator", "train_generator"]

logger = logging.getLogger(__name__)


class Trainer:
    """Trains the reconstruction generator on a cached training set with a recipe.

    ``__init__`` only stores its arguments; :meth:`fit` runs the steps (:meth:`build`,
    :meth:`resume_from_checkpoint`, then per epoch :meth:`epoch`, :meth:`validate` and
    :meth:`checkpoint`) and keeps what it made in attributes ending in ``_`` (``generator_``,
    ``history_``, ``best_``, ``metadata_``, ...).

    Parameters
    ----------
    training_set : str or os.PathLike
        ``.npz`` file from :func:`bob_facerev.attack.dataset.build_training_set`.
    output : str or os.PathLike
        Folder for checkpoints, log and grids.
    recipe : Recipe
        The hyper-parameters (:class:`~bob_facerev.attack.recipe.Recipe`; the study's by default).
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
    thresholds : dict or str, optional
        Decision thresholds ``{fmr: threshold}`` of the attacked extractor, or the path of a bona
        fide score file of that extractor on a data set *with identities* (CFP-FF, LFW View 2;
        :func:`~bob_facerev.attack.validation.thresholds_from_scores`). When given, every epoch
        logs the share of validation reconstructions accepted at each (type-I, and type-II where
        the training set has subjects), and ``best.pt`` is the epoch with the highest type-I rate
        at the recipe's ``select_fmr`` (ties: lower validation loss).
    attacked_network : torch.nn.Module, optional
        The attacked extractor's network for flips and the validation RSR (default: the identity
        network when it is the attacked model, else loaded from ``model``).
    device : str
        ``"auto"`` (CUDA when available, :func:`bob_facerev.utils.resolve_device`), ``"cpu"``,
        ``"cuda:0"``, ...
    amp : bool
        Mixed precision (float16 autocast + gradient scaling), CUDA only (ignored on CPU, with a warning).
    workers : int
        DataLoader worker processes.
    resume : bool
        Continue from ``output/last.pt`` (same settings; ``epochs`` may grow). Without it, an output
        folder that already holds a checkpoint is refused.
    grid_size : int
        Faces in the per-epoch PNG grid.
    deterministic : bool, optional
        Deterministic algorithms (default: on for CPU, off for CUDA where it costs speed).
    progress : bool or "epochs"
        Progress bars: True, one per epoch (over its batches); ``"epochs"``, one over the epochs
        (for many short epochs); False, none.
    checkpoint_every : int
        Write ``last.pt``, ``best.pt`` and ``log.csv`` every this many epochs, and always after
        the last one (``best.pt`` holds the best epoch's weights, kept in memory in between). A
        run interrupted between checkpoints resumes from the last one written.
    save_grids : bool
        Write the per-epoch PNG grid (``grids/epoch_NNN.png``); off for short demo runs.
    """

    def __init__(self, training_set, output, recipe=STUDY, *, model=None, id_model=None,
                 id_checkpoint=None, id_network=None, protection=None, protection_seed=0,
                 thresholds=None, attacked_network=None, device="auto", amp=False, workers=0,
                 resume=False, grid_size=8, deterministic=None, progress=True, checkpoint_every=1,
                 save_grids=True):
        self.training_set = training_set
        self.output = output
        self.recipe = recipe
        self.model = model
        self.id_model = id_model
        self.id_checkpoint = id_checkpoint
        self.id_network = id_network
        self.protection = protection
        self.protection_seed = protection_seed
        self.thresholds = thresholds
        self.attacked_network = attacked_network
        self.device = device
        self.amp = amp
        self.workers = workers
        self.resume = resume
        self.grid_size = grid_size
        self.deterministic = deterministic
        self.progress = progress
        self.checkpoint_every = checkpoint_every
        self.save_grids = save_grids

    # ------------------------------------------------------------------ the steps

    def fit(self):
        """Train (or resume) to ``recipe.epochs`` epochs or an early stop.

        Returns
        -------
        dict
            ``history`` (list of per-epoch dicts as in ``log.csv``), ``best_epoch``,
            ``best_val_loss``, ``last``, ``best``, ``metadata``, ``stopped_early``.
        """
        self._check()
        self._load_data()
        self._prepare_networks()
        with Deterministic(self.deterministic_):
            self.build()
            self.resume_from_checkpoint()
            self._make_loaders()
            self._train()
        return {
            "history": self.history_,
            "best_epoch": self.best_["epoch"],
            "best_val_loss": self.best_["val_loss"],
            "last": self.last_path_,
            "best": self.best_path_,
            "metadata": self.metadata_,
            "stopped_early": self.stopped_,
        }

    def _check(self):
        """Device, AMP and recipe checks before any work; the output folder."""
        r = self.recipe
        self.device_ = resolve_device(self.device)
        self.amp_ = bool(self.amp)
        if self.amp_ and self.device_.type != "cuda":
            logger.warning("mixed precision (amp) is only used on CUDA; training in float32 on %s",
                           self.device_)
            self.amp_ = False
        self.deterministic_ = (self.device_.type == "cpu" if self.deterministic is None
                               else self.deterministic)
        self.protection_ = Protection.parse(self.protection)
        for name, value in (("epochs", r.epochs), ("batch_size", r.batch_size),
                            ("lr_step", r.lr_step), ("checkpoint_every", self.checkpoint_every),
                            ("patience", 1 if r.patience is None else r.patience)):
            if int(value) < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if float(r.weight_decay) < 0:
            raise ValueError(f"weight_decay must be >= 0, got {r.weight_decay}")
        self.thresholds_, self.threshold_source_ = resolve_thresholds(self.thresholds)
        if self.thresholds_ is not None and float(r.select_fmr) not in self.thresholds_:
            raise ValueError(f"select_fmr={r.select_fmr} has no threshold: give one of "
                             f"{sorted(self.thresholds_)}")
        output = os.fspath(self.output)
        os.makedirs(output, exist_ok=True)
        self.last_path_ = os.path.join(output, "last.pt")
        self.best_path_ = os.path.join(output, "best.pt")

    def _load_data(self):
        """The training set, its extractor, the train/validation split, protected embeddings."""
        r = self.recipe
        data = self.data_ = load_training_set(self.training_set)
        self.model_ = training_set_model(data, self.model, self.training_set)
        self.embedding_size_ = data["embeddings"].shape[1]
        self.split_, self.train_idx_, self.val_idx_ = training_split(
            data, r.max_samples, r.validation_fraction, r.split_seed)
        self.embeddings_ = protect_embeddings(data["embeddings"], data["keys"], self.protection_,
                                              self.protection_seed)
        if self.thresholds_ is not None and not len(self.val_idx_):
            raise ValueError("a validation RSR needs validation samples: set validation_fraction > 0")

    def _prepare_networks(self):
        """The identity and attacked networks, flipped embeddings, the checkpoint metadata."""
        self.id_network_, self.id_name_, self.w_id_ = identity_network(
            self.id_network, self.id_model, self.id_checkpoint, self.model_, self.recipe.w_id)
        self.attacked_network_ = attacked_network(
            self.attacked_network, self.model_, self.id_network_, self.id_name_,
            needed=self.recipe.flip or self.thresholds_ is not None, device=self.device_)
        self.flipped_ = training_flips(self.data_, self.train_idx_, self.attacked_network_,
                               (self.protection_, self.protection_seed), self.device_,
                               self.recipe.flip)
        self.metadata_ = generator_metadata(
            self.model_, self.embedding_size_, self.id_name_, self.protection_,
            self.protection_seed, self.training_set, self.data_["metadata"],
            (len(self.train_idx_), len(self.val_idx_)),
            stored_recipe(self.recipe, self.w_id_, self.split_, self.thresholds_),
            self.threshold_source_)

    def build(self):
        """Seed, then make the generator, loss, optimiser, scheduler and (AMP) scaler."""
        r, device = self.recipe, self.device_
        torch.manual_seed(r.seed)
        np.random.seed(r.seed % 2**32)
        random.seed(r.seed)
        self.generator_ = Generator(self.embedding_size_).to(device)
        self.criterion_ = ReconstructionLoss(w_ssim=r.w_ssim, w_id=self.w_id_,
                                             id_network=self.id_network_, id_loss=r.id_loss).to(device)
        params = self.generator_.parameters()
        self.optimizer_ = (torch.optim.AdamW(params, lr=r.lr, weight_decay=r.weight_decay)
                           if r.weight_decay > 0 else torch.optim.Adam(params, lr=r.lr))
        self.scheduler_ = torch.optim.lr_scheduler.StepLR(self.optimizer_, step_size=r.lr_step,
                                                          gamma=r.lr_gamma)
        self.scaler_ = torch.amp.GradScaler("cuda") if self.amp_ else None
        self.start_epoch_, self.history_ = 0, []
        self.best_ = {"epoch": None, "val_loss": None}
        self.best_state_ = None

    def resume_from_checkpoint(self):
        """Continue from ``last.pt`` with ``resume``; refuse to overwrite one without it."""
        path, epochs = self.last_path_, self.recipe.epochs
        if os.path.exists(path) and not self.resume:
            raise ValueError(
                f"{os.fspath(self.output)!r} already holds a training checkpoint: pass --resume "
                "(resume=True) to continue it, or choose another output folder"
            )
        if not os.path.exists(path):
            if self.resume:
                logger.info("no checkpoint in %s: starting from scratch", os.fspath(self.output))
            return
        state = read_generator_checkpoint(path, device=self.device_)
        check_resume(state["metadata"], self.metadata_, path)
        self.generator_.load_state_dict(state["generator"])
        self.optimizer_.load_state_dict(state["optimizer"])
        self.scheduler_.load_state_dict(state["scheduler"])
        if self.scaler_ is not None and state.get("scaler"):
            self.scaler_.load_state_dict(state["scaler"])
        set_rng_state(state["rng"])
        self.start_epoch_ = int(state["epoch"])
        if self.start_epoch_ > int(epochs):  # never report a later epoch as the one asked for
            raise ValueError(
                f"cannot resume {path!r} at {epochs} epoch(s): it already finished "
                f"{self.start_epoch_}; ask for at least {self.start_epoch_} epochs "
                f"(-e {self.start_epoch_}), or train into another output folder"
            )
        self.history_ = list(state["history"])
        self.best_ = dict(state["best"])
        logger.info("resuming %s at epoch %d of %d", path, self.start_epoch_ + 1, epochs)

    def _make_loaders(self):
        """Identity targets (when epochs remain) and the train / validation loaders."""
        r, device, data = self.recipe, self.device_, self.data_
        self.id_targets_ = None
        if self.start_epoch_ < r.epochs:
            self.id_targets_ = identity_targets(self.criterion_, data["faces"], self.train_idx_,
                                           self.val_idx_, device, r.flip, self.progress)
        train_set = ReconstructionDataset(data["faces"], self.embeddings_, self.train_idx_,
                                          self.flipped_)
        self.val_set_ = ReconstructionDataset(data["faces"], self.embeddings_, self.val_idx_)
        self.loader_generator_ = torch.Generator()
        pin = device.type == "cuda"
        self.train_loader_ = torch.utils.data.DataLoader(
            train_set, batch_size=r.batch_size, shuffle=True,
            drop_last=len(train_set) > r.batch_size, num_workers=self.workers,
            generator=self.loader_generator_, worker_init_fn=seed_worker, pin_memory=pin,
            persistent_workers=False,
        )
        self.val_loader_ = torch.utils.data.DataLoader(
            self.val_set_, batch_size=r.batch_size, shuffle=False, num_workers=self.workers,
            pin_memory=pin,
        )
        self.grid_idx_ = (self.val_idx_ if len(self.val_idx_) else self.train_idx_)[: self.grid_size]

    def _train(self):
        """The epochs from ``start_epoch_`` on, until ``recipe.epochs`` or an early stop."""
        r, epoch_bar = self.recipe, None
        if self.progress == "epochs":  # one bar over the epochs (many short epochs: demos)
            from tqdm import tqdm

            epoch_bar = tqdm(total=r.epochs, initial=self.start_epoch_, desc="training",
                             unit="epoch")
        self.stopped_ = False
        for epoch in range(self.start_epoch_, r.epochs):
            if stop_early(r.patience, epoch, self.best_):
                self.stopped_ = True
                logger.info("early stop after epoch %d: no better epoch than %d in %d epochs",
                            epoch, self.best_["epoch"], r.patience)
                break
            row, rsr = self.epoch(epoch, epoch_bar)
            self.checkpoint(epoch, row)
            self._log(epoch, row, rsr_text(rsr, epoch_bar))
        if epoch_bar is not None:
            epoch_bar.close()

    def epoch(self, epoch, epoch_bar=None):
        """Train epoch ``epoch`` (0-based), validate, update the best; returns its log row and
        validation RSR columns."""
        r = self.recipe
        self.loader_generator_.manual_seed(int(r.seed) * 1_000_003 + epoch)
        lr_now = self.optimizer_.param_groups[0]["lr"]
        train_terms, n, wait, seconds = run_epoch(
            self.generator_, self.criterion_, self.train_loader_, self.device_, self.id_targets_,
            self.optimizer_, self.scaler_, self.amp_, self.progress is True,
            desc=f"epoch {epoch + 1}/{r.epochs}",
        )
        if epoch_bar is not None:
            epoch_bar.update(1)
            epoch_bar.set_postfix(loss=f"{train_terms['total']:.4f}", refresh=False)
        self.scheduler_.step()
        val_terms, rsr = self.validate(train_terms)
        score = selection_score(val_terms, rsr, r.select_fmr)
        is_best = is_better(score, self.best_)
        if is_best:
            self.best_ = {"epoch": epoch + 1, "val_loss": float(val_terms["total"]), "score": score}
        row = {"epoch": epoch + 1, "lr": lr_now, "images_per_s": n / seconds,
               "data_wait_share": wait / seconds, "seconds": seconds, "best": int(is_best)}
        row.update({f"train_{t}": v for t, v in train_terms.items()})
        row.update({f"val_{t}": v for t, v in val_terms.items()})
        row.update(rsr)
        self.history_.append(row)
        if self.save_grids and len(self.grid_idx_):
            save_grid(self.generator_, self.data_["faces"][self.grid_idx_],
                      self.embeddings_[self.grid_idx_],
                      os.path.join(os.fspath(self.output), "grids", f"epoch_{epoch + 1:03d}.png"),
                      self.device_)
        return row, rsr

    def validate(self, train_terms):
        """Validation loss terms (the training ones without validation samples) and RSR columns."""
        if len(self.val_set_):
            val_terms, *_ = run_epoch(self.generator_, self.criterion_, self.val_loader_,
                                      self.device_, self.id_targets_, amp=self.amp_, progress=False)
        else:
            val_terms = dict(train_terms)
        rsr = epoch_rsr(self.generator_, self.attacked_network_, self.embeddings_, self.data_,
                         self.val_idx_, self.thresholds_, self.device_)
        return val_terms, rsr

    def checkpoint(self, epoch, row):
        """Keep the best weights in memory; write ``best.pt``, ``last.pt`` and ``log.csv`` every
        ``checkpoint_every`` epochs, at the last epoch and before an early stop."""
        meta = dict(self.metadata_, epoch=epoch + 1, val_loss=float(row["val_total"]))
        state = {
            "format": CHECKPOINT_FORMAT,
            "generator": self.generator_.state_dict(),
            "optimizer": self.optimizer_.state_dict(),
            "scheduler": self.scheduler_.state_dict(),
            "scaler": self.scaler_.state_dict() if self.scaler_ is not None else None,
            "epoch": epoch + 1,
            "rng": rng_state(self.device_),
            "history": self.history_,
            "best": self.best_,
            "metadata": meta,
        }
        if row["best"]:
            self.best_state_ = {"format": CHECKPOINT_FORMAT, "epoch": epoch + 1, "metadata": meta,
                                "generator": {k: v.detach().clone()
                                              for k, v in state["generator"].items()}}
        # before an early stop too: the next epoch's stop_early sees the same history on resume
        if ((epoch + 1) % int(self.checkpoint_every) == 0 or epoch + 1 == self.recipe.epochs
                or stop_early(self.recipe.patience, epoch + 1, self.best_)):
            if self.best_state_ is not None:
                atomic_torch_save(self.best_state_, self.best_path_)
                self.best_state_ = None
            atomic_torch_save(state, self.last_path_)
            write_log(os.path.join(os.fspath(self.output), "log.csv"), self.history_)

    def _log(self, epoch, row, text):
        logger.info(
            "epoch %d/%d: train %.5f (mse %.5f dssim %.5f id %.5f), validation %.5f%s%s, "
            "%.1f images/s, data wait %.1f%%",
            epoch + 1, self.recipe.epochs, row["train_total"], row["train_mse"], row["train_dssim"],
            row["train_id"], row["val_total"], text, " (best)" if row["best"] else "",
            row["images_per_s"], 100 * row["data_wait_share"],
        )


def train_generator(
    training_set, output, *, model=None, id_model=None, id_checkpoint=None, id_network=None,
    protection=None, protection_seed=0, epochs=STUDY.epochs, batch_size=STUDY.batch_size,
    lr=STUDY.lr, lr_step=STUDY.lr_step, lr_gamma=STUDY.lr_gamma, w_ssim=STUDY.w_ssim,
    w_id=STUDY.w_id, id_loss=STUDY.id_loss, weight_decay=STUDY.weight_decay, flip=STUDY.flip,
    thresholds=None, select_fmr=STUDY.select_fmr, patience=STUDY.patience, attacked_network=None,
    seed=STUDY.seed, split_seed=STUDY.split_seed, validation_fraction=STUDY.validation_fraction,
    max_samples=STUDY.max_samples, quick=False, device="auto", amp=False, workers=0, resume=False,
    grid_size=8, deterministic=None, progress=True, checkpoint_every=1, save_grids=True,
):
    """Train the reconstruction generator on a cached training set (:class:`Trainer` with the
    recipe given as keywords).

    Parameters
    ----------
    training_set, output
        As :class:`Trainer`.
    epochs, batch_size, lr, lr_step, lr_gamma, w_ssim, w_id, id_loss, weight_decay, flip, \
select_fmr, patience, seed, split_seed, validation_fraction, max_samples
        The fields of the :class:`~bob_facerev.attack.recipe.Recipe` (the study's values by
        default): Adam(lr) (AdamW with ``weight_decay`` > 0), StepLR(lr_step, lr_gamma), the loss
        weights and identity term, mirrored training faces, the FMR that chooses ``best.pt`` and
        drives early stopping (``patience``), seeds and the train/validation split (a training
        set file's own split is used when it carries one and ``max_samples`` is None).
    quick : bool
        CPU demo: at most 3 epochs and 128 samples (:meth:`Recipe.quick
        <bob_facerev.attack.recipe.Recipe.quick>`).
    model, id_model, id_checkpoint, id_network, protection, protection_seed, thresholds, \
attacked_network, device, amp, workers, resume, grid_size, deterministic, progress, \
checkpoint_every, save_grids
        As :class:`Trainer`.

    Returns
    -------
    dict
        ``history`` (list of per-epoch dicts as in ``log.csv``), ``best_epoch``, ``best_val_loss``,
        ``last``, ``best``, ``metadata``, ``stopped_early``.
    """
    recipe = Recipe(epochs=epochs, batch_size=batch_size, lr=lr, lr_step=lr_step,
                    lr_gamma=lr_gamma, w_ssim=w_ssim, w_id=w_id, seed=seed, split_seed=split_seed,
                    validation_fraction=validation_fraction, max_samples=max_samples,
                    id_loss=id_loss, weight_decay=weight_decay, flip=flip, patience=patience,
                    select_fmr=select_fmr)
    if quick:
        recipe = recipe.quick()
    return Trainer(training_set, output, recipe, model=model, id_model=id_model,
                   id_checkpoint=id_checkpoint, id_network=id_network, protection=protection,
                   protection_seed=protection_seed, thresholds=thresholds,
                   attacked_network=attacked_network, device=device, amp=amp, workers=workers,
                   resume=resume, grid_size=grid_size, deterministic=deterministic,
                   progress=progress, checkpoint_every=checkpoint_every,
                   save_grids=save_grids).fit()
