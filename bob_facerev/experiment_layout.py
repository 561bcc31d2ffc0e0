"""The attack grid's output folder, one owner: every path :func:`~bob_facerev.experiment.run_grid`
writes or reads, and the rule that says a grid cell is done.

::

    <output>/
      bona_fide/scores-dev.csv                 bona fide scores (``bob bio pipeline simple``)
      verification_pemiu_k<K>/scores-dev.csv   PE-MIU verification on the bona fide database
      training_set.npz                         the attacker's faces and embeddings
      generators/study/                        the study's generator (``best.pt``, ...)
      generators/protected-<protection>/       one per protection (the "protected" variant)
      attack_embeddings.npz                    the attacked samples' embeddings
      scores/<variant>/<protection>/           one grid cell:
        scores-dev.csv, scores-dev-type2.csv     type-I and type-II score files
        scores-dev-attack.txt, ...               plain-text copies (:func:`measure_files`)
        faces.npz, reconstructed.npz             face grid and reconstructions' embeddings
      faces.npz                                every cell's face-grid row
      grid.json                                what was run (the summary)
      cache/                                   per-sample caches of the pipelines

The module imports nothing of the package, so every floor may use it.
"""

from __future__ import annotations

import dataclasses

from pathlib import Path

#: score file of a bona fide run and of a cell's type-I attack
SCORES = "scores-dev.csv"

#: a cell's type-II attack score file
SCORES_TYPE2 = "scores-dev-type2.csv"


def measure_files(csv_path, out_dir=None):
    """The plain-text score files exported next to a CSV score file ``<stem>.csv``.

    Returns
    -------
    dict
        ``{"bonafide": <stem>-bonafide.txt, "attack": <stem>-attack.txt, "bonafide_4col":
        <stem>-bonafide.4col.txt, "attack_4col": <stem>-attack.4col.txt}`` in ``out_dir``
        (default: the CSV file's folder).
    """
    csv_path = Path(csv_path)
    out_dir = csv_path.parent if out_dir is None else Path(out_dir)
    stem = csv_path.name.split(".csv")[0]
    return {
        "bonafide": out_dir / f"{stem}-bonafide.txt",
        "attack": out_dir / f"{stem}-attack.txt",
        "bonafide_4col": out_dir / f"{stem}-bonafide.4col.txt",
        "attack_4col": out_dir / f"{stem}-attack.4col.txt",
    }


@dataclasses.dataclass(frozen=True)
class CellLayout:
    """The files of one grid cell (one variant, one protection) in ``folder``."""

    folder: Path

    @property
    def scores(self):
        """The type-I score file (bona fide and attack rows)."""
        return Path(self.folder) / SCORES

    @property
    def scores_type2(self):
        """The type-II score file."""
        return Path(self.folder) / SCORES_TYPE2

    def scores_of(self, comparison):
        """The score file of ``comparison`` (``"type-I"`` or ``"type-II"``)."""
        return self.scores if comparison == "type-I" else self.scores_type2

    @property
    def faces(self):
        """Originals and reconstructions of the face grid (``faces.npz``)."""
        return Path(self.folder) / "faces.npz"

    @property
    def reconstructed(self):
        """Keys and embeddings of every reconstruction (``reconstructed.npz``)."""
        return Path(self.folder) / "reconstructed.npz"

    def done(self):
        """Whether the cell is finished: its type-I score file and its plain-text attack copy,
        both written last, exist."""
        return self.scores.is_file() and measure_files(self.scores)["attack"].is_file()

    def read_reconstructed(self):
        """``(keys, embeddings)`` of the reconstructions."""
        import numpy as np

        with np.load(self.reconstructed, allow_pickle=False) as z:
            return [str(k) for k in z["keys"]], z["embeddings"]


@dataclasses.dataclass(frozen=True)
class GridLayout:
    """Every path of a grid's output folder (see the module's docstring).

    Parameters
    ----------
    output : str or Path
        The grid's output folder.
    """

    output: Path

    def __post_init__(self):
        object.__setattr__(self, "output", Path(self.output))

    # -- bona fide and verification runs -------------------------------------------------------

    @staticmethod
    def _run_name(block_size=None):
        return "bona_fide" if block_size is None else f"verification_pemiu_k{block_size}"

    def verification_folder(self, block_size=None):
        """Folder of the bona fide run (``block_size=None``) or of a PE-MIU verification run."""
        return self.output / self._run_name(block_size)

    def verification_scores(self, block_size=None):
        """Score file of :meth:`verification_folder`."""
        return self.verification_folder(block_size) / SCORES

    def verification_cache(self, block_size=None):
        """Bob's checkpoint folder of a bona fide or verification run."""
        return self.cache(self._run_name(block_size))

    @property
    def bona_fide_scores(self):
        """The unprotected bona fide score file."""
        return self.verification_scores()

    # -- the attacker's data, generators, caches -----------------------------------------------

    @property
    def training_set(self):
        """The attacker's training set (default location)."""
        return self.output / "training_set.npz"

    def generator_folder(self, protection=None):
        """The study's generator (unprotected ``protection``) or one trained on ``protection``."""
        if protection is None or protection.block_size is None:
            return self.output / "generators" / "study"
        return self.output / "generators" / f"protected-{protection.name}"

    def cache(self, name):
        """A per-sample cache folder (``attack``, ``bona_fide``, ...)."""
        return self.output / "cache" / name

    # -- the attack ------------------------------------------------------------------------------

    def cell(self, variant, protection):
        """The :class:`CellLayout` of one variant and protection."""
        return CellLayout(self.output / "scores" / variant / protection.name)

    def cell_done(self, variant, protection):
        """Whether the cell's score files are all written (:meth:`CellLayout.done`)."""
        return self.cell(variant, protection).done()

    @property
    def attack_embeddings(self):
        """Embeddings, keys, subjects and gender of the attacked samples."""
        return self.output / "attack_embeddings.npz"

    @property
    def faces(self):
        """The face grid of every cell."""
        return self.output / "faces.npz"

    @property
    def summary(self):
        """``grid.json``: what was run."""
        return self.output / "grid.json"

    @property
    def report(self):
        """The report folder of ``bob facerev grid`` and ``bob facerev demo``."""
        return self.output / "report"
