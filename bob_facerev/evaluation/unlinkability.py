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


def mated_nonmated(scores, subjects_a, subjects_b=None, exclude_diagonal=False):
    """Split a score matrix into mated and non-mated scores by subject labels.

    Parameters
    ----------
    scores : array-like, shape (N, M)
        Scores of templates ``a`` (rows) against templates ``b`` (columns).
    subjects_a : array-like, shape (N,)
        Subject (or face) of each row.
    subjects_b : array-like, shape (M,), optional
        Subject of each column; default ``subjects_a``.
    exclude_diagonal : bool
        Leave out ``scores[i, i]`` (a template against itself, when ``a`` and ``b`` are the
        same templates).

    Returns
    -------
    mated, nonmated : ndarray
        1-d score arrays.
    """
    scores = np.asarray(scores)
    subjects_a = np.asarray(subjects_a)
    subjects_b = subjects_a if subjects_b is None else np.asarray(subjects_b)
    if scores.shape != (subjects_a.size, subjects_b.size):
        raise ValueError(f"scores of shape {scores.shape} need {scores.shape[0]} row and "
                         f"{scores.shape[1]} column subjects, got {subjects_a.size} and "
                         f"{subjects_b.size}")
    same = subjects_a[:, None] == subjects_b[None, :]
    keep = np.ones_like(same)
    if exclude_diagonal:
        np.fill_diagonal(keep, False)
    return scores[same & keep], scores[~same & keep]


def plot_linkability(panels, path, ncols=None, panel_size=(3.6, 2.8), dpi=90):
    """Score densities and D<->(s) on one figure per panel (Gomez-Barrero et al.'s plot style).

    Parameters
    ----------
    panels : sequence of (str, Linkability)
        Title and result of each panel (mated density green, non-mated red, ``D<->(s)`` black on
        a second axis in [0, 1], ``D<->sys`` in the title).
    path : str or Path
        PNG written atomically.
    ncols : int, optional
        Panels per row (default: all in one row).

    Returns
    -------
    Path
    """
    from .plots import _pyplot, _save

    plt = _pyplot()
    n = len(panels)
    if n == 0:
        raise ValueError("plot_linkability needs at least one (title, Linkability) panel")
    ncols = min(n, ncols or n)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
                             squeeze=False)
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    for ax, (title, r) in zip(axes.ravel(), panels):
        width = np.diff(r.bin_edges)
        ax.bar(r.bin_edges[:-1], r.p_mated, width, align="edge", color="tab:green", alpha=0.5,
               label="mated")
        ax.bar(r.bin_edges[:-1], r.p_nonmated, width, align="edge", color="tab:red", alpha=0.5,
               label="non-mated")
        ax.set_xlabel("score")
        ax.set_ylabel("density")
        ax2 = ax.twinx()
        ax2.plot(r.bin_centers, r.d_local, color="k", lw=1.2, label="D<->(s)")
        ax2.set_ylim(0, 1.05)
        ax2.set_ylabel("D<->(s)")
        ax.set_title(f"{title}\nD<->sys = {r.d_sys:.3f}", fontsize=9)
    handles = axes.ravel()[0].get_legend_handles_labels()
    fig.legend(handles[0] + [plt.Line2D([], [], color="k")], handles[1] + ["D<->(s)"],
               loc="lower center", ncol=3, fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    try:
        return _save(fig, path, dpi)
    finally:
        plt.close(fig)
