"""Attack score files: Bob CSV vulnerability files, bob.measure 2-column and Bob 4/5-column files.

The attack pipeline writes one Bob CSV score file per protection setting with
:func:`write_vuln_scores`: bona fide rows (genuine and impostor comparisons of the face
recognition system, by default LFW View 2, unprotected) and attack rows (a reconstructed face
compared with the original image, type-I, or with another image of the same subject, type-II)
whose ``probe_attack_type`` column is set. Bob reads such a file as it reads the files of
``bob bio pipeline`` (:func:`bob.bio.base.score.load.split_csv_vuln`):

* a row is an attack when ``probe_attack_type`` is not empty, bona fide otherwise;
* a bona fide row is genuine when ``probe_subject_id == bio_ref_subject_id`` (string equality),
  an impostor (zero-effort) comparison otherwise;
* NaN scores are failures to acquire: ``bob vuln metrics`` leaves them out of every rate.

so that ``bob vuln metrics -c far -f 0.001 scores-dev.csv`` prints the RSR at FMR 0.1 % as its
"Attack Presentation Match Rate" (IAPMR). The protection setting is stored in ``facerev_*``
columns of the attack rows (see :data:`LABEL_COLUMNS`); Bob's readers ignore extra columns.
:func:`export_measure_files` writes the plain-text copies (``bob measure``, ``bob bio``);
:func:`load_bona_fide` reads the bona fide scores of any of these formats.
"""

from collections.abc import Mapping
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_write_text

#: ``probe_attack_type`` written for attack rows by default
ATTACK_TYPE = "reconstruction"

#: metadata columns describing the protection setting of the attack rows, with their display
#: names. Any other column whose name starts with ``facerev_`` is a label too.
LABEL_COLUMNS = {
    "facerev_model": "model",
    "facerev_block_size": "K",
    "facerev_moved_blocks": "P",
    "facerev_variant": "variant",
    "facerev_comparison": "comparison",
}

#: columns every row needs (Bob's readers split on them)
REQUIRED_COLUMNS = ("probe_subject_id", "bio_ref_subject_id", "score")


def score_array(x):
    """Scores as a flat ``float64`` array."""
    return np.asarray(x, dtype=np.float64).ravel()


def protection_metadata(model, protection=None, variant="study", comparison="type-I"):
    """The ``facerev_*`` label columns for one protection setting (attack rows).

    Parameters
    ----------
    model : str
        Attacked extractor, e.g. ``"arcface"``, ``"dlib"``.
    protection : Protection, str or None
        The setting (:class:`~bob_facerev.protection.setting.Protection` or its name); its
        :meth:`~bob_facerev.protection.setting.Protection.labels` give K (``"none"``
        unprotected) and P (``"0"`` unprotected, ``"random"`` per template);
        :meth:`~bob_facerev.protection.setting.Protection.from_labels` reads them back.
    variant : str
        Attack variant, e.g. ``"study"`` (generator applied as in the paper) or
        ``"deshuffle"`` (block order restored first); a column group of the table.
    comparison : str
        ``"type-I"`` (against the original image) or ``"type-II"`` (other images).

    Returns
    -------
    dict
        ``{column: value}`` for :func:`write_vuln_scores`'s ``metadata``.
    """
    from ..protection.setting import Protection

    return {
        "facerev_model": str(model),
        **Protection.parse(protection).labels(),
        "facerev_variant": str(variant),
        "facerev_comparison": str(comparison),
    }


def _as_frame(rows, name):
    if isinstance(rows, pd.DataFrame):
        df = rows.copy()
    elif isinstance(rows, Mapping):
        df = pd.DataFrame(dict(rows))
    else:
        df = pd.DataFrame(list(rows))
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing and len(df):
        raise ValueError(
            f"{name} lack the column(s) {missing}; every row needs {list(REQUIRED_COLUMNS)} "
            "(Bob decides genuine vs impostor by probe_subject_id == bio_ref_subject_id)"
        )
    for c in REQUIRED_COLUMNS:
        if c not in df.columns:
            df[c] = pd.Series(dtype=object)
    for side in ("probe", "bio_ref"):
        if f"{side}_template_id" not in df.columns:
            df[f"{side}_template_id"] = df[f"{side}_subject_id"]
    df["score"] = df["score"].astype(np.float64)
    return df


