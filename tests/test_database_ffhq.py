"""FFHQ protocols from small generated FFHQ-shaped folders."""

import csv

import numpy as np
import pytest

from PIL import Image

from bob_facerev.database.ffhq import build_ffhq, ffhq_database, fixed_eyes, split


def make_ffhq(root, n=30, size=16, nested=True, ext="png"):
    rng = np.random.default_rng(1)
    paths = []
    for i in range(n):
        rel = f"{i // 10 * 10:05d}/{i:05d}.{ext}" if nested else f"{i:05d}.{ext}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (size, size, 3), dtype=np.uint8)).save(root / rel)
        paths.append(rel)
    return sorted(paths)


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_split_and_protocol(tmp_path):
    paths = make_ffhq(tmp_path / "ffhq")
    out, manifest = build_ffhq(tmp_path / "ffhq", tmp_path / "p", progress=False)
    train = read(out / "train-validation/train/for_background_model.csv")
    val = read(out / "train-validation/dev/for_probing.csv")
    # independent split: default_rng(2021).permutation, first 10 % validation
    perm = np.random.default_rng(2021).permutation(30)
    expected_val = sorted(paths[i] for i in perm[:3])
    assert [r["path"] for r in val] == expected_val
    assert [r["path"] for r in train] == [p for p in paths if p not in expected_val]
    assert manifest["summary"] == {"images": 30, "train": 27, "validation": 3}
    assert all(r["subject_id"] == r["key"] == r["path"][:-4] for r in train + val)
    # eye positions: FFHQ's fixed alignment scaled to 16 px
    assert {(r["leye_x"], r["leye_y"], r["reye_x"], r["reye_y"]) for r in train} == {("10.00", "7.62", "6.00", "7.62")}
    matching = read(out / "train-validation/dev/for_matching.csv")
    assert [(r["enroll_template_id"], r["probe_template_id"]) for r in matching] == [(p[:-4], p[:-4]) for p in expected_val]


def test_split_reproducible_under_seed():
    paths = [f"{i:05d}.png" for i in range(200)]
    assert split(paths, 2021) == split(list(reversed(paths)), 2021)
    train, val = split(paths, 2021)
    assert len(val) == 20 and len(train) == 180 and not set(train) & set(val)
    assert split(paths, 5) != split(paths, 2021)


def test_fixed_eyes_1024():
    eyes = fixed_eyes(1024, 1024)
    assert eyes["reye"] == pytest.approx((487.4, 384.0), abs=0.1)
    assert eyes["leye"] == pytest.approx((487.4, 640.0), abs=0.1)  # Bob: leye has the larger x


def test_flat_folder_and_database(tmp_path):
    make_ffhq(tmp_path / "flat", n=20, size=8, nested=False, ext="jpg")
    out, _ = build_ffhq(tmp_path / "flat", tmp_path / "p", seed=3, progress=False)
    db = ffhq_database(protocols_path=out, original_directory=tmp_path / "flat")
    train = db.background_model_samples()
    assert len(train) == 18 and len(db.probes()) == 2 and len(db.references()) == 2
    s = train[0]
    assert s.annotations == {"leye": (pytest.approx(3.81), 5.0), "reye": (pytest.approx(3.81), 3.0)}
    assert s.data.shape == (3, 8, 8)


def test_configured_resource(tmp_path, monkeypatch):
    make_ffhq(tmp_path / "ffhq", n=10)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bobrc.toml").write_text(f'"bob_facerev.ffhq.directory" = "{tmp_path / "ffhq"}"\n')
    from bob.bio.base.utils import load_resource

    with pytest.raises(ValueError, match=r"No FFHQ protocols in .*: run `bob facerev db build ffhq "):
        load_resource("facerev-ffhq", "database")
    build_ffhq(tmp_path / "ffhq", progress=False)  # default location: $XDG_CACHE_HOME/bob_facerev/ffhq
    assert (tmp_path / "cache" / "bob_facerev" / "ffhq" / "manifest.json").is_file()
    db = load_resource("facerev-ffhq", "database")
    assert len(db.background_model_samples()) == 9


def test_bad_inputs(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="is empty"):
        build_ffhq(tmp_path / "empty", tmp_path / "out", progress=False)
    (tmp_path / "lfwlike" / "Ann_Lee").mkdir(parents=True)
    (tmp_path / "lfwlike" / "Ann_Lee" / "Ann_Lee_0001.jpg").write_bytes(b"")
    with pytest.raises(ValueError, match=r"is not an FFHQ folder: no numbered image .*Ann_Lee"):
        build_ffhq(tmp_path / "lfwlike", tmp_path / "out", progress=False)
    make_ffhq(tmp_path / "broken", n=10)
    (tmp_path / "broken" / "00000" / "00004.png").write_bytes(b"\x89PNG truncated")
    with pytest.raises(ValueError, match=r"1 unreadable image\(s\) .*00000/00004.png"):
        build_ffhq(tmp_path / "broken", tmp_path / "out", progress=False)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.mark.slow
def test_annotate_with_dlib(tmp_path):
    """--annotate: eye columns from the dlib annotator (real faces: the bundled demo photos)."""
    import shutil

    from bob_facerev.database.demo import demo_directory

    src = sorted((demo_directory() / "images").glob("*.jpg"))
    (tmp_path / "faces").mkdir()
    for i, f in enumerate(src):
        shutil.copy(f, tmp_path / "faces" / f"{i:05d}.jpg")
    out, manifest = build_ffhq(tmp_path / "faces", tmp_path / "p", annotate=True, progress=False)
    assert manifest["summary"]["no_face"] == 0
    rows = read(out / "train-validation/train/for_background_model.csv") + read(
        out / "train-validation/dev/for_probing.csv"
    )
    assert len(rows) == 10
    for r in rows:
        w, h = Image.open(tmp_path / "faces" / r["path"]).size
        lx, ly, rx, ry = (float(r[c]) for c in ("leye_x", "leye_y", "reye_x", "reye_y"))
        assert 0 < rx < lx < w and 0 < ly < h and 0 < ry < h  # Bob: leye has the larger x
        assert 0.1 * w < lx - rx < 0.6 * w  # an eye distance of a face of this crop
