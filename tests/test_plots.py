"""RSR heatmaps, DET plots, face grids and the `bob facerev rsr` command (evaluation.plots)."""

import numpy as np
import pandas as pd
import pytest

from PIL import Image

from bob_facerev.evaluation import plots, rsr

# the study's grid (K, P); n accepted of 20 attacks at FMR 1 % (threshold 990 on 0..999)
GRID = {(32, 4): 19, (32, 8): 12, (32, 12): 3, (64, 2): 18, (64, 4): 11, (128, 2): 10}


def _score_files(tmp_path, variants=("study",)):
    bf = pd.DataFrame({
        "probe_subject_id": [f"p{i}" for i in range(1000)] + [f"g{i}" for i in range(50)],
        "bio_ref_subject_id": [f"r{i}" for i in range(1000)] + [f"g{i}" for i in range(50)],
        "score": np.concatenate([np.arange(1000.0), np.arange(1000.0, 1050.0)]),
    })
    paths = []
    for v, shift in zip(variants, (0, 1)):
        for (k, p), n_acc in GRID.items():
            n = max(0, n_acc - shift)
            # n scores at 995 (accepted at FMR 1 %, rejected at 0.1 %: threshold 999), rest at 0
            att = np.r_[np.full(n, 995.0), np.zeros(20 - n)]
            at = {"probe_subject_id": [f"a{i}" for i in range(20)],
                  "bio_ref_subject_id": [f"a{i}" for i in range(20)], "score": att}
            paths.append(rsr.write_vuln_scores(
                tmp_path / v / f"k{k}p{p}" / "scores-dev.csv", bf, at,
                metadata=rsr.protection_metadata("dlib", k, p, variant=v)))
    return paths


def _png_size(path):
    with Image.open(path) as im:
        assert im.format == "PNG"
        return im.size


def test_heatmap_plots_the_table_numbers(tmp_path):
    paths = _score_files(tmp_path, ("study", "deshuffle"))
    res = rsr.evaluate_score_files(paths, fmrs=(0.001, 0.01))
    mats = plots.rsr_heatmap(res, tmp_path / "heat.png", panel_size=(4.0, 3.0), dpi=50)
    assert _png_size(tmp_path / "heat.png") == (2 * 200, 2 * 150)
    assert set(mats) == {(("dlib", v, "type-I"), f) for v in ("study", "deshuffle")
                         for f in (0.001, 0.01)}
    m = mats[(("dlib", "study", "type-I"), 0.01)]
    assert list(m.index) == ["32", "64", "128"] and list(m.columns) == ["2", "4", "8", "12"]
    for (k, p), n_acc in GRID.items():
        assert m.loc[str(k), str(p)] == pytest.approx(100 * n_acc / 20)
        assert mats[(("dlib", "deshuffle", "type-I"), 0.01)].loc[str(k), str(p)] == \
            pytest.approx(100 * (n_acc - 1) / 20)
        assert mats[(("dlib", "study", "type-I"), 0.001)].loc[str(k), str(p)] == 0.0
    assert np.isnan(m.loc["128", "12"]) and np.isnan(m.loc["32", "2"])
    # the same numbers as the table
    wide = rsr.rsr_table(res, counts=False)
    for (k, p) in GRID:
        assert wide.loc[("dlib", str(k), str(p), "type-I"), ("study", "FMR 1 %")] == \
            pytest.approx(m.loc[str(k), str(p)])


def test_heatmap_needs_k_and_p(tmp_path):
    res = rsr.evaluate_score_files(_score_files(tmp_path)[:1], fmrs=[0.01])
    with pytest.raises(ValueError, match="facerev_block_size"):
        plots.rsr_heatmap(res.drop(columns="facerev_block_size"), tmp_path / "h.png")


