"""Tables of RSR results: the wide RSR table, the thresholds table, and their files.

:func:`rsr_table` and :func:`threshold_table` turn the long table of
:func:`bob_facerev.evaluation.rsr.evaluate_score_files` into the tables of ``bob facerev rsr``;
:func:`write_tables` writes them as markdown, CSV and LaTeX. :func:`markdown_table` is the
package's one markdown renderer (every markdown table of the package goes through it).
"""

from pathlib import Path

import pandas as pd

from ..utils import atomic_write_text
from .score_files import display_name, label_columns


def markdown_table(frame, index=False, floatfmt="g", numparse=True):
    """A DataFrame as a GitHub markdown (pipe) table; the package's one markdown renderer.

    Parameters
    ----------
    frame : pandas.DataFrame
        The table; its column names are the header.
    index : bool
        Write the index as the first column(s).
    floatfmt : str or sequence of str
        Format of float cells (one for all columns or one per column), as
        :meth:`pandas.DataFrame.to_markdown` (``tabulate``) takes it.
    numparse : bool
        Let ``tabulate`` read number-like strings as numbers (right-aligned, ``floatfmt``
        applied). ``False`` keeps pre-formatted cells (``"0.800"``, ``"12.5%"``) as written.

    Returns
    -------
    str
        The table, without a final newline.
    """
    return frame.to_markdown(index=index, floatfmt=floatfmt, disable_numparse=not numparse)


def sort_keys(values):
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
            [k for c in labels for k in sort_keys([results[c].iloc[i]])],
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
        + markdown_table(flat.fillna("n/a"))
        + ("\n\nn/a: no such setting in the score files (the de-shuffling attack runs on "
           "protected templates only: unprotected ones have no blocks to restore)."
           if empty else "")
        + "\n\n## Thresholds (bona fide scores)\n\n"
        + markdown_table(thr)
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
