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
    return [(ss.template_id, [(x.template_id, float(x.data)) for x in ss.samples])
            for ss in score_sets]


def _assert_same(got, bob):
    """Same probes, references in the same order, and scores bit-equal (NaN where Bob's)."""
    g, b = _table(got), _table(bob)
    assert [(t, [r for r, _ in s]) for t, s in g] == [(t, [r for r, _ in s]) for t, s in b]
    np.testing.assert_array_equal([v for _, s in g for _, v in s], [v for _, s in b for _, v in s])


@pytest.mark.parametrize("algorithm", [CosineSimilarity(), PEMIUComparator(block_size=2)])
def test_indexed_references_score_as_bob_does(algorithm):
    probes, enroll = _templates(np.random.default_rng(0))
    got = algorithm.score_sample_templates(probes, enroll, score_all_vs_all=False)
    bob = BioAlgorithm.score_sample_templates(algorithm, probes, enroll, score_all_vs_all=False)
    assert [len(ss.samples) for ss in got] == [1, 2, 2, 1, 1]  # "b" is enrolled twice
    _assert_same(got, bob)
    g = _table(got)
    assert np.isnan(g[4][1][0][1])  # the failed probe scores NaN, as in Bob
    assert not np.isnan([v for _, s in g[:4] for _, v in s]).any()


def test_indexed_references_missing_reference_and_all_vs_all():
    probes, enroll = _templates(np.random.default_rng(1))
    lost = [Sample(probes[0].data, template_id="p9", references=["zz"])]
    with pytest.raises(ValueError, match=r"(?s)No enroll sampleset found.*\[.zz.\]"):
        CosineSimilarity().score_sample_templates(lost, enroll, score_all_vs_all=False)
    every = CosineSimilarity().score_sample_templates(probes[:2], enroll, score_all_vs_all=True)
    assert [len(ss.samples) for ss in every] == [5, 5]  # Bob's all-vs-all


def test_bobs_checkpoint_wrapper_scores_through_the_index(tmp_path, monkeypatch):
    from bob.bio.base.pipelines import BioAlgCheckpointWrapper, BioAlgDaskWrapper

    from bob_facerev.scoring import IndexedCheckpointWrapper, index_checkpointed_references

    probes, enroll = _templates(np.random.default_rng(2))
    wrapped = BioAlgDaskWrapper(BioAlgCheckpointWrapper(CosineSimilarity(), base_dir=str(tmp_path)))
    bob = wrapped.biometric_algorithm.score_sample_templates(probes, enroll, False)
    assert index_checkpointed_references(wrapped) == 1
    assert type(wrapped.biometric_algorithm) is IndexedCheckpointWrapper
    scans = []
    monkeypatch.setattr(BioAlgorithm, "score_sample_templates",
                        lambda *a, **k: scans.append(1))  # Bob's scan must not run
    got = wrapped.biometric_algorithm.score_sample_templates(probes, enroll, False)
    assert scans == []
    _assert_same(got, bob)
    assert index_checkpointed_references(wrapped) == 0  # done once
    from bob.bio.base.algorithm import Distance

    plain = BioAlgCheckpointWrapper(Distance(), base_dir=str(tmp_path))
    assert index_checkpointed_references(plain) == 0  # not the package's algorithm: Bob's


def test_pipeline_puts_the_index_into_bobs_checkpoint_wrapper(tmp_path, monkeypatch):
    from bob.bio.base.pipelines import BioAlgCheckpointWrapper, PipelineSimple
    from sklearn.pipeline import Pipeline

    from bob_facerev.pipelines import FacerevPipelineSimple
    from bob_facerev.scoring import IndexedCheckpointWrapper

    seen = []
    monkeypatch.setattr(PipelineSimple, "__call__",
                        lambda self, *a, **k: seen.append(type(self.biometric_algorithm)))
    algorithm = BioAlgCheckpointWrapper(CosineSimilarity(), base_dir=str(tmp_path))
    pipeline = FacerevPipelineSimple(Pipeline([("nothing", "passthrough")]), algorithm)
    pipeline([], [], [], score_all_vs_all=False)
    assert seen == [IndexedCheckpointWrapper]  # in place before Bob's pipeline runs
