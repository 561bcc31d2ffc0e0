"""CFP (Celebrities in Frontal-Profile): CSV protocols from the user's CFP folder.

Sengupta, Chen, Castillo, Patel, Chellappa, Jacobs, *Frontal to Profile Face Verification in the
Wild*, IEEE WACV 2016. Released by its authors for research use; cite it with results on it.

Input: the release's own tree, the folder holding ``Data/`` and ``Protocol/``:

- ``Data/Images/NNN/frontal/01.jpg .. 10.jpg`` and ``Data/Images/NNN/profile/01.jpg .. 04.jpg``
  (500 people);
- ``Protocol/Pair_list_F.txt`` and ``Protocol/Pair_list_P.txt``: lines
  ``index ../Data/Images/NNN/frontal/NN.jpg`` (paths relative to ``Protocol/``);
- ``Protocol/Split/FF/01..10/{same,diff}.txt`` and ``Protocol/Split/FP/...``: lines ``i,j``,
  indices into the frontal list (FF: both; FP: ``i`` frontal, ``j`` into the profile list).

Protocols (``dev`` group; rows ``path, key, subject_id, template_id``; the subject is ``NNN``):

``ff``
    Frontal-Frontal: the 10 folds of 350 genuine + 350 impostor pairs as sparse scoring (first
    image enrolled, second probed, ``for_matching.csv`` in fold order, same then diff, with the
    ``fold`` (1-10) as an extra column). The bona fide scores that set the thresholds.
``fp``
    Frontal-Profile, the same shape: frontal images enrolled, profile images probed.
``attack``
    One frontal photo per person (all people): ``frontal/01.jpg`` (``pick="first"``, default) or
    one drawn with ``numpy``'s ``default_rng(seed)`` over the sorted people (``pick="random"``),
    enrolled and probed, each probe matched with its own reference (type-I). Type-II attacks
    score the reconstruction against the person's other frontal photos found in the bona fide
    database (``ff``; the manifest counts them as ``type2_references``).

Configuration::

    bob config set bob_facerev.cfp.directory /path/to/cfp     # the folder with Data/, Protocol/
    bob facerev db build cfp /path/to/cfp                      # writes the protocols
    bob config set bob_facerev.cfp.protocols /path/to/protocols    # only with -o elsewhere
"""

from __future__ import annotations

import os
import re

from pathlib import Path

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

#: protocol folders written by :func:`build_cfp`
PROTOCOLS = ("ff", "fp", "attack")

_FIX = ("Point to the CFP release folder, the one holding Data/Images/ and Protocol/ "
        "(cfp-dataset from the authors' site).")
_LINE = re.compile(r"^(?P<index>\d+)\s+(?:\.\./)?(?P<path>Data/Images/(?P<subject>[^/]+)/"
                   r"(?P<pose>frontal|profile)/(?P<number>\d+)\.jpg)$")


