"""Faces side by side: originals and their reconstructions in one captioned PNG grid.

:func:`save_faces` stores the faces of a grid (``.npz``), :func:`load_faces` reads them back and
:func:`face_grid` draws them (written atomically), as ``bob facerev rsr --faces`` and the grid's
report do.
"""

from pathlib import Path

import numpy as np

from ..utils import atomic_path


def _as_uint8_images(x, name):
    x = np.asarray(x)
    if x.dtype != np.uint8:
        raise ValueError(f"{name} must be uint8 images (Bob format), got dtype {x.dtype}; "
                         "convert floats in [0, 1] with (x * 255).round().astype('uint8')")
    if x.ndim < 4 or x.shape[-3] != 3:
        raise ValueError(f"{name} must have shape (N, 3, H, W), got {x.shape}")
    return x


def _font(size):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def face_grid_font_size(h):
    """Caption font size (pixels) for faces ``h`` pixels high: 12 to 16."""
    return int(min(16, max(12, h // 8)))


def face_grid_size(n, h, w, rows=2, pad=4, label_width=None, font_size=None):
    """Pixel size ``(width, height)`` of a :func:`face_grid` image.

    The grid has a column of row labels (``label_width`` pixels, default about 11 characters
    wide) left of the faces, and a band of two caption lines over the first row.
    """
    font_size = font_size or face_grid_font_size(h)
    label_width = _label_width(font_size) if label_width is None else label_width
    caption = 2 * (font_size + 2) + pad
    return label_width + n * w + (n + 1) * pad, caption + rows * (h + pad) + pad


def _label_width(font_size):
    return int(7 * font_size)


def fit_text(text, font, width, max_lines=2):
    """Lines of ``text`` that fit ``width`` pixels in ``font``: wrapped, then shortened with "…".

    Words are split at spaces, ``-``, ``_`` and ``=`` (kept at the end of their line); a word
    wider than ``width`` is broken between characters; what does not fit in ``max_lines`` ends
    in "…".
    """
    import re

    def fits(t):
        return font.getlength(t) <= width

    words = [w for w in re.split(r"(?<=[\s\-_=])", str(text)) if w]
    lines, line = [], ""
    for word in words:
        if fits(line + word):
            line += word
            continue
        if line:
            lines.append(line.rstrip())
        line = word.lstrip()
        while not fits(line) and len(line) > 1:  # a word wider than the cell: break it
            cut = max(i for i in range(1, len(line) + 1) if fits(line[:i]) or i == 1)
            lines.append(line[:cut])
            line = line[cut:]
    if line.strip():
        lines.append(line.rstrip())
    if len(lines) > max_lines:
        last = lines[max_lines - 1]
        while last and not fits(last + "…"):
            last = last[:-1]
        lines = lines[: max_lines - 1] + [last + "…"]
    return lines or [""]


def face_grid(originals, reconstructions, labels, path, row_labels=None, pad=4,
              label_width=None, font_size=None):
    """PNG grid of original faces (top row) over their reconstructions (one row per setting).

    Parameters
    ----------
    originals : ndarray, shape (N, 3, H, W), uint8
        Original aligned faces, RGB (Bob format).
    reconstructions : ndarray, shape (N, 3, H, W) or (R, N, 3, H, W), uint8
        Reconstructed faces; with ``R`` settings (e.g. unprotected, K=32 P=8, ...), one row each.
        Faces of another size are resized to ``(H, W)``.
    labels : sequence of str, length N
        Column captions (e.g. subject ids), over the originals (wrapped to two lines).
    path : str or Path
        Output PNG; its size is :func:`face_grid_size` ``(N, H, W, rows=1 + R)``.
    row_labels : sequence of str, length R, optional
        Name of each reconstruction row, in the label column left of the faces.
    label_width, font_size : int, optional
        Width of the label column and caption font size in pixels (default from ``H``).

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
    font_size = font_size or face_grid_font_size(h)
    label_width = _label_width(font_size) if label_width is None else label_width
    font, line = _font(font_size), font_size + 2
    rows = 1 + rec.shape[0]
    width, height = face_grid_size(n, h, w, rows, pad, label_width, font_size)
    canvas = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(canvas)

    def tile(img):
        im = Image.fromarray(np.ascontiguousarray(img.transpose(1, 2, 0)))
        return im if im.size == (w, h) else im.resize((w, h), Image.BILINEAR)

    def write(text, x, y, cell_width, max_lines):
        for k, t in enumerate(fit_text(text, font, cell_width, max_lines)):
            draw.text((x, y + k * line), t, fill="black", font=font)

    top = 2 * line + pad
    names = ["original"] + [str(r) for r in (row_labels if row_labels is not None
                                             else ["reconstruction"] * rec.shape[0])]
    for i in range(n):
        write(labels[i], label_width + pad + i * (w + pad), pad, w, 2)
    for r in range(rows):
        y = top + pad + r * (h + pad)
        write(names[r], pad, y, label_width - pad, max(1, h // line))
        for i in range(n):
            x = label_width + pad + i * (w + pad)
            canvas.paste(tile(orig[i] if r == 0 else rec[r - 1, i]), (x, y))
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
