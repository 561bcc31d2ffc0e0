"""Exact minimum-cost assignment (linear sum assignment) for batches of small square matrices.

PE-MIU compares two templates by optimally matching their blocks (the Hungarian problem on a
``(n_blocks, n_blocks)`` matrix of block distances). Scoring ``N x M`` template pairs means solving
``N * M`` small problems; :func:`batched_assignment` solves them all in compiled code (numba),
spread over the CPU cores.

The solver is the O(n^3) shortest-augmenting-path form of the Hungarian method with dual
potentials (Kuhn-Munkres as refined by Tomizawa and Jonker-Volgenant, in the formulation of
Crouse, IEEE TAES 2016, that scipy also implements): rows are inserted one at a time and each
insertion runs a Dijkstra-like search for the cheapest augmenting path on reduced costs. It is exact: the total cost equals that of :func:`scipy.optimize.linear_sum_assignment`,
and the permutation is the same whenever the optimum is unique.

This module is the only assignment solver of the package: the PE-MIU comparator
(:func:`bob_facerev.protection.pemiu.pemiu_scores`) and the de-shuffling attack use it.
"""

import numba
import numpy as np

__all__ = ["batched_assignment"]


@numba.njit(cache=True, nogil=True)
def _solve(cost, perm, fwork, iwork, bwork):
    """Solve one ``(n, n)`` assignment problem in place.

    Shortest augmenting paths with lazily updated dual potentials, in the formulation of
    Crouse (IEEE TAES 2016) that scipy's ``linear_sum_assignment`` also uses (same scan order
    and tie-breaking: among equally short paths, prefer a free column).

    Parameters
    ----------
    cost : ndarray, float64, shape (n, n)
        Finite costs.
    perm : ndarray, int64, shape (n,)
        Output: ``perm[i]`` is the column assigned to row ``i``.
    fwork : ndarray, float64, shape (3, n)
        Work buffer (row potentials, column potentials, shortest path costs).
    iwork : ndarray, int64, shape (3, n)
        Work buffer (predecessor row of each column, row assigned to each column, columns
        not yet reached).
    bwork : ndarray, bool, shape (2, n)
        Work buffer (rows and columns reached by the current search).

    Returns
    -------
    ok : bool
        False only if the search could not proceed (non-finite costs); ``perm`` is then invalid.
    """
    n = cost.shape[0]
    inf = np.inf
    u = fwork[0]
    v = fwork[1]
    spc = fwork[2]
    path = iwork[0]
    row4col = iwork[1]
    remaining = iwork[2]
    SR = bwork[0]
    SC = bwork[1]
    for j in range(n):
        u[j] = 0.0
        v[j] = 0.0
        path[j] = -1
        row4col[j] = -1
        perm[j] = -1
    for cur_row in range(n):
        # Dijkstra on reduced costs from cur_row to the nearest free column
        min_val = 0.0
        n_remaining = n
        for it in range(n):
            remaining[it] = n - it - 1
            SR[it] = False
            SC[it] = False
            spc[it] = inf
        i = cur_row
        sink = -1
        while sink == -1:
            index = -1
            lowest = inf
            SR[i] = True
            base = min_val - u[i]
            for it in range(n_remaining):
                j = remaining[it]
                r = base + cost[i, j] - v[j]
                if r < spc[j]:
                    path[j] = i
                    spc[j] = r
                if spc[j] < lowest or (spc[j] == lowest and row4col[j] == -1):
                    lowest = spc[j]
                    index = it
            min_val = lowest
            if index == -1 or min_val == inf:
                return False
            j = remaining[index]
            if row4col[j] == -1:
                sink = j
            else:
                i = row4col[j]
            SC[j] = True
            n_remaining -= 1
            remaining[index] = remaining[n_remaining]
        # update the dual variables
        u[cur_row] += min_val
        for i in range(n):
            if SR[i] and i != cur_row:
                u[i] += min_val - spc[perm[i]]
        for j in range(n):
            if SC[j]:
                v[j] -= min_val - spc[j]
        # augment the assignment along the path
        j = sink
        while True:
            i = path[j]
            row4col[j] = i
            tmp = perm[i]
            perm[i] = j
            j = tmp
            if i == cur_row:
                break
    return True


@numba.njit(parallel=True, cache=True)
def _batched(cost, out, n_chunks):
    """Solve ``cost[b]`` for every ``b`` in parallel; returns the number of failures."""
    B = cost.shape[0]
    n = cost.shape[1]
    failures = np.zeros(n_chunks, dtype=np.int64)
    for c in numba.prange(n_chunks):
        start = c * B // n_chunks
        stop = (c + 1) * B // n_chunks
        fwork = np.empty((3, n))
        iwork = np.empty((3, n), dtype=np.int64)
        bwork = np.empty((2, n), dtype=np.bool_)
        for b in range(start, stop):
            if not _solve(cost[b], out[b], fwork, iwork, bwork):
                failures[c] += 1
    return failures.sum()


def _n_chunks(n_items):
    """Work units for a parallel loop: a few per thread, at most one per item."""
    return max(1, min(n_items, 4 * numba.get_num_threads()))


def batched_assignment(cost):
    """Minimum-cost assignment of every square matrix of a batch.

    Parameters
    ----------
    cost : array_like, float, shape (B, n, n)
        ``B`` cost matrices (finite values). Not modified.

    Returns
    -------
    perm : ndarray, int64, shape (B, n)
        ``perm[b, i]`` is the column assigned to row ``i`` of ``cost[b]`` in a minimum-cost
        assignment: ``cost[b, arange(n), perm[b]].sum()`` equals the optimum of
        :func:`scipy.optimize.linear_sum_assignment` (same permutation when the optimum is
        unique, e.g. for distinct random costs).

    Raises
    ------
    ValueError
        If ``cost`` is not 3-D, its matrices are not square, or it holds NaN or infinite values.

    Examples
    --------
    >>> import numpy as np
    >>> batched_assignment(np.array([[[4.0, 1.0], [2.0, 8.0]]]))
    array([[1, 0]])
    """
    arr = np.asarray(cost)
    if arr.ndim != 3:
        raise ValueError(
            f"cost must be a (B, n, n) array, got shape {arr.shape}; "
            "for a single matrix pass cost[None]"
        )
    if arr.shape[1] != arr.shape[2]:
        raise ValueError(
            f"cost matrices must be square, got shape {arr.shape}; "
            "pad the smaller side (or use scipy.optimize.linear_sum_assignment)"
        )
    if arr.dtype.kind not in "biuf":
        raise ValueError(f"cost must be real numbers, got dtype {arr.dtype}")
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    B, n = arr.shape[0], arr.shape[1]
    out = np.empty((B, n), dtype=np.int64)
    if B == 0 or n == 0:
        return out
    if not np.isfinite(arr).all():
        bad = int(np.argwhere(~np.isfinite(arr))[0, 0])
        raise ValueError(
            f"cost[{bad}] holds NaN or infinite values; "
            "replace forbidden pairs by a large finite cost"
        )
    failures = _batched(arr, out, _n_chunks(B))
    if failures:  # pragma: no cover - only with overflowing magnitudes
        raise ValueError(
            f"{failures} cost matrices could not be solved (overflow); "
            "rescale the costs to a moderate range"
        )
    return out
