"""Scoring each probe against its own references in time linear in the number of templates.

Bob's ``BioAlgorithm.score_sample_templates`` finds the references of each probe by reading the
template id of every enrolled template (``str(enroll.template_id) in references``): N probes x
M references attribute reads of lazy samples. On LFW-shaped protocols (one reference per probe,
thousands of both) that scan dominated the end of ``bob bio pipeline simple --no-dask``
(doc/benchmarks.rst, :ref:`pipeline-scale`). :class:`IndexedReferences` gives the package's
comparators the same method with an index built in one pass.
"""

from __future__ import annotations

import numpy as np
from bob.bio.base.pipelines import BioAlgCheckpointWrapper
from bob.bio.base.pipelines.abstract_classes import _data_valid
from bob.pipelines import Sample, SampleBatch, SampleSet


class IndexedReferences:
    """Mixin for a Bob ``BioAlgorithm``: ``score_sample_templates`` through an index.

    Same result as Bob's method (the same score SampleSets, scores in the order of the enrolled
    templates, the same parents, the same error when a probe has no reference); all-vs-all
    scoring is left to Bob.
    """

    def score_sample_templates(self, probe_samples, enroll_samples, score_all_vs_all):
        if score_all_vs_all:
            return super().score_sample_templates(probe_samples, enroll_samples, True)
        positions = {}
        for i, enroll in enumerate(enroll_samples):
            positions.setdefault(str(enroll.template_id), []).append(i)
        return [self._score_probe(probe, enroll_samples, positions) for probe in probe_samples]

    def _score_probe(self, probe, enroll_samples, positions):
        references = [str(ref) for ref in probe.references]
        indices = sorted({i for ref in references for i in positions.get(ref, ())})
        if not indices:
            raise ValueError(
                f"No enroll sampleset found for probe {probe} and its required references "
                f"{references}. Did you mean to set score_all_vs_all=True?")
        if _data_valid(probe.data):
            enrolled = SampleBatch([enroll_samples[i] for i in indices])
            scores = np.asarray(self.compare(enrolled, SampleBatch([probe])), dtype=float)
        else:
            scores = np.full((len(indices), 1), np.nan)
        if scores.shape != (len(indices), 1):
            raise RuntimeError(f"{type(self).__name__}.compare returned scores of shape "
                               f"{scores.shape}, expected {(len(indices), 1)}")
        return SampleSet([Sample(scores[k, 0], parent=enroll_samples[i])
                          for k, i in enumerate(indices)], parent=probe)


class IndexedCheckpointWrapper(IndexedReferences, BioAlgCheckpointWrapper):
    """Bob's ``BioAlgCheckpointWrapper``, scoring through :class:`IndexedReferences`.

    Bob's checkpoint wrapper scores with the method it inherits from ``BioAlgorithm``, not with
    the wrapped algorithm's; :func:`index_checkpointed_references` (called by
    :class:`~bob_facerev.distributed.GPURoutedPipelineSimple` before it runs) puts this class in
    its place.
    """


def index_checkpointed_references(biometric_algorithm):
    """Make Bob's checkpoint wrappers of an :class:`IndexedReferences` algorithm
    :class:`IndexedCheckpointWrapper` (in place; same state, one more method).

    ``biometric_algorithm`` is a pipeline's, possibly wrapped by Bob (Dask, checkpoints).
    Returns the number of wrappers changed.
    """
    chain = [biometric_algorithm]
    while getattr(chain[-1], "biometric_algorithm", None) is not None:
        chain.append(chain[-1].biometric_algorithm)
    if not isinstance(chain[-1], IndexedReferences):
        return 0
    wrappers = [a for a in chain if type(a) is BioAlgCheckpointWrapper]
    for wrapper in wrappers:
        wrapper.__class__ = IndexedCheckpointWrapper
    return len(wrappers)
