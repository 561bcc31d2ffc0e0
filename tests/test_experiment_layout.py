"""The grid's output layout: the paths run_grid writes and the one "cell done" rule."""

from bob_facerev.experiment_layout import GridLayout, measure_files
from bob_facerev.protection.setting import Protection


def test_paths(tmp_path):
    layout = GridLayout(str(tmp_path))
    assert layout.bona_fide_scores == tmp_path / "bona_fide" / "scores-dev.csv"
    assert layout.verification_scores(32) == tmp_path / "verification_pemiu_k32" / "scores-dev.csv"
    assert layout.verification_cache(32) == tmp_path / "cache" / "verification_pemiu_k32"
    assert layout.generator_folder() == tmp_path / "generators" / "study"
    assert layout.generator_folder(Protection.none()) == tmp_path / "generators" / "study"
    assert layout.generator_folder(Protection.fixed(32, 4)) == (
        tmp_path / "generators" / "protected-k32-p4")
    cell = layout.cell("deshuffle", Protection.random(16))
    assert cell.folder == tmp_path / "scores" / "deshuffle" / "k16-prandom"
    assert cell.scores_of("type-I").name == "scores-dev.csv"
    assert cell.scores_of("type-II").name == "scores-dev-type2.csv"
    assert (layout.faces.name, layout.summary.name, layout.training_set.name) == (
        "faces.npz", "grid.json", "training_set.npz")


def test_cell_done_needs_the_score_file_and_its_attack_copy(tmp_path):
    layout = GridLayout(tmp_path)
    p = Protection.fixed(32, 4)
    cell = layout.cell("study", p)
    cell.folder.mkdir(parents=True)
    assert not layout.cell_done("study", p)
    cell.scores.write_text("x")
    assert not cell.done()  # the plain-text copies are written after the CSV file
    (cell.folder / "scores-dev-attack.txt").write_text("x")
    assert cell.done() and layout.cell_done("study", p)


def test_measure_file_names_are_what_export_writes(tmp_path):
    import numpy as np

    from bob_facerev.evaluation import score_files

    bf = {"probe_subject_id": ["a", "a", "b"], "bio_ref_subject_id": ["a", "b", "b"],
          "score": np.array([0.9, 0.1, 0.8])}
    at = {"probe_subject_id": ["c"], "bio_ref_subject_id": ["c"], "score": np.array([0.5])}
    path = score_files.write_vuln_scores(tmp_path / "scores-dev.csv", bf, at)
    written = score_files.export_measure_files(path)
    assert {k: str(v) for k, v in written.items()} == {
        k: str(v) for k, v in measure_files(path).items()}
    assert sorted(p.name for p in tmp_path.glob("*.txt")) == [
        "scores-dev-attack.4col.txt", "scores-dev-attack.txt", "scores-dev-bonafide.4col.txt",
        "scores-dev-bonafide.txt"]
