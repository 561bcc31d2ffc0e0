"""The PE-MIU comparator: block matching by minimum-cost assignment, then the cosine.

Two PE-MIU templates are compared by matching the blocks of the probe to those of the reference
with a minimum-cost assignment (cost = L2 distance between blocks, solved by
:mod:`bob_facerev.protection.assignment`), restoring the probe's block order by that assignment
and taking the cosine similarity. :func:`pemiu_scores` computes the score matrix of many pairs
(numba, parallel); :class:`PEMIUComparator` is the ``bob.bio.base`` ``BioAlgorithm`` built on it.
The templates themselves are made by :class:`bob_facerev.protection.pemiu.PEMIU`.
"""

import numba
import numpy as np

from bob.bio.base.pipelines import BioAlgorithm

from ..scoring import IndexedReferences
from .assignment import _solve
from .pemiu import check_embeddings, n_blocks

__all__ = ["pemiu_scores", "PEMIUComparator"]


@numba.njit(cache=True, nogil=True, fastmath=True)
def _block_costs(r, q, r_sq, q_sq, G, cost):
    """Block dot products and L2 costs of one pair (finite inputs only: fastmath).

    r, q : (n, K) blocks; r_sq, q_sq : (n,) squared block norms;
    G[a, b] = <r[a], q[b]> and cost[a, b] = sqrt(max(r_sq[a] + q_sq[b] - 2 G[a, b], 0)).
    """
    n = r.shape[0]
    K = r.shape[1]
    for a in range(n):
        for b in range(n):
            s = 0.0
            for k in range(K):
                s += r[a, k] * q[b, k]
            G[a, b] = s
        for b in range(n):
            cost[a, b] = np.sqrt(max(r_sq[a] + q_sq[b] - 2.0 * G[a, b], 0.0))


@numba.njit(parallel=True, cache=True)
def _scores_kernel(Rb, Qb, rn, qn, rnorm, qnorm, out, n_chunks):
    """PE-MIU scores of all pairs, parallel over chunks of pairs.

    Rb, Qb : (N, n, K), (M, n, K) float64 blocks; rn, qn : (N, n), (M, n) squared block norms;
    rnorm, qnorm : (N,), (M,) vector norms; out : (N, M) float64 output.
    """
    N = Rb.shape[0]
    n = Rb.shape[1]
    M = Qb.shape[0]
    total = N * M
    for c in numba.prange(n_chunks):
        start = c * total // n_chunks
        stop = (c + 1) * total // n_chunks
        G = np.empty((n, n))
        cost = np.empty((n, n))
        perm = np.empty(n, dtype=np.int64)
        fwork = np.empty((2, n))
        iwork = np.empty((5, n), dtype=np.int64)
        for t in range(start, stop):
            i = t // M
            j = t - i * M
            _block_costs(Rb[i], Qb[j], rn[i], qn[j], G, cost)
            _solve(cost, perm, fwork, iwork)
            s = 0.0
            for a in range(n):
                s += G[a, perm[a]]
            den = rnorm[i] * qnorm[j]
            out[i, j] = s / den if den > 0.0 else 0.0


def _safe_scale(Rb, Qb, limit=1e100):
    """Scale both inputs by one power of two when their squares would overflow float64.

    The costs (L2 distances) and the cosine are homogeneous, so one common factor changes
    neither the assignment nor the score, and a power of two scales exactly. Inputs below
    ``limit`` are returned as they are.
    """
    peak = max(float(np.abs(Rb).max()), float(np.abs(Qb).max()))
    if peak <= limit:
        return Rb, Qb
    shift = -int(np.ceil(np.log2(peak)))
    return np.ldexp(Rb, shift), np.ldexp(Qb, shift)


def pemiu_scores(references, probes, block_size):
    """PE-MIU comparison scores of all reference/probe pairs.

    For each pair: cost ``C[a, b]`` = L2 distance between block ``a`` of the reference and block
    ``b`` of the probe; optimal assignment ``perm`` of ``C`` (exact, as
    :func:`scipy.optimize.linear_sum_assignment`); score = cosine similarity of the reference
    and the probe realigned by ``perm``, computed directly from block dot products:
    ``sum_a <r_a, p_perm(a)> / (|r| |p|)``. Per pair, the ``n x n`` block dot products give the
    costs through ``|r_a|^2 + |p_b|^2 - 2 <r_a, p_b>`` (float64, clipped at 0) and the score;
    everything runs compiled (numba), in parallel over chunks of pairs on all cores (threads:
    ``NUMBA_NUM_THREADS``); memory: float64 copies of the inputs and the ``(N, M)`` output.

    Parameters
    ----------
    references : array_like, shape (N, d)
        Protected reference templates.
    probes : array_like, shape (M, d)
        Protected probe templates (same ``d``).
    block_size : int
        Block size ``K`` used at protection (must divide ``d``).

    Returns
    -------
    scores : ndarray, shape (N, M)
        Similarity in [-1, 1] (higher = more similar), float32 when both inputs are float32,
        else float64. A zero-norm template scores 0. Huge finite values (up to the float64
        maximum) are scaled first, so they give the same scores as the scaled templates.

    Raises
    ------
    ValueError
        On 1-D, empty, non-finite or mixed-dimension inputs, or when ``K`` does not divide ``d``.
    """
    R = check_embeddings(references, name="references")
    Q = check_embeddings(probes, dim=R.shape[1], name="probes")
    N, d = R.shape
    M = Q.shape[0]
    n = n_blocks(d, block_size)
    out_dtype = np.result_type(R.dtype, Q.dtype)

    Rb = np.ascontiguousarray(R, dtype=np.float64).reshape(N, n, block_size)
    Qb = np.ascontiguousarray(Q, dtype=np.float64).reshape(M, n, block_size)
    Rb, Qb = _safe_scale(Rb, Qb)
    rn = np.einsum("iak,iak->ia", Rb, Rb)
    qn = np.einsum("jbk,jbk->jb", Qb, Qb)
    rnorm = np.sqrt(rn.sum(axis=1))
    qnorm = np.sqrt(qn.sum(axis=1))
    scores = np.empty((N, M), dtype=np.float64)
    # many small work units handed out dynamically: a thread slowed down by other load on a
    # shared machine does not hold up the others
    previous = numba.get_parallel_chunksize()
    numba.set_parallel_chunksize(1)
    try:
        _scores_kernel(Rb, Qb, rn, qn, rnorm, qnorm, scores, min(N * M, 256))
    finally:
        numba.set_parallel_chunksize(previous)
    return scores.astype(out_dtype, copy=False)


