"""Pictures of an attack evaluation: RSR heatmaps and DET curves.

The faces side by side (original and reconstructions) are :mod:`bob_facerev.evaluation.faces`.

All figures are drawn with matplotlib's Agg backend (no display needed) and written atomically.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_path
from .score_files import display_name, label_columns
from .tables import fmr_label, sort_keys, sort_results


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    return pyplot


def _save(fig, path, dpi):
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")
    return path


def _ordered(values):
    uniq = list(dict.fromkeys(values))
    keys = sort_keys(uniq)
    return [u for _, u in sorted(zip(keys, uniq), key=lambda t: t[0])]


def heatmap_matrices(results, fmrs=None):
    """The K x P matrices of RSR (percent) that :func:`rsr_heatmap` draws.

    Parameters
    ----------
    results : DataFrame
        Long table of :func:`bob_facerev.evaluation.rsr.evaluate_score_files` with the
        ``facerev_block_size`` (K) and ``facerev_moved_blocks`` (P) label columns.
    fmrs : sequence of float, optional
        FMRs to draw (default: all in ``results``).

    Returns
    -------
    dict
        ``{(panel, fmr): DataFrame}``; ``panel`` is a tuple of the values of the other label
        columns (model, variant, comparison, ...); each frame has rows K and columns P (sorted,
        ``"none"`` first) and RSR in percent, NaN where the grid has no setting.
    """
    for c in ("facerev_block_size", "facerev_moved_blocks"):
        if c not in results.columns:
            raise ValueError(
                f"results lack the {c!r} column: the attack rows of the score files need "
                "the facerev_* labels (see rsr.protection_metadata)"
            )
    fmrs = sorted(set(results["fmr"])) if fmrs is None else [float(f) for f in fmrs]
    others = [c for c in label_columns(results)
              if c not in ("facerev_block_size", "facerev_moved_blocks")]
    # panels in the order of the score files (e.g. the study's attack before de-shuffling)
    panels = list(dict.fromkeys(map(tuple, results[others].to_numpy().tolist()))) if others \
        else [()]
    results = sort_results(results)
    ks = _ordered(results["facerev_block_size"])
    ps = _ordered(results["facerev_moved_blocks"])
    out = {}
    for panel in panels:
        sel = np.ones(len(results), bool)
        for c, v in zip(others, panel):
            sel &= (results[c] == v).to_numpy()
        for f in fmrs:
            part = results[sel & np.isclose(results["fmr"], f)]
            if part.empty:
                raise ValueError(f"no result at FMR {f!r}; available: {sorted(set(results.fmr))}")
            m = pd.DataFrame(np.nan, index=pd.Index(ks, name="K"),
                             columns=pd.Index(ps, name="P"))
            for _, r in part.iterrows():
                m.loc[r["facerev_block_size"], r["facerev_moved_blocks"]] = 100 * r["rsr"]
            m = m.dropna(how="all").dropna(axis=1, how="all")
            out[(panel, f)] = m
    return out


def rsr_heatmap(results, path, fmrs=None, panel_size=(4.0, 3.2), dpi=100):
    """Heatmap PNG of the RSR: rows K, columns P, one panel per setting and FMR.

    Panels are laid out with one row per combination of the other labels (model, variant,
    comparison) and one column per FMR; every cell shows the RSR in percent.

    Parameters
    ----------
    results : DataFrame
        Long table (see :func:`heatmap_matrices`).
    path : str or Path
        Output PNG.
    fmrs : sequence of float, optional
        FMRs to draw (default: all).
    panel_size : (float, float)
        Size of one panel in inches; the image is ``dpi * panel_size * (n_fmrs, n_panels)``
        pixels.
    dpi : int
        Resolution.

    Returns
    -------
    dict
        The matrices drawn (:func:`heatmap_matrices`).
    """
    plt = _pyplot()
    mats = heatmap_matrices(results, fmrs)
    panels = list(dict.fromkeys(p for p, _ in mats))
    fmr_list = list(dict.fromkeys(f for _, f in mats))
    others = [c for c in label_columns(results)
              if c not in ("facerev_block_size", "facerev_moved_blocks")]
    fig, axes = plt.subplots(
        len(panels), len(fmr_list), squeeze=False,
        figsize=(panel_size[0] * len(fmr_list), panel_size[1] * len(panels)),
    )
    varying = [len({p[k] for p in panels}) > 1 for k in range(len(others))]
    cmap = plt.get_cmap("viridis").with_extremes(bad="0.85")
    im = None
    for i, panel in enumerate(panels):
        for j, f in enumerate(fmr_list):
            ax = axes[i, j]
            m = mats[(panel, f)]
            im = ax.imshow(np.ma.masked_invalid(m.to_numpy(float)), cmap=cmap, vmin=0, vmax=100,
                           aspect="auto")
            for (a, b), v in np.ndenumerate(m.to_numpy(float)):
                if np.isfinite(v):
                    ax.text(b, a, f"{v:.1f}", ha="center", va="center", fontsize=8,
                            color="white" if v < 50 else "black")
            ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns])
            ax.set_yticks(range(m.shape[0]), [str(r) for r in m.index])
            ax.set_xlabel("P (blocks moved)")
            ax.set_ylabel("K (block size)")
            name = ", ".join(f"{display_name(c)}={v}" for c, v, vary in
                             zip(others, panel, varying) if v != "" and vary)
            ax.set_title(f"RSR % at {fmr_label(f)}" + (f"\n{name}" if name else ""), fontsize=9)
    common = ", ".join(f"{display_name(c)}={panels[0][k]}" for k, c in enumerate(others)
                       if not varying[k] and panels[0][k] != "")
    if common:
        fig.suptitle(common, fontsize=10)
    fig.tight_layout()
    if im is not None:
        fig.colorbar(im, ax=axes.ravel().tolist(), shrink=0.8, label="RSR (%)")
    _save(fig, path, dpi)
    plt.close(fig)
    return mats


def det_rates(negatives, positives, max_points=2000):
    """FMR and FNMR (fractions) of a DET curve at every distinct threshold (at most ``max_points``).

    A score is accepted when ``>= threshold``. The curve runs from (FMR 1, FNMR 0) to
    (FMR 0, FNMR 1), so it includes the rates 0 that a log (normal deviate) axis cannot show.

    Returns
    -------
    fmr, fnmr : ndarray
    """
    import bob.measure

    neg = np.asarray(negatives, dtype=np.float64)
    pos = np.asarray(positives, dtype=np.float64)
    thresholds = np.unique(np.concatenate([neg, pos]))
    if thresholds.size > max_points:
        thresholds = np.unique(np.quantile(thresholds, np.linspace(0, 1, max_points)))
    thresholds = np.concatenate([[-np.inf], thresholds, [np.inf]])
    rates = np.array([bob.measure.farfrr(neg, pos, float(t)) for t in thresholds])
    return rates[:, 0], rates[:, 1]


def _det_styles(labels):
    """Colour, line style and width per curve: bona fide black; attacks coloured by setting.

    Labels with a ``variant=...`` word (e.g. ``"attack variant=deshuffle K=32 P=4"``) share the
    colour of their setting and take one line style per variant, so that the study's attack and
    the de-shuffling one on the same protection are told apart and paired at a glance.
    """
    plt = _pyplot()

    def split(label):
        words = label.split()
        variant = " ".join(w for w in words if w.startswith("variant="))
        return variant, " ".join(w for w in words if not w.startswith("variant="))

    keys = [split(lab) for lab in labels if not lab.startswith("bona fide")]
    variants = list(dict.fromkeys(v for v, _ in keys))
    settings = list(dict.fromkeys(s for _, s in keys))
    cmap = plt.get_cmap("tab10" if len(settings) <= 10 else "tab20")
    styles = ["-", "--", "-.", ":"]
    out = []
    for lab in labels:
        if lab.startswith("bona fide"):
            out.append(dict(color="black", linestyle="-", linewidth=2.0, zorder=3))
            continue
        v, setting = split(lab)
        j = settings.index(setting)
        out.append(dict(color=cmap(j % cmap.N), linewidth=1.5,
                        linestyle=styles[(variants.index(v) + j // cmap.N) % len(styles)]))
    return out


def det_figure(curves, title=None, fmrs=(), figsize=(9.0, 5.0), limits=(0.01, 99, 0.01, 99)):
    """The DET figure of :func:`det_plot` (matplotlib ``(figure, axes)``, not saved).

    Rates beyond the axis limits (e.g. FMR 0 % or 100 % of attacks accepted, which a normal
    deviate axis cannot show) are drawn on the axis edge and marked with triangles, so every
    curve stays in sight; the lower limits extend to the smallest non-zero rate of the data.
    """
    import bob.measure

    plt = _pyplot()
    if not curves:
        raise ValueError("det_plot needs at least one (label, negatives, positives) curve")
    data = []
    for label, neg, pos in curves:
        neg = np.asarray(neg, np.float64)
        pos = np.asarray(pos, np.float64)
        neg, pos = neg[~np.isnan(neg)], pos[~np.isnan(pos)]
        if neg.size == 0 or pos.size == 0:
            raise ValueError(f"DET curve {label!r} has {neg.size} negative and {pos.size} "
                             "positive scores; both must be non-empty")
        data.append((label, *det_rates(neg, pos)))
    # the axes start just below the smallest non-zero rate the data can take (1 / number of
    # scores) and the FMRs marked, not far below: rates 0 lie on the edge, beside the data
    n_neg = max(np.asarray(c[1]).size for c in curves)
    n_pos = max(np.asarray(c[2]).size for c in curves)
    lo_x = max(limits[0] / 100, min([0.5 / n_neg] + [f / 1.5 for f in fmrs]))
    lo_y = max(limits[2] / 100, 0.5 / n_pos)
    hi_x, hi_y = limits[1] / 100, limits[3] / 100
    fig, ax = plt.subplots(figsize=figsize)
    # rates beyond the limits are drawn in a band outside the limits, one lane per curve, so that
    # curves that coincide there (e.g. every attack accepted at every FMR) stay visible
    step = 0.045
    bounds = bob.measure.ppndf(np.array([lo_x, hi_x, lo_y, hi_y]))
    clipped_any = False
    for k, ((label, fmr, fnmr), style) in enumerate(
            zip(data, _det_styles([d[0] for d in data]))):
        x = _lane(bob.measure.ppndf(np.clip(fmr, lo_x, hi_x)), fmr, lo_x, hi_x, bounds[:2],
                  (k + 1) * step)
        y = _lane(bob.measure.ppndf(np.clip(fnmr, lo_y, hi_y)), fnmr, lo_y, hi_y, bounds[2:],
                  (k + 1) * step)
        ax.plot(x, y, label=label, **style)
        edge = (fmr < lo_x) | (fmr > hi_x) | (fnmr < lo_y) | (fnmr > hi_y)
        if edge.any():  # triangles at up to 6 distinct positions on the edge
            clipped_any = True
            pts = np.unique(np.stack([x[edge], y[edge]], 1), axis=0)
            pts = pts[np.unique(np.linspace(0, len(pts) - 1, min(len(pts), 6)).round().astype(int))]
            ax.plot(pts[:, 0], pts[:, 1], marker="v", markersize=5, linestyle="none",
                    color=style["color"], alpha=0.8, zorder=style.get("zorder", 2))
    for f in fmrs:
        if lo_x <= f <= hi_x:
            ax.axvline(bob.measure.ppndf(f), color="0.5", linestyle=":", linewidth=1)
    _det_axes(ax, (lo_x, hi_x, lo_y, hi_y), pad=step * (len(data) + 2))
    if clipped_any:
        ax.plot([], [], marker="v", linestyle="none", color="0.4",
                label=f"rate below {100 * lo_x:.2g} % (x) or {100 * lo_y:.2g} % (y),\n"
                      "or above the top: drawn in the\nband outside the axis limits")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0,
              frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    return fig, ax


def _lane(v, rate, lo, hi, edges, offset):
    """Move the points of ``v`` whose ``rate`` lies beyond ``[lo, hi]`` ``offset`` past the edge."""
    return np.where(rate < lo, edges[0] - offset, np.where(rate > hi, edges[1] + offset, v))


def _det_axes(ax, bounds, pad=0.08):
    """Normal-deviate axes over ``bounds`` (fractions), a band ``pad`` wide beyond them."""
    import bob.measure

    ticks = np.array([0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6,
                      0.8, 0.9, 0.95, 0.98, 0.99])
    lo_x, hi_x, lo_y, hi_y = bounds
    x0, x1 = bob.measure.ppndf(lo_x), bob.measure.ppndf(hi_x)
    y0, y1 = bob.measure.ppndf(lo_y), bob.measure.ppndf(hi_y)
    ax.set_xlim(x0 - pad, x1 + pad)
    ax.set_ylim(y0 - pad, y1 + pad)
    for v in (x0, x1):
        ax.axvline(v, color="0.75", linewidth=0.8)
    for v in (y0, y1):
        ax.axhline(v, color="0.75", linewidth=0.8)
    for axis, lo, hi in ((ax.xaxis, lo_x, hi_x), (ax.yaxis, lo_y, hi_y)):
        t = ticks[(ticks >= lo) & (ticks <= hi)]
        axis.set_ticks(bob.measure.ppndf(t), [f"{100 * v:g}" for v in t])
    _pyplot().setp(ax.get_xticklabels(), rotation=60)
    ax.set_xlabel("FMR (%)")
    ax.set_ylabel("FNMR / attacks rejected (%)")
    ax.grid(True, alpha=0.3)


def det_plot(curves, path, title=None, fmrs=(), figsize=(9.0, 5.0), dpi=100,
             limits=(0.01, 99, 0.01, 99)):
    """DET plot, one curve per ``(label, negatives, positives)``.

    For an attack curve, ``negatives`` are the bona fide impostor scores and ``positives``
    the attack scores: the y axis is then the share of rejected attacks (1 - RSR) at each
    FMR. Curves named ``"bona fide..."`` are drawn in black, the others in distinct colours and
    line styles; the legend sits right of the axes. Rates of 0 % (and 100 %) are drawn on the
    axis edge and marked (see :func:`det_figure`).

    Parameters
    ----------
    curves : sequence of (str, array-like, array-like)
        Label, negative scores ``(n,)``, positive scores ``(m,)``; NaN scores are left out.
    path : str or Path
        Output PNG of ``figsize * dpi`` pixels.
    title : str, optional
        Figure title (e.g. the model and the data).
    fmrs : sequence of float
        FMRs marked by vertical dotted lines (e.g. the thresholds of the RSR table).
    limits : (float, float, float, float)
        Axis limits in percent (xmin, xmax, ymin, ymax); the minima go lower when the data's
        smallest non-zero rate needs it.

    Returns
    -------
    Path
    """
    plt = _pyplot()
    fig, _ = det_figure(curves, title=title, fmrs=fmrs, figsize=figsize, limits=limits)
    out = _save(fig, path, dpi)
    plt.close(fig)
    return out
