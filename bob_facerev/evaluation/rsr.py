"""From scores to rates: thresholds at FMR, the reversibility success rate (RSR) and score files.

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

:func:`evaluate_score_files` turns such files into a long table (one row per protection and
FMR, with the counts behind every rate); :func:`rsr_table` and :func:`write_tables` make the
markdown, CSV and LaTeX tables of ``bob facerev rsr``.
"""

import math

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ..utils import atomic_write_text

#: FMRs of the study (0.1 %, 1 %, 10 %)
DEFAULT_FMRS = (0.001, 0.01, 0.1)

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

#: numeric columns of the long result table (:func:`evaluate_score_files`)
RESULT_COLUMNS = (
    "fmr",
    "threshold",
    "n_impostors",
    "n_false_matches",
    "fmr_achieved",
    "n_genuine",
    "fnmr",
    "eer",
    "n_attacks",
    "n_accepted",
    "n_failed",
    "rsr",
)


# --------------------------------------------------------------------------- rates


@dataclass(frozen=True)
class RSRResult:
    """The RSR at one decision threshold, with the counts behind it.

    Attributes
    ----------
    fmr : float
        Requested false match rate (e.g. ``0.001``).
    threshold : float
        Decision threshold from :func:`bob.measure.far_threshold` on the impostor scores
        (a comparison is accepted when ``score >= threshold``).
    n_impostors, n_false_matches : int
        Bona fide impostor scores behind the threshold and how many of them are accepted.
    fmr_achieved : float
        ``n_false_matches / n_impostors`` (at most ``fmr``; 0 when ``fmr * n_impostors < 1``).
    n_genuine : int
        Bona fide genuine scores (0 when unknown).
    fnmr : float
        Share of genuine scores rejected at the threshold (NaN when ``n_genuine == 0``).
    eer : float
        Equal error rate of the bona fide scores (NaN when ``n_genuine == 0``).
    n_attacks, n_accepted : int
        Attack scores (NaN excluded) and how many are ``>= threshold``.
    n_failed : int
        NaN attack scores (failures to acquire), excluded from ``n_attacks`` as in ``bob vuln``.
    """

    fmr: float
    threshold: float
    n_impostors: int
    n_false_matches: int
    fmr_achieved: float
    n_genuine: int
    fnmr: float
    eer: float
    n_attacks: int
    n_accepted: int
    n_failed: int

    @property
    def rsr(self):
        """``n_accepted / n_attacks`` (NaN when there are no attack scores)."""
        return self.n_accepted / self.n_attacks if self.n_attacks else math.nan

    def as_dict(self):
        """The fields and ``rsr`` as a plain dict (one row of the long table)."""
        return {**asdict(self), "rsr": self.rsr}


def _scores(x):
    return np.asarray(x, dtype=np.float64).ravel()


def _drop_nan(x):
    ok = ~np.isnan(x)
    return x[ok], int((~ok).sum())


def _check_fmrs(fmrs):
    fmrs = [float(f) for f in fmrs]
    for f in fmrs:
        if not 0.0 < f < 1.0:
            raise ValueError(
                f"FMR {f!r} is not a rate in (0, 1); give e.g. 0.001 for 0.1 % (--fmr 0.001)"
            )
    if not fmrs:
        raise ValueError("no FMR given; pass at least one, e.g. fmrs=(0.001, 0.01, 0.1)")
    return fmrs


def fmr_thresholds(negatives, fmrs=DEFAULT_FMRS):
    """Decision thresholds at the requested FMRs, with the counts behind each.

    Parameters
    ----------
    negatives : array-like, shape (n_impostors,)
        Bona fide impostor (non-mated) scores; similarity scores, higher = more similar.
        NaN scores are left out.
    fmrs : sequence of float
        Requested false match rates in (0, 1).

    Returns
    -------
    list of dict
        One per FMR: ``fmr``, ``threshold``, ``n_impostors``, ``n_false_matches``,
        ``fmr_achieved``. The threshold is :func:`bob.measure.far_threshold`: the smallest score
        threshold whose FMR is at most the requested one, so with ``n`` distinct impostor
        scores it equals the ``floor(fmr * n)``-th largest one (or lies just above the largest
        when ``fmr * n < 1``).
    """
    import bob.measure

    fmrs = _check_fmrs(fmrs)
    neg, _ = _drop_nan(_scores(negatives))
    if neg.size < 2:
        raise ValueError(
            f"{neg.size} impostor score(s): a threshold at an FMR needs at least 2 bona fide "
            "impostor scores (rows with probe_subject_id != bio_ref_subject_id)"
        )
    neg = np.sort(neg)
    out = []
    for f in fmrs:
        thr = float(bob.measure.far_threshold(neg, np.empty(0), f, is_sorted=True))
        n_fm = int((neg >= thr).sum())
        out.append(
            dict(
                fmr=f,
                threshold=thr,
                n_impostors=int(neg.size),
                n_false_matches=n_fm,
                fmr_achieved=n_fm / neg.size,
            )
        )
    return out


