"""Small helpers shared by the whole package: atomic writes, the data cache folder.

The files the package writes (score files, tables, figures, ``.npz`` arrays, checkpoints,
annotation caches) go through :func:`atomic_path`: the data is written to a temporary file in
the target's folder, which then replaces the target with :func:`os.replace`. Readers, and runs
that are interrupted and resumed, therefore see either the old file or the complete new one,
never a half-written file. :func:`atomic_write_text` and :func:`atomic_savez` are the two common
cases built on it.

:func:`data_cache` is the one place that says where derived data (embedding caches, trained
generators of the benchmarks) lives by default; :func:`resolve_device` the one place that turns
``"auto"`` into a torch device (the extractor, the reconstruction transformer, the trainer).

The module imports only the standard library (numpy when it is used), so that command-line
modules can use it without slowing ``bob facerev --help``.
"""

import contextlib
import os
import uuid

from pathlib import Path

from .rc import CACHE as CACHE_KEY  # the ``bob config`` key of the data cache folder


@contextlib.contextmanager
def atomic_path(path):
    """Write ``path`` atomically: yield a temporary path to write, then move it into place.

    The temporary file lies in the same folder as ``path`` (so that :func:`os.replace` is an
    atomic rename on the same file system) and keeps its final suffix, so that writers that choose
    or check the format from the name (``numpy.savez`` appends ``.npz`` when it is missing,
    matplotlib, PIL) do the same as for ``path``. Its name is hidden (leading dot) and unique
    per process and call (process id and a random token), so concurrent writers never collide,
    e.g. ``faces.npz`` -> ``.faces.npz.<pid>.<token>.tmp.npz``.

    If the block finishes, the temporary file replaces ``path``. If it raises (any exception,
    ``KeyboardInterrupt`` included), the temporary file is removed, ``path`` keeps its old
    content (or keeps not existing) and the exception propagates.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write. Its parent folder is created if needed.

    Yields
    ------
    pathlib.Path
        The temporary file to write (it does not exist yet).

    Examples
    --------
    >>> import numpy as np
    >>> with atomic_path("out/faces.npz") as tmp:  # doctest: +SKIP
    ...     np.savez(tmp, faces=faces)
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`).

    The text is written as it is, in the default encoding, with no newline translation.

    Parameters
    ----------
    path : str or os.PathLike
        The file to write; its parent folder is created if needed.
    text : str
        The whole content.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        f.write(text)
    return path


def atomic_savez(path, **arrays):
    """:func:`numpy.savez` to ``path`` atomically (see :func:`atomic_path`).

    Parameters
    ----------
    path : str or os.PathLike
        The file to write, as named (``.npz`` is not appended); its parent folder is created if
        needed.
    **arrays : array-like
        The arrays to store, by name.

    Returns
    -------
    pathlib.Path
        ``path``.
    """
    import numpy as np

    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez(f, **arrays)
    return path


def writable(path):
    """Whether ``path`` (an existing file or folder) may be written by this process.

    Besides :func:`os.access`, the permission bits must grant some write access: a folder the
    user made read-only (``chmod a-w``) counts as read-only even for root, who could bypass it.
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return os.access(path, os.W_OK) and bool(mode & 0o222)


def check_output_folder(path):
    """Raise a one-line ``ValueError`` unless the output folder ``path`` can be created or written.

    Called by the commands before any work, so that an output in a read-only place fails in a
    second with the fix, not with a traceback after hours.

    Parameters
    ----------
    path : str or os.PathLike

    Returns
    -------
    pathlib.Path
        ``path``, absolute.
    """
    path = Path(path).expanduser().absolute()
    if path.exists() and not path.is_dir():
        raise ValueError(f"output {path} exists and is not a folder: choose another output folder")
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not writable(existing):
        what = "the output folder" if existing == path else f"{existing}, where it would be created,"
        raise ValueError(f"cannot write to {path}: {what} is not a writable folder; choose another "
                         "output folder or fix its permissions (chmod u+w)")
    return path


def lazy_exports(package, exports):
    """A module ``__getattr__`` that imports a package's public names on first use (PEP 562).

    Keeps ``import bob_facerev.face`` cheap (no torch, no dlib) while ``from bob_facerev.face
    import FaceEmbedding`` works.

    Parameters
    ----------
    package : str
        The package's ``__name__``.
    exports : dict
        ``{public name: submodule name}``.

    Returns
    -------
    callable
        To assign to the package's ``__getattr__``.
    """

    def __getattr__(name):
        if name in exports:
            import importlib

            return getattr(importlib.import_module(f"{package}.{exports[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


#: environment variable of the data cache folder (:func:`data_cache`; ``bob config`` key:
#: :data:`bob_facerev.rc.CACHE`)
CACHE_ENV = "FACEREV_CACHE"


def resolve_device(device=None):
    """The torch device to compute on: ``None`` or ``"auto"`` is CUDA when available, else CPU.

    Parameters
    ----------
    device : str, torch.device or None
        ``None``/``"auto"``, or anything :class:`torch.device` accepts (``"cpu"``, ``"cuda:1"``).

    Returns
    -------
    torch.device
    """
    import torch

    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def data_cache(*parts):
    """The data cache folder (or a path inside it) for derived data of the benchmarks.

    Resolved, first match wins:

    1. the environment variable ``FACEREV_CACHE``;
    2. ``bob config set bob_facerev.cache /path/to/cache`` (Bob's ``~/.config/bobrc.toml``);
    3. ``bob_facerev`` in the user's cache folder: ``$XDG_CACHE_HOME/bob_facerev``, by default
       ``~/.cache/bob_facerev``.

    The folder is not created here: writers create it (e.g. :func:`atomic_path` creates the
    parents of what it writes).

    Parameters
    ----------
    *parts : str
        Path components inside the cache, e.g. ``data_cache("utkface_dlib.npz")``.

    Returns
    -------
    pathlib.Path

    Examples
    --------
    >>> import os
    >>> os.environ["FACEREV_CACHE"] = "/data/facerev"
    >>> str(data_cache("utkface_dlib.npz"))
    '/data/facerev/utkface_dlib.npz'
    >>> del os.environ["FACEREV_CACHE"]
    """
    root = os.environ.get(CACHE_ENV)
    if not root:
        from . import rc

        root = rc.get(CACHE_KEY)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "bob_facerev")
    return Path(os.path.expanduser(str(root))).joinpath(*parts)
