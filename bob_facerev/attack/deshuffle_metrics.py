"""Placement metrics of key-free de-shuffling (:class:`~bob_facerev.attack.deshuffle.Deshuffler`).

How many blocks land at their original position, how many templates are restored exactly, and
how close the restored templates are to the originals (cosine).
"""

import numpy as np

from bob_facerev.protection.pemiu import check_embeddings, permute_blocks

from .deshuffle import inverse_permutations, split_blocks


def true_permutations(original, protected, block_size):
    """Recover the permutations that turned ``original`` into ``protected`` (both ``(N, d)``).

    Found by matching blocks exactly, independently of how the protection drew them, so the
    evaluation cannot inherit a bug of the protection. Raises ValueError when a protected block
    is not a block of its original template.
    """
    o = split_blocks(check_embeddings(original, name="original"), block_size, "original")
    p = split_blocks(check_embeddings(protected, name="protected"), block_size, "protected")
    if o.shape != p.shape:
        raise ValueError(f"original {o.shape} and protected {p.shape} blocks differ in shape")
    d2 = ((p[:, :, None, :] - o[:, None, :, :]) ** 2).sum(-1)  # (N, i protected, j original)
    perms = d2.argmin(-1)
    if not np.allclose(np.take_along_axis(d2, perms[..., None], -1), 0.0):
        raise ValueError("protected templates are not block permutations of the originals")
    return perms.astype(np.int64)


def placement_accuracy(estimated, true):
    """Share of blocks placed at their original position (chance: ``1 / n_blocks``)."""
    return float(np.mean(np.asarray(estimated) == np.asarray(true)))


def exact_restoration_rate(estimated, true):
    """Share of templates whose every block is placed correctly."""
    est, true = np.atleast_2d(estimated), np.atleast_2d(true)
    return float(np.mean(np.all(est == true, axis=-1)))


def row_cosine(a, b):
    """Cosine similarity between matching rows of ``a`` and ``b`` ``(N, d)`` -> ``(N,)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num = np.einsum("nd,nd->n", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, np.finfo(float).tiny)


def evaluate_deshuffling(deshuffler, original, protected, true_perms=None, shared=False):
    """Placement metrics of a fitted :class:`Deshuffler` on one protected set.

    Parameters
    ----------
    deshuffler : Deshuffler (fitted)
    original, protected : ndarray (N, d)
        Victims' unprotected templates and their PE-MIU versions.
    true_perms : ndarray (N, n), optional
        The protection's permutations; recovered with :func:`true_permutations` if omitted.
    shared : bool
        Estimate one permutation for all templates (fixed-key PE-MIU) instead of one each.

    Returns
    -------
    dict
        ``placement`` (share of blocks placed correctly), ``exact`` (share of templates restored
        exactly), ``cosine`` (mean cosine restored vs. original), ``cosine_protected`` (mean
        cosine protected vs. original: the no-attack baseline), ``chance`` (``1 / n``).
    """
    K = deshuffler.block_size
    if true_perms is None:
        true_perms = true_permutations(original, protected, K)
    if shared:
        est = np.broadcast_to(deshuffler.estimate_shared_permutation(protected), true_perms.shape)
    else:
        est = deshuffler.estimate_permutations(protected)
    restored = permute_blocks(np.asarray(protected), inverse_permutations(est), K)
    return {
        "placement": placement_accuracy(est, true_perms),
        "exact": exact_restoration_rate(est, true_perms),
        "cosine": float(row_cosine(restored, original).mean()),
        "cosine_protected": float(row_cosine(protected, original).mean()),
        "chance": 1.0 / true_perms.shape[1],
    }
