"""LFW (Labeled Faces in the Wild): CSV protocols from the user's LFW folder.

Input: the standard tree ``Name/Name_0001.jpg`` (original, funneled or deep-funneled release),
the official View 2 ``pairs.txt`` and the gender lists ``male_names.txt`` / ``female_names.txt``
(one image file name per line, e.g. ``Aaron_Eckhart_0001.jpg``; the identity is the name
before ``_NNNN.jpg``). The three text files are looked for in the image folder, then in its parent.

Protocols (``dev`` group; every row has ``path, key, subject_id, template_id, gender``):

``view2``
    The 6,000 View 2 pairs (10 folds of 300 genuine + 300 impostor) as sparse scoring: the first
    image of each pair is enrolled, the second probed, and ``for_matching.csv`` lists the pairs
    in file order with their ``fold`` (1-10) as an extra column. The bona fide scores that set
    the thresholds.
``attack``
    One image per identity (all 5,749 identities), with gender. Rule: the identity's first image
    ``Name_0001.jpg`` (``pick="first"``, default), or one image drawn with ``numpy``'s
    ``default_rng(seed)`` over the sorted identities (``pick="random"``).
``attack-balanced``
    The study's gender-balanced test set: the same images, restricted to identities of known
    gender, with equally many men and women: ``n`` = the number of identities of the smaller
    gender (or ``n_per_gender``); where a gender has more, ``n`` of them are drawn with
    ``default_rng(seed)`` (``balance="random"``, default) or the first ``n`` by sorted name are
    kept (``balance="sorted"``).
``all``
    Every image, enrolled and probed (all-vs-all).

Attack protocols enrol and probe the same images with ``for_matching.csv`` pairing each probe
with its own reference (type-I attack: the attack replaces the probe by a reconstruction).
Identities in neither gender list get ``gender = ""`` (and are left out of ``attack-balanced``).

Configuration::

    bob config set bob_facerev.lfw.directory /path/to/lfw            # the images
    bob facerev db build lfw /path/to/lfw                             # writes the protocols
    bob config set bob_facerev.lfw.protocols /path/to/protocols       # only with -o elsewhere

The protocols go to ``bob_facerev.lfw.protocols`` if set, else ``~/.cache/bob_facerev/lfw``
(``$XDG_CACHE_HOME`` is honoured).

Photos without a detected face are cropped at
:data:`bob_facerev.face.crop.DEFAULT_FALLBACK_EYES`, derived from LFW's centring of the face
detector's box (the samples carry them as ``fallback_eyes``; see :mod:`bob_facerev.face.crop`).
"""

from __future__ import annotations

import os
import re

from pathlib import Path

import numpy as np

from .images import check_images
from .protocols import (
    annotate_images,
    attack_protocol,
    configured_database,
    default_protocols_path,
    eye_columns,
    read_manifest,
    sample_row,
    write_protocols,
)

#: protocol folders written by :func:`build_lfw`
PROTOCOLS = ("view2", "attack", "attack-balanced", "all")

_IMAGE = re.compile(r"^(?P<name>.+)_(?P<number>\d{4})\.jpg$")


def image_path(name, number):
    """Relative path of image ``number`` (1-based) of identity ``name``: ``Name/Name_0001.jpg``."""
    return f"{name}/{name}_{int(number):04d}.jpg"


def scan_lfw(root):
    """Images of an LFW tree.

    Parameters
    ----------
    root : str or pathlib.Path
        The folder holding ``Name/Name_0001.jpg``.

    Returns
    -------
    dict
        ``{name: [number, ...]}`` (sorted names, sorted image numbers).

    Raises
    ------
    ValueError
        If the folder does not exist, is empty, or holds no ``Name/Name_NNNN.jpg`` file.
    """
    root = Path(root)
    if not root.is_dir():
        raise ValueError(f"LFW folder {root} does not exist (or is not a folder).")
    entries = sorted(root.iterdir())
    if not entries:
        raise ValueError(f"LFW folder {root} is empty: expected one folder per person, Name/Name_0001.jpg.")
    images = {}
    for d in entries:
        if not d.is_dir():
            continue
        numbers = []
        for f in d.iterdir():
            m = _IMAGE.match(f.name)
            if m and m["name"] == d.name:
                numbers.append(int(m["number"]))
        if numbers:
            images[d.name] = sorted(numbers)
    if not images:
        sample = ", ".join(e.name for e in entries[:5])
        raise ValueError(
            f"{root} is not an LFW folder: no Name/Name_NNNN.jpg image found (it holds: {sample}"
            f"{', ...' if len(entries) > 5 else ''}). Point to the folder that holds one folder per "
            "person (e.g. lfw/ or lfw-deepfunneled/)."
        )
    return dict(sorted(images.items()))


def find_file(root, filename):
    """``root/filename`` or ``root/../filename``; ``ValueError`` naming both places if neither exists."""
    root = Path(root)
    for candidate in (root / filename, root.parent / filename):
        if candidate.is_file():
            return candidate
    raise ValueError(
        f"Missing {filename}: looked in {root} and {root.parent}. Download it from the LFW site "
        "(http://vis-www.cs.umass.edu/lfw/) and put it next to the image folders."
    )


