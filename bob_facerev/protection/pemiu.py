"""PE-MIU: privacy-enhancing face templates by block shuffling.

PE-MIU (Terhoerst et al., IEEE Access 2020) cuts a ``d``-dimensional embedding into ``d / K``
consecutive blocks of ``K`` values ("minimum information units") and shuffles the block order. Two
templates are compared by matching the blocks of the probe to those of the reference with a
minimum-cost assignment (cost = L2 distance between blocks), restoring the probe's block order by
that assignment and taking the cosine similarity: that comparator is
:mod:`bob_facerev.protection.comparator` (:func:`~bob_facerev.protection.comparator.pemiu_scores`,
:class:`~bob_facerev.protection.comparator.PEMIUComparator`).

Conventions
-----------
* Embeddings are ``(N, d)`` float arrays; ``K`` (``block_size``) must divide ``d``.
* A permutation ``perm`` of the ``n = d / K`` blocks is a *gather* index: block ``i`` of the
  protected template is block ``perm[i]`` of the original (:func:`permute_blocks`). Block ``i``
  "moves" when ``perm[i] != i``.
* ``P`` (``moved_blocks``) is the number of blocks that move (the study's permutation
  complexity); ``P = 1`` is impossible, ``P = 0`` is the identity.
* Random per-template permutations (the original PE-MIU) are reproducible: each is drawn from a
  generator seeded with ``seed`` and a stable hash (BLAKE2b) of ``str(key)``, so the same sample
  key always gets the same permutation, on any machine and Python process.
* Outputs follow the input's floating dtype (float32 in, float32 out); inputs are never modified.
"""

import hashlib
import numbers

import numpy as np

from sklearn.base import BaseEstimator, TransformerMixin

__all__ = [
    "check_embeddings",
    "n_blocks",
    "fixed_permutation",
    "random_permutations",
    "permute_blocks",
    "PEMIU",
]


def check_embeddings(X, dim=None, name="embeddings"):
    """Validate a batch of embeddings.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Embeddings, one per row.
    dim : int, optional
        Required ``d`` (e.g. that of the references when checking probes).
    name : str
        Name used in error messages.

    Returns
    -------
    X : ndarray, shape (N, d)
        The input as an array (not copied when already one). Floating dtypes are kept; other
        numeric dtypes become float64.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, is empty, has rows of mixed lengths, is not numeric, has another
        ``d`` than ``dim`` or holds NaN or infinite values.
    """
    try:
        arr = np.asarray(X)
    except ValueError as exc:  # ragged nested sequences
        raise ValueError(
            f"{name} have rows of different lengths ({exc}); all embeddings must have the "
            "same dimension d"
        ) from None
    if arr.dtype == object:
        raise ValueError(
            f"{name} have rows of different lengths or non-numeric values; pass an (N, d) "
            "numeric array with one embedding of the same dimension d per row"
        )
    if arr.ndim == 1:
        raise ValueError(
            f"{name} must be a 2-D (N, d) array, got a 1-D array of shape {arr.shape}; "
            "for one embedding x pass x[None, :] (or x.reshape(1, -1))"
        )
    if arr.ndim != 2:
        raise ValueError(
            f"{name} must be a 2-D (N, d) array, got shape {arr.shape}; "
            "stack one embedding per row"
        )
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(
            f"{name} are empty (shape {arr.shape}); pass at least one embedding of "
            "dimension d > 0"
        )
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"{name} must be numeric, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        arr = arr.astype(np.float64)
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(
            f"{name} have dimension d={arr.shape[1]} but {dim} is expected; "
            "compare embeddings of the same model (same d)"
        )
    finite = np.isfinite(arr)
    if not finite.all():
        rows = np.flatnonzero(~finite.all(axis=1))
        raise ValueError(
            f"{name} hold NaN or infinite values (rows {rows[:5].tolist()}"
            f"{' ...' if rows.size > 5 else ''}); drop or repair those embeddings"
        )
    return arr