def test_det_plot(tmp_path):
    rng = np.random.default_rng(0)
    neg = rng.normal(0, 1, 500)
    out = plots.det_plot([("bona fide", neg, rng.normal(3, 1, 200)),
                          ("attack", neg, np.r_[rng.normal(1, 1, 200), np.nan])],
                         tmp_path / "det.png", fmrs=(0.001, 0.01), figsize=(5, 4), dpi=60)
    assert _png_size(out) == (300, 240)
    with pytest.raises(ValueError, match="non-empty"):
        plots.det_plot([("x", neg, [])], tmp_path / "d2.png")


def _faces(n=3, h=20, w=16, r=None, seed=0):
    rng = np.random.default_rng(seed)
    orig = rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8)
    shape = (n, 3, h, w) if r is None else (r, n, 3, h, w)
    return orig, rng.integers(0, 256, shape, dtype=np.uint8)


def test_face_grid_layout_and_pixels(tmp_path):
    orig, rec = _faces(r=2)
    path = plots.face_grid(orig, rec, ["s1", "s2", "s3"], tmp_path / "faces.png",
                           row_labels=["K=32 P=4", "K=32 P=8"], pad=4, label_height=14)
    assert _png_size(path) == plots.face_grid_size(3, 20, 16, rows=3) == (3 * 16 + 4 * 4,
                                                                          3 * (20 + 14 + 4) + 4)
    img = np.asarray(Image.open(path).convert("RGB"))
    for i in range(3):
        x = 4 + i * (16 + 4)
        np.testing.assert_array_equal(img[4 + 14: 4 + 14 + 20, x: x + 16],
                                      orig[i].transpose(1, 2, 0))
        for r in range(2):
            y = 4 + (r + 1) * (20 + 14 + 4) + 14
            np.testing.assert_array_equal(img[y: y + 20, x: x + 16], rec[r, i].transpose(1, 2, 0))


def test_face_grid_rejects_bad_input(tmp_path):
    orig, rec = _faces()
    with pytest.raises(ValueError, match="uint8"):
        plots.face_grid(orig / 255.0, rec, ["a", "b", "c"], tmp_path / "f.png")
    with pytest.raises(ValueError, match="must match"):
        plots.face_grid(orig, rec[:2], ["a", "b", "c"], tmp_path / "f.png")


def test_rsr_command_writes_tables_and_plots(tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.rsr import rsr as cmd

    paths = _score_files(tmp_path)
    orig, rec = _faces(n=2, h=24, w=24)
    faces = plots.save_faces(tmp_path / "faces.npz", orig, rec, ["s1", "s2"])
    out = tmp_path / "out"
    r = CliRunner().invoke(cmd, [*map(str, paths), "-o", str(out), "-f", "0.001", "-f", "0.01",
                                 "--faces", str(faces)])
    assert r.exit_code == 0, r.output
    assert "95.00 (19/20)" in r.output and "50.00 (10/20)" in r.output
    assert _png_size(out / "rsr_heatmap.png") == (2 * 400, 1 * 320)
    assert _png_size(out / "det.png") == (600, 500)
    assert _png_size(out / "faces.png") == plots.face_grid_size(2, 24, 24, rows=2)
    img = np.asarray(Image.open(out / "faces.png").convert("RGB"))
    np.testing.assert_array_equal(img[18:42, 4:28], orig[0].transpose(1, 2, 0))
    long = pd.read_csv(out / "rsr.csv")
    assert len(long) == 2 * len(GRID)
    assert (out / "rsr.md").read_text().count("(19/20)") == 1


def test_det_curves_of_the_command(tmp_path):
    from bob_facerev.evaluation.report import _det_curves

    paths = _score_files(tmp_path)[:3]
    curves = _det_curves(paths, None)
    # one bona fide reference (identical in every file), then one curve per protection,
    # named by the labels that differ (P here)
    assert [c[0] for c in curves] == ["bona fide", "attack P=4", "attack P=8", "attack P=12"]
    np.testing.assert_array_equal(np.sort(curves[0][1]), np.arange(1000.0))
    np.testing.assert_array_equal(np.sort(curves[0][2]), np.arange(1000.0, 1050.0))
    assert (curves[1][2] == 995.0).sum() == GRID[(32, 4)]
