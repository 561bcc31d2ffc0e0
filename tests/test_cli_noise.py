"""`bob facerev` keeps its output readable: no pkg_resources warning, few progress redraws in logs."""

import importlib
import io
import warnings


def test_pkg_resources_warning_is_filtered():
    from bob_facerev.script import facerev

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        importlib.reload(facerev)  # the module installs its filter on import
        warnings.warn(f"{facerev.PKG_RESOURCES_WARNING}. See https://setuptools.pypa.io/...",
                      UserWarning)
        warnings.warn("another warning", UserWarning)
    assert [str(w.message) for w in caught] == ["another warning"]


def _redraws(log, epochs=300, seconds=1.0):
    """Redraws of a training bar whose epochs take ``seconds`` each (a fake clock)."""
    import itertools
    import time

    from tqdm import tqdm

    bar = tqdm(total=epochs, file=log, desc="training")
    clock = itertools.count(time.time(), seconds)
    bar._time = lambda: next(clock)
    for _ in range(epochs):
        bar.update(1)
        bar.set_postfix(loss="0.1", refresh=False)
    bar.close()
    return log.getvalue().count("\r")


def test_progress_bars_redraw_rarely_in_logs(monkeypatch):
    """300 one-second epochs in a log: about one redraw per 30 s, not one per epoch."""
    from tqdm import std

    from bob_facerev.script.facerev import quiet_progress_in_logs

    monkeypatch.setattr(std.tqdm, "__init__", std.tqdm.__init__)  # restored after the test
    assert _redraws(io.StringIO()) > 100  # tqdm's default: the check bites

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert quiet_progress_in_logs(Tty()) is False  # a terminal keeps tqdm's default
    assert _redraws(io.StringIO()) > 100
    assert quiet_progress_in_logs(io.StringIO()) is True  # a StringIO is not a terminal
    assert quiet_progress_in_logs(io.StringIO()) is True  # idempotent
    assert _redraws(io.StringIO()) <= 13
    # a bar that chooses its interval keeps it
    from tqdm import tqdm

    assert tqdm(total=1, file=io.StringIO(), mininterval=0.5).mininterval == 0.5