def n_blocks(dim, block_size):
    """Number of PE-MIU blocks ``d / K``.

    Parameters
    ----------
    dim : int
        Embedding dimension ``d``.
    block_size : int
        Block size ``K``.

    Returns
    -------
    n : int
        ``d // K``.

    Raises
    ------
    ValueError
        If ``K`` is not a positive integer or does not divide ``d``.
    """
    if not isinstance(block_size, numbers.Integral) or isinstance(block_size, bool):
        raise ValueError(
            f"block_size must be a positive integer, got {block_size!r}; "
            "use a divisor of the embedding dimension (e.g. 16, 32, 64, 128 for d=512)"
        )
    if block_size <= 0:
        raise ValueError(
            f"block_size must be positive, got {block_size}; "
            "use a divisor of the embedding dimension (e.g. 16, 32, 64, 128 for d=512)"
        )
    if dim % block_size:
        divisors = [k for k in range(1, dim + 1) if dim % k == 0]
        raise ValueError(
            f"block_size K={block_size} does not divide the embedding dimension d={dim}; "
            f"choose K among the divisors of {dim}: {divisors}"
        )
    return int(dim // block_size)


def _check_seed(seed):
    if not isinstance(seed, numbers.Integral) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    return int(seed)


def fixed_permutation(n_blocks, moved_blocks, seed=0):
    """One block permutation that moves exactly ``P`` blocks.

    ``P`` positions are chosen at random, then deranged among themselves (uniformly among the
    derangements); the other blocks stay in place.

    Parameters
    ----------
    n_blocks : int
        Number of blocks ``n = d / K``.
    moved_blocks : int
        ``P``, the number of blocks that move: 0 (identity) or ``2 <= P <= n``.
    seed : int
        Seed of the random choice.

    Returns
    -------
    perm : ndarray, int64, shape (n_blocks,)
        Gather index (block ``i`` of the output is block ``perm[i]`` of the input) with exactly
        ``P`` entries ``perm[i] != i``.

    Raises
    ------
    ValueError
        If ``P`` is negative, 1, or larger than ``n_blocks``.
    """
    seed = _check_seed(seed)
    n = int(n_blocks)
    P = moved_blocks
    if not isinstance(P, numbers.Integral) or isinstance(P, bool):
        raise ValueError(f"moved_blocks must be an integer, got {P!r}")
    if n < 2 and P != 0:
        raise ValueError(
            f"moved_blocks P={P} is impossible with d/K={n} block (K = d): one block cannot "
            "move; use a smaller block size K (at least 2 blocks), or P=0 (no protection)"
        )
    if P == 1:
        raise ValueError(
            "moved_blocks P=1 is impossible (a single block cannot move alone); "
            f"use P=0 (no protection) or 2 <= P <= {n} (d/K)"
        )
    if P < 0 or P > n:
        raise ValueError(
            f"moved_blocks P={P} is out of range for d/K={n} blocks; "
            f"use 2 <= P <= {n} (or a smaller block size K for more blocks)"
        )
    perm = np.arange(n, dtype=np.int64)
    if P == 0:
        return perm
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(n, size=int(P), replace=False))
    while True:  # rejection sampling: about e tries on average
        order = rng.permutation(int(P))
        if np.all(order != np.arange(P)):
            break
    perm[positions] = positions[order]
    return perm


