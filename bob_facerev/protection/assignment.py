"""Exact minimum-cost assignment (linear sum assignment) for batches of small square matrices.

PE-MIU compares two templates by optimally matching their blocks (the Hungarian problem on a
``(n_blocks, n_blocks)`` matrix of block distances). Scoring ``N x M`` template pairs means solving
``N * M`` small problems; :func:`batched_assignment` solves them all in compiled code (numba),
spread over the CPU cores.

The solver is LAPJV (Jonker and Volgenant, Computing 38, 1987), the O(n^3) shortest augmenting
path form of the Hungarian method: column reduction, reduction transfer and augmenting row
reduction start a partial assignment with feasible dual prices, then every row left free is
inserted by a Dijkstra search for the cheapest augmenting path on reduced costs. Matrices with
``n <= 4`` are solved by enumerating the permutations (faster at that size). It is exact: the
total cost equals that of :func:`scipy.optimize.linear_sum_assignment`, and the permutation is
the same whenever the optimum is unique.

This module is the only assignment solver of the package: the PE-MIU comparator
(:func:`bob_facerev.protection.comparator.pemiu_scores`) and the de-shuffling attack use it.
"""

import numba
import numpy as np

__all__ = ["batched_assignment"]


@numba.njit(cache=True, nogil=True)
def _solve_small(cost, perm):
    """Exact assignment for ``n <= 4`` by enumerating the (at most 24) permutations.

    Faster than the general solver at this size (PE-MIU with K=128 on 512-d embeddings has
    n=4). Among equal optima the first in lexicographic order is returned.
    """
    n = cost.shape[0]
    if n == 0:
        return True
    if n == 1:
        perm[0] = 0
        return True
    best = np.inf
    total = n * (n - 1) // 2  # sum of the column indices, gives the last one
    for a in range(n):
        ca = cost[0, a]
        for b in range(n):
            if b == a:
                continue
            cb = ca + cost[1, b]
            if n == 2:
                if cb < best:
                    best = cb
                    perm[0] = a
                    perm[1] = b
                continue
            for c in range(n):
                if c == a or c == b:
                    continue
                cc = cb + cost[2, c]
                if n == 3:
                    if cc < best:
                        best = cc
                        perm[0] = a
                        perm[1] = b
                        perm[2] = c
                    continue
                d = total - a - b - c
                cd = cc + cost[3, d]
                if cd < best:
                    best = cd
                    perm[0] = a
                    perm[1] = b
                    perm[2] = c
                    perm[3] = d
    return best < np.inf


@numba.njit(cache=True, nogil=True)
def _column_reduction(cost, rowsol, colsol, v, matches):
    """Each column to its cheapest row (the last column wins ties for a row); prices ``v``."""
    n = cost.shape[0]
    for i in range(n):
        matches[i] = 0
        rowsol[i] = -1
    for j in range(n - 1, -1, -1):
        cmin = cost[0, j]
        imin = 0
        for i in range(1, n):
            if cost[i, j] < cmin:
                cmin = cost[i, j]
                imin = i
        v[j] = cmin
        matches[imin] += 1
        if matches[imin] == 1:
            rowsol[imin] = j
            colsol[j] = imin
        elif v[j] < v[rowsol[imin]]:
            j1 = rowsol[imin]
            rowsol[imin] = j
            colsol[j] = imin
            colsol[j1] = -1
        else:
            colsol[j] = -1


@numba.njit(cache=True, nogil=True)
def _reduction_transfer(cost, rowsol, v, matches, free):
    """Reduction transfer from rows assigned once; the free rows into ``free``, their count
    returned."""
    n = cost.shape[0]
    big = np.inf
    numfree = 0
    for i in range(n):
        if matches[i] == 0:
            free[numfree] = i
            numfree += 1
        elif matches[i] == 1:
            j1 = rowsol[i]
            hmin = big
            for j in range(n):
                if j != j1:
                    h = cost[i, j] - v[j]
                    if h < hmin:
                        hmin = h
            if hmin < big:
                v[j1] -= hmin
    return numfree


@numba.njit(cache=True, nogil=True)
def _augmenting_row_reduction(cost, rowsol, colsol, v, free, numfree):
    """One round of augmenting row reduction over the ``numfree`` rows of ``free``; returns the
    number of rows left free (at the start of ``free``).

    Each row takes its column of least reduced cost and lowers that price to its second least,
    displacing the previous owner. The number of steps is capped (float decrements may be tiny);
    rows left over are augmented by :func:`_augment`.
    """
    n = cost.shape[0]
    big = np.inf
    max_steps = 4 * n * n
    k = 0
    prvnumfree = numfree
    numfree = 0
    steps = 0
    while k < prvnumfree:
        i = free[k]
        k += 1
        steps += 1
        if steps > max_steps:
            free[numfree] = i
            numfree += 1
            continue
        umin = cost[i, 0] - v[0]
        j1 = 0
        j2 = 0
        usubmin = big
        for j in range(1, n):
            h = cost[i, j] - v[j]
            if h < usubmin:
                if h >= umin:
                    usubmin = h
                    j2 = j
                else:
                    usubmin = umin
                    umin = h
                    j2 = j1
                    j1 = j
        i0 = colsol[j1]
        lowered = umin < usubmin
        if lowered:
            v[j1] -= usubmin - umin
        elif i0 > -1:
            # tie: take the second column instead (same reduced cost)
            j1 = j2
            i0 = colsol[j2]
        rowsol[i] = j1
        colsol[j1] = i
        if i0 > -1:
            rowsol[i0] = -1
            if lowered:
                k -= 1
                free[k] = i0
            else:
                free[numfree] = i0
                numfree += 1
    return numfree


