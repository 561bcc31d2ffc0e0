"""Tests of the attack's training data, trainer, checkpoints and `bob facerev train`."""

import csv
import importlib.resources
import os

import numpy as np
import pytest
import torch
from torch import nn

from bob_facerev.attack.checkpoint import load_generator, read_generator_checkpoint
from bob_facerev.attack.dataset import (
    ReconstructionDataset,
    load_training_set,
    protect_embeddings,
    save_training_set,
    split_indices,
)
from bob_facerev.attack.generator import Generator
from bob_facerev.attack.losses import ReconstructionLoss
from bob_facerev.attack.trainer import train_generator
from bob_facerev.protection.setting import Protection


class TinyID(nn.Module):
    """Stand-in identity network: (N, 3, h, w) in [0, 1] -> (N, 8)."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.fc = nn.Linear(4 * 8 * 8, 8)

    def forward(self, x):
        x = nn.functional.interpolate(x, size=(36, 36), mode="bilinear", align_corners=False)
        return self.fc(torch.relu(self.conv(x)).flatten(1))


def _tiny_id():
    torch.manual_seed(123)
    return TinyID()


def _smooth_faces(n, seed=0):
    rng = np.random.RandomState(seed)
    yy, xx = np.mgrid[0:112, 0:112] / 112.0
    out = np.zeros((n, 3, 112, 112))
    for i in range(n):
        for c in range(3):
            fx, fy, ph = rng.uniform(0.5, 3, 3)
            out[i, c] = np.sin(2 * np.pi * (fx * xx + fy * yy) + 2 * ph)
    return ((out + 1) * 127.5).round().astype(np.uint8)


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    """12 samples, 16-d embeddings, smooth synthetic faces."""
    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    save_training_set(path, _smooth_faces(12), rng.randn(12, 16), [f"s{i:02d}" for i in range(12)],
                      {"model": "toy"})
    return str(path)


FAST = dict(batch_size=4, validation_fraction=0.25, progress=False, grid_size=3)


@pytest.fixture(scope="module")
def quick_run(toy_set, tmp_path_factory):
    """One quick-mode training (asked for 50 epochs, capped at 3), no identity term."""
    out = tmp_path_factory.mktemp("quick") / "run"
    return out, train_generator(toy_set, out, quick=True, epochs=50, w_id=0, **FAST)


# --------------------------------------------------------------------------- data


def test_training_set_roundtrip_and_checks(tmp_path):
    faces = _smooth_faces(3)
    emb = np.arange(6, dtype=np.float64).reshape(3, 2)
    p = tmp_path / "a.npz"
    save_training_set(p, faces, emb, ["x", "y", "z"], {"model": "dlib"})
    assert sorted(q.name for q in tmp_path.iterdir()) == ["a.npz"]
    d = load_training_set(p)
    np.testing.assert_array_equal(d["faces"], faces)
    assert d["embeddings"].dtype == np.float32
    np.testing.assert_array_equal(d["embeddings"], emb.astype(np.float32))
    assert list(d["keys"]) == ["x", "y", "z"]
    assert d["metadata"]["model"] == "dlib" and d["metadata"]["embedding_size"] == 2
    with pytest.raises(ValueError, match="uint8"):
        save_training_set(tmp_path / "b.npz", faces.astype(np.float32), emb, ["x", "y", "z"])
    with pytest.raises(ValueError, match="N = 3"):
        save_training_set(tmp_path / "b.npz", faces, emb[:2], ["x", "y", "z"])
    with pytest.raises(ValueError, match=r"\.npz"):
        save_training_set(tmp_path / "b.bin", faces, emb, ["x", "y", "z"])
    with pytest.raises(FileNotFoundError, match="build_training_set"):
        load_training_set(tmp_path / "missing.npz")
    (tmp_path / "bad.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match="bad.npz"):
        load_training_set(tmp_path / "bad.npz")


def test_split_is_seeded_disjoint_90_10():
    tr, va = split_indices(1000)
    assert len(va) == 100 and len(tr) == 900
    assert not set(tr) & set(va) and sorted(set(tr) | set(va)) == list(range(1000))
    tr2, va2 = split_indices(1000)
    np.testing.assert_array_equal(va, va2)
    # seed 2021 is the study's: a different seed gives a different split
    assert not np.array_equal(va, split_indices(1000, seed=1)[1])
    # independent check of the definition
    np.testing.assert_array_equal(va, np.sort(np.random.RandomState(2021).permutation(1000)[:100]))
    assert len(split_indices(5, 0.1)[1]) == 1
    with pytest.raises(ValueError, match="validation_fraction"):
        split_indices(10, 1.0)


def test_dataset_items():
    faces = _smooth_faces(4)
    emb = np.random.RandomState(0).randn(4, 8).astype(np.float32)
    ds = ReconstructionDataset(faces, emb, indices=[3, 1])
    assert len(ds) == 2
    f, e, j = ds[0]
    assert j == 3 and f.dtype == torch.uint8 and f.shape == (3, 112, 112)
    np.testing.assert_array_equal(f.numpy(), faces[3])
    np.testing.assert_array_equal(e.numpy(), emb[3])


def test_protection_settings():
    X = np.random.RandomState(0).randn(3, 8).astype(np.float32)
    for unprotected in (None, "none", Protection.none()):
        np.testing.assert_array_equal(protect_embeddings(X, ["a", "b", "c"], unprotected), X)
    with pytest.raises(ValueError, match="unknown protection name"):
        protect_embeddings(X, ["a", "b", "c"], "shuffle")


def test_pemiu_protection_applied():
    pytest.importorskip("bob_facerev.protection.pemiu")
    from bob_facerev.protection.pemiu import PEMIU

    X = np.random.RandomState(0).randn(6, 64).astype(np.float32)
    keys = [f"k{i}" for i in range(6)]
    fixed = protect_embeddings(X, keys, Protection.fixed(16, 2), seed=3)
    np.testing.assert_array_equal(fixed, PEMIU(16, 2, 3).transform(X, keys=keys))
    blocks_x, blocks_f = X.reshape(6, 4, 16), fixed.reshape(6, 4, 16)
    moved = [(blocks_x[i] != blocks_f[i]).any(axis=1).sum() for i in range(6)]
    assert moved == [2] * 6  # exactly P blocks moved, the same for all templates
    rnd = protect_embeddings(X, keys, "k16-prandom", seed=3)
    np.testing.assert_array_equal(rnd, PEMIU(16, None, 3).transform(X, keys=keys))
    # same multiset of values per template
    np.testing.assert_array_equal(np.sort(rnd, axis=1), np.sort(X, axis=1))


# --------------------------------------------------------------------------- learning


def _demo_faces(n):
    """``n`` real demo photos (centre square crop, 112x112); synthetic smooth images if absent."""
    from PIL import Image

    folder = importlib.resources.files("bob_facerev") / "data" / "demo" / "images"
    files = sorted(str(p) for p in folder.iterdir()) if folder.is_dir() else []
    if len(files) < n:
        return _smooth_faces(n, seed=1), "synthetic"
    out = []
    for f in files[:: max(len(files) // n, 1)][:n]:
        im = Image.open(f).convert("RGB")
        w, h = im.size
        s = min(w, h)
        im = im.crop(((w - s) // 2, (h - s) // 2, (w - s) // 2 + s, (h - s) // 2 + s))
        out.append(np.asarray(im.resize((112, 112), Image.BILINEAR)).transpose(2, 0, 1))
    return np.stack(out), "demo"


@pytest.mark.slow
def test_thirty_steps_cut_the_loss():
    faces, kind = _demo_faces(3)
    real = torch.from_numpy(faces).float() / 255
    torch.manual_seed(0)
    emb = torch.randn(len(real), 128)
    g = Generator(128)
    loss = ReconstructionLoss(id_network=_tiny_id())
    opt = torch.optim.Adam(g.parameters(), lr=1e-3)
    real_id = loss.embed(real)
    values = []
    for _ in range(30):
        total, _ = loss(g(emb), real, real_id)
        opt.zero_grad()
        total.backward()
        opt.step()
        values.append(float(total.detach()))
    ratio = np.mean(values[-3:]) / values[0]
    assert ratio < 0.6, (kind, values)


def _weights(path):
    return torch.load(path, weights_only=True)


def _assert_same_state(a, b):
    for k in a["generator"]:
        assert torch.equal(a["generator"][k], b["generator"][k]), k
    sa, sb = a["optimizer"]["state"], b["optimizer"]["state"]
    assert sa.keys() == sb.keys()
    for k in sa:
        for name in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(sa[k][name], sb[k][name]), (k, name)
    assert a["scheduler"] == b["scheduler"]


def test_resume_equals_uninterrupted(toy_set, tmp_path):
    straight = train_generator(toy_set, tmp_path / "straight", epochs=2, lr_step=1,
                               id_network=_tiny_id(), **FAST)
    # interrupted after epoch 1, then resumed twice (the last time with nothing left to do)
    train_generator(toy_set, tmp_path / "resumed", epochs=1, lr_step=1, id_network=_tiny_id(), **FAST)
    train_generator(toy_set, tmp_path / "resumed", epochs=2, lr_step=1, id_network=_tiny_id(),
                    resume=True, **FAST)
    again = train_generator(toy_set, tmp_path / "resumed", epochs=2, lr_step=1,
                            id_network=_tiny_id(), resume=True, **FAST)
    a, b = _weights(tmp_path / "straight" / "last.pt"), _weights(tmp_path / "resumed" / "last.pt")
    _assert_same_state(a, b)
    assert a["epoch"] == b["epoch"] == 2
    assert [r["lr"] for r in a["history"]] == [1e-3, 5e-4]  # StepLR(1, 0.5)
    # the learning itself happened: weights moved
    torch.manual_seed(0)
    fresh = Generator(16).state_dict()
    assert not torch.equal(fresh["head.0.weight"], a["generator"]["head.0.weight"])
    keys = ("train_total", "train_mse", "train_dssim", "train_id", "val_total", "val_id")
    assert [[r[k] for k in keys] for r in straight["history"]] == \
           [[r[k] for k in keys] for r in again["history"]]
    for r in straight["history"]:
        assert r["train_id"] > 0 and 0 <= r["data_wait_share"] < 1
    # log, grids and best checkpoint
    with open(tmp_path / "resumed" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [1, 2]
    assert float(rows[0]["train_total"]) == pytest.approx(straight["history"][0]["train_total"])
    assert sorted(os.listdir(tmp_path / "resumed" / "grids")) == ["epoch_001.png", "epoch_002.png"]
    from PIL import Image

    assert Image.open(tmp_path / "resumed" / "grids" / "epoch_002.png").size == (3 * 112, 2 * 112)
    best = _weights(tmp_path / "straight" / "best.pt")
    vals = [r["val_total"] for r in straight["history"]]
    assert best["epoch"] == straight["best_epoch"] == int(np.argmin(vals)) + 1
    assert set(best) == {"format", "generator", "epoch", "metadata"}


def test_resume_refuses_other_settings_and_overwrite(toy_set, quick_run, tmp_path):
    out, _ = quick_run
    with pytest.raises(ValueError, match="--resume"):
        train_generator(toy_set, out, quick=True, w_id=0, **FAST)
    with pytest.raises(ValueError, match=r"recipe\.lr: checkpoint 0\.001, now 0\.01"):
        train_generator(toy_set, out, quick=True, w_id=0, lr=1e-2, resume=True, **FAST)
    with pytest.raises(ValueError, match="model"):
        train_generator(toy_set, tmp_path / "other", model="dlib", epochs=1, **FAST)


def test_metadata_and_quick_mode(toy_set, quick_run):
    out, r = quick_run
    assert len(r["history"]) == 3  # quick: at most 3 epochs
    state = _weights(out / "last.pt")
    m = state["metadata"]
    assert m["model"] == "toy" and m["embedding_size"] == 16 and m["id_model"] == "none"
    assert m["protection"] == "none" and m["block_size"] is None and m["moved_blocks"] is None
    assert m["training_set_bytes"] == os.path.getsize(toy_set)
    assert len(m["training_set_sha256"]) == 64
    assert m["recipe"]["epochs"] == 3 and m["recipe"]["max_samples"] == 128
    assert m["n_train"] + m["n_validation"] == 12 and m["n_validation"] == 3
    assert set(state["rng"]) >= {"torch", "numpy", "python"}


# --------------------------------------------------------------------------- checkpoints


def test_load_generator_and_refusals(quick_run, tmp_path):
    out, _ = quick_run
    g, meta = load_generator(out / "last.pt", model="toy", embedding_size=16)
    assert not g.training and meta["model"] == "toy"
    state = _weights(out / "last.pt")
    for k, v in g.state_dict().items():
        assert torch.equal(v, state["generator"][k])
    g2, _ = load_generator(out)  # a folder: best.pt
    assert all(torch.equal(v, _weights(out / "best.pt")["generator"][k])
               for k, v in g2.state_dict().items())

    with pytest.raises(ValueError, match=r"trained for the 'toy' extractor \(16-d.*not for 'arcface'"):
        load_generator(out / "last.pt", model="arcface")
    with pytest.raises(ValueError, match=r"16-d embeddings.*512-d embeddings were given"):
        load_generator(out / "last.pt", embedding_size=512)

    data = (out / "last.pt").read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match=r"truncated\.pt.*corrupt"):
        load_generator(tmp_path / "truncated.pt")
    (tmp_path / "garbage.pt").write_bytes(os.urandom(1000))
    with pytest.raises(ValueError, match=r"garbage\.pt.*corrupt"):
        load_generator(tmp_path / "garbage.pt")
    torch.save({"weights": torch.zeros(3)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match=r"other\.pt.*not a bob_facerev generator checkpoint"):
        load_generator(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_generator(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no best.pt or last.pt"):
        read_generator_checkpoint(tmp_path)


# --------------------------------------------------------------------------- command line


def test_cli_with_config_file(toy_set, tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.train import train

    out = tmp_path / "cli"
    config = tmp_path / "my_train.py"
    config.write_text(
        f"training_set = {toy_set!r}\n"
        "id_model = 'none'\n"
        "epochs = 2\n"
        "batch_size = 4\n"
        "validation_fraction = 0.25\n"
        f"output = {str(out)!r}\n"
    )
    runner = CliRunner()
    result = runner.invoke(train, [str(config), "--epochs", "1", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert "best epoch 1" in result.output
    m = _weights(out / "last.pt")["metadata"]
    assert m["recipe"]["epochs"] == 1 and m["recipe"]["batch_size"] == 4  # option beats config
    result = runner.invoke(train, [str(config), "--device", "cpu"])
    assert result.exit_code != 0 and "--resume" in result.output
    result = runner.invoke(train, [str(config), "--device", "cpu", "--resume"])
    assert result.exit_code == 0, result.output
    assert _weights(out / "last.pt")["epoch"] == 2
    result = runner.invoke(train, [str(config), "-t", str(tmp_path / "none.npz"), "-o", str(tmp_path / "x")])
    assert result.exit_code != 0 and "does not exist" in result.output


def test_cli_default_identity_network_is_the_attacked_model(toy_set, tmp_path, monkeypatch):
    from click.testing import CliRunner

    import bob_facerev.face.network
    from bob_facerev.script.train import train

    asked = []

    def fake_loader(model, checkpoint=None):
        asked.append((model, checkpoint))
        return _tiny_id()

    monkeypatch.setattr(bob_facerev.face.network, "load_embedding_network", fake_loader)
    out = tmp_path / "white-box"
    result = CliRunner().invoke(train, ["-t", toy_set, "-o", str(out), "-e", "1", "-b", "4",
                                        "--validation-fraction", "0.25", "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert asked == [("toy", None)]
    state = _weights(out / "last.pt")
    assert state["metadata"]["id_model"] == "toy"
    assert state["history"][0]["train_id"] > 0


# --------------------------------------------------------------------------- building a training set


class _FakeCrop:
    """Crops: a 150x150 image whose value is the photo's number; None (no face) for number 4."""

    def transform(self, samples):
        from bob.pipelines import Sample

        return [Sample(None if s.data == 4 else np.full((3, 150, 150), 10 * s.data, np.uint8),
                       parent=s) for s in samples]


