"""``-d facerev-cfp-ff`` / ``facerev-cfp-fp`` / ``facerev-cfp-attack``: CFP from your folder.

Set up once::

    bob config set bob_facerev.cfp.directory /path/to/cfp     # holds Data/ and Protocol/
    bob facerev db build cfp /path/to/cfp

The databases are created on each access (module ``__getattr__``), so importing this module
never fails; using one without the configuration raises an error naming these commands.
"""

from bob_facerev.database.cfp import cfp_database

_PROTOCOLS = {"database_ff": "ff", "database_fp": "fp", "database_attack": "attack"}


def __getattr__(name):
    if name in _PROTOCOLS:
        return cfp_database(_PROTOCOLS[name])
    raise AttributeError(name)
