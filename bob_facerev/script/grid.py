"""``bob facerev grid``: the study's K x P attack grid for one extractor, in one command."""

import click

from clapper.click import verbosity_option
from clapper.logging import setup

logger = setup("bob_facerev")


def load_dask_client(name):
    """A Dask client from a ``dask.client`` resource name or config file (``-l``), or None."""
    if not name:
        return None
    from clapper.config import load

    return load([name], entry_point_group="dask.client", attribute_name="dask_client")


def grid_report(summary, output, fmrs=None):
    """Write the grid's report (tables, plots) into ``output``; returns the markdown text.

    See :func:`bob_facerev.evaluation.report.grid_report`.
    """
    from ..evaluation.report import grid_report as report

    return report(summary, output, fmrs)


@click.command(
    epilog="""\b
Examples:
  bob facerev grid study-arcface -o results/arcface
  bob facerev grid demo -o results/demo -l facerev-local
  bob facerev grid config/grid/study_dlib.py
  bob vuln metrics -c far -f 0.001 results/demo/scores/study/k32-p2/scores-dev.csv
"""
)
@click.argument("config")
@click.option("-o", "--output", default=None, help="Output folder (default: the config's `output`).")
@click.option("-l", "--dask-client", default=None,
              help="Dask client: a `dask.client` resource (facerev-local, facerev-local-gpu, "
                   "facerev-slurm-gpu, local-parallel, ...) or a config file. Default: no Dask.")
@click.option("-f", "--fmr", "fmrs", multiple=True, type=float,
              help="FMR of a threshold (repeat). [default: 0.001 0.01 0.1]")
@click.option("--force", is_flag=True, help="Recompute the attack scores even if they exist.")
@verbosity_option(logger=logger, dflt=1)
def grid(config, output, dask_client, fmrs, force, **kwargs):
    """Run the attack grid of CONFIG: bona fide scores, training, attacks, RSR report.

    CONFIG is a packaged grid (a `bob_facerev.grid` resource: demo, study-arcface,
    study-elasticface, study-dlib, cfp-sface; `bob facerev resources` lists them) or a Python
    file setting the fields of bob_facerev.experiment.GridConfig (model, databases, protections,
    variants, training recipe, output). Every step is cached in the output folder: run the
    command again to resume after an interruption.
    """
    from ..config import GRID, config_file
    from ..experiment import GridConfig, run_grid, validate_grid
    from ..experiment_layout import GridLayout
    from ..utils import check_output_folder
    from .facerev import set_resume_hint

    try:  # the whole config, before any work
        cfg = GridConfig.from_file(config_file(config, GRID), output=output)
        validate_grid(cfg)
        check_output_folder(cfg.output)
    except ValueError as e:
        message = str(e)
        raise click.ClickException(
            message if message.startswith(str(config)) else f"{config}: {message}") from None
    set_resume_hint(f"run the same command again: the finished steps in {cfg.output} are reused")
    client = load_dask_client(dask_client)
    try:
        summary = run_grid(cfg, dask_client=client, force=force)
    finally:
        if client is not None:
            client.close()
    markdown, written = grid_report(summary, GridLayout(cfg.output).report, fmrs=fmrs or None)
    click.echo(markdown)
    for p in written:
        click.echo(f"wrote {p}")