class _FakeEmbed:
    def transform(self, samples):
        from bob.pipelines import Sample

        return [Sample(None if s.data is None else np.full(16, s.data[0, 0, 0] / 10, np.float32),
                       parent=s) for s in samples]


class _FakeDatabase:
    """5 training photos, 3 validation photos (references and probes are the same samples)."""

    def __init__(self):
        from bob.pipelines import Sample, SampleSet

        self.train = [Sample(i, key=f"t{i}") for i in range(5)]
        self.val = [SampleSet([Sample(i, key=f"v{i}")], key=f"v{i}") for i in range(5, 8)]

    def background_model_samples(self):
        return self.train

    def references(self, group="dev"):
        return self.val

    def probes(self, group="dev"):
        return self.val


def test_build_training_set_keeps_database_split(tmp_path):
    from types import SimpleNamespace

    from bob_facerev.attack.dataset import build_training_set

    pipe = SimpleNamespace(steps=[("crop", _FakeCrop()), ("embed", _FakeEmbed())])
    out = tmp_path / "built.npz"
    build_training_set(_FakeDatabase(), "toy", out, transformer=pipe, batch_size=3, progress=False)
    d = load_training_set(out)
    assert list(d["keys"]) == ["t0", "t1", "t2", "t3", "v5", "v6", "v7"]  # t4: no face, left out
    assert list(d["validation"]) == [False] * 4 + [True] * 3
    assert d["faces"].shape == (7, 3, 112, 112) and d["faces"].dtype == np.uint8
    np.testing.assert_array_equal(d["faces"][:, 0, 0, 0], [0, 10, 20, 30, 50, 60, 70])
    np.testing.assert_array_equal(d["embeddings"][:, 0], [0, 1, 2, 3, 5, 6, 7])
    assert d["metadata"]["model"] == "toy" and d["metadata"]["n_skipped"] == 1
    # the trainer follows the file's split
    r = train_generator(out, tmp_path / "run", epochs=1, w_id=0, batch_size=2, progress=False,
                        grid_size=2)
    m = r["metadata"]
    assert (m["n_train"], m["n_validation"], m["recipe"]["split"]) == (4, 3, "file")


