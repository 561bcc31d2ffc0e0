"""The ``bob facerev`` command group.

Subcommands are registered through the ``bob.facerev.cli`` entry-point group (see setup.py).
Heavy libraries (torch, dlib) are imported inside the commands that use them, so that
``bob facerev --help`` stays fast.

Interruption (Ctrl-C, SIGINT) makes every subcommand exit with status 130 and a message saying
how to resume (:class:`FacerevGroup`).
"""

import importlib.metadata
import signal

import click

from clapper.click import AliasedGroup
from click_plugins import with_plugins

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
