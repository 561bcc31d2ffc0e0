"""RSR heatmaps, DET plots, face grids and the `bob facerev rsr` command (evaluation.plots)."""

import numpy as np
import pandas as pd
import pytest

from PIL import Image

from bob_facerev.evaluation import faces, plots, rsr, score_files, tables
from bob_facerev.protection.setting import Protection

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
            paths.append(score_files.write_vuln_scores(
                tmp_path / v / f"k{k}p{p}" / "scores-dev.csv", bf, at,
                metadata=score_files.protection_metadata("dlib", Protection(k, p), variant=v)))
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
    wide = tables.rsr_table(res, counts=False)
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


def test_det_rates_count_the_scores():
    fmr, fnmr = plots.det_rates(np.array([0.0, 1.0, 2.0, 3.0]), np.array([2.0, 5.0]))
    # thresholds -inf, 0, 1, 2, 3, 5, +inf; accepted when >= threshold
    np.testing.assert_allclose(fmr, [1, 1, 0.75, 0.5, 0.25, 0, 0])
    np.testing.assert_allclose(fnmr, [0, 0, 0, 0, 0.5, 0.5, 1])


def test_det_rates_by_bob_measure_equal_the_sorted_count():
    """The DET rates (bob.measure.farfrr per threshold) equal the searchsorted count they replaced."""
    rng = np.random.default_rng(5)
    neg, pos = np.round(rng.normal(0, 1, 4000), 2), np.round(rng.normal(2, 1, 500), 2)
    for max_points in (2000, 50):
        fmr, fnmr = plots.det_rates(neg, pos, max_points=max_points)
        thr = np.unique(np.concatenate([neg, pos]))
        if thr.size > max_points:
            thr = np.unique(np.quantile(thr, np.linspace(0, 1, max_points)))
        thr = np.concatenate([[-np.inf], thr, [np.inf]])
        sn, sp = np.sort(neg), np.sort(pos)
        # FMR: bob.measure counts accepted impostors, the old code 1 - rejected share (1 ulp)
        np.testing.assert_allclose(fmr, 1 - np.searchsorted(sn, thr, side="left") / sn.size,
                                   rtol=0, atol=1e-15)
        np.testing.assert_array_equal(fnmr, np.searchsorted(sp, thr, side="left") / sp.size)


def _inside(ax, line):
    """Points of a Line2D inside the axes' limits."""
    x, y = (np.asarray(v, float) for v in line.get_data())
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    return (x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)


def _demo_like_score_files(tmp_path):
    """Score files shaped like the demo's: 10 genuine and 20 impostor scores, perfectly apart;
    10 attacks per cell, from all accepted (unprotected, de-shuffled) to all rejected."""
    rng = np.random.default_rng(1)
    bf = pd.DataFrame({
        "probe_subject_id": [f"s{i}" for i in range(20)] + [f"g{i}" for i in range(10)],
        "bio_ref_subject_id": [f"s{(i + 1) % 20}" for i in range(20)] + [f"g{i}" for i in range(10)],
        "score": np.r_[rng.uniform(0.0, 0.4, 20), rng.uniform(0.8, 0.95, 10)],
    })
    cells = [("study", None, None, 0.9), ("study", 32, 2, 0.45), ("study", 32, 4, 0.1),
             ("study", 16, "random", 0.0), ("deshuffle", 32, 2, 0.9), ("deshuffle", 32, 4, 0.9),
             ("deshuffle", 16, "random", 0.85)]
    paths = []
    for v, k, p, level in cells:
        at = {"probe_subject_id": [f"a{i}" for i in range(10)],
              "bio_ref_subject_id": [f"a{i}" for i in range(10)],
              "score": level + rng.uniform(-0.05, 0.05, 10)}
        name = "none" if k is None else f"k{k}-p{p}"
        paths.append(score_files.write_vuln_scores(
            tmp_path / "scores" / v / name / "scores-dev.csv", bf, at,
            metadata=score_files.protection_metadata("dlib", Protection.from_name(name), variant=v)))
    return paths


