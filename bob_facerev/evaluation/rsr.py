"""From scores to rates: thresholds at FMR and the reversibility success rate (RSR).

:func:`fmr_thresholds` sets decision thresholds on bona fide impostor scores,
:func:`reversibility_success_rate` counts the attack scores they accept, and
:func:`evaluate_score_files` does both for every protection setting of attack score files
(:mod:`bob_facerev.evaluation.score_files`), as a long table (one row per protection and FMR,
with the counts behind every rate) that :mod:`bob_facerev.evaluation.tables` turns into the
markdown, CSV and LaTeX tables of ``bob facerev rsr``.

The score-file functions documented as ``rsr.write_vuln_scores``, ``rsr.protection_metadata``
and ``rsr.export_measure_files`` live in :mod:`bob_facerev.evaluation.score_files`; they are
re-exported here for that documented API.
"""

import math

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

from .score_files import (  # noqa: F401  (re-exported: the documented rsr.* score-file API)
    ATTACK_TYPE,
    LABEL_COLUMNS,
    REQUIRED_COLUMNS,
    export_measure_files,
    label_columns,
    load_bona_fide,
    protection_metadata,
    read_vuln_scores,
    score_array,
    split_bona_fide,
    write_vuln_scores,
)

#: FMRs of the study (0.1 %, 1 %, 10 %)
DEFAULT_FMRS = (0.001, 0.01, 0.1)

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
    neg, _ = _drop_nan(score_array(negatives))
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

    attacks, n_failed = _drop_nan(score_array(attack_scores))
    pos = np.empty(0) if positives is None else _drop_nan(score_array(positives))[0]
    neg = _drop_nan(score_array(negatives))[0]
    eer = float(bob.measure.eer(neg, pos)) if pos.size and neg.size else math.nan
    results = []
    for t in fmr_thresholds(neg, fmrs):
        # FNMR: share of genuine scores below the threshold (bob.measure's FRR)
        fnmr = float(bob.measure.farfrr(neg, pos, t["threshold"])[1]) if pos.size else math.nan
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
                "it with bob_facerev.evaluation.score_files.write_vuln_scores"
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
