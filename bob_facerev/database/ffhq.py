"""FFHQ (Flickr-Faces-HQ): train / validation lists from the user's folder of FFHQ images.

Input: the 1024x1024 PNG release (``00000/00000.png`` ... in subfolders of 1,000), the 128x128
thumbnails (same layout), or a flat folder of numbered images (``00000.png`` or ``.jpg``). FFHQ
has no identities: every image is its own subject (``subject_id`` = ``key``).

Protocol ``train-validation``:

* ``train/for_background_model.csv``: the training images;
* ``dev``: the validation images, enrolled and probed, each compared with itself only
  (the layout of the attack protocols: a reconstruction probe is scored against its original).

The split is a random 90/10 split of the images sorted by path:
``numpy.random.default_rng(seed).permutation(N)``, the first ``round(0.1 * N)`` indices are the
validation set (default ``seed=2021``, as in the study).

Eye positions. FFHQ images are already aligned by FFHQ's fixed recipe (``recreate_aligned_images``
in NVlabs' ``download_ffhq.py``): with ``e`` = the eye-to-eye vector and ``m`` = the eye-to-mouth
vector of the 68 dlib landmarks, the crop is a square of half-side ``max(2|e|, 1.8|m|)`` centred at
``eye_centre + 0.1 m``, rotated so that the eyes are horizontal. Whenever ``|m| <= 1.11 |e|``
(92 % of 302 real faces we measured, median ``|m|/|e|`` = 0.957) the eyes land exactly at
``x = 3/8`` and ``5/8`` of the width and at ``y = 1/2 - 0.025 |m|/|e|`` of the height, i.e.
``0.476`` for the median face. For an image of size ``H x W`` the stored positions are therefore::

    reye = (0.476 H, 0.375 W)   # the subject's right eye, on the image's left
    leye = (0.476 H, 0.625 W)   # 1024 x 1024: (487.4, 384) and (487.4, 640)

``annotate=True`` (``--annotate``) stores the positions found by the dlib annotator instead
(falling back to the fixed ones where it finds no face).
"""

from __future__ import annotations

import re

from pathlib import Path

import numpy as np

from .images import check_image
from .protocols import (
    annotate_images,
    attack_protocol,
    configured_paths,
    default_protocols_path,
    eye_columns,
    make_database,
    read_manifest,
    sample_row,
    write_protocols,
)

#: protocol folders written by :func:`build_ffhq`
PROTOCOLS = ("train-validation",)

#: eye positions as fractions of (height, width) in FFHQ's alignment (module doc)
EYES = {"leye": (0.476, 0.625), "reye": (0.476, 0.375)}

_NUMBERED = re.compile(r"^\d+\.(png|jpg|jpeg)$", re.IGNORECASE)


def fixed_eyes(height, width):
    """Bob eye annotations of an FFHQ-aligned image of ``height x width`` pixels."""
    return {k: (fy * height, fx * width) for k, (fy, fx) in EYES.items()}


