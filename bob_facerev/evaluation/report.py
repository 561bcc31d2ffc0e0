"""The RSR report: tables, heatmap, DET plot and face grid from attack score files.

Shared by ``bob facerev rsr`` (any score files) and ``bob facerev grid`` / ``demo`` (the grid's).
"""

import os
import shutil
import tempfile

from pathlib import Path

import numpy as np

from . import plots
from . import rsr as rates


def rsr_report(scores, output, fmrs=None, bona_fide=None, faces=None, heatmap=True, det=True):
    """Write the RSR tables and plots of attack score files into ``output``.

    Parameters
    ----------
    scores : list of str or Path
        Bob CSV score files (:func:`~bob_facerev.evaluation.rsr.write_vuln_scores`).
    output : str or Path
        Folder: ``rsr.md``, ``rsr.csv``, ``rsr.tex``, ``rsr_heatmap.png``, ``det.png``,
        ``faces.png``.
    fmrs : sequence of float, optional
        Default :data:`~bob_facerev.evaluation.rsr.DEFAULT_FMRS`.
    bona_fide : str, optional
        Score file whose bona fide rows set the thresholds (default: each file's own).
    faces : str, optional
        Faces ``.npz`` (:func:`~bob_facerev.evaluation.plots.save_faces`) for ``faces.png``.
    heatmap, det : bool
        Draw the heatmap (when the files carry K and P labels) and the DET plot.

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
        markdown, staged = _write_report(scores, staging, fmrs, bona_fide, faces, heatmap, det)
        out.mkdir(exist_ok=True)
        written = []
        for path in staged:
            target = out / Path(path).relative_to(staging)
            os.replace(path, target)
            written.append(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return markdown, written


def _write_report(scores, out, fmrs, bona_fide, faces, heatmap, det):
    """:func:`rsr_report` into the staging folder ``out``."""
    fmrs = fmrs or rates.DEFAULT_FMRS
    results = rates.evaluate_score_files(scores, bona_fide=bona_fide, fmrs=fmrs)
    tables = rates.write_tables(results, out / "rsr")
    markdown = tables["md"].read_text()
    written = [tables["md"], tables["csv"], tables["tex"]]
    labels = rates.label_columns(results)
    if heatmap and {"facerev_block_size", "facerev_moved_blocks"} <= set(labels):
        plots.rsr_heatmap(results, out / "rsr_heatmap.png")
        written.append(out / "rsr_heatmap.png")
    if det:
        written.append(plots.det_plot(_det_curves(scores, bona_fide), out / "det.png", fmrs=fmrs))
    if faces:
        written.append(plots.face_grid(**plots.load_faces(faces), path=out / "faces.png"))
    return markdown, written


def _det_curves(scores, bona_fide):
    """Bona fide reference curve(s) + one attack-vs-impostor curve per protection."""
    shared = rates.load_bona_fide(bona_fide) if bona_fide else None
    refs, curves = [], []
    for p in scores:
        bf, at = rates.read_vuln_scores(p)
        neg, pos = shared if shared is not None else rates.split_bona_fide(bf)
        if pos.size and not any(
            np.array_equal(neg, n) and np.array_equal(pos, q) for _, n, q in refs
        ):
            refs.append((str(p), neg, pos))
        cols = rates.label_columns(at)
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
        name = " ".join(f"{rates.display_name(c)}={v}" for c, v in lab.items() if c in varying)
        attack_curves.append((f"attack {name}" if name else f"attack {fname}", neg, att))
    ref_curves = [
        ("bona fide" if len(refs) == 1 else f"bona fide ({Path(src).parent.name}/{Path(src).name})",
         neg, pos)
        for src, neg, pos in refs
    ]
    return ref_curves + attack_curves
