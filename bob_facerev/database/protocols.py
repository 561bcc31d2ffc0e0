"""Bob CSV protocols: the one writer every database of the package uses, and the loader.

A protocol folder follows :class:`bob.bio.base.database.CSVDatabase`::

    <root>/manifest.json                       written by this module (marks the folder as ours)
    <root>/<protocol>/<group>/for_enrolling.csv
    <root>/<protocol>/<group>/for_probing.csv
    <root>/<protocol>/<group>/for_matching.csv  (optional: sparse scoring)
    <root>/<protocol>/train/for_background_model.csv  (optional)

Every sample row holds ``path`` (relative to the dataset folder, with extension), ``key`` (the path
without extension: unique, used by Bob as the checkpoint name), ``subject_id`` and, for enroll and
probe files, ``template_id``; then metadata such as ``gender`` and the eye columns ``leye_x``,
``leye_y``, ``reye_x``, ``reye_y`` (Bob's :class:`~bob.bio.face.database.sample_loaders.EyesAnnotations`
turns them into ``sample.annotations``).
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import uuid

from pathlib import Path

import click

from sklearn.base import BaseEstimator, TransformerMixin

from bob_facerev.utils import check_output_folder, writable

from .images import load_image

#: name of the file that marks a folder as written by :func:`write_protocols`
MANIFEST = "manifest.json"

#: key of ``manifest.json`` that marks the folder as written by :func:`write_protocols`
MARKER = "bob_facerev_protocols"

#: value of :data:`MARKER` (the manifest format version)
FORMAT = 1

#: the eye columns (Bob convention: ``leye`` is the subject's left eye, larger x)
EYE_COLUMNS = ("leye_x", "leye_y", "reye_x", "reye_y")


def write_protocols(output, protocols, manifest=None):
    """Write a Bob CSV protocol folder atomically.

    The folder is built next to ``output`` under a temporary name and renamed into place at the
    end: on error nothing is left half-written, and an existing protocol folder is replaced only
    once the new one is complete.

    Parameters
    ----------
    output : str or pathlib.Path
        The protocol root. If it exists it must be empty or a folder written by this function
        (see :func:`check_protocol_output`); any other folder is refused so that a wrong ``-o``
        never deletes user data.
    protocols : dict
        ``{protocol: {"dev/for_enrolling.csv": rows, ...}}`` where ``rows`` is a list of dicts
        with the same keys (the CSV columns, in the order of the first row).
    manifest : dict, optional
        Extra information stored in ``manifest.json`` (source folder, options, counts).

    Returns
    -------
    pathlib.Path
        The protocol root.

    Raises
    ------
    ValueError
        If ``output`` is a non-empty folder not written by this function, is read-only or lies
        in a folder without write permission, or if rows are inconsistent (different columns,
        empty file).
    """
    output = check_protocol_output(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp = output.parent / f".{output.name}.tmp-{tag}"
    old = output.parent / f".{output.name}.old-{tag}"
    counts = {}
    try:
        tmp.mkdir()
        for protocol, files in protocols.items():
            counts[protocol] = {}
            for relpath, rows in files.items():
                rows = list(rows)
                if not rows:
                    raise ValueError(f"Protocol {protocol!r}: {relpath} would be empty.")
                columns = list(rows[0])
                target = tmp / protocol / relpath
                target.parent.mkdir(parents=True, exist_ok=True)
                with open(target, "w", newline="") as f:
                    writer = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
                    writer.writeheader()
                    for row in rows:
                        if list(row) != columns:
                            raise ValueError(
                                f"Protocol {protocol!r}: {relpath} rows have different columns "
                                f"({list(row)} vs {columns})."
                            )
                        writer.writerow(row)
                counts[protocol][relpath] = len(rows)
        info = dict(manifest or {})
        info["counts"] = counts
        info[MARKER] = FORMAT
        with open(tmp / MANIFEST, "w") as f:
            json.dump(info, f, indent=2, sort_keys=True)
            f.write("\n")
        if output.exists():
            os.replace(output, old)
        os.replace(tmp, output)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        if old.exists() and not output.exists():
            os.replace(old, output)
        raise
    shutil.rmtree(old, ignore_errors=True)
    return output


def written_by_us(folder):
    """Whether ``folder`` is exactly a protocol folder that :func:`write_protocols` wrote.

    Its ``manifest.json`` must be ours (the :data:`MARKER` key and the ``counts`` of the files
    written) and the folder must hold nothing else than the manifest and those files: a folder
    that happens to hold some other ``manifest.json`` (a web app's), or one where the user put
    their own files, is not replaced.
    """
    folder = Path(folder)
    try:
        info = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return False
    counts = info.get("counts") if isinstance(info, dict) else None
    if info.get(MARKER) != FORMAT or not isinstance(counts, dict):
        return False
    expected = {MANIFEST} | {
        f"{protocol}/{relpath}" for protocol, files in counts.items()
        if isinstance(files, dict) for relpath in files
    }
    found = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if not p.is_dir()}
    return found <= expected


def check_protocol_output(output):
    """Refuse, before any work, a protocol folder :func:`write_protocols` may not write.

    Parameters
    ----------
    output : str or pathlib.Path

    Returns
    -------
    pathlib.Path
        ``output``, absolute.

    Raises
    ------
    ValueError
        One line naming the folder and the fix: ``output`` is a file, a non-empty folder that
        :func:`write_protocols` did not write (:func:`written_by_us`), a read-only folder, or
        its parent cannot be written.
    """
    output = Path(output).expanduser().absolute()
    if output.exists():
        if not output.is_dir():
            raise ValueError(f"Protocol output {output} exists and is not a folder: choose another -o.")
        if any(output.iterdir()) and not written_by_us(output):
            raise ValueError(
                f"Refusing to overwrite {output}: it is not empty and is not a protocol folder "
                f"written by bob_facerev (no {MANIFEST} of ours, or other files in it). "
                "Choose an empty or new folder with -o (a folder of an older bob_facerev, "
                "without the marker, you may delete yourself)."
            )
        if not writable(output):
            raise ValueError(f"Refusing to replace the read-only folder {output}: make it "
                             "writable (chmod u+w) or choose another -o.")
    try:
        check_output_folder(output.parent)
    except ValueError as e:
        raise ValueError(f"Cannot write protocols to {output}: {e}") from None
    return output


def read_manifest(root):
    """Return the ``manifest.json`` of a protocol root as a dict (empty if absent)."""
    path = Path(root) / MANIFEST
    if not path.is_file():
        return {}
    with open(path) as f:
        return json.load(f)


def read_csv(path):
    """Read a protocol CSV file into a list of dicts (all values are strings)."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def sample_row(path, subject_id, template_id=None, **metadata):
    """One CSV row: ``path, key, subject_id[, template_id], metadata...``.

    ``key`` is ``path`` without its extension (unique; Bob names checkpoints after it).
    """
    row = {"path": path, "key": os.path.splitext(path)[0], "subject_id": subject_id}
    if template_id is not None:
        row["template_id"] = template_id
    row.update(metadata)
    return row


def eye_columns(annotations):
    """The CSV eye columns of Bob annotations ``{"leye": (y, x), "reye": (y, x)}``.

    Returns empty strings when ``annotations`` is ``None`` (no face found): such samples get
    ``annotations = None`` when loaded, and the face cropper annotates them itself.
    """
    if not annotations:
        return dict.fromkeys(EYE_COLUMNS, "")
    (ly, lx), (ry, rx) = annotations["leye"], annotations["reye"]
    return {"leye_x": f"{lx:.2f}", "leye_y": f"{ly:.2f}", "reye_x": f"{rx:.2f}", "reye_y": f"{ry:.2f}"}


def attack_protocol(rows):
    """Files of an attack protocol from one sample row per identity (rows with ``template_id``).

    Every image is enrolled and probed (the attack replaces the probe by a reconstruction), and
    ``for_matching.csv`` compares each probe with its own reference only (type-I attack).
    """
    return {
        "dev/for_enrolling.csv": rows,
        "dev/for_probing.csv": rows,
        "dev/for_matching.csv": [
            {"enroll_template_id": r["template_id"], "probe_template_id": r["template_id"]} for r in rows
        ],
    }


class EyeAnnotations(TransformerMixin, BaseEstimator):
    """Sample transformer: eye columns -> ``sample.annotations`` (``None`` where they are empty).

    Like :class:`bob.bio.face.database.sample_loaders.EyesAnnotations`, but tolerates images on
    which no face was found at build time (their annotations are ``None``).
    """

    def fit(self, X, y=None):
        return self

    def _more_tags(self):
        return {"requires_fit": False}

    def transform(self, samples):
        from bob.pipelines import DelayedSample

        out = []
        for s in samples:
            values = [getattr(s, c, "") for c in EYE_COLUMNS]
            if all(v not in ("", None) for v in values):
                lx, ly, rx, ry = (float(v) for v in values)
                annotations = {"leye": (ly, lx), "reye": (ry, rx)}
            else:
                annotations = None
            new = DelayedSample.from_sample(s, annotations=annotations)
            for c in EYE_COLUMNS:
                if hasattr(new, c):
                    delattr(new, c)
            out.append(new)
        return out


def make_database(name, protocol, protocols_path, original_directory):
    """A :class:`bob.bio.base.database.CSVDatabase` over a folder written by :func:`write_protocols`.

    Samples are lazy (:class:`~bob.bio.base.database.FileSampleLoader` with :func:`load_image`);
    when the CSV files hold eye columns the samples get ``annotations``
    (``{"leye": (y, x), "reye": (y, x)}``); when they hold ``gender`` it is also kept on templates
    (``templates_metadata``), so it reaches the score files.

    Parameters
    ----------
    name : str
        Database name (Bob uses it in messages and score files).
    protocol : str
        A protocol folder name inside ``protocols_path``.
    protocols_path : str or pathlib.Path
        The protocol root.
    original_directory : str or pathlib.Path
        The folder the ``path`` column is relative to.
    """
    from sklearn.pipeline import make_pipeline

    from bob.bio.base.database import CSVDatabase, FileSampleLoader

    protocols_path = Path(protocols_path)
    available = sorted(p.name for p in protocols_path.iterdir() if p.is_dir()) if protocols_path.is_dir() else []
    if protocol not in available:
        raise ValueError(
            f"Protocol {protocol!r} not found in {protocols_path} (available: {available or 'none'})."
        )
    columns = _columns(protocols_path / protocol)
    steps = [FileSampleLoader(data_loader=load_image, dataset_original_directory=str(original_directory), extension="")]
    annotated = all(c in columns for c in EYE_COLUMNS)
    if annotated:
        steps.append(EyeAnnotations())
    return CSVDatabase(
        name=name,
        protocol=protocol,
        dataset_protocols_path=str(protocols_path),
        transformer=make_pipeline(*steps),
        templates_metadata=["gender"] if "gender" in columns else None,
        annotation_type="eyes-center" if annotated else None,
    )


def _columns(protocol_dir):
    """Columns common to every sample CSV of a protocol folder."""
    common = None
    for path in sorted(Path(protocol_dir).glob("*/for_*.csv")):
        if path.name == "for_matching.csv":
            continue
        with open(path, newline="") as f:
            header = next(csv.reader(f), [])
        common = set(header) if common is None else common & set(header)
    return common or set()


def rc():
    """Bob's user configuration (``~/.config/bobrc.toml``, as ``bob config`` writes it)."""
    from ..rc import user_defaults

    return user_defaults()


def cache_directory(name):
    """Default protocol folder: ``$XDG_CACHE_HOME/bob_facerev/<name>`` (``~/.cache/...``)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "bob_facerev" / name


def default_protocols_path(dataset):
    """Where ``bob facerev db build <dataset>`` writes by default and the databases read."""
    value = rc().get(f"bob_facerev.{dataset}.protocols")
    return Path(value).expanduser() if value else cache_directory(dataset)


class NotConfiguredError(click.ClickException, ValueError):
    """A database used before ``bob config set`` / ``bob facerev db build``: one line, no traceback.

    A :class:`ValueError` for library code, and a :class:`click.ClickException` so that any
    command that loads the database as a resource (``bob bio pipeline simple -d facerev-lfw-view2``,
    ``bob facerev grid``) prints ``Error: <message>`` and exits 1 instead of a traceback.
    """


def _not_configured(what, key, dataset):
    return NotConfiguredError(
        f"The {dataset.upper()} {what} is not configured ({key}): run "
        f"`bob config set bob_facerev.{dataset}.directory /path/to/{dataset}` then "
        f"`bob facerev db build {dataset} /path/to/{dataset}`."
    )


def configured_paths(dataset, protocols_path=None, original_directory=None):
    """``(protocols_path, original_directory)`` from the arguments or Bob's configuration,
    with a clear one-line error telling the exact commands to run when one is missing."""
    import shlex

    if original_directory is None:
        value = rc().get(f"bob_facerev.{dataset}.directory")
        if not value:
            raise _not_configured("image folder", f"bob_facerev.{dataset}.directory", dataset)
        original_directory = Path(value).expanduser()
    protocols_path = default_protocols_path(dataset) if protocols_path is None else Path(protocols_path)
    if not (Path(protocols_path) / MANIFEST).is_file():
        command = f"bob facerev db build {dataset} {shlex.quote(str(original_directory))}"
        if protocols_path != cache_directory(dataset):
            command += f" -o {shlex.quote(str(protocols_path))}"
        raise NotConfiguredError(f"No {dataset.upper()} protocols in {protocols_path}: run `{command}`.")
    return Path(protocols_path), Path(original_directory)


def annotate_images(root, paths, progress=True):
    """Eye annotations ``{path: {"leye": (y, x), "reye": (y, x)} or None}`` by the dlib annotator."""
    from tqdm import tqdm

    try:
        from bob_facerev.face.annotator import DlibAnnotator
    except ImportError as e:
        raise ValueError(f"--annotate needs bob_facerev.face.annotator.DlibAnnotator, which is unavailable ({e}).") from e
    annotator = DlibAnnotator()
    out = {}
    for path in tqdm(paths, desc="annotating", disable=not progress, unit="img"):
        found = annotator.transform([load_image(str(Path(root) / path))])[0]
        out[path] = {"leye": found["leye"], "reye": found["reye"]} if found else None
    return out


def configured_database(dataset, protocol, known, protocols_path=None, original_directory=None):
    """The CSV database of a loosely centred photo set (LFW, CFP) from ``bob config`` paths.

    Checks ``protocol`` against ``known``, resolves the paths (:func:`configured_paths`) and
    gives the samples the fail-safe crop's default eye positions
    (:func:`bob_facerev.face.crop.with_fallback_eyes`, used when no face is detected).

    Parameters
    ----------
    dataset : str
        ``"lfw"`` or ``"cfp"``: the database is named ``facerev-<dataset>``.
    protocol : str
        One of ``known``.
    protocols_path, original_directory : str, optional
        Default to ``bob_facerev.<dataset>.protocols`` and ``bob_facerev.<dataset>.directory``.
    """
    from bob_facerev.face.crop import DEFAULT_FALLBACK_EYES, with_fallback_eyes

    if protocol not in known:
        raise ValueError(
            f"Unknown {dataset.upper()} protocol {protocol!r}: use one of {tuple(known)}."
        )
    protocols_path, original_directory = configured_paths(dataset, protocols_path,
                                                          original_directory)
    database = make_database(f"facerev-{dataset}", protocol, protocols_path, original_directory)
    return with_fallback_eyes(database, DEFAULT_FALLBACK_EYES)


def unique_samples(database, groups=None):
    """Every sample of ``database.all_samples(groups)`` once (by key, else path), in order."""
    unique = {}
    for s in database.all_samples(groups):
        unique.setdefault(getattr(s, "key", None) or getattr(s, "path", id(s)), s)
    return list(unique.values())
