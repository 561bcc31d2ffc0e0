"""The ``bob facerev`` command group.

Subcommands are registered through the ``bob.facerev.cli`` entry-point group (see setup.py).
Heavy libraries (torch, dlib) are imported inside the commands that use them, so that
``bob facerev --help`` stays fast.
"""

import importlib.metadata

import click

from clapper.click import AliasedGroup
from click_plugins import with_plugins


@with_plugins(importlib.metadata.entry_points(group="bob.facerev.cli"))
@click.group(cls=AliasedGroup)
def facerev():
    """Reversibility of protected face embeddings (PE-MIU, reconstruction attacks)."""