def reversibility_success_rate(attack_scores, negatives, positives=None, fmrs=DEFAULT_FMRS):
    """RSR of attack scores at thresholds set on bona fide scores.

    Parameters
    ----------
    attack_scores : array-like, shape (n_attacks,)
        Scores of reconstructed faces against their targets (type-I or type-II). NaN scores
        (failed extraction) are counted in ``n_failed`` and left out, as ``bob vuln`` does.
    negatives : array-like, shape (n_impostors,)
        Bona fide impostor scores that set the thresholds.
    positives : array-like, shape (n_genuine,), optional
        Bona fide genuine scores, for FNMR and EER (NaN in the result when not given).
    fmrs : sequence of float
        Requested false match rates.

    Returns
    -------
    list of RSRResult
        One per FMR, in the order of ``fmrs``.
    """
    import bob.measure

    attacks, n_failed = _drop_nan(_scores(attack_scores))
    pos = np.empty(0) if positives is None else _drop_nan(_scores(positives))[0]
    neg = _drop_nan(_scores(negatives))[0]
    eer = float(bob.measure.eer(neg, pos)) if pos.size and neg.size else math.nan
    results = []
    for t in fmr_thresholds(neg, fmrs):
        fnmr = float((pos < t["threshold"]).mean()) if pos.size else math.nan
        results.append(
            RSRResult(
                **t,
                n_genuine=int(pos.size),
                fnmr=fnmr,
                eer=eer,
                n_attacks=int(attacks.size),
                n_accepted=int((attacks >= t["threshold"]).sum()),
                n_failed=n_failed,
            )
        )
    return results


# --------------------------------------------------------------------------- score files


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
                "bob_facerev.evaluation.rsr.LABEL_COLUMNS and protection_metadata)"
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
    neg = _scores(negatives)
    pos = _scores(positives)
    lines = [f"-1 {s:.9g}\n" for s in neg] + [f"1 {s:.9g}\n" for s in pos]
    return atomic_write_text(path, "".join(lines))


def write_four_column_scores(path, claimed_ids, real_ids, labels, scores):
    """Write a Bob 4-column file ``claimed_id real_id test_label score``, atomic.

    A line is positive when ``claimed_id == real_id``; ``bob bio metrics|det FILE`` read it.
    Spaces in ids are replaced by ``_`` (the format splits on spaces).
    """
    scores = _scores(scores)
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


# --------------------------------------------------------------------------- tables


def label_columns(frame):
    """The ``facerev_*`` label columns present in ``frame``, known ones first."""
    known = [c for c in LABEL_COLUMNS if c in frame.columns]
    extra = sorted(c for c in frame.columns if c.startswith("facerev_") and c not in known)
    return known + extra


def display_name(column):
    """Short display name of a label column (``facerev_block_size`` -> ``K``)."""
    return LABEL_COLUMNS.get(column, column.removeprefix("facerev_"))