def _key_entropy(key):
    """Stable 64-bit integer from ``str(key)`` (independent of Python's hash randomisation)."""
    digest = hashlib.blake2b(str(key).encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def random_permutations(n_blocks, keys, seed=0):
    """One random block permutation per key, reproducible from ``(seed, key)``.

    Parameters
    ----------
    n_blocks : int
        Number of blocks ``n = d / K``.
    keys : sequence
        One key per template (e.g. Bob's ``sample.key``); ``str(key)`` is hashed with BLAKE2b,
        so equal keys give equal permutations in any process.
    seed : int
        Global seed; another seed gives other permutations for the same keys.

    Returns
    -------
    perms : ndarray, int64, shape (len(keys), n_blocks)
        Uniformly random permutations (gather indices).
    """
    seed = _check_seed(seed)
    n = int(n_blocks)
    perms = np.empty((len(keys), n), dtype=np.int64)
    for i, key in enumerate(keys):
        rng = np.random.default_rng([seed, _key_entropy(key)])
        perms[i] = rng.permutation(n)
    return perms


def permute_blocks(X, perms, block_size):
    """Reorder the blocks of embeddings.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Embeddings.
    perms : array_like, int, shape (n_blocks,) or (N, n_blocks)
        One permutation for all rows, or one per row. Block ``i`` of output row ``r`` is block
        ``perms[..., i]`` of input row ``r``.
    block_size : int
        Block size ``K``.

    Returns
    -------
    Y : ndarray, shape (N, d)
        New array, same dtype as ``X`` (floating) or float64.
    """
    X = check_embeddings(X)
    N, d = X.shape
    n = n_blocks(d, block_size)
    perms = np.asarray(perms)
    if perms.ndim == 1:
        perms = perms[None, :]
    if perms.ndim != 2 or perms.shape[1] != n or perms.shape[0] not in (1, N):
        raise ValueError(
            f"perms must have shape ({n},) or ({N}, {n}) for {N} embeddings of {n} blocks, "
            f"got {np.shape(perms)}"
        )
    if perms.dtype.kind not in "iu" or not np.array_equal(
        np.sort(perms, axis=1), np.broadcast_to(np.arange(n), perms.shape)
    ):
        raise ValueError(
            f"perms must hold permutations of 0..{n - 1} (integers, each exactly once)"
        )
    blocks = X.reshape(N, n, block_size)
    index = np.broadcast_to(perms[:, :, None], (N, n, block_size))
    return np.take_along_axis(blocks, index, axis=1).reshape(N, d)


class PEMIU(TransformerMixin, BaseEstimator):
    """PE-MIU protection: shuffle the blocks of each embedding (fit-free transformer).

    Parameters
    ----------
    block_size : int
        Block size ``K`` (must divide the embedding dimension).
    moved_blocks : int or None
        ``None``: a random permutation per template, as PE-MIU defines it, drawn from ``seed``
        and the sample's key (see :func:`random_permutations`). An integer ``P``: one fixed
        permutation, moving exactly ``P`` blocks, for all templates (the study's grid; see
        :func:`fixed_permutation`).
    seed : int
        Seed of the permutations.

    Notes
    -----
    In Bob pipelines (``bob.pipelines.wrap(["sample"], PEMIU(...))``) each sample's ``key`` is
    passed to :meth:`transform` (tag ``bob_transform_extra_input``), so a sample gets the same
    permutation in every run, with or without Dask. Called directly without ``keys``, row ``r``
    of ``X`` gets the ``r``-th permutation of a stream seeded with ``seed``: reproducible for
    the same input order, but not tied to the samples.
    """

    def __init__(self, block_size=32, moved_blocks=None, seed=0):
        self.block_size = block_size
        self.moved_blocks = moved_blocks
        self.seed = seed

    def fit(self, X=None, y=None, **kwargs):
        """Nothing to learn; returns ``self``."""
        return self

    def permutations(self, n_templates, dim, keys=None):
        """The block permutations that :meth:`transform` applies.

        Returns
        -------
        perms : ndarray, int64, shape (n_templates, d / K)
        """
        n = n_blocks(dim, self.block_size)
        if n < 2 and self.moved_blocks != 0:
            raise ValueError(
                f"block_size K={self.block_size} is the whole {dim}-d embedding (one block): "
                "PE-MIU cannot shuffle anything and the templates stay unprotected; use a "
                f"smaller K (at most {dim // 2}, a divisor of {dim})"
            )
        if self.moved_blocks is not None:
            perm = fixed_permutation(n, self.moved_blocks, self.seed)
            return np.tile(perm, (n_templates, 1))
        if keys is None:
            rng = np.random.default_rng(_check_seed(self.seed))
            return rng.permuted(np.tile(np.arange(n, dtype=np.int64), (n_templates, 1)), axis=1)
        if len(keys) != n_templates:
            raise ValueError(
                f"got {len(keys)} keys for {n_templates} embeddings; pass one key per row"
            )
        return random_permutations(n, keys, self.seed)

    def transform(self, X, keys=None):
        """Protect embeddings.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Embeddings.
        keys : sequence of length N, optional
            Sample keys (for ``moved_blocks=None``); passed by Bob's SampleWrapper.

        Returns
        -------
        Y : ndarray, shape (N, d)
            Protected templates, same dtype as ``X``. Rows that are all NaN (failed samples,
            see :mod:`bob_facerev.failures`) stay NaN.
        """
        X, failed = _split_failed(X)
        perms = self.permutations(X.shape[0], X.shape[1], keys)
        Y = permute_blocks(X, perms, self.block_size)
        Y[failed] = np.nan
        return Y

    def _more_tags(self):
        return {
            "requires_fit": False,
            "stateless": True,
            "bob_transform_extra_input": (("keys", "key"),),
        }


def _split_failed(X):
    """``(X with failed rows zeroed, mask of the failed rows)``; failed rows are all NaN."""
    arr = np.asarray(X)
    if arr.ndim != 2 or arr.dtype.kind != "f":
        return check_embeddings(arr), np.zeros(len(arr), dtype=bool)
    failed = np.isnan(arr).all(axis=1)
    if not failed.any():
        return check_embeddings(arr), failed
    if failed.all():
        return np.zeros_like(arr), failed
    check_embeddings(arr[~failed])
    return np.where(failed[:, None], 0, arr), failed
