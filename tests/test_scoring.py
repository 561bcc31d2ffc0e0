"""IndexedReferences: Bob's score_sample_templates, through an index."""

import numpy as np
import pytest
from bob.bio.base.pipelines import BioAlgorithm
from bob.pipelines import DelayedSample, Sample

from bob_facerev.pipelines import CosineSimilarity
from bob_facerev.protection.comparator import PEMIUComparator


def _templates(rng, dim=8):
    """Enrolled templates (one id twice) and probes with 1-2 references; one probe failed."""
    ids = ["a", "b", "c", "d", "b"]
    enroll = [DelayedSample(lambda v=rng.normal(size=dim): v, template_id=t, subject_id=t)
              for t in ids]
    refs = [["a"], ["b"], ["c", "a"], ["d", "d"], ["c"]]
    probes = [Sample(rng.normal(size=(1, dim)), template_id=f"p{i}", references=r)
              for i, r in enumerate(refs)]  # a probe template: its samples' features (1 here)
    probes[4] = Sample(np.full((1, dim), np.nan), template_id="p4", references=["c"])
    return probes, enroll


def _table(score_sets):
    return [(s.template_id, [(x.template_id, float(x.data)) for x in ss.samples])
            for ss in score_sets for s in [ss]]


@pytest.mark.parametrize("algorithm", [CosineSimilarity(), PEMIUComparator(block_size=2)])
def test_indexed_references_score_as_bob_does(algorithm):
    probes, enroll = _templates(np.random.default_rng(0))
    got = algorithm.score_sample_templates(probes, enroll, score_all_vs_all=False)
    bob = BioAlgorithm.score_sample_templates(algorithm, probes, enroll, score_all_vs_all=False)
    assert [len(ss.samples) for ss in got] == [1, 2, 2, 1, 1]  # "b" is enrolled twice
    g, b = _table(got), _table(bob)
    assert [t for t, _ in g] == [t for t, _ in b]
    for (_, gs), (_, bs) in zip(g, b):
        assert [r for r, _ in gs] == [r for r, _ in bs]
        np.testing.assert_allclose([v for _, v in gs], [v for _, v in bs], rtol=0, atol=0)
    assert np.isnan(g[4][1][0][1])  # the failed probe scores NaN, as in Bob
    assert not np.isnan([v for _, s in g[:4] for _, v in s]).any()


def test_indexed_references_missing_reference_and_all_vs_all():
    probes, enroll = _templates(np.random.default_rng(1))
    lost = [Sample(probes[0].data, template_id="p9", references=["zz"])]
    with pytest.raises(ValueError, match=r"(?s)No enroll sampleset found.*\[.zz.\]"):
        CosineSimilarity().score_sample_templates(lost, enroll, score_all_vs_all=False)
    every = CosineSimilarity().score_sample_templates(probes[:2], enroll, score_all_vs_all=True)
    assert [len(ss.samples) for ss in every] == [5, 5]  # Bob's all-vs-all