def test_det_every_curve_has_points_inside_the_axes(tmp_path):
    """The demo's DET: a perfect bona fide curve and attacks accepted at every FMR lie at rates
    0 % and 100 %, beyond a normal-deviate axis; they are drawn in the band inside the axes."""
    from bob_facerev.evaluation.report import _det_curves

    curves = _det_curves(_demo_like_score_files(tmp_path), None)
    assert len(curves) == 8 and curves[0][0] == "bona fide"
    fig, ax = plots.det_figure(curves, title="dlib, facerev-demo", fmrs=(0.001, 0.01, 0.1))
    lines = {ln.get_label(): ln for ln in ax.get_lines() if not ln.get_label().startswith("_")}
    for label, *_ in curves:
        inside = _inside(ax, lines[label])
        assert inside.sum() >= 2, label
    # distinct looks: no two curves share colour and line style
    from matplotlib.colors import to_rgba

    looks = [(to_rgba(lines[c[0]].get_color()), lines[c[0]].get_linestyle()) for c in curves]
    assert len(set(looks)) == len(looks)
    # the legend sits outside the axes (right of them), the title names the model
    fig.canvas.draw()
    leg = ax.get_legend().get_window_extent()
    assert leg.x0 >= ax.get_window_extent().x1
    assert ax.get_title() == "dlib, facerev-demo"
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_det_without_the_band_would_lose_the_curves(tmp_path):
    """A curve of rates 0 only (every attack accepted) is still drawn, at the edge lanes."""
    neg, pos = np.arange(20.0), np.full(10, 100.0)
    fig, ax = plots.det_figure([("bona fide", neg, pos), ("attack all accepted", neg, pos)])
    lines = [ln for ln in ax.get_lines() if ln.get_label() in ("bona fide", "attack all accepted")]
    ys = [np.unique(np.round(ln.get_ydata(), 6)) for ln in lines]
    # both lie below the lowest tick (FNMR 0), in different lanes
    assert all((y < ax.get_yticks().min()).any() for y in ys)
    assert ys[0].min() != ys[1].min()
    assert all(_inside(ax, ln).all() for ln in lines)


def _faces(n=3, h=20, w=16, r=None, seed=0):
    rng = np.random.default_rng(seed)
    orig = rng.integers(0, 256, (n, 3, h, w), dtype=np.uint8)
    shape = (n, 3, h, w) if r is None else (r, n, 3, h, w)
    return orig, rng.integers(0, 256, shape, dtype=np.uint8)


def test_face_grid_layout_and_pixels(tmp_path):
    orig, rec = _faces(r=2)
    path = faces.face_grid(orig, rec, ["s1", "s2", "s3"], tmp_path / "faces.png",
                           row_labels=["K=32 P=4", "K=32 P=8"], pad=4, label_width=60,
                           font_size=12)
    top = 2 * (12 + 2) + 4  # two caption lines over the faces
    assert _png_size(path) == faces.face_grid_size(3, 20, 16, rows=3, label_width=60,
                                                   font_size=12) \
        == (60 + 3 * 16 + 4 * 4, top + 3 * (20 + 4) + 4)
    img = np.asarray(Image.open(path).convert("RGB"))
    for i in range(3):
        x = 60 + 4 + i * (16 + 4)
        np.testing.assert_array_equal(img[top + 4: top + 4 + 20, x: x + 16],
                                      orig[i].transpose(1, 2, 0))
        for r in range(2):
            y = top + 4 + (r + 1) * (20 + 4)
            np.testing.assert_array_equal(img[y: y + 20, x: x + 16], rec[r, i].transpose(1, 2, 0))


