"""The training recipe of the reconstruction attack: one frozen value, one place.

:class:`Recipe`'s defaults are the study's recipe (Shahreza et al. 2022, as used by
Osorio-Roig et al. 2023) plus this project's extensions at the values that reproduce the study
(``id_loss="study"``, no weight decay, no flips, no early stopping). The trainer, the
``bob facerev train`` command's defaults and the packaged configurations all read it from here::

    from bob_facerev.attack.recipe import Recipe
    strong = Recipe(id_loss="cosine", w_id=1.0, flip=True)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass


@dataclass(frozen=True)
class Recipe:
    """Hyper-parameters of one generator training (the study's values by default)."""

    #: training epochs
    epochs: int = 100
    #: mini-batch size
    batch_size: int = 32
    #: Adam learning rate
    lr: float = 1e-3
    #: StepLR step (epochs) and factor
    lr_step: int = 10
    lr_gamma: float = 0.5
    #: weight of the (1 - SSIM) / 2 term
    w_ssim: float = 0.1
    #: weight of the identity term
    w_id: float = 0.005
    #: seed of the weights and the batch order
    seed: int = 0
    #: seed and fraction of the train / validation split
    split_seed: int = 2021
    validation_fraction: float = 0.1
    #: at most this many training pairs (None: all)
    max_samples: int | None = None
    #: identity term: "study" (embedding MSE) or "cosine" (1 - cosine, scale-free)
    id_loss: str = "study"
    #: Adam weight decay
    weight_decay: float = 0.0
    #: horizontal-flip augmentation (each flipped face with its own embedding)
    flip: bool = False
    #: early stopping after this many epochs without a better validation score (None: off)
    patience: int | None = None
    #: the FMR whose validation RSR chooses best.pt
    select_fmr: float = 0.001

    def replace(self, **changes):
        """A copy with ``changes`` (unknown names raise ``TypeError``)."""
        return dataclasses.replace(self, **changes)

    def quick(self):
        """The CPU-demo variant: at most :data:`QUICK` epochs and samples."""
        return self.replace(epochs=min(self.epochs, QUICK["epochs"]),
                            max_samples=min(self.max_samples or QUICK["max_samples"],
                                            QUICK["max_samples"]))

    def asdict(self):
        """The recipe as a plain dict (what checkpoints store)."""
        return dataclasses.asdict(self)


#: what quick mode (CPU demos) caps
QUICK = dict(epochs=3, max_samples=128)

#: the study's recipe
STUDY = Recipe()

#: the study's recipe with an identity term that counts for dlib: dlib descriptors have a norm of
#: about 0.6, so the study's ``w_id`` (chosen for ArcFace) leaves the identity term negligible
#: (doc/training.rst); the packaged dlib configurations (grid and train ``study-dlib``) use it
STUDY_DLIB = STUDY.replace(w_id=1.0)

#: the scale-free identity term (``1 - cos``, the same ``w_id`` for every extractor) with
#: horizontal flips: the recipe of the CFP grid for dlib (doc/training.rst)
SCALE_FREE = STUDY.replace(id_loss="cosine", w_id=1.0, flip=True)
