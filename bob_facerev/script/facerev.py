"""The ``bob facerev`` command group.

Subcommands are registered through the ``bob.facerev.cli`` entry-point group (see setup.py).
Heavy libraries (torch, dlib) are imported inside the commands that use them, so that
``bob facerev --help`` stays fast.

Interruption (Ctrl-C, SIGINT) makes every subcommand exit with status 130 and a message saying
how to resume (:class:`FacerevGroup`).
"""

import importlib.metadata
import signal
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


#: exit status of an interrupted command (128 + SIGINT, as shells report it)
INTERRUPTED = 130

#: key of ``click.Context.meta`` where a command leaves its "how to resume" hint
RESUME_HINT = "bob_facerev.resume_hint"

#: the hint of commands that leave none: every output is written atomically
DEFAULT_HINT = ("files are written atomically, so nothing was left half-written: run the same "
                "command again")


class Interrupted(click.ClickException):
    """Raised on SIGINT: ``Interrupted: <how to resume>`` on stderr, exit status 130."""

    exit_code = INTERRUPTED

    def show(self, file=None):
        click.echo(f"Interrupted: {self.message}", err=True)


def set_resume_hint(text):
    """Say, from inside a command, how to resume it if it is interrupted (shown with exit 130)."""
    ctx = click.get_current_context(silent=True)
    if ctx is not None:
        ctx.meta[RESUME_HINT] = text


def _exits_on_sigint(handler):
    """Whether ``handler`` is the SIGINT handler of ``dask_jobqueue.runner`` (``sys.exit()``)."""
    return getattr(handler, "__module__", None) == "dask_jobqueue.runner"


class FacerevGroup(AliasedGroup):
    """The group's commands turn Ctrl-C into exit status 130 with a resume hint.

    ``dask_jobqueue.runner`` (imported through ``bob.pipelines``) installs a SIGINT handler that
    calls ``sys.exit()``, which would end an interrupted command with status 0 and no message.
    The group restores Python's default handler (``KeyboardInterrupt``) while a command runs,
    and a bare ``SystemExit`` raised under that handler (installed again by a late import) is
    also reported as an interruption.
    """

    def invoke(self, ctx):
        previous = signal.getsignal(signal.SIGINT)
        try:
            signal.signal(signal.SIGINT, signal.default_int_handler)
        except ValueError:  # not the main thread: leave the handlers alone
            previous = None
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            raise Interrupted(ctx.meta.get(RESUME_HINT, DEFAULT_HINT)) from None
        except SystemExit as e:
            if e.code is None and _exits_on_sigint(signal.getsignal(signal.SIGINT)):
                raise Interrupted(ctx.meta.get(RESUME_HINT, DEFAULT_HINT)) from None
            raise
        finally:
            if previous is not None:
                signal.signal(signal.SIGINT, previous)


@with_plugins(importlib.metadata.entry_points(group="bob.facerev.cli"))
@click.group(cls=FacerevGroup)
def facerev():
    """Reversibility of protected face embeddings (PE-MIU, reconstruction attacks)."""
    quiet_progress_in_logs()
