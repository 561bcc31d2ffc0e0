"""The demo set bundled with the package: 10 real face photos of 5 people (public domain / CC).

Works offline with no configuration: images, their list (``images.csv``: path, subject_id,
gender), credits (``CREDITS.md``) and the CSV protocols all live in ``bob_facerev/data/demo``.

Protocols:

``verification``
    ``dev`` group, all-vs-all scoring. Enrolled: the first image of each subject (sorted by file
    name, 5 templates); probes: all other images (5). 25 scores, 5 of them genuine.
``attack``
    One image per identity (the first), with gender: enrolled and probed (the attack replaces the
    probe by a reconstruction); ``for_matching.csv`` pairs each probe with its own reference only
    (type-I attack).
"""

from __future__ import annotations

import importlib.resources

from pathlib import Path

from .protocols import attack_protocol, make_database, read_csv, sample_row, write_protocols

#: protocol names of the demo database
PROTOCOLS = ("verification", "attack")


def demo_directory():
    """The folder of the bundled demo set (``bob_facerev/data/demo``)."""
    return Path(str(importlib.resources.files("bob_facerev") / "data" / "demo"))


def demo_images():
    """Rows of ``images.csv``: dicts with ``path`` (relative to ``images/``), ``subject_id``,
    ``gender``, sorted by path."""
    return sorted(read_csv(demo_directory() / "images.csv"), key=lambda r: r["path"])


def first_per_subject(rows):
    """Split sample rows into (first row of each subject, the others); input order decides."""
    first, rest, seen = [], [], set()
    for row in rows:
        (rest if row["subject_id"] in seen else first).append(row)
        seen.add(row["subject_id"])
    return first, rest


def demo_protocols(images=None):
    """The demo protocols as ``{protocol: {relpath: rows}}`` (see :func:`write_protocols`)."""
    images = demo_images() if images is None else images
    first, rest = first_per_subject(images)

    def rows(selection):
        return [
            sample_row(r["path"], r["subject_id"], template_id=r["path"].rsplit(".", 1)[0], gender=r["gender"])
            for r in selection
        ]

    return {
        "verification": {
            "dev/for_enrolling.csv": rows(first),
            "dev/for_probing.csv": rows(rest),
        },
        "attack": attack_protocol(rows(first)),
    }


def build_demo_protocols(output=None):
    """(Re)write the demo protocols; by default into the package (``data/demo/protocols``).

    Used by the developers to regenerate the bundled files; the tests check that the bundled
    files equal a fresh build.
    """
    output = demo_directory() / "protocols" if output is None else output
    return write_protocols(
        output,
        demo_protocols(),
        manifest={"database": "facerev-demo", "images": "bob_facerev/data/demo/images"},
    )


def demo_database(protocol="verification"):
    """The bundled demo database (a :class:`bob.bio.base.database.CSVDatabase`).

    Parameters
    ----------
    protocol : str
        ``"verification"`` or ``"attack"``.

    Notes
    -----
    Samples carry ``fallback_eyes`` = :data:`bob_facerev.face.crop.DEFAULT_FALLBACK_EYES`
    (loosely centred photos), the crop where no face is found.
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"Unknown demo protocol {protocol!r}: use one of {PROTOCOLS}.")
    from bob_facerev.face.crop import DEFAULT_FALLBACK_EYES, with_fallback_eyes

    root = demo_directory()
    database = make_database(
        name="facerev-demo",
        protocol=protocol,
        protocols_path=root / "protocols",
        original_directory=root / "images",
    )
    return with_fallback_eyes(database, DEFAULT_FALLBACK_EYES)
