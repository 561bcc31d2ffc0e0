"""``-d facerev-ffhq``: FFHQ from your folder (train / validation split, fixed eye positions).

Set up once::

    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024

The database is created on each access (module ``__getattr__``), so importing this module never
fails; using it without the configuration raises an error naming these commands.
"""

from bob_facerev.database.ffhq import ffhq_database


def __getattr__(name):
    if name == "database":
        return ffhq_database("train-validation")
    raise AttributeError(name)
