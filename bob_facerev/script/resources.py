"""``bob facerev resources``: what the plugin registers in Bob."""

import importlib.metadata

import click

#: entry-point groups the plugin registers resources in, with a human name
RESOURCE_GROUPS = {
    "bob.bio.database": "databases (-d)",
    "bob.bio.pipeline": "pipelines (-p)",
    "bob.bio.transformer": "transformers (-t)",
    "bob.bio.annotator": "annotators (-a)",
    "dask.client": "dask clients (-l)",
    "bob_facerev.grid": "grids (bob facerev grid NAME)",
    "bob_facerev.train": "trainings (bob facerev train NAME)",
}


def plugin_resources():
    """Return ``{group: [(name, target), ...]}`` of the resources bob_facerev registers."""
    out = {}
    for group in RESOURCE_GROUPS:
        eps = [
            ep
            for ep in importlib.metadata.entry_points(group=group)
            if ep.dist is not None and ep.dist.name.replace("-", "_") == "bob_facerev"
        ]
        out[group] = sorted((ep.name, ep.value) for ep in eps)
    return out


@click.command()
def resources():
    """List the Bob resources (databases, pipelines, ...) that bob_facerev registers."""
    for group, items in plugin_resources().items():
        click.echo(f"{RESOURCE_GROUPS[group]}  [{group}]")
        for name, value in items:
            click.echo(f"  {name:32s} {value}")
