"""The packaged configurations, registered as Bob resources (``bob facerev resources`` lists them).

``grid/`` and ``train/`` hold the configurations of ``bob facerev grid NAME`` and
``bob facerev train NAME`` (entry-point groups :data:`GRID` and :data:`TRAIN`, declared in
setup.py); ``database/``, ``pipeline/``, ``transformer/``, ``annotator/`` and ``dask/`` the
``bob bio`` resources (``-d``, ``-p``, ``-t``, ``-a``, ``-l``). Their recipes come from
:mod:`bob_facerev.attack.recipe`. The top-level ``config/`` folder of the source tree only has
examples that import these.
"""

#: entry-point group of the ``bob facerev grid`` configurations
GRID = "bob_facerev.grid"

#: entry-point group of the ``bob facerev train`` configurations
TRAIN = "bob_facerev.train"


def resource_names(group):
    """The sorted names of the resources registered in the entry-point group ``group``."""
    import importlib.metadata

    return sorted({ep.name for ep in importlib.metadata.entry_points(group=group)})


def config_file(name, group):
    """The Python file of a configuration: ``name`` itself when it is a file, else the module of
    the resource ``name`` of ``group`` (e.g. ``config_file("study-dlib", GRID)``).

    Raises
    ------
    ValueError
        ``name`` is neither a file nor a resource of ``group`` (one line, with "did you mean").
    """
    import importlib.metadata
    import importlib.util

    from pathlib import Path

    if Path(name).is_file():
        return str(name)
    eps = {ep.name: ep for ep in importlib.metadata.entry_points(group=group)}
    if name in eps:
        return importlib.util.find_spec(eps[name].module).origin
    from ..experiment_config import _did_you_mean

    names = sorted(eps)
    raise ValueError(f"{name} is neither a file nor a {group} resource{_did_you_mean(name, names)}; "
                     f"the resources are {', '.join(names)} (`bob facerev resources`)")
