"""Unlinkability of protected templates (Gomez-Barrero et al., IEEE TIFS 13(6), 2018).

Mated scores compare two protected templates of the same subject (e.g. from two protections
of one face: different applications), non-mated scores templates of different subjects. With
score densities estimated by histograms on common bins,

* ``LR(s) = p(s | mated) / p(s | non-mated)``
* local linkability ``D(s) = 2 * omega * LR(s) / (1 + omega * LR(s)) - 1`` where
  ``omega * LR(s) > 1``, else ``0`` (``omega`` = prior ratio P(mated) / P(non-mated));
  where only mated scores fall in a bin, ``D(s) = 1``;
* global linkability ``D_sys = integral of D(s) p(s | mated) ds`` in [0, 1]: 0 is fully
  unlinkable, 1 fully linkable.
"""

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Linkability:
    """Local and global linkability.

    Attributes
    ----------
    d_sys : float
        Global linkability ``D_sys``.
    d_local : ndarray, shape (n_bins,)
        ``D(s)`` per bin.
    bin_edges : ndarray, shape (n_bins + 1,)
        Common histogram bin edges.
    p_mated, p_nonmated : ndarray, shape (n_bins,)
        Histogram densities (each integrates to 1 over the bins).
    """

    d_sys: float
    d_local: np.ndarray
    bin_edges: np.ndarray
    p_mated: np.ndarray
    p_nonmated: np.ndarray

    @property
    def bin_centers(self):
        """Bin centres, shape (n_bins,)."""
        return (self.bin_edges[1:] + self.bin_edges[:-1]) / 2


def default_bins(n_mated):
    """The reference implementation's bin count: ``min(n_mated // 10, 100)`` (at least 1)."""
    return max(1, min(int(n_mated) // 10, 100))


def linkability(mated, nonmated, omega=1.0, bins=None, integration="sum"):
    """D<->(s) and D<->sys of Gomez-Barrero et al. from mated and non-mated scores.

    Parameters
    ----------
    mated : array-like, shape (n_mated,)
        Scores of mated comparisons (same subject); NaN left out.
    nonmated : array-like, shape (n_nonmated,)
        Scores of non-mated comparisons; NaN left out.
    omega : float
        Prior ratio P(mated) / P(non-mated), > 0; 1 by default (as in the paper's experiments).
    bins : int or array-like, optional
        Number of equal-width bins over the range of all scores, or the bin edges.
        Default :func:`default_bins` ``(n_mated)``.
    integration : {"sum", "trapezoid"}
        ``"sum"``: the integral of the histogram estimate, ``sum(D * p_mated * width)`` (1 for
        fully separated scores); ``"trapezoid"``: trapezoidal rule over the bin centres, as the
        authors' published script does (slightly lower values at the edges).

    Returns
    -------
    Linkability
    """
    mated = np.asarray(mated, np.float64).ravel()
    nonmated = np.asarray(nonmated, np.float64).ravel()
    mated, nonmated = mated[~np.isnan(mated)], nonmated[~np.isnan(nonmated)]
    if mated.size == 0 or nonmated.size == 0:
        raise ValueError(f"{mated.size} mated and {nonmated.size} non-mated scores: "
                         "linkability needs both")
    if not omega > 0:
        raise ValueError(f"omega={omega!r}: the prior ratio must be positive (default 1)")
    if integration not in ("sum", "trapezoid"):
        raise ValueError(f"integration={integration!r}: use 'sum' or 'trapezoid'")
    if bins is None:
        bins = default_bins(mated.size)
    if np.ndim(bins) == 0:
        n = int(bins)
        if n < 1:
            raise ValueError(f"bins={bins!r}: need at least one bin")
        lo = min(mated.min(), nonmated.min())
        hi = max(mated.max(), nonmated.max())
        if hi == lo:
            hi = lo + 1.0
        edges = np.linspace(lo, hi, n + 1)
    else:
        edges = np.asarray(bins, np.float64)
        if edges.ndim != 1 or edges.size < 2 or np.any(np.diff(edges) <= 0):
            raise ValueError("bins as edges must be an increasing 1-d array of >= 2 values")
    p_m = np.histogram(mated, bins=edges, density=True)[0]
    p_nm = np.histogram(nonmated, bins=edges, density=True)[0]
    lr = np.divide(p_m, p_nm, out=np.zeros_like(p_m), where=p_nm > 0)
    d = np.where(omega * lr > 1, 2 * omega * lr / (1 + omega * lr) - 1, 0.0)
    d[(p_nm == 0) & (p_m > 0)] = 1.0
    if integration == "sum":
        d_sys = float(np.sum(d * p_m * np.diff(edges)))
    else:
        centers = (edges[1:] + edges[:-1]) / 2
        y = d * p_m
        d_sys = float(np.sum((y[1:] + y[:-1]) / 2 * np.diff(centers)))
    return Linkability(d_sys=d_sys, d_local=d, bin_edges=edges, p_mated=p_m, p_nonmated=p_nm)
