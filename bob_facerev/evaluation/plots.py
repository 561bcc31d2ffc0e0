"""Pictures of an attack evaluation: RSR heatmaps, DET curves, faces side by side.

All figures are drawn with matplotlib's Agg backend (no display needed) and written atomically.
"""

from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_path
from .rsr import display_name, fmr_label, label_columns, sort_results


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
    from .rsr import _sort_key

    uniq = list(dict.fromkeys(values))
    keys = _sort_key(uniq)
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


def det_plot(curves, path, title=None, fmrs=(), figsize=(6.0, 5.0), dpi=100,
             limits=(0.01, 99, 0.01, 99)):
    """DET plot, one curve per ``(label, negatives, positives)``.

    For an attack curve, ``negatives`` are the bona fide impostor scores and ``positives``
    the attack scores: the y axis is then the share of rejected attacks (1 - RSR) at each
    FMR. Drawn with :func:`bob.measure.plot.det`.

    Parameters
    ----------
    curves : sequence of (str, array-like, array-like)
        Label, negative scores ``(n,)``, positive scores ``(m,)``; NaN scores are left out.
    path : str or Path
        Output PNG of ``figsize * dpi`` pixels.
    title : str, optional
        Figure title.
    fmrs : sequence of float
        FMRs marked by vertical dotted lines (e.g. the thresholds of the RSR table).
    limits : (float, float, float, float)
        Axis limits in percent (xmin, xmax, ymin, ymax), as :func:`bob.measure.plot.det_axis`.

    Returns
    -------
    Path
    """
    import bob.measure
    import bob.measure.plot

    plt = _pyplot()
    if not curves:
        raise ValueError("det_plot needs at least one (label, negatives, positives) curve")
    fig = plt.figure(figsize=figsize)
    ax = fig.add_subplot(111)
    plt.sca(ax)
    styles = ["-", "--", "-.", ":"]
    for i, (label, neg, pos) in enumerate(curves):
        neg = np.asarray(neg, np.float64)
        pos = np.asarray(pos, np.float64)
        neg, pos = neg[~np.isnan(neg)], pos[~np.isnan(pos)]
        if neg.size == 0 or pos.size == 0:
            raise ValueError(f"DET curve {label!r} has {neg.size} negative and {pos.size} "
                             "positive scores; both must be non-empty")
        bob.measure.plot.det(neg, pos, npoints=500, label=label,
                             linestyle=styles[(i // 10) % len(styles)], color=f"C{i % 10}")
    for f in fmrs:
        ax.axvline(bob.measure.ppndf(f), color="0.5", linestyle=":", linewidth=1)
    bob.measure.plot.det_axis(list(limits))
    plt.setp(ax.get_xticklabels(), rotation=60)
    ax.set_xlabel("FMR (%)")
    ax.set_ylabel("FNMR / attacks rejected (%)")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7, loc="upper right")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    out = _save(fig, path, dpi)
    plt.close(fig)
    return out


def _as_uint8_images(x, name):
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 images (Bob format), got dtype {x.dtype}; "
                         "convert floats in [0, 1] with (x * 255).round().astype('uint8')")
    if x.ndim < 4 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {x.shape}")
    return x


def face_grid_size(n, h, w, rows=2, pad=4, label_height=14):
    """Pixel size ``(width, height)`` of a :func:`face_grid` image."""
    return n * w + (n + 1) * pad, rows * (h + label_height + pad) + pad


def face_grid(originals, reconstructions, labels, path, row_labels=None, pad=4,
              label_height=14):
    """PNG grid of original faces (top row) over their reconstructions (one row per setting).

    Parameters
    ----------
    originals : ndarray, shape (N, 3, H, W), uint8
        Original aligned faces, RGB (Bob format).
    reconstructions : ndarray, shape (N, 3, H, W) or (R, N, 3, H, W), uint8
        Reconstructed faces; with ``R`` settings (e.g. unprotected, K=32 P=8, ...), one row each.
        Faces of another size are resized to ``(H, W)``.
    labels : sequence of str, length N
        Column captions (e.g. subject ids).
    path : str or Path
        Output PNG; its size is :func:`face_grid_size` ``(N, H, W, rows=1 + R)``.
    row_labels : sequence of str, length R, optional
        Caption prefix per reconstruction row (the first column shows it).

    Returns
    -------
    Path
    """
    from PIL import Image, ImageDraw

    orig = _as_uint8_images(originals, "originals")
    rec = _as_uint8_images(reconstructions, "reconstructions")
    if orig.ndim != 4:
        raise ValueError(f"originals must have shape (N, 3, H, W), got {orig.shape}")
    if rec.ndim == 4:
        rec = rec[None]
    if rec.ndim != 5:
        raise ValueError(f"reconstructions must be (N, 3, H, W) or (R, N, 3, H, W), got {rec.shape}")
    n, _, h, w = orig.shape
    if rec.shape[1] != n or len(labels) != n:
        raise ValueError(f"{n} originals, {rec.shape[1]} reconstructions per row and "
                         f"{len(labels)} labels: they must match")
    if row_labels is not None and len(row_labels) != rec.shape[0]:
        raise ValueError(f"{len(row_labels)} row_labels for {rec.shape[0]} reconstruction rows")
    rows = 1 + rec.shape[0]
    width, height = face_grid_size(n, h, w, rows, pad, label_height)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)

    def tile(img):
        im = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)))
        return im if im.size == (w, h) else im.resize((w, h), Image.BILINEAR)

    for r in range(rows):
        y = pad + r * (h + label_height + pad)
        for i in range(n):
            x = pad + i * (w + pad)
            canvas.paste(tile(orig[i] if r == 0 else rec[r - 1, i]), (x, y + label_height))
            if r == 0:
                text = str(labels[i])
            elif i == 0:
                text = str(row_labels[r - 1]) if row_labels is not None else "reconstruction"
            else:
                text = ""
            if i == 0 and r == 0:
                text = f"original {text}"
            draw.text((x, y + 1), text[: max(1, w // 6)], fill="black")
    path = Path(path)
    with atomic_path(path) as tmp:
        canvas.save(tmp, format="PNG")
    return path


def load_faces(path):
    """Read a faces ``.npz`` for :func:`face_grid`.

    Keys: ``originals`` (N, 3, H, W) uint8, ``reconstructions`` (N, 3, H, W) or
    (R, N, 3, H, W) uint8, ``labels`` (N,) str, optional ``row_labels`` (R,) str.

    Returns
    -------
    dict
        The arrays, ready for ``face_grid(**faces, path=...)``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"faces file {str(path)!r} does not exist")
    with np.load(path, allow_pickle=False) as z:
        missing = [k for k in ("originals", "reconstructions", "labels") if k not in z.files]
        if missing:
            raise ValueError(f"{str(path)!r} lacks the key(s) {missing}; expected originals, "
                             "reconstructions, labels (and optionally row_labels)")
        out = {k: z[k] for k in ("originals", "reconstructions")}
        out["labels"] = [str(x) for x in z["labels"]]
        out["row_labels"] = [str(x) for x in z["row_labels"]] if "row_labels" in z.files \
            else None
    return out


def save_faces(path, originals, reconstructions, labels, row_labels=None):
    """Write a faces ``.npz`` (atomic) in the layout :func:`load_faces` reads."""
    path = Path(path)
    arrays = dict(
        originals=_as_uint8_images(originals, "originals"),
        reconstructions=_as_uint8_images(reconstructions, "reconstructions"),
        labels=np.asarray([str(x) for x in labels]),
    )
    if row_labels is not None:
        arrays["row_labels"] = np.asarray([str(x) for x in row_labels])
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return path