def read_pair_list(path, pose):
    """``{index: relative image path}`` from ``Pair_list_F.txt`` / ``Pair_list_P.txt``.

    Raises
    ------
    ValueError
        The file is missing, or a line is not ``index ../Data/Images/NNN/<pose>/NN.jpg``.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"Missing CFP protocol file {path}. {_FIX}")
    out = {}
    for n, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        m = _LINE.match(line.strip())
        if not m or m["pose"] != pose or int(m["index"]) in out:
            raise ValueError(
                f"{path}, line {n}: expected a new index and a {pose} image, "
                f"'index ../Data/Images/NNN/{pose}/NN.jpg', got {line.strip()!r}."
            )
        out[int(m["index"])] = m["path"]
    if not out:
        raise ValueError(f"CFP protocol file {path} is empty. {_FIX}")
    return out


def read_split(folder, first, second):
    """The pairs of one CFP split (``Protocol/Split/FF`` or ``FP``).

    Parameters
    ----------
    folder : pathlib.Path
        Holds ``01/ .. 10/``, each with ``same.txt`` and ``diff.txt`` (lines ``i,j``).
    first, second : dict
        ``{index: path}`` the indices ``i`` and ``j`` refer to.

    Returns
    -------
    list of tuple
        ``(fold, path_i, path_j, genuine)``: folds in order, each fold's same pairs then diff.
    """
    folder = Path(folder)
    folds = sorted(d.name for d in folder.iterdir() if d.is_dir()) if folder.is_dir() else []
    if not folds:
        raise ValueError(f"Missing CFP split {folder} (expected folds 01/ .. 10/ with same.txt, "
                         f"diff.txt). {_FIX}")
    pairs = []
    for fold in folds:
        for name, genuine in (("same.txt", True), ("diff.txt", False)):
            path = folder / fold / name
            if not path.is_file():
                raise ValueError(f"Missing CFP protocol file {path}. {_FIX}")
            for n, line in enumerate(path.read_text().splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    i, j = (int(v) for v in line.split(","))
                    pairs.append((int(fold), first[i], second[j], genuine))
                except (ValueError, KeyError):
                    raise ValueError(f"{path}, line {n}: expected 'i,j' with indices of the pair "
                                     f"lists, got {line.strip()!r}.") from None
    return pairs


def _subject(path):
    return path.split("/")[2]


def _pairs_protocol(pairs, row):
    enroll, probe, matching = {}, {}, []
    for fold, a, b, _ in pairs:
        a, b = row(a), row(b)
        enroll.setdefault(a["template_id"], a)
        probe.setdefault(b["template_id"], b)
        matching.append({"enroll_template_id": a["template_id"],
                         "probe_template_id": b["template_id"], "fold": fold})
    return {
        "dev/for_enrolling.csv": sorted(enroll.values(), key=lambda r: r["path"]),
        "dev/for_probing.csv": sorted(probe.values(), key=lambda r: r["path"]),
        "dev/for_matching.csv": matching,
    }


def cfp_protocols(frontal, ff, fp, annotations=None, pick="first", seed=2021):
    """The CFP protocols as ``{protocol: {relpath: rows}}`` (pure function of its inputs).

    Parameters
    ----------
    frontal : dict
        ``{index: path}`` of ``Pair_list_F.txt``.
    ff, fp : list
        From :func:`read_split`.
    annotations : dict, optional
        ``{path: {"leye": (y, x), "reye": (y, x)} or None}``: adds eye columns.
    pick, seed
        The attack selection rule (module doc).
    """
    from .lfw import pick_images

    def row(path):
        extra = eye_columns(annotations.get(path)) if annotations is not None else {}
        return sample_row(path, _subject(path), template_id=os.path.splitext(path)[0], **extra)

    people = {}
    for path in sorted(frontal.values()):
        people.setdefault(_subject(path), []).append(path)
    by_number = {s: list(range(len(paths))) for s, paths in sorted(people.items())}
    picked = pick_images(by_number, pick, seed)
    attack = [row(people[s][picked[s]]) for s in by_number]
    return {
        "ff": _pairs_protocol(ff, row),
        "fp": _pairs_protocol(fp, row),
        "attack": attack_protocol(attack),
    }


def _check_images(root, paths, progress):
    """Refuse missing (listed but absent) and unreadable images."""
    missing = [p for p in paths if not (root / p).is_file()]
    if missing:
        raise ValueError(
            f"{len(missing)} image(s) listed in {root / 'Protocol'} are missing from {root}: "
            + "; ".join(str(root / p) for p in missing[:10]) + (" ..." if len(missing) > 10 else "")
            + f". Restore them (re-extract the CFP archive). {_FIX}"
        )
    check_images(root, paths, "CFP", progress)


def build_cfp(root, output=None, annotate=False, pick="first", seed=2021, progress=True):
    """Validate a CFP folder and write its protocols.

    Parameters
    ----------
    root : str or pathlib.Path
        The CFP release folder (``Data/``, ``Protocol/``).
    output : str or pathlib.Path, optional
        Protocol folder (default: :func:`~bob_facerev.database.protocols.default_protocols_path`).
    annotate : bool
        Store eye positions found by :class:`bob_facerev.face.annotator.DlibAnnotator`.
    pick, seed
        The attack selection rule (module doc).
    progress : bool
        Show tqdm progress bars.

    Returns
    -------
    tuple
        ``(output folder, manifest dict)``; the manifest holds the counts.

    Raises
    ------
    ValueError
        Not a CFP folder, missing protocol files, a protocol naming a missing image, an
        unreadable image. Nothing is written then.
    """
    root = Path(root).expanduser().absolute()
    if not root.is_dir():
        raise ValueError(f"CFP folder {root} does not exist (or is not a folder). {_FIX}")
    protocol = root / "Protocol"
    frontal = read_pair_list(protocol / "Pair_list_F.txt", "frontal")
    profile = read_pair_list(protocol / "Pair_list_P.txt", "profile")
    ff = read_split(protocol / "Split" / "FF", frontal, frontal)
    fp = read_split(protocol / "Split" / "FP", frontal, profile)
    paths = sorted(frontal.values()) + sorted(profile.values())
    _check_images(root, paths, progress)

    annotations = annotate_images(root, paths, progress) if annotate else None
    protocols = cfp_protocols(frontal, ff, fp, annotations, pick, seed)
    attacked = {r["subject_id"]: r["path"] for r in protocols["attack"]["dev/for_probing.csv"]}
    in_ff = {r["path"] for f in ("dev/for_enrolling.csv", "dev/for_probing.csv")
             for r in protocols["ff"][f]}
    counts = {
        "identities": len({_subject(p) for p in frontal.values()}),
        "frontal_images": len(frontal),
        "profile_images": len(profile),
        "ff_pairs": len(ff),
        "ff_genuine_pairs": sum(p[3] for p in ff),
        "fp_pairs": len(fp),
        "fp_genuine_pairs": sum(p[3] for p in fp),
        "folds": len({p[0] for p in ff}),
        "attack": len(attacked),
        "type2_references": sum(_subject(p) in attacked and p != attacked[_subject(p)]
                                for p in in_ff),
    }
    if annotations is not None:
        counts["no_face"] = sum(v is None for v in annotations.values())
    manifest = {
        "database": "cfp",
        "source": str(root),
        "options": {"pick": pick, "seed": seed, "annotate": annotate},
        "summary": counts,
    }
    output = default_protocols_path("cfp") if output is None else output
    output = write_protocols(output, protocols, manifest)
    return output, read_manifest(output)


def cfp_database(protocol="ff", protocols_path=None, original_directory=None):
    """A CFP :class:`bob.bio.base.database.CSVDatabase` (protocols of :func:`build_cfp`).

    Parameters
    ----------
    protocol : str
        One of :data:`PROTOCOLS`.
    protocols_path, original_directory : str, optional
        Default to Bob's configuration (``bob_facerev.cfp.protocols``, ``bob_facerev.cfp.directory``).
    """
    return configured_database("cfp", protocol, PROTOCOLS, protocols_path, original_directory)
