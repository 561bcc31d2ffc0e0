"""Unlinkability of PE-MIU templates across applications (ISO/IEC 30136, Gomez-Barrero et al.).

Each *application* protects every template with its own PE-MIU key: a random block permutation
per template, drawn from the application's seed and the template's key
(:class:`~bob_facerev.protection.pemiu.PEMIU` with ``moved_blocks=None``). For every pair of
applications, templates of application ``a`` are compared with those of application ``b``:

* **mated** pairs: the same face (or another face of the same subject) in the two applications;
* **non-mated** pairs: faces of different subjects.

Comparators: ``"pemiu"`` (the PE-MIU comparator, which realigns the blocks by a minimum-cost
assignment, :func:`~bob_facerev.protection.comparator.pemiu_scores`), ``"cosine"`` (plain cosine of
the shuffled templates) and ``"deshuffled-cosine"`` (cosine after key-free de-shuffling of both
templates with a :class:`~bob_facerev.attack.deshuffle.Deshuffler` fitted on an attacker's
unprotected embeddings). ``D<->sys`` near 1: an attacker links the two applications' records.
"""

import itertools

import numpy as np
import pandas as pd

from .unlinkability import linkability, mated_nonmated

__all__ = ["COMPARATORS", "protect_applications", "cosine_scores", "comparator_scores",
           "unlinkability_study", "markdown_table"]

#: comparators of :func:`unlinkability_study`
COMPARATORS = ("pemiu", "cosine", "deshuffled-cosine")


def protect_applications(X, block_size, n_applications=2, keys=None, seed=0):
    """The same embeddings protected by ``n_applications`` applications (one key each).

    Parameters
    ----------
    X : array-like, shape (N, d)
    block_size : int
        PE-MIU block size ``K``.
    n_applications : int
        Number of applications, >= 2; application ``a`` uses PE-MIU seed ``seed + a + 1``.
    keys : sequence of length N, optional
        Template keys (default ``0..N-1``): with the seed they fix each template's permutation.
    seed : int

    Returns
    -------
    list of ndarray, each (N, d)
    """
    from bob_facerev.protection.pemiu import PEMIU, check_embeddings

    X = check_embeddings(X)
    if n_applications < 2:
        raise ValueError(f"n_applications={n_applications}: linking needs at least 2 applications")
    keys = [str(k) for k in (range(len(X)) if keys is None else keys)]
    return [PEMIU(block_size=block_size, seed=seed + a + 1).transform(X, keys)
            for a in range(n_applications)]


def cosine_scores(A, B):
    """Cosine similarity of all rows of ``A`` (N, d) with all rows of ``B`` (M, d)."""
    A = np.asarray(A, np.float64)
    B = np.asarray(B, np.float64)
    A = A / np.maximum(np.linalg.norm(A, axis=1, keepdims=True), 1e-12)
    B = B / np.maximum(np.linalg.norm(B, axis=1, keepdims=True), 1e-12)
    return A @ B.T


def comparator_scores(A, B, comparator, block_size, deshuffler=None):
    """Scores ``(N, M)`` of protected templates ``A`` against ``B`` with one comparator.

    ``deshuffler``: a fitted :class:`~bob_facerev.attack.deshuffle.Deshuffler` (needed by
    ``"deshuffled-cosine"``).
    """
    if comparator == "pemiu":
        from bob_facerev.protection.comparator import pemiu_scores

        return np.asarray(pemiu_scores(A, B, block_size), np.float64)
    if comparator == "cosine":
        return cosine_scores(A, B)
    if comparator == "deshuffled-cosine":
        if deshuffler is None:
            raise ValueError("'deshuffled-cosine' needs a fitted Deshuffler (attacker embeddings)")
        return cosine_scores(deshuffler.transform(A), deshuffler.transform(B))
    raise ValueError(f"unknown comparator {comparator!r}; use one of {COMPARATORS}")


def _check_study_input(X, subjects, block_sizes, comparators, attacker):
    unknown = [c for c in comparators if c not in COMPARATORS]
    if unknown:
        raise ValueError(f"unknown comparator(s) {unknown}; use {COMPARATORS}")
    d = np.shape(X)[1]
    bad = [k for k in block_sizes if k < 1 or d % k or k == d]
    if bad:
        raise ValueError(f"block sizes {bad} do not cut d={d} into >= 2 blocks; use divisors of "
                         f"{d} below {d}")
    if subjects is not None and len(subjects) != len(X):
        raise ValueError(f"{len(subjects)} subjects for {len(X)} embeddings: give one per row")
    if "deshuffled-cosine" in comparators and attacker is None:
        raise ValueError("'deshuffled-cosine' needs the attacker's unprotected embeddings "
                         "(attacker=...)")


def unlinkability_study(X, subjects=None, block_sizes=(16, 32), comparators=COMPARATORS,
                        attacker=None, n_applications=2, keys=None, seed=0, bins=None):
    """``D<->sys`` of PE-MIU per block size and comparator.

    Parameters
    ----------
    X : array-like, shape (N, d)
        Unprotected embeddings of the victims.
    subjects : array-like, shape (N,), optional
        Subject of each embedding; default: every embedding its own subject (mated = the same
        face in two applications).
    block_sizes : sequence of int
    comparators : sequence of str
        Among :data:`COMPARATORS`.
    attacker : array-like, shape (N_att, d), optional
        Unprotected embeddings the de-shuffler learns from (disjoint from ``X``).
    n_applications : int
        Applications (keys) per face; mated and non-mated scores of all application pairs are
        pooled.
    keys, seed
        See :func:`protect_applications`.
    bins : int, optional
        Histogram bins (default: :func:`~bob_facerev.evaluation.unlinkability.default_bins`).

    Returns
    -------
    table : pandas.DataFrame
        One row per (block size, comparator): ``block_size``, ``n_blocks``, ``comparator``,
        ``d_sys``, ``n_mated``, ``n_nonmated``, ``mated_mean``, ``nonmated_mean``.
    results : dict
        ``(block_size, comparator) -> Linkability``.
    """
    from bob_facerev.attack.deshuffle import Deshuffler

    X = np.asarray(X)
    _check_study_input(X, subjects, block_sizes, comparators, attacker)
    subjects = np.arange(len(X)) if subjects is None else np.asarray(subjects)
    rows, results = [], {}
    for k in block_sizes:
        apps = protect_applications(X, k, n_applications, keys, seed)
        deshuffler = None
        if "deshuffled-cosine" in comparators:
            deshuffler = Deshuffler(block_size=k, scorer="mean").fit(attacker)
        for comp in comparators:
            mated, nonmated = [], []
            for a, b in itertools.combinations(range(n_applications), 2):
                m, nm = mated_nonmated(
                    comparator_scores(apps[a], apps[b], comp, k, deshuffler), subjects)
                mated.append(m)
                nonmated.append(nm)
            mated, nonmated = np.concatenate(mated), np.concatenate(nonmated)
            r = linkability(mated, nonmated, bins=bins)
            results[(k, comp)] = r
            rows.append(dict(block_size=k, n_blocks=X.shape[1] // k, comparator=comp,
                             d_sys=r.d_sys, n_mated=mated.size, n_nonmated=nonmated.size,
                             mated_mean=float(mated.mean()),
                             nonmated_mean=float(nonmated.mean())))
    return pd.DataFrame(rows), results


def markdown_table(table, digits=3):
    """The study's table as Markdown (:func:`bob_facerev.evaluation.tables.markdown_table`)."""
    from .tables import markdown_table as render

    return render(table, floatfmt=f".{digits}f")
