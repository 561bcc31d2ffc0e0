"""``bob facerev rsr``: tables and plots of the reversibility success rate from score files."""

import click


@click.command(
    epilog="""\b
Examples:
  bob facerev rsr results/k32-p4/scores-dev.csv results/k32-p8/scores-dev.csv -o rsr/
  bob facerev rsr results/k32-p4/scores-dev.csv --bona-fide lfw-view2/scores-dev.csv \\
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
    (bob_facerev.evaluation.score_files.write_vuln_scores): bona fide rows and attack rows with
    probe_attack_type set, labelled by their facerev-prefixed metadata columns (model, K, P, variant, comparison).
    Thresholds are set on bona fide impostor scores with bob.measure.far_threshold; the RSR is
    the share of attack scores at or above them. Every rate comes with its counts.
    """
    from ..evaluation.report import rsr_report
    from ..utils import check_output_folder

    try:
        check_output_folder(output)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--output") from None
    try:
        markdown, written = rsr_report(
            scores, output, fmrs=fmrs, bona_fide=bona_fide, faces=faces, heatmap=heatmap, det=det
        )
    except ValueError as e:
        raise click.UsageError(str(e)) from e
    click.echo(markdown)
    for p in written:
        click.echo(f"wrote {p}")
