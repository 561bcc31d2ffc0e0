"""``-d facerev-lfw-view2`` / ``facerev-lfw-attack`` / ``facerev-lfw-all``: LFW from your folder.

Set up once::

    bob config set bob_facerev.lfw.directory /path/to/lfw
    bob facerev db build lfw /path/to/lfw

The databases are created on each access (module ``__getattr__``), so importing this module
never fails; using one without the configuration raises an error naming these commands.
``facerev-lfw-attack`` is the study's gender-balanced set (protocol ``attack-balanced``).
"""

from bob_facerev.database.lfw import lfw_database

_PROTOCOLS = {"database_view2": "view2", "database_attack": "attack-balanced", "database_all": "all"}


def __getattr__(name):
    if name in _PROTOCOLS:
        return lfw_database(_PROTOCOLS[name])
    raise AttributeError(name)
