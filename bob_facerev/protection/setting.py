"""One protection setting, one object: :class:`Protection`.

A setting is the unprotected baseline, PE-MIU with one fixed permutation of block size ``K``
moving ``P`` blocks (the study's grid), or PE-MIU with a random block order per template
(block size ``K``). The same frozen value names the setting (``none``, ``k32-p4``,
``k32-prandom``), builds its transformer, writes and reads its score-file labels
(``facerev_block_size``, ``facerev_moved_blocks``) and checks itself against an embedding
size. The trainer, the training sets, the grid and the RSR tables all take it.

The study's grid (:func:`study_grid`) lives beside it.
"""

from __future__ import annotations

import dataclasses
import re

#: the three kinds of setting
KINDS = ("none", "fixed", "random")

#: score-file label columns of a setting (see :meth:`Protection.labels`)
LABEL_BLOCK_SIZE = "facerev_block_size"
LABEL_MOVED_BLOCKS = "facerev_moved_blocks"

_NAME = re.compile(r"^k(\d+)-p(\d+|random)$")


@dataclasses.dataclass(frozen=True)
class Protection:
    """A protection setting: unprotected, PE-MIU fixed ``(K, P)`` or PE-MIU random ``K``.

    Parameters
    ----------
    block_size : int or None
        PE-MIU block size ``K``; None for the unprotected baseline.
    moved_blocks : int or None
        Blocks moved by the fixed permutation (``P``); None with a block size means a random
        block order per template.

    Examples
    --------
    >>> Protection.fixed(32, 4).name
    'k32-p4'
    >>> Protection.from_name("k16-prandom") == Protection.random(16)
    True
    """

    block_size: int | None = None
    moved_blocks: int | None = None

    def __post_init__(self):
        k, p = self.block_size, self.moved_blocks
        if k is None and p is not None:
            raise ValueError(
                f"moved_blocks={p!r} without a block size: the unprotected setting moves no "
                "block; give block_size=K for PE-MIU"
            )
        for label, value in (("block_size", k), ("moved_blocks", p)):
            if value is not None and (isinstance(value, bool) or int(value) != value
                                      or int(value) < 1):
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        object.__setattr__(self, "block_size", None if k is None else int(k))
        object.__setattr__(self, "moved_blocks", None if p is None else int(p))

    # -- constructors ------------------------------------------------------------------------

    @classmethod
    def none(cls):
        """The unprotected baseline."""
        return cls()

    @classmethod
    def fixed(cls, block_size, moved_blocks):
        """PE-MIU, one permutation of block size ``K`` moving ``P`` blocks for every template."""
        if moved_blocks is None:
            raise ValueError(
                "a fixed PE-MIU permutation needs the number of moved blocks P; use "
                "Protection.random(K) for a random block order per template"
            )
        return cls(block_size, moved_blocks)

    @classmethod
    def random(cls, block_size):
        """PE-MIU with a random block order per template (block size ``K``)."""
        if block_size is None:
            raise ValueError("random PE-MIU needs a block size K")
        return cls(block_size, None)

    @classmethod
    def from_kind(cls, kind="none", block_size=None, moved_blocks=None):
        """From a kind (one of :data:`KINDS`) and its ``K``, ``P``, checked for consistency."""
        kind = "none" if kind is None else str(kind).lower()
        if kind not in KINDS:
            raise ValueError(f"protection must be one of {KINDS}, got {kind!r}")
        if kind == "none":
            if block_size is not None or moved_blocks is not None:
                raise ValueError("protection 'none' takes no block size or moved blocks")
            return cls.none()
        if block_size is None:
            raise ValueError(f"protection {kind!r} needs a block size K (block_size=...)")
        if kind == "fixed":
            return cls.fixed(block_size, moved_blocks)
        if moved_blocks is not None:
            raise ValueError("protection 'random' shuffles every block: leave moved_blocks unset")
        return cls.random(block_size)

    @classmethod
    def from_name(cls, name):
        """The setting named ``name`` (``none``, ``k32-p4``, ``k32-prandom``)."""
        name = str(name).strip().lower()
        if name == "none":
            return cls.none()
        match = _NAME.match(name)
        if not match:
            raise ValueError(
                f"unknown protection name {name!r}; use 'none', 'kK-pP' (e.g. 'k32-p4') or "
                "'kK-prandom' (e.g. 'k16-prandom')"
            )
        k, p = match.groups()
        return cls(int(k), None if p == "random" else int(p))

    @classmethod
    def parse(cls, value):
        """A :class:`Protection` from itself, a name, or None (unprotected)."""
        if isinstance(value, cls):
            return value
        if value is None:
            return cls.none()
        return cls.from_name(value)

    @classmethod
    def from_labels(cls, labels):
        """The setting of a score-file row (its ``facerev_*`` label columns)."""
        k = str(labels.get(LABEL_BLOCK_SIZE, "none"))
        p = str(labels.get(LABEL_MOVED_BLOCKS, "0"))
        if k in ("none", "nan", ""):
            return cls.none()
        return cls(int(float(k)), None if p == "random" else int(float(p)))

    # -- what a setting knows ----------------------------------------------------------------

    @property
    def kind(self):
        """``"none"``, ``"fixed"`` or ``"random"``."""
        if self.block_size is None:
            return "none"
        return "random" if self.moved_blocks is None else "fixed"

    @property
    def protected(self):
        """Whether templates are PE-MIU protected."""
        return self.block_size is not None

    @property
    def name(self):
        """Short name, also the grid's folder name: ``none``, ``k32-p4``, ``k32-prandom``."""
        if self.block_size is None:
            return "none"
        p = "random" if self.moved_blocks is None else self.moved_blocks
        return f"k{self.block_size}-p{p}"

    def __str__(self):
        return self.name

    def labels(self):
        """Score-file label columns: ``K`` (``"none"`` unprotected) and ``P`` (``"0"`` unprotected,
        ``"random"`` per template)."""
        if self.block_size is None:
            return {LABEL_BLOCK_SIZE: "none", LABEL_MOVED_BLOCKS: "0"}
        p = "random" if self.moved_blocks is None else str(self.moved_blocks)
        return {LABEL_BLOCK_SIZE: str(self.block_size), LABEL_MOVED_BLOCKS: p}

    def check(self, embedding_size):
        """Raise ValueError unless the setting applies to ``embedding_size``-d embeddings."""
        if self.block_size is None:
            return self
        from .pemiu import fixed_permutation, n_blocks

        n = n_blocks(embedding_size, self.block_size)
        if self.moved_blocks is not None:
            fixed_permutation(n, self.moved_blocks, 0)
        return self

    def transformer(self, seed=0):
        """The :class:`~bob_facerev.protection.pemiu.PEMIU` transformer; None unprotected."""
        if self.block_size is None:
            return None
        from .pemiu import PEMIU

        return PEMIU(block_size=self.block_size, moved_blocks=self.moved_blocks, seed=seed)


#: block counts and moved blocks of the study's grid (512-d: K = 32, 64, 128)
STUDY_GRID = {16: (4, 8, 12, 16), 8: (2, 4, 8), 4: (2, 3, 4)}

#: block counts of the random-per-template rows (512-d: K = 16, 32, 64, 128)
STUDY_RANDOM_BLOCKS = (32, 16, 8, 4)


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
    grid = [Protection.none()]
    for blocks, moved in fixed.items():
        if embedding_size % blocks:
            raise ValueError(
                f"{blocks} blocks do not divide a {embedding_size}-d embedding; give the grid "
                "as block counts that divide the embedding size"
            )
        grid += [Protection.fixed(embedding_size // blocks, int(p)) for p in moved]
    for blocks in random_blocks:
        if embedding_size % blocks == 0:
            grid.append(Protection.random(embedding_size // blocks))
    return grid
