"""``bob facerev rsr``: tables and plots of the reversibility success rate from score files."""

from pathlib import Path

import click


@click.command(
    epilog="""\b
Examples:
  bob facerev rsr results/*/scores-dev.csv -o rsr/
  bob facerev rsr results/*/scores-dev.csv --bona-fide lfw-view2/scores-dev.csv \\
      --fmr 0.001 --fmr 0.01 --faces results/faces.npz -o rsr/
"""
)
@click.argument("scores", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("-o", "--output", default="rsr", show_default=True, type=click.Path(file_okay=False),
              help="Output folder: rsr.md, rsr.csv, rsr.tex, rsr_heatmap.png, det.png, faces.png.")
@click.option("-f", "--fmr", "fmrs", multiple=True, type=float,
              help="FMR of a threshold (repeat). [default: 0.001 0.01 0.1]")
@click.option("-b", "--bona-fide", type=click.Path(exists=True, dir_okay=False), default=None,
              help="Score file whose bona fide rows set the thresholds (e.g. LFW View 2); "
                   "default: each file's own bona fide rows (as bob vuln metrics).")
@click.option("--faces", type=click.Path(exists=True, dir_okay=False), default=None,
              help="NPZ with originals, reconstructions, labels [, row_labels]: draw faces.png.")
@click.option("--heatmap/--no-heatmap", default=True, show_default=True,
              help="Draw rsr_heatmap.png (needs K and P labels in the score files).")
@click.option("--det/--no-det", default=True, show_default=True, help="Draw det.png.")
def rsr(scores, output, fmrs, bona_fide, faces, heatmap, det):
    """RSR at FMR thresholds across protections, from Bob CSV score files.

    SCORES are CSV score files written by the attack pipeline
    (bob_facerev.evaluation.rsr.write_vuln_scores): bona fide rows and attack rows with
    probe_attack_type set, labelled by facerev_* columns (model, K, P, variant, comparison).
    Thresholds are set on bona fide impostor scores with bob.measure.far_threshold; the RSR is
    the share of attack scores at or above them. Every rate comes with its counts.
    """
    from ..evaluation import plots
    from ..evaluation import rsr as rates

    fmrs = fmrs or rates.DEFAULT_FMRS
    out = Path(output)
    try:
        results = rates.evaluate_score_files(scores, bona_fide=bona_fide, fmrs=fmrs)
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    written = rates.write_tables(results, out / "rsr")
    click.echo(written["md"].read_text())
    written = [written["md"], written["csv"], written["tex"]]

    labels = rates.label_columns(results)
    if heatmap and {"facerev_block_size", "facerev_moved_blocks"} <= set(labels):
        plots.rsr_heatmap(results, out / "rsr_heatmap.png")
        written.append(out / "rsr_heatmap.png")
    elif heatmap:
        click.echo("no heatmap: the score files have no facerev_block_size/facerev_moved_blocks")

    if det:
        written.append(
            plots.det_plot(_det_curves(scores, bona_fide), out / "det.png", fmrs=fmrs)
        )

    if faces:
        written.append(plots.face_grid(**plots.load_faces(faces), path=out / "faces.png"))

    for p in written:
        click.echo(f"wrote {p}")


def _det_curves(scores, bona_fide):
    """Bona fide reference curve(s) + one attack-vs-impostor curve per protection."""
    import numpy as np

    from ..evaluation import rsr as rates

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