def scan_ffhq(root):
    """Relative paths of the FFHQ images of ``root`` (numbered images, flat or one level deep).

    Raises
    ------
    ValueError
        If the folder does not exist, is empty, or holds no numbered image.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"FFHQ folder {root} does not exist (or is not a folder).")
    entries = sorted(root.iterdir())
    if not entries:
        raise ValueError(f"FFHQ folder {root} is empty: expected numbered images (00000.png, ...) or subfolders 00000/, ...")
    paths = []
    for e in entries:
        if e.is_file() and _NUMBERED.match(e.name):
            paths.append(e.name)
        elif e.is_dir():
            paths += [f"{e.name}/{f.name}" for f in sorted(e.iterdir()) if f.is_file() and _NUMBERED.match(f.name)]
    if not paths:
        sample = ", ".join(e.name for e in entries[:5])
        raise ValueError(
            f"{root} is not an FFHQ folder: no numbered image (00000.png, 00000/00000.png, ...) found "
            f"(it holds: {sample}{', ...' if len(entries) > 5 else ''}). Point to images1024x1024/, "
            "thumbnails128x128/ or a flat folder of numbered images."
        )
    return sorted(paths)


def split(paths, seed=2021, validation=0.1):
    """Reproducible random split: ``(train, validation)`` lists of paths, each sorted."""
    paths = sorted(paths)
    perm = np.random.default_rng(seed).permutation(len(paths))
    n_val = int(round(validation * len(paths)))
    val = {paths[i] for i in perm[:n_val]}
    return [p for p in paths if p not in val], sorted(val)


def ffhq_protocols(paths, sizes, seed=2021, annotations=None):
    """The FFHQ protocols ``{protocol: {relpath: rows}}``.

    Parameters
    ----------
    paths : list of str
        From :func:`scan_ffhq`.
    sizes : dict
        ``{path: (height, width)}``.
    annotations : dict, optional
        ``{path: eyes or None}`` from the annotator; missing or ``None`` -> fixed positions.
    """
    train, val = split(paths, seed)

    def row(path, with_template):
        eyes = (annotations or {}).get(path) or fixed_eyes(*sizes[path])
        key = path.rsplit(".", 1)[0]
        return sample_row(path, key, template_id=key if with_template else None, **eye_columns(eyes))

    return {
        "train-validation": {
            "train/for_background_model.csv": [row(p, False) for p in train],
            **attack_protocol([row(p, True) for p in val]),
        }
    }


def build_ffhq(root, output=None, annotate=False, seed=2021, progress=True):
    """Validate an FFHQ folder (every image readable) and write its protocols.

    Returns
    -------
    tuple
        ``(output folder, manifest dict)``.
    """
    from tqdm import tqdm

    root = Path(root).expanduser().absolute()
    paths = scan_ffhq(root)
    sizes, unreadable = {}, []
    for path in tqdm(paths, desc="checking FFHQ images", disable=not progress, unit="img"):
        try:
            sizes[path] = check_image(root / path)
        except ValueError as e:
            unreadable.append(str(e))
    if unreadable:
        raise ValueError(f"{len(unreadable)} unreadable image(s) in {root}: " + "; ".join(unreadable[:10]))
    annotations = None
    if annotate:
        annotations = annotate_images(root, paths, progress)
    protocols = ffhq_protocols(paths, sizes, seed, annotations)
    p = protocols["train-validation"]
    counts = {
        "images": len(paths),
        "train": len(p["train/for_background_model.csv"]),
        "validation": len(p["dev/for_probing.csv"]),
    }
    if annotations is not None:
        counts["no_face"] = sum(v is None for v in annotations.values())
    manifest = {
        "database": "ffhq",
        "source": str(root),
        "options": {"seed": seed, "annotate": annotate, "eyes": None if annotate else EYES},
        "summary": counts,
    }
    output = default_protocols_path("ffhq") if output is None else output
    output = write_protocols(output, protocols, manifest)
    return output, read_manifest(output)


def ffhq_database(protocol="train-validation", protocols_path=None, original_directory=None):
    """An FFHQ :class:`bob.bio.base.database.CSVDatabase` (protocols of :func:`build_ffhq`).

    ``background_model_samples()`` are the training images, ``references()``/``probes()`` the
    validation images; every sample has ``annotations`` (eye positions), and ``fallback_eyes``
    = :data:`EYES` (used by the dlib crop when its re-annotation finds no face).
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown FFHQ protocol {protocol!r}: use one of {PROTOCOLS}.")
    from bob_facerev.face.crop import with_fallback_eyes

    protocols_path, original_directory = configured_paths("ffhq", protocols_path, original_directory)
    database = make_database("facerev-ffhq", protocol, protocols_path, original_directory)
    return with_fallback_eyes(database, EYES)  # where no face is found: FFHQ's alignment