# --------------------------------------------------------------------------- validation RSR


class Tiny16(nn.Module):
    """Stand-in attacked extractor with the toy set's 16-d embeddings."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(7)
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.fc = nn.Linear(4 * 8 * 8, 16)

    def forward(self, x):
        x = nn.functional.interpolate(x, size=(36, 36), mode="bilinear", align_corners=False)
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def toy_people(tmp_path_factory):
    """The toy set with subjects: 2 people x 6 samples (any 3 validation samples hold a pair)."""
    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("people") / "people.npz"
    save_training_set(path, _smooth_faces(12), rng.randn(12, 16), [f"s{i:02d}" for i in range(12)],
                      {"model": "toy"}, subjects=[f"p{i % 2}" for i in range(12)])
    return str(path)


def test_acceptance_rates_by_hand():
    from bob_facerev.attack.validation import acceptance_rates, describe

    templates = np.eye(4)[:3]  # three samples, subjects a, a, b
    recon = np.array([[1.0, 0, 0, 0], [0.6, 0.8, 0, 0], [0, 0, 0, 1.0]])
    rates = acceptance_rates(templates, recon, {0.001: 0.9, 0.1: 0.5}, subjects=["a", "a", "b"])
    # type-I scores 1, 0.8, 0; type-II pairs (0 vs 1): 0, (1 vs 0): 0.6
    assert rates == {"val_type1_fmr0.1": pytest.approx(1 / 3), "val_type2_fmr0.1": 0.0,
                     "val_type1_fmr10": pytest.approx(2 / 3), "val_type2_fmr10": 0.5}
    assert describe(rates, 0.1) == "RSR@10% 66.7% (II 50.0%)"
    no_subjects = acceptance_rates(templates, recon, {0.1: 0.5})
    assert np.isnan(no_subjects["val_type2_fmr10"])


def test_thresholds_only_from_scores_with_identities(tmp_path):
    from bob_facerev.attack.validation import resolve_thresholds, thresholds_from_scores
    from bob_facerev.evaluation.rsr import fmr_thresholds

    rng = np.random.RandomState(3)
    neg = rng.uniform(0, 0.8, 2000)
    rows = ["probe_subject_id,bio_ref_subject_id,score"]
    rows += [f"a{i},b{i},{s}" for i, s in enumerate(neg)] + ["c,c,0.95", "d,d,0.9"]
    with_ids = tmp_path / "cfp.csv"
    with_ids.write_text("\n".join(rows) + "\n")
    got = thresholds_from_scores(with_ids)
    assert got == {r["fmr"]: r["threshold"] for r in fmr_thresholds(neg)}
    assert resolve_thresholds(str(with_ids))[1] == "cfp.csv"
    utk = tmp_path / "utk.csv"  # every template its own subject: no genuine pair
    utk.write_text("\n".join(rows[: 500]) + "\n")
    with pytest.raises(ValueError, match="no genuine comparisons"):
        thresholds_from_scores(utk)
    with pytest.raises(ValueError, match="FMRs"):
        resolve_thresholds({1.5: 0.3})


def test_validation_rsr_logged_and_chooses_best(toy_people, tmp_path):
    # thresholds that make two rates certain: cos <= 1 < 2 (none accepted), cos >= -1 > -2 (all)
    thresholds = {0.001: 2.0, 0.01: -2.0, 0.1: 0.0}
    result = train_generator(toy_people, tmp_path / "run", epochs=4, w_id=0, attacked_network=Tiny16(),
                             thresholds=thresholds, select_fmr=0.1, **FAST)
    history = result["history"]
    for r in history:
        assert r["val_type1_fmr0.1"] == 0.0 and r["val_type1_fmr1"] == 1.0
        assert r["val_type2_fmr0.1"] == 0.0 and r["val_type2_fmr1"] == 1.0  # the set has people
        assert 0.0 <= r["val_type1_fmr10"] <= 1.0
    key = [(r["val_type1_fmr10"], -r["val_total"]) for r in history]
    assert key[result["best_epoch"] - 1] == max(key)
    with open(tmp_path / "run" / "log.csv") as f:
        rows = list(csv.DictReader(f))
    assert float(rows[0]["val_type1_fmr10"]) == pytest.approx(history[0]["val_type1_fmr10"])
    meta = read_generator_checkpoint(tmp_path / "run" / "best.pt")["metadata"]
    assert meta["recipe"]["select"] == "type1@0.1" and meta["threshold_source"] == "given"
    assert meta["recipe"]["thresholds"] == {"0.001": 2.0, "0.01": -2.0, "0.1": 0.0}
    with pytest.raises(ValueError, match="select_fmr"):
        train_generator(toy_people, tmp_path / "bad", epochs=1, w_id=0, attacked_network=Tiny16(),
                        thresholds={0.01: 0.5}, select_fmr=0.001, **FAST)


def test_early_stopping_keeps_the_epoch_with_the_best_validation_rsr(toy_set, tmp_path, monkeypatch):
    from bob_facerev.attack import trainer

    scripted = iter([0.2, 0.6, 0.4, 0.5, 0.3, 0.9, 0.9])  # best: epoch 2; epoch 6 never comes

    def fake_rsr(*args, **kwargs):
        value = next(scripted)
        return {"val_type1_fmr0.1": value, "val_type2_fmr0.1": float("nan")}

    monkeypatch.setattr(trainer, "epoch_rsr", fake_rsr)
    result = train_generator(toy_set, tmp_path / "stop", epochs=10, w_id=0, patience=3,
                             attacked_network=Tiny16(), thresholds={0.001: 0.5}, **FAST)
    assert [r["val_type1_fmr0.1"] for r in result["history"]] == [0.2, 0.6, 0.4, 0.5, 0.3]
    assert result["best_epoch"] == 2 and result["stopped_early"]
    assert [r["best"] for r in result["history"]] == [1, 1, 0, 0, 0]
    best = read_generator_checkpoint(tmp_path / "stop" / "best.pt")
    assert best["epoch"] == 2
    # best.pt holds the weights of epoch 2: those of a straight 2-epoch run (deterministic on CPU)
    monkeypatch.setattr(trainer, "epoch_rsr", lambda *a, **k: {})
    train_generator(toy_set, tmp_path / "two", epochs=2, w_id=0, **FAST)
    two = read_generator_checkpoint(tmp_path / "two" / "last.pt")
    for k in two["generator"]:
        assert torch.equal(best["generator"][k], two["generator"][k]), k
    last = read_generator_checkpoint(tmp_path / "stop" / "last.pt")
    assert last["epoch"] == 5
    assert not torch.equal(last["generator"]["head.0.weight"], best["generator"]["head.0.weight"])
    # resuming a stopped run trains no further
    again = train_generator(toy_set, tmp_path / "stop", epochs=10, w_id=0, patience=3, resume=True,
                            attacked_network=Tiny16(), thresholds={0.001: 0.5}, **FAST)
    assert len(again["history"]) == 5 and again["stopped_early"]


def test_flips_weight_decay_and_cosine_loss_in_training(toy_set, tmp_path):
    result = train_generator(toy_set, tmp_path / "flip", epochs=1, flip=True, weight_decay=0.01,
                             id_loss="cosine", w_id=1.0, id_network=_tiny_id(),
                             attacked_network=Tiny16(), **FAST)
    state = read_generator_checkpoint(tmp_path / "flip" / "last.pt")
    recipe = state["metadata"]["recipe"]
    assert (recipe["flip"], recipe["weight_decay"], recipe["id_loss"], recipe["optimizer"]) == \
        (True, 0.01, "cosine", "AdamW")
    assert state["optimizer"]["param_groups"][0]["weight_decay"] == 0.01
    assert 0 < result["history"][0]["train_id"] <= 2  # 1 - cos lies in [0, 2]
    # 9 training faces and their 9 mirror images: 18 items, batches of 4 without the last partial
    assert state["optimizer"]["state"][0]["step"].item() == 18 // 4
    with pytest.raises(ValueError, match=r"recipe\.id_loss"):
        train_generator(toy_set, tmp_path / "flip", epochs=2, flip=True, weight_decay=0.01,
                        id_loss="study", w_id=1.0, id_network=_tiny_id(),
                        attacked_network=Tiny16(), resume=True, **FAST)


def test_cli_passes_the_new_recipe_options(toy_set, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bob_facerev.attack import trainer
    from bob_facerev.script.train import train

    seen = {}

    def fake_train(training_set, output, **kwargs):
        seen.update(kwargs)
        return {"history": [], "last": "l", "best": "b", "stopped_early": True}

    monkeypatch.setattr(trainer, "train_generator", fake_train)
    args = ["-t", toy_set, "-o", str(tmp_path / "o"), "--id-loss", "cosine", "--weight-decay", "0.01",
            "--flip", "--threshold-scores", "cfp.csv", "--select-fmr", "0.01", "--patience", "4"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    assert {k: seen[k] for k in ("id_loss", "weight_decay", "flip", "thresholds", "select_fmr",
                                 "patience")} == dict(id_loss="cosine", weight_decay=0.01, flip=True,
                                                      thresholds="cfp.csv", select_fmr=0.01, patience=4)
    assert "stopped early" in result.output


def test_cli_refuses_thresholds_without_identities(toy_set, tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.train import train

    utk = tmp_path / "utk.csv"
    utk.write_text("probe_subject_id,bio_ref_subject_id,score\n" +
                   "".join(f"a{i},b{i},0.{i}\n" for i in range(10)))
    result = CliRunner().invoke(train, ["-t", toy_set, "-o", str(tmp_path / "o"), "--threshold-scores",
                                        str(utk), "--id-model", "none"])
    assert result.exit_code != 0 and "no genuine comparisons" in result.output
    assert not (tmp_path / "o" / "last.pt").exists()


@pytest.mark.slow
def test_recipe_comparison_runs_quick(tmp_path):
    """benchmarks/recipe_compare.py --quick: four recipes trained and measured on the demo faces."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parents[1] / "benchmarks" / "recipe_compare.py"
    spec = importlib.util.spec_from_file_location("recipe_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rows = module.main(["--quick", "-o", str(tmp_path)])
    assert [(r["id_loss"], r["flip"]) for r in rows] == [
        ("study", False), ("study", True), ("cosine", False), ("cosine", True)]
    for r in rows:
        assert r["n_test"] == 10 and r["n_test_people"] == 5 and r["n_type2_pairs"] == 16
        for fmr in ("0.1", "1", "10"):
            assert 0 <= r[f"test_type1_fmr{fmr}"] <= 1 and 0 <= r[f"test_type2_fmr{fmr}"] <= 1
        assert 1 <= r["best_epoch"] <= r["epochs_run"] == 2
    flip = read_generator_checkpoint(tmp_path / "dlib" / "study-wid1-flip" / "last.pt")["metadata"]["recipe"]
    assert flip["flip"] is True and flip["select"] == "type1@0.001"
    assert (tmp_path / "recipes.md").read_text().count("| dlib") == 4


def test_thresholds_from_embeddings_use_different_people_only():
    from bob_facerev.attack.validation import thresholds_from_embeddings
    from bob_facerev.evaluation.rsr import fmr_thresholds

    rng = np.random.RandomState(0)
    x = rng.normal(size=(40, 8))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    subjects = [f"p{i // 2}" for i in range(40)]
    x[1::2] = x[0::2]  # each person's two photos are identical: genuine score 1
    got = thresholds_from_embeddings(x, subjects, fmrs=(0.01, 0.1))
    neg = [x[a] @ x[b] for a in range(40) for b in range(a + 1, 40) if subjects[a] != subjects[b]]
    assert got == pytest.approx({r["fmr"]: r["threshold"] for r in fmr_thresholds(neg, (0.01, 0.1))})
    assert got[0.01] < 1.0  # the identical same-person pairs did not count as impostors
    with pytest.raises(ValueError, match="identities"):
        thresholds_from_embeddings(x, [f"u{i}" for i in range(40)])


@pytest.mark.slow
def test_recipe_comparison_splits_a_people_set(tmp_path):
    """--people-set: attacked people kept out of the attacker's merged data, thresholds from
    different-identity pairs, RSR measured on the attacked people."""
    import importlib.util
    from pathlib import Path

    from bob_facerev.attack.dataset import load_training_set

    path = Path(__file__).parents[1] / "benchmarks" / "recipe_compare.py"
    spec = importlib.util.spec_from_file_location("recipe_compare", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rng = np.random.RandomState(0)
    save_training_set(tmp_path / "cfp_dlib.npz", _smooth_faces(18, seed=1), rng.randn(18, 128),
                      [f"c{i}" for i in range(18)], {"model": "dlib"},
                      subjects=[f"p{i // 3}" for i in range(18)])
    save_training_set(tmp_path / "utk_dlib.npz", _smooth_faces(6, seed=2), rng.randn(6, 128),
                      [f"u{i}" for i in range(6)], {"model": "dlib"})
    out = tmp_path / "out"
    rows = module.main(["--models", "dlib", "--people-set", str(tmp_path / "cfp_{model}.npz"),
                        "--extra-training", str(tmp_path / "utk_{model}.npz"), "--test-fraction",
                        "0.34", "--epochs", "1", "--batch-size", "4", "--device", "cpu",
                        "--validation-fraction", "0.25", "-o", str(out)])
    assert len(rows) == 4
    for r in rows:
        assert (r["n_test"], r["n_test_people"], r["n_type2_pairs"]) == (6, 2, 12)
        assert r["thresholds_from"] == "different-identity pairs"
    attacker = load_training_set(out / "dlib" / "data" / "attacker.npz")
    test = load_training_set(out / "dlib" / "data" / "people_test.npz")
    assert len(attacker["faces"]) == 6 + 12
    attacked = {f"people_train/{p}" for p in test["subjects"]}
    assert not attacked & set(attacker["subjects"])