def write_vuln_scores(path, bona_fide, attack, attack_type=ATTACK_TYPE, metadata=None):
    """Write a Bob CSV vulnerability score file (atomic).

    Parameters
    ----------
    path : str or Path
        Output file; its name must contain ``.csv`` (Bob picks the reader by suffix), e.g.
        ``scores-dev.csv``.
    bona_fide : DataFrame, mapping of columns, or list of dicts
        Licit comparisons: ``probe_subject_id``, ``bio_ref_subject_id``, ``score`` and optional
        ``probe_template_id``, ``bio_ref_template_id`` (default: the subject ids), ``probe_key``
        and any other ``probe_*``/``bio_ref_*`` metadata. Genuine rows have equal subject ids.
    attack : same as ``bona_fide``
        Reconstruction attack comparisons (``probe_subject_id`` = the attacked subject).
    attack_type : str
        ``probe_attack_type`` of the attack rows (rows that already have one keep it).
    metadata : dict, optional
        Constant columns added to the attack rows, typically :func:`protection_metadata`;
        empty in bona fide rows.

    Returns
    -------
    Path
        The written file. Columns: ``probe_template_id``, ``probe_subject_id``, other
        ``probe_*``, ``probe_attack_type``, ``bio_ref_template_id``, ``bio_ref_subject_id``,
        other ``bio_ref_*``, other columns, ``facerev_*``, ``score``.
    """
    path = Path(path)
    if ".csv" not in path.suffixes:
        raise ValueError(
            f"score file {str(path)!r} must have a .csv suffix (e.g. scores-dev.csv): Bob "
            "reads files without it as 4/5-column text files"
        )
    if not attack_type:
        raise ValueError("attack_type must be a non-empty string, e.g. 'reconstruction'")
    bf = _as_frame(bona_fide, "bona fide rows")
    at = _as_frame(attack, "attack rows")
    if "probe_attack_type" in bf.columns:
        bad = bf["probe_attack_type"].fillna("").astype(str) != ""
        if bad.any():
            raise ValueError(
                f"{int(bad.sum())} bona fide rows have probe_attack_type set (e.g. "
                f"{bf.loc[bad, 'probe_attack_type'].iloc[0]!r}); pass them as attack rows"
            )
    bf["probe_attack_type"] = ""
    if "probe_attack_type" in at.columns:
        at["probe_attack_type"] = at["probe_attack_type"].fillna("").astype(str)
        at.loc[at["probe_attack_type"] == "", "probe_attack_type"] = attack_type
    else:
        at["probe_attack_type"] = attack_type
    for k, v in (metadata or {}).items():
        if not str(k).startswith("facerev_"):
            raise ValueError(
                f"metadata column {k!r} must start with 'facerev_' (see "
                "bob_facerev.evaluation.score_files.LABEL_COLUMNS and protection_metadata)"
            )
        at[k] = str(v)
    df = pd.concat([bf, at], ignore_index=True)
    cols = list(df.columns)

    def pick(pred):
        return [c for c in cols if pred(c)]

    first = ["probe_template_id", "probe_subject_id"]
    probe = pick(lambda c: c.startswith("probe_") and c not in first + ["probe_attack_type"])
    ref_first = ["bio_ref_template_id", "bio_ref_subject_id"]
    ref = pick(lambda c: c.startswith("bio_ref_") and c not in ref_first)
    facerev = pick(lambda c: c.startswith("facerev_"))
    used = set(first + probe + ["probe_attack_type"] + ref_first + ref + facerev + ["score"])
    other = [c for c in cols if c not in used]
    order = first + probe + ["probe_attack_type"] + ref_first + ref + other + facerev + ["score"]
    df = df[order]
    for c in order[:-1]:
        df[c] = df[c].astype(object).where(df[c].notna(), "").astype(str)
    # NaN scores as "nan": Bob's reader calls float() on the field, "" would fail
    return atomic_write_text(path, df.to_csv(index=False, float_format="%.9g", na_rep="nan"))


