"""``bob facerev demo``: the whole benchmark on the bundled demo faces, offline, in minutes."""

import click

from clapper.click import verbosity_option
from clapper.logging import setup

logger = setup("bob_facerev")

#: what ``--size small`` keeps of the demo grid (CI and quick looks)
SMALL = dict(
    protection_names=("none", "k32-p2", "k32-p4", "k32-prandom"),
    epochs=50,
    verification_block_sizes=(32,),
)


def demo_config(output, size="full"):
    """The demo's :class:`~bob_facerev.experiment.GridConfig` (``bob_facerev/config/grid/demo.py``)."""
    from importlib.resources import files

    from ..experiment import GridConfig

    path = files("bob_facerev") / "config" / "grid" / "demo.py"
    cfg = GridConfig.from_file(str(path), output=output)
    if size == "small":
        cfg.protections = [p for p in cfg.protections if p.name in SMALL["protection_names"]]
        cfg.train = dict(cfg.train, epochs=SMALL["epochs"])
        cfg.verification_block_sizes = SMALL["verification_block_sizes"]
    return cfg


def _gender_block_size(cfg):
    """K of the demo's gender table: 16 (the full demo), else the grid's first random setting."""
    random = [p.block_size for p in cfg.protections if p.kind == "random"]
    return 16 if 16 in random or not random else random[0]


@click.command(
    epilog="""\b
Examples:
  bob facerev demo
  bob facerev demo -o facerev-demo-small --size small
"""
)
@click.option("-o", "--output", default="facerev-demo", show_default=True,
              help="Output folder (re-running resumes, and skips what is done).")
@click.option("--size", type=click.Choice(["small", "full"]), default="full", show_default=True,
              envvar="FACEREV_DEMO_SIZE", show_envvar=True,
              help="small: 4 protections and a shorter training (CI); full: the demo grid.")
@click.option("-l", "--dask-client", default=None,
              help="Dask client resource or config file (default: no Dask).")
@verbosity_option(logger=logger, dflt=1)
def demo(output, size, dask_client, **kwargs):
    """The main job on the bundled demo faces with the offline dlib model.

    Demo faces -> dlib embeddings -> verification with `bob bio pipeline simple`, unprotected and
    with PE-MIU -> a quick reconstruction generator -> the attack over a small K x P grid, with and
    without key-free de-shuffling -> RSR table, DET plot, reconstruction grid, gender table.
    """
    import time

    from pathlib import Path

    from ..evaluation.report import demo_gender
    from ..experiment import run_grid
    from ..experiment_layout import GridLayout
    from .grid import grid_report, load_dask_client

    start = time.time()
    from ..utils import check_output_folder
    from .facerev import set_resume_hint

    try:
        check_output_folder(output)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--output") from None
    cfg = demo_config(output, size)
    set_resume_hint(f"run the same command again: the finished steps in {cfg.output} are reused")
    client = load_dask_client(dask_client)
    try:
        summary = run_grid(cfg, dask_client=client)
    finally:
        if client is not None:
            client.close()
    report = GridLayout(cfg.output).report
    markdown, written = grid_report(summary, report)
    gender_md, gender_files = demo_gender(summary, report, block_size=_gender_block_size(cfg))
    click.echo(markdown)
    click.echo("\n# Gender prediction accuracy (demo: a handful of faces, for the mechanics only)\n")
    click.echo(gender_md)
    click.echo("")
    for p in written + gender_files:
        click.echo(f"wrote {p}")
    click.echo(
        f"\nDemo done in {time.time() - start:.0f} s. Results are in {Path(cfg.output).resolve()}:"
        f"\n  report/report.md (tables), report/det.png, report/rsr_heatmap.png, report/faces.png,"
        f"\n  report/gender.md; score files for `bob vuln metrics` in scores/<variant>/<protection>/."
    )