def _fuse(scores, groups, axis, fuse):
    """Reduce ``scores`` over consecutive groups of sizes ``groups`` along ``axis``."""
    if all(g == 1 for g in groups):
        return scores
    bounds = np.concatenate([[0], np.cumsum(groups)])
    parts = [
        np.asarray(fuse(np.take(scores, np.arange(a, b), axis=axis), axis))
        for a, b in zip(bounds[:-1], bounds[1:])
    ]
    return np.stack(parts, axis=axis)


class PEMIUComparator(IndexedReferences, BioAlgorithm):
    """PE-MIU comparator for ``bob bio pipeline simple`` (a ``BioAlgorithm``).

    Every enrollment sample and every probe sample is compared with :func:`pemiu_scores`;
    the scores of a template pair are then fused with Bob's score fusion
    (``probes_score_fusion`` over the probe samples, then ``enrolls_score_fusion`` over the
    enrollment samples; both ``"max"`` by default, as in Bob's ``Distance``). Features are
    not averaged at enrollment (Bob's ``Distance`` default, ``average_on_enroll=True``): the
    blocks of independently shuffled templates do not line up, so their mean would destroy
    them; score fusion is Bob's option for that case.

    Parameters
    ----------
    block_size : int
        Block size ``K`` used at protection.
    probes_score_fusion, enrolls_score_fusion : str or callable
        ``numpy`` reduction name (``"max"``, ``"mean"``, ...) or ``f(scores, axis)``.
    """

    def __init__(
        self, block_size=32, probes_score_fusion="max", enrolls_score_fusion="max", **kwargs
    ):
        super().__init__(
            probes_score_fusion=probes_score_fusion,
            enrolls_score_fusion=enrolls_score_fusion,
            **kwargs,
        )
        self.block_size = block_size

    def create_templates(self, list_of_feature_sets, enroll):
        """Stack each set's valid features into a ``(n_samples, d)`` array.

        Failed features (NaN, see :mod:`bob_facerev.failures`) are left out; a set without a
        valid feature gives a ``(1, d)`` NaN template (it scores NaN), an empty probe set
        ``None`` (Bob then writes no score for it).
        """
        from bob_facerev.failures import valid_features

        templates = []
        for features in list_of_feature_sets:
            if len(features) == 0:
                templates.append(None)
                continue
            rows = [np.atleast_2d(np.asarray(f, dtype=float)) for f in features if f is not None]
            valid = valid_features(rows)
            if not valid:
                d = max((r.shape[-1] for r in rows), default=1)
                valid = [np.full((1, d), np.nan)]
            templates.append(np.vstack(valid))
        return templates

    def compare(self, enroll_templates, probe_templates):
        """Scores ``(N, M)`` of N enrollment and M probe templates (higher = more similar);
        NaN where either template failed (holds NaN)."""
        enroll = [np.atleast_2d(np.asarray(t, dtype=float)) for t in enroll_templates]
        probe = [np.atleast_2d(np.asarray(t, dtype=float)) for t in probe_templates]
        out = np.full((len(enroll), len(probe)), np.nan)
        ok_e = [i for i, t in enumerate(enroll) if np.isfinite(t).all() and t.size]
        ok_p = [j for j, t in enumerate(probe) if np.isfinite(t).all() and t.size]
        if not ok_e or not ok_p:
            return out if (enroll and probe) else np.zeros((len(enroll), len(probe)))
        enroll, probe = [enroll[i] for i in ok_e], [probe[j] for j in ok_p]
        scores = pemiu_scores(np.vstack(enroll), np.vstack(probe), self.block_size)
        scores = _fuse(scores, [len(t) for t in probe], 1, self.fuse_probe_scores)
        scores = _fuse(scores, [len(t) for t in enroll], 0, self.fuse_enroll_scores)
        out[np.ix_(ok_e, ok_p)] = scores
        return out

    def _more_tags(self):
        return {"requires_fit": False}
