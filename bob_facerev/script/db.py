"""``bob facerev db build lfw|ffhq|cfp PATH``: CSV protocols from your dataset folders."""

import click


@click.group()
def db():
    """Build the CSV protocols of LFW, FFHQ and CFP from your folders."""


@db.command()
@click.argument("dataset", type=click.Choice(["lfw", "ffhq", "cfp"]))
@click.argument("path", type=click.Path(file_okay=False, path_type=str))
@click.option("-o", "--output", type=click.Path(file_okay=False), default=None,
              help="Protocol folder (default: bob config bob_facerev.<dataset>.protocols, else ~/.cache/bob_facerev/<dataset>).")
@click.option("--annotate", is_flag=True, help="Store eye positions found by the dlib annotator.")
@click.option("--seed", type=int, default=2021, show_default=True,
              help="Seed of the FFHQ split and of LFW's random choices (--pick random, balanced selection).")
@click.option("--pick", type=click.Choice(["first", "random"]), default="first", show_default=True,
              help="LFW/CFP attack protocols: which image per identity (Name_0001, or a seeded random one).")
@click.option("--balance", type=click.Choice(["random", "sorted"]), default="random", show_default=True,
              help="LFW attack-balanced: draw the larger gender's identities at random (seeded) or keep the first by name.")
@click.option("--n-per-gender", type=int, default=None,
              help="LFW attack-balanced: identities per gender (default: all of the smaller gender).")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def build(dataset, path, output, annotate, seed, pick, balance, n_per_gender, quiet):
    """Validate the DATASET folder PATH and write its CSV protocols.

    \b
    Examples:
      bob facerev db build lfw ~/data/lfw-deepfunneled
      bob facerev db build ffhq ~/data/ffhq/images1024x1024 -o ~/protocols/ffhq
      bob facerev db build cfp ~/data/cfp
    """
    import os
    import shlex

    from bob_facerev.database.protocols import check_protocol_output, default_protocols_path, rc

    try:  # refuse a wrong -o before the (long) image checks
        check_protocol_output(default_protocols_path(dataset) if output is None else output)
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    if dataset == "lfw":
        from bob_facerev.database.lfw import build_lfw

        run = lambda: build_lfw(path, output, annotate=annotate, pick=pick, seed=seed,  # noqa: E731
                                n_per_gender=n_per_gender, balance=balance, progress=not quiet)
    elif dataset == "cfp":
        from bob_facerev.database.cfp import build_cfp

        run = lambda: build_cfp(path, output, annotate=annotate, pick=pick, seed=seed,  # noqa: E731
                                progress=not quiet)
    else:
        from bob_facerev.database.ffhq import build_ffhq

        run = lambda: build_ffhq(path, output, annotate=annotate, seed=seed, progress=not quiet)  # noqa: E731
    try:
        out, manifest = run()
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(f"Wrote {dataset} protocols to {out}")
    for k, v in manifest["summary"].items():
        click.echo(f"  {k:20s} {v}")
    if out != default_protocols_path(dataset).absolute():
        click.echo("Not the default location; tell the databases with:\n"
                   f"  bob config set bob_facerev.{dataset}.protocols {shlex.quote(str(out))}")
    configured = rc().get(f"bob_facerev.{dataset}.directory")
    if not configured or os.path.abspath(os.path.expanduser(configured)) != os.path.abspath(path):
        click.echo("Tell the databases where the images are:\n"
                   f"  bob config set bob_facerev.{dataset}.directory {shlex.quote(os.path.abspath(path))}")