def read_vuln_scores(path):
    """Read a CSV score file into bona fide and attack rows.

    Parameters
    ----------
    path : str or Path
        A CSV score file (from :func:`write_vuln_scores` or Bob's ``CSVScoreWriter``; the
        ``probe_attack_type`` column is optional, its absence means all rows are bona fide).

    Returns
    -------
    bona_fide, attack : DataFrame
        All columns as ``str`` except ``score`` (float).
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"score file {str(path)!r} does not exist")
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise ValueError(f"score file {str(path)!r} is empty (no columns to parse): not a Bob "
                         "CSV score file") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(
            f"{str(path)!r} is not a Bob CSV score file: it lacks the column(s) {missing}"
        )
    try:  # float() as Bob's reader: "nan" is a failure to acquire, "" an error
        df["score"] = df["score"].map(float).astype(np.float64)
    except ValueError as e:
        raise ValueError(f"{str(path)!r}: a score is not a number ({e}); write missing "
                         "scores as nan") from e
    if "probe_attack_type" not in df.columns:
        df["probe_attack_type"] = ""
    is_attack = df["probe_attack_type"] != ""
    return df[~is_attack].reset_index(drop=True), df[is_attack].reset_index(drop=True)


def split_bona_fide(bona_fide):
    """Split bona fide rows as Bob does: ``(negatives, positives)`` float64 score arrays."""
    genuine = bona_fide["probe_subject_id"] == bona_fide["bio_ref_subject_id"]
    s = bona_fide["score"].to_numpy(dtype=np.float64)
    return s[~genuine.to_numpy()], s[genuine.to_numpy()]


def load_bona_fide(path):
    """Bona fide ``(negatives, positives)`` from any score file Bob reads.

    ``.csv`` files (licit rows only), bob.measure 2-column files (``-1|1 score``), or
    4/5-column files (``claimed_id [model_label] real_id test_label score``).
    """
    path = Path(path)
    if ".csv" in path.suffixes:
        return split_bona_fide(read_vuln_scores(path)[0])
    if not path.is_file():
        raise ValueError(f"bona fide score file {str(path)!r} does not exist")
    with open(path) as f:
        ncol = len(f.readline().split())
    if ncol == 2:
        import bob.measure.load

        neg, pos = bob.measure.load.split(str(path))
    elif ncol in (4, 5):
        import bob.bio.base.score.load

        neg, pos = bob.bio.base.score.load.split(str(path), ncolumns=ncol)
    else:
        raise ValueError(
            f"cannot read {str(path)!r}: {ncol} columns; expected a .csv score file, a "
            "2-column (label score) or a 4/5-column Bob score file"
        )
    return np.asarray(neg, np.float64), np.asarray(pos, np.float64)


def _clean_id(x):
    return str(x).replace(" ", "_") or "-"


def write_measure_scores(path, negatives, positives):
    """Write a bob.measure 2-column file (``-1 score`` / ``1 score`` per line), atomic.

    ``bob measure metrics|det|roc|hist FILE`` read it (:func:`bob.measure.load.split`).
    """
    neg = score_array(negatives)
    pos = score_array(positives)
    lines = [f"-1 {s:.9g}\n" for s in neg] + [f"1 {s:.9g}\n" for s in pos]
    return atomic_write_text(path, "".join(lines))


def write_four_column_scores(path, claimed_ids, real_ids, labels, scores):
    """Write a Bob 4-column file ``claimed_id real_id test_label score``, atomic.

    A line is positive when ``claimed_id == real_id``; ``bob bio metrics|det FILE`` read it.
    Spaces in ids are replaced by ``_`` (the format splits on spaces).
    """
    scores = score_array(scores)
    if not len(claimed_ids) == len(real_ids) == len(labels) == len(scores):
        raise ValueError("claimed_ids, real_ids, labels and scores must have the same length")
    lines = [
        f"{_clean_id(c)} {_clean_id(r)} {_clean_id(t)} {s:.9g}\n"
        for c, r, t, s in zip(claimed_ids, real_ids, labels, scores)
    ]
    return atomic_write_text(path, "".join(lines))


def export_measure_files(csv_path, out_dir=None):
    """Write the plain-text score files of a CSV vulnerability score file.

    For ``<dir>/<stem>.csv`` writes into ``out_dir`` (default ``<dir>``; the names are
    :func:`bob_facerev.experiment_layout.measure_files`):

    * ``<stem>-bonafide.txt``, ``<stem>-attack.txt``: bob.measure 2-column files, bona fide
      genuine (1) vs impostor (-1), and attack (1) vs the same impostors (-1), for
      ``bob measure metrics|det|hist``;
    * ``<stem>-bonafide.4col.txt``, ``<stem>-attack.4col.txt``: the same splits as Bob
      4-column files for ``bob bio metrics|det`` (an attack line claims the identity it
      attacks, so it is a positive).

    Returns
    -------
    dict
        ``{"bonafide": path, "attack": path, "bonafide_4col": path, "attack_4col": path}``.
    """
    from ..experiment_layout import measure_files

    names = measure_files(csv_path, out_dir)
    bf, at = read_vuln_scores(csv_path)
    neg, pos = split_bona_fide(bf)
    impostors = bf[bf["probe_subject_id"] != bf["bio_ref_subject_id"]]
    out = {
        "bonafide": write_measure_scores(names["bonafide"], neg, pos),
        "attack": write_measure_scores(names["attack"], neg, at["score"]),
        "bonafide_4col": write_four_column_scores(
            names["bonafide_4col"],
            bf["bio_ref_subject_id"], bf["probe_subject_id"], bf["probe_template_id"],
            bf["score"],
        ),
    }
    claimed = list(impostors["bio_ref_subject_id"]) + list(at["bio_ref_subject_id"])
    real = list(impostors["probe_subject_id"]) + list(at["bio_ref_subject_id"])
    labels = list(impostors["probe_template_id"]) + list(at["probe_template_id"])
    scores = np.concatenate([impostors["score"].to_numpy(), at["score"].to_numpy()])
    out["attack_4col"] = write_four_column_scores(names["attack_4col"], claimed, real, labels, scores)
    return out


def label_columns(frame):
    """The ``facerev_*`` label columns present in ``frame``, known ones first."""
    known = [c for c in LABEL_COLUMNS if c in frame.columns]
    extra = sorted(c for c in frame.columns if c.startswith("facerev_") and c not in known)
    return known + extra


def display_name(column):
    """Short display name of a label column (``facerev_block_size`` -> ``K``)."""
    return LABEL_COLUMNS.get(column, column.removeprefix("facerev_"))
