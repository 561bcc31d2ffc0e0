"""The RSR report: tables, heatmap, DET plot and face grid from attack score files.

Shared by ``bob facerev rsr`` (any score files) and ``bob facerev grid`` / ``demo`` (the grid's):
:func:`grid_report` (with :func:`grid_header` and :func:`verification_table`) and the demo's
:func:`demo_gender`.
"""

import os
import shutil
import tempfile

from pathlib import Path

import numpy as np

from ..experiment_layout import CellLayout, GridLayout
from . import faces as faces_module
from . import plots
from . import rsr, score_files, tables


def rsr_report(scores, output, fmrs=None, bona_fide=None, faces=None, heatmap=True, det=True,
               title=None):
    """Write the RSR tables and plots of attack score files into ``output``.

    Parameters
    ----------
    scores : list of str or Path
        Bob CSV score files (:func:`~bob_facerev.evaluation.score_files.write_vuln_scores`).
    output : str or Path
        Folder: ``rsr.md``, ``rsr.csv``, ``rsr.tex``, ``rsr_heatmap.png``, ``det.png``,
        ``faces.png``.
    fmrs : sequence of float, optional
        Default :data:`~bob_facerev.evaluation.rsr.DEFAULT_FMRS`.
    bona_fide : str, optional
        Score file whose bona fide rows set the thresholds (default: each file's own).
    faces : str, optional
        Faces ``.npz`` (:func:`~bob_facerev.evaluation.faces.save_faces`) for ``faces.png``.
    heatmap, det : bool
        Draw the heatmap (when the files carry K and P labels) and the DET plot.
    title : str, optional
        Title of the DET plot (default: the attacked model and the number of score files).

    Returns
    -------
    markdown : str
        The tables, as printed by ``bob facerev rsr``.
    written : list of Path

    Notes
    -----
    Nothing is written unless the whole report succeeds: the files are made in a hidden folder
    next to ``output`` and moved into it at the end (a failure leaves ``output`` as it was).
    """
    out = Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    try:  # everything is computed and drawn first; the files move into place only if all worked
        markdown, staged = _write_report(scores, staging, fmrs, bona_fide, faces, heatmap, det,
                                          title)
        out.mkdir(exist_ok=True)
        written = []
        for path in staged:
            target = out / Path(path).relative_to(staging)
            os.replace(path, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return markdown, written


def _write_report(scores, out, fmrs, bona_fide, faces, heatmap, det, title=None):
    """:func:`rsr_report` into the staging folder ``out``."""
    fmrs = fmrs or rsr.DEFAULT_FMRS
    results = rsr.evaluate_score_files(scores, bona_fide=bona_fide, fmrs=fmrs)
    files = tables.write_tables(results, out / "rsr")
    markdown = files["md"].read_text()
    written = [files["md"], files["csv"], files["tex"]]
    labels = score_files.label_columns(results)
    if heatmap and {"facerev_block_size", "facerev_moved_blocks"} <= set(labels):
        plots.rsr_heatmap(results, out / "rsr_heatmap.png")
        written.append(out / "rsr_heatmap.png")
    if det:
        if title is None:
            models = sorted({str(m) for m in results.get("facerev_model", []) if m})
            title = (f"DET of the attack ({', '.join(models) or 'model not labelled'}; "
                     f"{len(scores)} score file{'s' * (len(scores) > 1)})")
        written.append(plots.det_plot(_det_curves(scores, bona_fide), out / "det.png", fmrs=fmrs,
                                      title=title))
    if faces:
        written.append(faces_module.face_grid(**faces_module.load_faces(faces), path=out / "faces.png"))
    return markdown, written


def _det_curves(scores, bona_fide):
    """Bona fide reference curve(s) + one attack-vs-impostor curve per protection."""
    shared = score_files.load_bona_fide(bona_fide) if bona_fide else None
    refs, curves = [], []
    for p in scores:
        bf, at = score_files.read_vuln_scores(p)
        neg, pos = shared if shared is not None else score_files.split_bona_fide(bf)
        if pos.size and not any(
            np.array_equal(neg, n) and np.array_equal(pos, q) for _, n, q in refs
        ):
            refs.append((str(p), neg, pos))
        cols = score_files.label_columns(at)
        groups = at.groupby(cols, sort=False) if cols else [((), at)]
        for key, g in groups:
            key = key if isinstance(key, tuple) else (key,)
            labels = {c: v for c, v in zip(cols, key) if v != ""}
            curves.append((labels, Path(p).name, neg, g["score"].to_numpy()))
    # name the attack curves by the labels that tell them apart
    varying = {c for lab, *_ in curves for c in lab
               if len({other.get(c) for other, *_ in curves}) > 1}
    attack_curves = []
    for lab, fname, neg, att in curves:
        name = " ".join(f"{score_files.display_name(c)}={v}" for c, v in lab.items() if c in varying)
        attack_curves.append((f"attack {name}" if name else f"attack {fname}", neg, att))
    ref_curves = [
        ("bona fide" if len(refs) == 1 else f"bona fide ({Path(src).parent.name}/{Path(src).name})",
         neg, pos)
        for src, neg, pos in refs
    ]
    return ref_curves + attack_curves


def threshold_notes(results):
    """Sentences explaining FMR columns that tie, from the counts behind the thresholds.

    With ``n`` impostor scores the measured FMR can only be a multiple of ``1 / n``: requested
    FMRs below ``1 / n`` all put the threshold at (just above) the highest impostor score, so
    their RSR columns are identical. One sentence per group of FMRs that share a threshold.
    """
    t = results.drop_duplicates(["fmr", "threshold", "n_impostors", "n_false_matches"])
    notes = []
    for (thr, n_imp, n_fm), g in t.groupby(["threshold", "n_impostors", "n_false_matches"],
                                           sort=False):
        fmrs = sorted(set(g["fmr"]))
        if len(fmrs) < 2:
            continue
        names = ", ".join(tables.fmr_label(f) for f in fmrs[:-1]) + \
            f" and {tables.fmr_label(fmrs[-1])}"
        notes.append(
            f"{names} share the threshold {thr:.4f} ({n_fm} of {n_imp} impostor scores at or "
            f"above it), so their columns are identical: with {n_imp} impostor scores the "
            f"smallest FMR above 0 is {100 / n_imp:.3g} %, and lower FMRs cannot be told apart."
        )
    return notes


def _databases(summary):
    names = ("bona_fide_database", "attack_database", "training_database")
    return {k: summary.get(k, "?") for k in names}


def grid_header(summary, results):
    """Markdown opening of a grid's report: what was run, the counts, thresholds and caveats.

    Parameters
    ----------
    summary : dict
        What :func:`bob_facerev.experiment.run_grid` returns.
    results : DataFrame
        The long table of the type-I score files (:func:`~bob_facerev.evaluation.rsr.evaluate_score_files`).
    """
    db = _databases(summary)
    first = results.drop_duplicates(["fmr"]).sort_values("fmr")
    n_gen, n_imp = int(first["n_genuine"].iloc[0]), int(first["n_impostors"].iloc[0])
    n_att = int(results["n_attacks"].max())
    cells = results.drop_duplicates(["file"] + score_files.label_columns(results))
    train = summary.get("train") or {}
    recipe = ", ".join(f"{k}={v}" for k, v in train.items()
                       if k in ("epochs", "batch_size", "lr", "w_id", "validation_fraction"))
    lines = [
        "# What was run", "",
        f"- Model: **{summary.get('model', '?')}**. Attacked templates: {n_att} faces of "
        f"`{db['attack_database']}` (type-I: each reconstruction against its own image).",
        f"- Thresholds: bona fide comparisons of `{db['bona_fide_database']}`, {n_gen} genuine "
        f"and {n_imp} impostor scores: "
        + "; ".join(f"{tables.fmr_label(r.fmr)}: {r.threshold:.4f} ({r.n_false_matches}/"
                    f"{r.n_impostors} impostor scores at or above)"
                    for r in first.itertuples()) + ".",
        f"- Attacker: a generator trained on `{db['training_database']}`"
        + (f" ({summary['n_training']} faces)" if summary.get("n_training") else "")
        + (f", {recipe}" if recipe else "") + f"; {len(cells)} attack cells (protection x "
        "variant), each RSR counted over the attacked faces.",
    ]
    caveats = []
    if db["training_database"] == db["attack_database"] != "?":
        caveats.append(
            "the attacker trained on the very faces it attacks: it memorises them, so the RSR "
            "shows the mechanics of the benchmark (how it falls as blocks move, what "
            "de-shuffling restores), not how an attack generalises to unseen faces")
    if n_imp < 1000:
        caveats.append(
            f"only {n_imp} impostor scores: an FMR below {100 / n_imp:.3g} % cannot be measured "
            "(see the note on ties below)")
    if n_att < 100:
        caveats.append(f"{n_att} attacks per cell: one face moves the RSR by {100 / n_att:.3g} "
                       "points")
    lines += [f"- Caveat: {c}." for c in caveats]
    notes = threshold_notes(results)
    if notes:
        lines += ["", "Ties: " + " ".join(notes)]
    return "\n".join(lines)


def grid_report(summary, output, fmrs=None):
    """Write a grid's report (``report.md``, tables, plots) into ``output``.

    ``report.md`` opens with what was run (:func:`grid_header`), then the type-I and type-II
    RSR tables and the PE-MIU verification table.

    Returns
    -------
    markdown : str
    written : list of Path
    """
    from ..utils import atomic_write_text

    fmrs = fmrs or rsr.DEFAULT_FMRS
    output = Path(output)
    type1 = summary["scores"]
    type2 = [str(CellLayout(Path(p).parent).scores_type2) for p in type1
             if CellLayout(Path(p).parent).scores_type2.is_file()]
    db = _databases(summary)
    title = (f"DET, {summary.get('model', '?')}: attacks on {db['attack_database']}, "
             f"thresholds from {db['bona_fide_database']}")
    text, written = rsr_report(type1, output, fmrs=fmrs, faces=summary["faces"], title=title)
    header = grid_header(summary, rsr.evaluate_score_files(type1, fmrs=fmrs))
    parts = [header, "", "# Type-I attack (reconstruction vs the original image)", "", text]
    if type2:
        text2, written2 = rsr_report(type2, output / "type-II", fmrs=fmrs, heatmap=False,
                                     det=False)
        parts += ["", "# Type-II attack (reconstruction vs the subject's other images)", "",
                  text2]
        written += written2
    verification = verification_table(summary, fmrs=fmrs)
    if verification:
        parts += ["", "# Verification with PE-MIU (bona fide database)", "", verification]
    markdown = "\n".join(parts)
    atomic_write_text(output / "report.md", markdown)
    return markdown, written + [output / "report.md"]


def verification_table(summary, fmrs=(0.001, 0.01, 0.1)):
    """Markdown table of the verification runs: EER and FNMR at FMR, unprotected vs PE-MIU.

    Parameters
    ----------
    summary : dict
        What :func:`~bob_facerev.experiment.run_grid` returns (``bona_fide`` and
        ``verification`` score files).

    Returns
    -------
    str
        Empty when the grid ran no PE-MIU verification.
    """
    import bob.measure
    import pandas as pd

    files = {"none": summary["bona_fide"]}
    files.update({str(k): v for k, v in sorted(summary.get("verification", {}).items())})
    if len(files) == 1:
        return ""
    rows = []
    for k, path in files.items():
        neg, pos = score_files.split_bona_fide(score_files.read_vuln_scores(path)[0])
        row = {"K": k, "genuine": len(pos), "impostor": len(neg),
               "EER %": 100 * bob.measure.eer(neg, pos)}
        for fmr in fmrs:
            threshold = bob.measure.far_threshold(neg, pos, fmr)
            row[f"FNMR % @ FMR {100 * fmr:g} %"] = 100 * bob.measure.farfrr(neg, pos, threshold)[1]
        rows.append(row)
    return tables.markdown_table(pd.DataFrame(rows), floatfmt=".2f")


def demo_gender(summary, output, block_size=16):
    """Gender leakage on the demo: clean, PE-MIU random per template, and reconstructed templates.

    Returns
    -------
    markdown : str
    written : list of Path
        ``gender.md``, ``gender.csv``, ``gender.png`` in ``output``.
    """
    from ..protection.setting import Protection
    from ..utils import atomic_write_text
    from .gender import format_table, leakage_table, parse_gender, plot_leakage

    output = Path(output)
    with np.load(summary["attack_embeddings"], allow_pickle=False) as z:
        X, keys, gender = z["embeddings"], [str(k) for k in z["keys"]], list(z["gender"])
    cell = GridLayout(summary["output"]).cell("study", Protection.random(block_size))
    rec_keys, rec = cell.read_reconstructed()
    if rec_keys != keys:
        raise RuntimeError("the reconstructions do not follow the attacked samples' order")
    labels = parse_gender(gender)
    smaller = min(int(np.sum(labels == c)) for c in (0, 1))
    # the demo has few faces of one gender: as many folds as the smaller gender allows
    table = leakage_table(X, gender, keys=keys, block_sizes=(block_size,), reconstructed=rec,
                          n_splits=max(2, min(10, smaller)), progress=False)
    markdown = format_table(table)
    atomic_write_text(output / "gender.md", markdown + "\n")
    atomic_write_text(output / "gender.csv", table.to_csv(index=False))
    plot_leakage(table, output / "gender.png", title="Gender prediction, demo faces (dlib)")
    return markdown, [output / "gender.md", output / "gender.csv", output / "gender.png"]