def _drawn_text(monkeypatch):
    """Record every text the face grid draws: (x, y, text, font)."""
    from PIL import ImageDraw

    drawn, text = [], ImageDraw.ImageDraw.text

    def spy(self, xy, t, *args, **kwargs):
        drawn.append((xy[0], xy[1], t, kwargs["font"]))
        return text(self, xy, t, *args, **kwargs)

    monkeypatch.setattr(ImageDraw.ImageDraw, "text", spy)
    return drawn


def test_face_grid_labels_fit_their_cells(tmp_path, monkeypatch):
    """Long captions are wrapped and shortened: every line's rendered extent stays in its cell
    (column captions over their face, row names in the label column), in a legible font."""
    drawn = _drawn_text(monkeypatch)
    n, h, w = 4, 112, 112
    orig, rec = _faces(n=n, h=h, w=w, r=3)
    labels = ["ardern", "originalardern_with_a_long_surname", "k", "deshuffle k32-prandom"]
    rows = ["study none", "deshuffle k32-prandom", "a-row-label-far-too-long-for-its-column-x"]
    faces.face_grid(orig, rec, labels, tmp_path / "f.png", row_labels=rows)
    fs = faces.face_grid_font_size(h)
    width, height = faces.face_grid_size(n, h, w, rows=4)
    label_width = width - n * w - (n + 1) * 4
    assert fs >= 12
    texts = " ".join(t for *_, t, _ in drawn)
    for word in ("ardern", "original", "study none", "deshuffle"):
        assert word in texts
    assert "…" in texts  # the too-long ones were shortened, not cut silently
    for x, y, t, font in drawn:
        assert font.size == fs
        x0, y0, x1, y1 = font.getbbox(t)
        if x < label_width:  # a row name: inside the label column
            assert x + x1 <= label_width, t
        else:  # a caption: inside its face's column
            col = int((x - label_width - 4) // (w + 4))
            left = label_width + 4 + col * (w + 4)
            assert left <= x and x + x1 <= left + w, t
        assert 0 <= y + y0 and y + y1 <= height, t
    # captions over the faces do not run into the faces below them
    top = 2 * (fs + 2) + 4
    assert all(y + font.getbbox(t)[3] <= top + 4 for x, y, t, font in drawn if x >= label_width
               and y < top)


def test_fit_text_wraps_then_shortens():
    font = faces._font(12)
    assert faces.fit_text("ardern", font, 200) == ["ardern"]
    lines = faces.fit_text("deshuffle k32-prandom", font, 90)
    assert len(lines) == 2 and "".join(lines).replace(" ", "") == "deshufflek32-prandom"
    long = faces.fit_text("x" * 80, font, 50, max_lines=2)
    assert len(long) == 2 and long[-1].endswith("…")
    assert all(font.getlength(t) <= 50 for t in long)


def test_face_grid_rejects_bad_input(tmp_path):
    orig, rec = _faces()
    with pytest.raises(ValueError, match="uint8"):
        faces.face_grid(orig / 255.0, rec, ["a", "b", "c"], tmp_path / "f.png")
    with pytest.raises(ValueError, match="must match"):
        faces.face_grid(orig, rec[:2], ["a", "b", "c"], tmp_path / "f.png")


def test_rsr_command_writes_tables_and_plots(tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.rsr import rsr as cmd

    paths = _score_files(tmp_path)
    orig, rec = _faces(n=2, h=24, w=24)
    faces_npz = faces.save_faces(tmp_path / "faces.npz", orig, rec, ["s1", "s2"])
    out = tmp_path / "out"
    r = CliRunner().invoke(cmd, [*map(str, paths), "-o", str(out), "-f", "0.001", "-f", "0.01",
                                 "--faces", str(faces_npz)])
    assert r.exit_code == 0, r.output
    assert "95.00 (19/20)" in r.output and "50.00 (10/20)" in r.output
    assert _png_size(out / "rsr_heatmap.png") == (2 * 400, 1 * 320)
    assert _png_size(out / "det.png") == (900, 500)
    assert _png_size(out / "faces.png") == faces.face_grid_size(2, 24, 24, rows=2)
    img = np.asarray(Image.open(out / "faces.png").convert("RGB"))
    top, left = 2 * (12 + 2) + 4 + 4, 7 * 12 + 4  # caption band; label column (12 px font)
    np.testing.assert_array_equal(img[top:top + 24, left:left + 24], orig[0].transpose(1, 2, 0))
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


def test_grid_report_opens_with_what_was_run(tmp_path):
    """The demo-shaped report: model, data, counts, thresholds, the memorising caveat, the tie
    of FMR 0.1 % and 1 % explained, n/a (not nan) in the empty de-shuffle cell, and readable
    threshold labels."""
    from bob_facerev.evaluation.report import grid_report

    paths = _demo_like_score_files(tmp_path)
    orig, rec = _faces(n=2, h=24, w=24)
    summary = {"scores": [str(p) for p in paths], "bona_fide": str(paths[0]), "verification": {},
               "faces": str(faces.save_faces(tmp_path / "faces.npz", orig, rec, ["s1", "s2"])),
               "model": "dlib", "bona_fide_database": "facerev-demo",
               "attack_database": "facerev-demo", "training_database": "facerev-demo",
               "n_training": 10, "train": {"epochs": 100, "batch_size": 10}}
    markdown, written = grid_report(summary, tmp_path / "report")
    text = (tmp_path / "report" / "report.md").read_text()
    assert text == markdown and text.startswith("# What was run")
    head = text.split("# Type-I")[0]
    assert "**dlib**" in head and "10 faces of `facerev-demo`" in head
    assert "10 genuine and 20 impostor scores" in head and "memorises" in head
    assert "epochs=100" in head and "(10 faces)" in head
    assert "FMR 0.1 % and FMR 1 % share the threshold" in head and "0 of 20 impostor" in head
    assert "smallest FMR above 0 is 5 %" in head
    assert "nan" not in text.replace("n/a", "")
    table = text.split("## Reversibility")[1].split("## Thresholds")[0]
    assert "n/a" in table and "n/a: no such setting" in table
    thresholds = text.split("## Thresholds")[1]
    assert "the bona fide rows of 7 score files (identical)" in thresholds
    assert "more files" not in text
    assert _png_size(tmp_path / "report" / "det.png") == (900, 500)


def test_gender_plot_and_table_say_n_and_why_knn_is_at_chance(tmp_path):
    from bob_facerev.evaluation import gender

    rng = np.random.default_rng(0)
    X = rng.normal(size=(4, 128))
    X[:2] += 1
    table = gender.leakage_table(X, ["M", "M", "F", "F"], block_sizes=(16,), n_splits=2,
                                 progress=False)
    md = gender.format_table(table)
    assert "n = 4 samples (2 per gender)" in md
    assert "knn3: k = 2: the training folds have 2 samples" in md
    assert (table.loc[table.classifier == "knn3", "mean"] == 0.5).all()
    assert (table.loc[table.classifier != "knn3", "note"] == "").all()
    texts = []
    import matplotlib.figure

    orig = matplotlib.figure.Figure.savefig

    def spy(fig, *args, **kwargs):
        texts.extend(t.get_text() for ax in fig.axes for t in [ax.title])
        texts.extend(t.get_text() for t in fig.texts)
        texts.extend(t.get_text() for ax in fig.axes for t in ax.get_legend().get_texts())
        return orig(fig, *args, **kwargs)

    import unittest.mock

    with unittest.mock.patch.object(matplotlib.figure.Figure, "savefig", spy):
        gender.plot_leakage(table, tmp_path / "g.png", title="demo")
    assert any("n = 4 samples" in t for t in texts)
    assert "knn3 (1)" in texts and any(t.startswith("(1) knn3: k = 2") for t in texts)
    assert _png_size(tmp_path / "g.png")[0] > 0
