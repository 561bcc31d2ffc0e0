"""The plugin's settings in Bob's user configuration: one file, one prefix, one reader.

Every setting is a key of Bob's configuration file (``~/.config/bobrc.toml``, written by
``bob config set KEY VALUE``) under the prefix ``bob_facerev.``; nothing else in the package
opens that file::

    from bob_facerev import rc

    routing = rc.get(rc.GPU_ROUTING, "auto")

Keys (see doc/commands.rst): ``bob_facerev.<dataset>.directory`` / ``.protocols`` (databases),
``bob_facerev.<model>.checkpoint`` (face models), ``bob_facerev.generator.checkpoint``,
``bob_facerev.cache``, ``bob_facerev.gpu_routing``, ``bob_facerev.dask.*``,
``bob_facerev.slurm.*`` and ``bob_facerev.sge.*`` (doc/dask.rst).

Earlier versions spelled the Dask and routing keys ``facerev.*``. A key still set with that
prefix is read, with a one-line warning naming the new key (:func:`get`); when both are set the
new one wins.
"""

from __future__ import annotations

import logging

logger = logging.getLogger(__name__)

#: Bob's user configuration file (relative: under ``$XDG_CONFIG_HOME``, by default ``~/.config``)
RC_FILE = "bobrc.toml"

#: the prefix of every key of the plugin
PREFIX = "bob_facerev."

#: the old prefix (deprecated): ``facerev.dask.cpu_workers`` is now ``bob_facerev.dask.cpu_workers``
OLD_PREFIX = "facerev."

#: GPU routing of Dask runs: auto, require or off (:func:`bob_facerev.distributed.route_to_gpu`)
GPU_ROUTING = PREFIX + "gpu_routing"

#: the default generator checkpoint of :class:`bob_facerev.attack.transformer.Reconstruct`
GENERATOR_CHECKPOINT = PREFIX + "generator.checkpoint"

#: the data cache folder (:func:`bob_facerev.utils.data_cache`)
CACHE = PREFIX + "cache"

_MISSING = object()

#: old keys already warned about in this process (one warning per key)
_WARNED = set()


def key(*parts):
    """The full key of ``parts``: ``key("lfw", "directory")`` is ``"bob_facerev.lfw.directory"``."""
    return PREFIX + ".".join(parts)


def user_defaults():
    """Bob's user configuration, read now (clapper's ``UserDefaults`` of :data:`RC_FILE`)."""
    from clapper.rc import UserDefaults

    return UserDefaults(RC_FILE)


def get(name, default=None, config=None):
    """The value of the key ``name`` (``bob_facerev.*``), or ``default`` when it is not set.

    A value still set under the old prefix (``facerev.*``, :data:`OLD_PREFIX`) is read when the
    new key is not set; either way a one-line warning names the new key (once per key and
    process), so an old setting is never silently ignored.

    Parameters
    ----------
    name : str
        The full key, e.g. :data:`GPU_ROUTING` or ``key("dask", "cpu_workers")``.
    default
        Returned when neither spelling is set.
    config : mapping or None
        The configuration to read (default: :func:`user_defaults`, read from disk now).
    """
    config = user_defaults() if config is None else config
    value = config.get(name, _MISSING)
    if name.startswith(PREFIX):
        old = OLD_PREFIX + name[len(PREFIX):]
        old_value = config.get(old, _MISSING)
        if old_value is not _MISSING:
            _warn_old(old, name, old_value, used=value is _MISSING)
            if value is _MISSING:
                value = old_value
    return default if value is _MISSING else value


def _warn_old(old, new, value, used):
    if old in _WARNED:
        return
    _WARNED.add(old)
    what = "read for now" if used else f"ignored, {new} is set"
    logger.warning(f"bob config key {old} is deprecated ({what}): rename it, `bob config set "
                   f"{new} {value}` then `bob config rm {old}`")
