"""Thresholds only from data sets with subject identities: the grid refuses a bona fide database
without them (UTKFace-like: every template its own subject) unless told where thresholds come from."""

import pytest
from bob.pipelines import Sample, SampleSet

from bob_facerev import experiment
from bob_facerev.experiment import GridConfig, run_grid


class NoIdentities:
    """A UTKFace-like database: 6 photos, each its own 'subject', all-vs-all comparisons."""

    def __init__(self, people=None):
        people = people or [f"face{i}" for i in range(6)]
        self.samples = [Sample(None, key=f"k{i}", subject_id=p, template_id=f"k{i}")
                        for i, p in enumerate(people)]

    def references(self, group="dev"):
        return [SampleSet([s], key=s.key, subject_id=s.subject_id, template_id=s.template_id)
                for s in self.samples[:3]]

    def probes(self, group="dev"):
        return [SampleSet([s], key=s.key, subject_id=s.subject_id, template_id=s.template_id)
                for s in self.samples[3:]]


def _no_pipeline(*args, **kwargs):
    raise AssertionError("the grid computed bona fide scores of a database without identities")


def test_grid_refuses_thresholds_from_a_database_without_identities(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "_bona_fide", _no_pipeline)
    cfg = GridConfig(model="dlib", bona_fide_database=NoIdentities(), attack_database=NoIdentities(),
                     training_database=NoIdentities(), output=str(tmp_path / "grid"))
    with pytest.raises(ValueError, match="no subject identities.*threshold_scores"):
        run_grid(cfg, progress=False)
    assert not (tmp_path / "grid" / "grid.json").exists()


def _scores(path, genuine):
    rows = ["probe_subject_id,bio_ref_subject_id,score"]
    rows += [f"a{i},b{i},{i / 100}" for i in range(50)]
    if genuine:
        rows += ["c,c,0.99"]
    path.write_text("\n".join(rows) + "\n")
    return path


def test_grid_takes_named_thresholds_and_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "_bona_fide", _no_pipeline)
    cfp = _scores(tmp_path / "cfp_ff.csv", genuine=True)
    cfg = GridConfig(model="dlib", bona_fide_database=NoIdentities(), threshold_scores=str(cfp),
                     output=str(tmp_path / "grid"))
    path, note = experiment._threshold_scores(cfg, tmp_path, None)
    assert path == cfp and "cfp_ff.csv" in note and "threshold_scores" in note
    # a named file without genuine comparisons is refused as well
    cfg.threshold_scores = str(_scores(tmp_path / "utk.csv", genuine=False))
    with pytest.raises(ValueError, match="no genuine comparisons"):
        experiment._threshold_scores(cfg, tmp_path, None)


def test_grid_uses_its_own_scores_when_the_database_has_identities(tmp_path, monkeypatch):
    monkeypatch.setattr(experiment, "_bona_fide", lambda cfg, out, client: out / "own.csv")
    cfg = GridConfig(model="dlib", bona_fide_database=NoIdentities(["a", "a", "b", "c", "c", "d"]))
    path, note = experiment._threshold_scores(cfg, tmp_path, None)
    assert path == tmp_path / "own.csv" and "bona fide database" in note
