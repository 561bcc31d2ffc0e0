"""The ``bob facerev`` command group.

Subcommands are registered through the ``bob.facerev.cli`` entry-point group (see setup.py).
Heavy libraries (torch, dlib) are imported inside the commands that use them, so that
``bob facerev --help`` stays fast.
"""

import importlib.metadata
import sys
import warnings

import click

from clapper.click import AliasedGroup
from click_plugins import with_plugins

#: Bob's packages (and dask-ml) import the deprecated ``pkg_resources``; its warning says nothing
#: to a user of ``bob facerev`` (Bob's own ``bob measure`` module, loaded by ``bob`` before this
#: plugin, still prints it once: the plugin cannot filter what is imported before it)
PKG_RESOURCES_WARNING = "pkg_resources is deprecated as an API"
warnings.filterwarnings("ignore", message=PKG_RESOURCES_WARNING, category=UserWarning)

#: seconds between progress-bar redraws when stderr is a file or a pipe (logs), not a terminal
LOG_PROGRESS_INTERVAL = 30


def quiet_progress_in_logs(stream=None):
    """Redraw tqdm progress bars at most every :data:`LOG_PROGRESS_INTERVAL` s in logs.

    When ``stream`` (default ``sys.stderr``) is not a terminal, tqdm bars created afterwards in
    this process (the plugin's and Bob's) default to ``mininterval=LOG_PROGRESS_INTERVAL``, so
    that a log keeps a few lines per bar instead of one redraw per step; a bar that sets its own
    ``mininterval`` keeps it. Called by ``bob facerev`` before any subcommand.

    Returns
    -------
    bool
        Whether the default was changed.
    """
    stream = sys.stderr if stream is None else stream
    if getattr(stream, "isatty", lambda: False)():
        return False
    from tqdm import std

    init = std.tqdm.__init__
    if getattr(init, "facerev_quiet", False):
        return True

    def __init__(self, *args, **kwargs):
        if len(args) < 7:  # mininterval not given by position
            kwargs.setdefault("mininterval", LOG_PROGRESS_INTERVAL)
        init(self, *args, **kwargs)

    __init__.facerev_quiet = True
    std.tqdm.__init__ = __init__
    return True


@with_plugins(importlib.metadata.entry_points(group="bob.facerev.cli"))
@click.group(cls=AliasedGroup)
def facerev():
    """Reversibility of protected face embeddings (PE-MIU, reconstruction attacks)."""
    quiet_progress_in_logs()
