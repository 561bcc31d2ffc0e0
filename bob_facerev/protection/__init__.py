"""PE-MIU template protection and its comparator.

* :mod:`bob_facerev.protection.assignment`: :func:`batched_assignment`, the exact minimum-cost
  assignment of many small matrices (numba, all cores).
* :mod:`bob_facerev.protection.pemiu`: block permutations and the :class:`PEMIU` transformer.
* :mod:`bob_facerev.protection.comparator`: :func:`pemiu_scores` and the
  :class:`PEMIUComparator` ``BioAlgorithm``.

The names are importable from this package; they load on first access, so that importing
``bob_facerev.protection.assignment`` alone does not import Bob.
"""

from ..utils import lazy_exports

_EXPORTS = {
    "batched_assignment": "assignment",
    "check_embeddings": "pemiu",
    "n_blocks": "pemiu",
    "fixed_permutation": "pemiu",
    "random_permutations": "pemiu",
    "permute_blocks": "pemiu",
    "PEMIU": "pemiu",
    "pemiu_scores": "comparator",
    "PEMIUComparator": "comparator",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