@numba.njit(cache=True, nogil=True)
def _shortest_path(cost, colsol, v, d, pred, collist, freerow):
    """Dijkstra search on reduced costs from ``freerow`` to a free column.

    Returns ``(endofpath, last, dmin)``: the free column reached (-1 if the search could not
    proceed: non-finite costs), the last position of ``collist`` scanned before the final
    distance, and that distance.
    """
    n = cost.shape[0]
    for j in range(n):
        d[j] = cost[freerow, j] - v[j]
        pred[j] = freerow
        collist[j] = j
    low = 0
    up = 0
    last = 0
    endofpath = -1
    dmin = 0.0
    while endofpath == -1:
        if up == low:
            # next set of columns at the minimum distance
            last = low - 1
            dmin = d[collist[up]]
            up += 1
            for k in range(up, n):
                j = collist[k]
                h = d[j]
                if h <= dmin:
                    if h < dmin:
                        up = low
                        dmin = h
                    collist[k] = collist[up]
                    collist[up] = j
                    up += 1
            if not dmin < np.inf:
                return -1, last, dmin
            for k in range(low, up):
                if colsol[collist[k]] < 0:
                    endofpath = collist[k]
                    break
        if endofpath == -1:
            # scan a column at the minimum distance: relax through its row
            j1 = collist[low]
            low += 1
            i = colsol[j1]
            h = cost[i, j1] - v[j1] - dmin
            for k in range(up, n):
                j = collist[k]
                v2 = cost[i, j] - v[j] - h
                if v2 < d[j]:
                    pred[j] = i
                    if v2 == dmin:
                        if colsol[j] < 0:
                            endofpath = j
                            break
                        collist[k] = collist[up]
                        collist[up] = j
                        up += 1
                    d[j] = v2
    return endofpath, last, dmin


@numba.njit(cache=True, nogil=True)
def _augment(cost, rowsol, colsol, v, d, pred, collist, freerow):
    """Insert the free row ``freerow`` along a shortest augmenting path; False if none."""
    endofpath, last, dmin = _shortest_path(cost, colsol, v, d, pred, collist, freerow)
    if endofpath == -1:
        return False
    # update the prices of the columns scanned before the last distance
    for k in range(last + 1):
        j1 = collist[k]
        v[j1] += d[j1] - dmin
    # flip the assignment along the path
    while True:
        i = pred[endofpath]
        colsol[endofpath] = i
        j1 = endofpath
        endofpath = rowsol[i]
        rowsol[i] = j1
        if i == freerow:
            break
    return True


@numba.njit(cache=True, nogil=True)
def _solve(cost, perm, fwork, iwork):
    """Solve one ``(n, n)`` assignment problem in place (Jonker-Volgenant, LAPJV).

    Column reduction, reduction transfer and two rounds of augmenting row reduction build a
    partial assignment with feasible dual prices ``v`` (every assigned row holds a column of
    minimum reduced cost ``cost[i, j] - v[j]``); each row left free is then inserted with a
    Dijkstra search for the shortest augmenting path on reduced costs. Exact: the result is a
    minimum-cost assignment.

    Parameters
    ----------
    cost : ndarray, float64, shape (n, n)
        Finite costs.
    perm : ndarray, int64, shape (n,)
        Output: ``perm[i]`` is the column assigned to row ``i``.
    fwork : ndarray, float64, shape (2, n)
        Work buffer (column prices, shortest path lengths).
    iwork : ndarray, int64, shape (5, n)
        Work buffer (row of each column, free rows, column list, predecessors, match counts).

    Returns
    -------
    ok : bool
        False only if the search could not proceed (non-finite costs); ``perm`` is then invalid.
    """
    if cost.shape[0] <= 4:
        return _solve_small(cost, perm)
    v, d = fwork[0], fwork[1]
    rowsol, colsol, free, collist, pred, matches = (perm, iwork[0], iwork[1], iwork[2], iwork[3],
                                                    iwork[4])
    _column_reduction(cost, rowsol, colsol, v, matches)
    numfree = _reduction_transfer(cost, rowsol, v, matches, free)
    for _ in range(2):
        numfree = _augmenting_row_reduction(cost, rowsol, colsol, v, free, numfree)
    for f in range(numfree):
        if not _augment(cost, rowsol, colsol, v, d, pred, collist, free[f]):
            return False
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
        fwork = np.empty((2, n))
        iwork = np.empty((5, n), dtype=np.int64)
        for b in range(start, stop):
            if not _solve(cost[b], out[b], fwork, iwork):
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