def evaluate_score_files(paths, bona_fide=None, fmrs=DEFAULT_FMRS):
    """RSR of every protection setting in CSV score files, at every FMR.

    Parameters
    ----------
    paths : sequence of str or Path
        CSV score files (:func:`write_vuln_scores`). The attack rows of each file are grouped
        by their ``facerev_*`` label columns (a file may hold several settings).
    bona_fide : str or Path, optional
        Score file whose bona fide rows set the thresholds for every file (e.g. the LFW
        View 2 scores; see :func:`load_bona_fide` for the formats). By default each file's
        own bona fide rows (what ``bob vuln metrics`` uses).
    fmrs : sequence of float
        Requested false match rates.

    Returns
    -------
    DataFrame
        Long format, one row per (file, setting, FMR): ``file``, ``bona_fide`` (threshold
        source), the label columns (missing ones ``""``), then :data:`RESULT_COLUMNS`.
    """
    fmrs = _check_fmrs(fmrs)
    if not paths:
        raise ValueError("no score file given")
    shared = load_bona_fide(bona_fide) if bona_fide is not None else None
    rows = []
    for p in paths:
        bf, at = read_vuln_scores(p)
        if shared is None:
            neg, pos = split_bona_fide(bf)
            source = str(p)
            if (~np.isnan(neg)).sum() < 2:
                found = (f"all {neg.size} bona fide impostor scores are NaN"
                         if neg.size and np.isnan(neg).all() else
                         f"{(~np.isnan(neg)).sum()} bona fide impostor score(s) are numbers")
                raise ValueError(
                    f"{str(p)!r}: {found}, and thresholds need at least 2; pass a bona fide "
                    "score file (--bona-fide, e.g. LFW View 2 scores)"
                )
        else:
            (neg, pos), source = shared, str(bona_fide)
        if at.empty:
            raise ValueError(
                f"{str(p)!r} has no attack rows (rows with probe_attack_type set); write "
                "it with bob_facerev.evaluation.rsr.write_vuln_scores"
            )
        labels = label_columns(at)
        groups = at.groupby(labels, sort=False) if labels else [((), at)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            lab = dict(zip(labels, key))
            for r in reversibility_success_rate(g["score"], neg, pos, fmrs):
                rows.append({"file": str(p), "bona_fide": source, **lab, **r.as_dict()})
    df = pd.DataFrame(rows)
    labels = label_columns(df)
    df[labels] = df[labels].fillna("")
    return df[["file", "bona_fide", *labels, *RESULT_COLUMNS]]


def _sort_key(values):
    """Sort labels numerically where they are numbers; 'none' first, other words last."""

    def key(v):
        s = str(v)
        if s in ("", "none"):
            return (0, 0.0, s)
        try:
            return (1, float(s), s)
        except ValueError:
            return (2, 0.0, s)

    return [key(v) for v in values]


def sort_results(results):
    """Sort a long table by its label columns (numbers numerically) and FMR."""
    labels = label_columns(results)
    idx = sorted(
        range(len(results)),
        key=lambda i: (
            [k for c in labels for k in _sort_key([results[c].iloc[i]])],
            results["fmr"].iloc[i],
        ),
    )
    return results.iloc[idx].reset_index(drop=True)


def fmr_label(fmr):
    """``0.001`` -> ``"FMR 0.1 %"``."""
    return f"FMR {100 * fmr:g} %"


def format_rate(rate, num, den, digits=2):
    """``"89.09 (2621/2942)"``: a rate in percent with its counts."""
    if not den:
        return "n/a (0/0)"
    return f"{100 * rate:.{digits}f} ({num}/{den})"


def rsr_table(results, counts=True, digits=2, group="facerev_variant"):
    """Wide RSR table: one row per setting, one column per FMR (and per ``group``).

    Parameters
    ----------
    results : DataFrame
        Long table of :func:`evaluate_score_files`.
    counts : bool
        Cells as ``"RSR% (accepted/attacks)"`` strings; when False, RSR in percent (float).
    digits : int
        Decimals of the percentages.
    group : str or None
        Label column that becomes a column group (``"facerev_variant"``: the study's
        attack side by side with the de-shuffling one); ``None`` keeps it in the rows.

    Returns
    -------
    DataFrame
        Index: the other label columns (display names); columns: ``(group value, FMR label)``
        when ``group`` is present, else FMR labels.
    """
    group_order = list(dict.fromkeys(results[group])) if group in results.columns else []
    results = sort_results(results)
    labels = label_columns(results)
    if group not in labels:
        group = None
    rows = [c for c in labels if c != group] or ["file"]
    dup = results.duplicated(labels + ["fmr"] if labels else ["file", "fmr"], keep=False)
    if dup.any():
        d = results[dup]
        raise ValueError(
            f"the setting {dict(d[labels].iloc[0]) if labels else {}} appears in several "
            f"score files ({sorted(set(d['file']))}): give each file distinct facerev_* labels "
            "(e.g. facerev_variant) or evaluate them apart"
        )
    cell = results.apply(
        lambda r: format_rate(r.rsr, r.n_accepted, r.n_attacks, digits)
        if counts
        else 100 * r.rsr,
        axis=1,
    )
    df = results.assign(_cell=cell, _fmr=results["fmr"].map(fmr_label))
    columns = ([group] if group else []) + ["_fmr"]
    wide = df.pivot_table(
        index=rows, columns=columns, values="_cell", aggfunc="first", sort=False
    )
    # keep the sorted order of rows and of the FMR columns
    row_order = list(dict.fromkeys(map(tuple, df[rows].to_numpy().tolist())))
    wide = wide.reindex(pd.MultiIndex.from_tuples(row_order, names=rows) if len(rows) > 1
                        else [r[0] for r in row_order])
    fmr_order = list(dict.fromkeys(df.sort_values("fmr")["_fmr"]))
    if group:
        wide = wide.reindex(
            columns=pd.MultiIndex.from_product([group_order, fmr_order],
                                               names=[display_name(group), "FMR"])
        )
    else:
        wide = wide.reindex(columns=fmr_order)
        wide.columns.name = None
    wide.index.names = [display_name(c) for c in rows]
    return wide


def threshold_table(results, digits=4):
    """One row per threshold source and FMR: threshold, impostor counts, FMR achieved, EER."""
    cols = ["bona_fide", "fmr", "threshold", "n_impostors", "n_false_matches", "fmr_achieved",
            "n_genuine", "fnmr", "eer"]
    t = results[cols].drop_duplicates(["bona_fide", "fmr"])
    # files that share their bona fide scores (e.g. every file of a grid) give one set of rows
    numbers = cols[2:]
    sources = t.groupby(["fmr"] + numbers, sort=False, dropna=False)["bona_fide"].agg(list)
    sources = sources.reset_index()
    t = sources.sort_values(["fmr"]).sort_values("bona_fide", key=lambda s: s.map(str), kind="stable")

    def source(paths):
        first = Path(paths[0])
        name = f"{first.parent.name}/{first.name}" if first.parent.name else first.name
        if len(paths) == 1:
            return name
        # every file of a grid carries the same bona fide rows: say so, not one file's name
        return f"the bona fide rows of {len(paths)} score files (identical)"

    out = pd.DataFrame(
        {
            "bona fide scores": t["bona_fide"].map(source),
            "FMR": t["fmr"].map(lambda f: f"{100 * f:g} %"),
            "threshold": t["threshold"].map(lambda x: f"{x:.{digits}f}"),
            "false matches": [f"{a}/{b}" for a, b in zip(t["n_false_matches"], t["n_impostors"])],
            "FMR achieved": t["fmr_achieved"].map(lambda x: f"{100 * x:.3f} %"),
            "FNMR": [
                "n/a" if not n else f"{100 * x:.2f} %" for x, n in zip(t["fnmr"], t["n_genuine"])
            ],
            "EER": [
                "n/a" if not n else f"{100 * x:.2f} %" for x, n in zip(t["eer"], t["n_genuine"])
            ],
        }
    )
    return out.reset_index(drop=True)


def _flat(wide):
    flat = wide.reset_index()
    flat.columns = [
        " ".join(str(x) for x in c if str(x)) if isinstance(c, tuple) else str(c)
        for c in flat.columns
    ]
    return flat


def write_tables(results, prefix, digits=2):
    """Write ``<prefix>.md``, ``<prefix>.csv`` and ``<prefix>.tex`` (atomic).

    The CSV is the long table (every count, machine-readable); the markdown and LaTeX hold
    the RSR table (:func:`rsr_table`, cells ``RSR % (accepted/attacks)``) followed by the
    thresholds table (:func:`threshold_table`).

    Returns
    -------
    dict
        ``{"md": path, "csv": path, "tex": path}``.
    """
    prefix = Path(prefix)
    wide = rsr_table(results, digits=digits)
    results = sort_results(results)
    thr = threshold_table(results)
    flat = _flat(wide)
    empty = flat.isna().to_numpy().any()
    md = (
        "## Reversibility success rate (RSR %, accepted/attacks)\n\n"
        + flat.fillna("n/a").to_markdown(index=False)
        + ("\n\nn/a: no such setting in the score files (the de-shuffling attack runs on "
           "protected templates only: unprotected ones have no blocks to restore)."
           if empty else "")
        + "\n\n## Thresholds (bona fide scores)\n\n"
        + thr.to_markdown(index=False)
        + "\n"
    )
    n_rows = len(wide.index.names)
    tex = (
        "% RSR in percent (accepted/attacks); generated by bob facerev rsr\n"
        + wide.reset_index().to_latex(
            index=False, escape=True, multicolumn=True, multicolumn_format="c", na_rep="--",
            column_format="l" * n_rows + "r" * wide.shape[1],
        )
        + "\n% thresholds set on bona fide scores\n"
        + thr.to_latex(index=False, escape=True, column_format="l" * thr.shape[1])
    )
    return {
        "md": atomic_write_text(prefix.with_name(prefix.name + ".md"), md),
        "csv": atomic_write_text(
            prefix.with_name(prefix.name + ".csv"), results.to_csv(index=False)
        ),
        "tex": atomic_write_text(prefix.with_name(prefix.name + ".tex"), tex),
    }