def read_pairs(path):
    """Parse the official View 2 ``pairs.txt``.

    Format: a header ``"10 300"`` (folds, pairs of each kind per fold), then per fold 300 genuine
    lines ``name n1 n2`` followed by 300 impostor lines ``name1 n1 name2 n2``.

    Returns
    -------
    list of tuple
        ``(fold, name1, number1, name2, number2)`` in file order, ``fold`` 1-based.
    """
    path = Path(path)
    lines = [line.split() for line in path.read_text().splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines or len(lines[0]) != 2 or not all(v.isdigit() for v in lines[0]):
        raise ValueError(
            f"{path}: first line must be '<folds> <pairs per fold>' (View 2: '10 300'), "
            f"got {' '.join(lines[0]) if lines else 'an empty file'!r}. Is this the View 2 pairs.txt?"
        )
    folds, n = int(lines[0][0]), int(lines[0][1])
    expected = 1 + folds * 2 * n
    if len(lines) != expected:
        raise ValueError(f"{path}: expected {expected} lines for {folds} folds of {n}+{n} pairs, found {len(lines)}.")
    pairs = []
    for i, parts in enumerate(lines[1:], start=2):
        fold = (i - 2) // (2 * n) + 1
        genuine = (i - 2) % (2 * n) < n
        try:
            if genuine and len(parts) == 3:
                pairs.append((fold, parts[0], int(parts[1]), parts[0], int(parts[2])))
                continue
            if not genuine and len(parts) == 4:
                pairs.append((fold, parts[0], int(parts[1]), parts[2], int(parts[3])))
                continue
        except ValueError:
            pass
        form = "'name n1 n2'" if genuine else "'name1 n1 name2 n2'"
        raise ValueError(f"{path}, line {i}: expected {form} (fold {fold}), got {' '.join(parts)!r}.")
    return pairs


def read_genders(male_list, female_list):
    """``{name: "M"|"F"}`` from the LFW gender lists (one image file name per line).

    Names in both lists are left out (their gender is unknown, ``""``).
    """
    genders, both = {}, set()
    for path, g in ((male_list, "M"), (female_list, "F")):
        for line in Path(path).read_text().splitlines():
            line = line.strip()
            if not line:
                continue
            m = _IMAGE.match(line)
            if not m:
                raise ValueError(f"{path}: expected image file names like Aaron_Eckhart_0001.jpg, got {line!r}.")
            name = m["name"]
            if genders.get(name, g) != g:
                both.add(name)
            genders[name] = g
    for name in both:
        del genders[name]
    return genders


def pick_images(images, pick="first", seed=2021):
    """One image number per identity (see the module doc for the rule)."""
    if pick == "first":
        return {name: numbers[0] for name, numbers in images.items()}
    if pick == "random":
        rng = np.random.default_rng(seed)
        return {name: numbers[int(rng.integers(len(numbers)))] for name, numbers in images.items()}
    raise ValueError(f"Unknown pick rule {pick!r}: use 'first' or 'random'.")


def balanced_identities(genders, names, n_per_gender=None, balance="random", seed=2021):
    """The gender-balanced identity selection (sorted names; see the module doc)."""
    groups = {g: sorted(n for n in names if genders.get(n) == g) for g in ("M", "F")}
    n = min(len(v) for v in groups.values()) if n_per_gender is None else int(n_per_gender)
    chosen = []
    for g in ("M", "F"):
        group = groups[g]
        if n > len(group):
            raise ValueError(f"n_per_gender={n} but only {len(group)} identities have gender {g}.")
        if balance == "sorted":
            chosen += group[:n]
        elif balance == "random":
            idx = np.random.default_rng(seed).choice(len(group), size=n, replace=False)
            chosen += [group[i] for i in sorted(idx)]
        else:
            raise ValueError(f"Unknown balance rule {balance!r}: use 'random' or 'sorted'.")
    return sorted(chosen)


def lfw_protocols(images, pairs, genders, annotations=None, pick="first", seed=2021, n_per_gender=None, balance="random"):
    """The LFW protocols as ``{protocol: {relpath: rows}}`` (pure function of its inputs).

    Parameters
    ----------
    images : dict
        ``{name: [number, ...]}`` from :func:`scan_lfw`.
    pairs : list
        From :func:`read_pairs`.
    genders : dict
        From :func:`read_genders`.
    annotations : dict, optional
        ``{relative path: {"leye": (y, x), "reye": (y, x)} or None}``: adds eye columns.
    """

    def row(name, number):
        path = image_path(name, number)
        extra = {"gender": genders.get(name, "")}
        if annotations is not None:
            extra.update(eye_columns(annotations.get(path)))
        return sample_row(path, name, template_id=os.path.splitext(path)[0], **extra)

    enroll, probe, matching = {}, {}, []
    for fold, n1, i1, n2, i2 in pairs:
        a, b = row(n1, i1), row(n2, i2)
        enroll.setdefault(a["template_id"], a)
        probe.setdefault(b["template_id"], b)
        matching.append({"enroll_template_id": a["template_id"], "probe_template_id": b["template_id"], "fold": fold})

    picked = pick_images(images, pick, seed)
    attack = [row(name, picked[name]) for name in images]
    selected = set(balanced_identities(genders, images, n_per_gender, balance, seed))
    everything = [row(name, i) for name, numbers in images.items() for i in numbers]
    return {
        "view2": {
            "dev/for_enrolling.csv": sorted(enroll.values(), key=lambda r: r["path"]),
            "dev/for_probing.csv": sorted(probe.values(), key=lambda r: r["path"]),
            "dev/for_matching.csv": matching,
        },
        "attack": attack_protocol(attack),
        "attack-balanced": attack_protocol([r for r in attack if r["subject_id"] in selected]),
        "all": {"dev/for_enrolling.csv": everything, "dev/for_probing.csv": everything},
    }


def _check_pairs(root, pairs_file, pairs, images):
    """Refuse a ``pairs.txt`` naming images that are not in the folder."""
    missing = []
    for k, (fold, n1, i1, n2, i2) in enumerate(pairs):
        for name, i in ((n1, i1), (n2, i2)):
            if i not in images.get(name, ()):
                missing.append(f"line {k + 2}: {root / image_path(name, i)}")
    if missing:
        raise ValueError(
            f"{pairs_file} names {len(missing)} image(s) missing from {root}: "
            + "; ".join(missing[:10])
            + (" ..." if len(missing) > 10 else "")
            + ". Is this the right LFW folder for this pairs.txt?"
        )


def _counts(images, paths, pairs, genders, protocols, annotations):
    """The manifest's ``summary``: identities, images, pairs, protocol sizes, genders."""
    counts = {
        "identities": len(images),
        "images": len(paths),
        "pairs": len(pairs),
        "genuine_pairs": sum(p[1] == p[3] for p in pairs),
        "folds": len({p[0] for p in pairs}),
        "attack": len(protocols["attack"]["dev/for_probing.csv"]),
        "attack-balanced": len(protocols["attack-balanced"]["dev/for_probing.csv"]),
        "male_identities": sum(genders.get(n) == "M" for n in images),
        "female_identities": sum(genders.get(n) == "F" for n in images),
    }
    if annotations is not None:
        counts["no_face"] = sum(v is None for v in annotations.values())
    return counts


def build_lfw(root, output=None, annotate=False, pick="first", seed=2021, n_per_gender=None, balance="random", progress=True):
    """Validate an LFW folder and write its protocols.

    Parameters
    ----------
    root : str or pathlib.Path
        The LFW image folder (``Name/Name_0001.jpg``).
    output : str or pathlib.Path, optional
        Protocol folder (default: :func:`default_protocols_path`).
    annotate : bool
        Store eye positions found by :class:`bob_facerev.face.annotator.DlibAnnotator`.
    pick, seed, n_per_gender, balance
        Selection rules of the attack protocols (module doc).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    tuple
        ``(output folder, manifest dict)``; the manifest holds the counts.

    Raises
    ------
    ValueError
        Not an LFW folder, missing ``pairs.txt``/name lists, a pair naming a missing image, an
        unreadable image. Nothing is written then.
    """
    root = Path(root).expanduser().absolute()
    images = scan_lfw(root)
    pairs_file = find_file(root, "pairs.txt")
    male, female = find_file(root, "male_names.txt"), find_file(root, "female_names.txt")
    pairs = read_pairs(pairs_file)
    genders = read_genders(male, female)

    _check_pairs(root, pairs_file, pairs, images)
    paths = [image_path(n, i) for n, numbers in images.items() for i in numbers]
    check_images(root, paths, "LFW", progress)
    annotations = annotate_images(root, paths, progress) if annotate else None
    protocols = lfw_protocols(images, pairs, genders, annotations, pick, seed, n_per_gender, balance)
    counts = _counts(images, paths, pairs, genders, protocols, annotations)
    manifest = {
        "database": "lfw",
        "source": str(root),
        "pairs": str(pairs_file),
        "options": {"pick": pick, "seed": seed, "n_per_gender": n_per_gender, "balance": balance, "annotate": annotate},
        "summary": counts,
    }
    output = default_protocols_path("lfw") if output is None else output
    output = write_protocols(output, protocols, manifest)
    return output, read_manifest(output)


def lfw_database(protocol="view2", protocols_path=None, original_directory=None):
    """An LFW :class:`bob.bio.base.database.CSVDatabase` (protocols of :func:`build_lfw`).

    Parameters
    ----------
    protocol : str
        One of :data:`PROTOCOLS`.
    protocols_path, original_directory : str, optional
        Default to Bob's configuration (``bob_facerev.lfw.protocols``, ``bob_facerev.lfw.directory``).
    """
    return configured_database("lfw", protocol, PROTOCOLS, protocols_path, original_directory)
