"""`checkpoint_every` and `save_grids` of train_generator: short demos write little, resume works."""

import csv
import os

import numpy as np
import pytest
import torch

from bob_facerev.attack import trainer
from bob_facerev.attack.dataset import save_training_set
from bob_facerev.attack.checkpoint import read_generator_checkpoint
from bob_facerev.attack.trainer import train_generator

FAST = dict(batch_size=4, validation_fraction=0.25, progress=False, grid_size=2, w_id=0)


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    faces = rng.randint(0, 256, (8, 3, 112, 112)).astype(np.uint8)
    save_training_set(path, faces, rng.randn(8, 16), [f"s{i}" for i in range(8)], {"model": "toy"})
    return str(path)


def _saves(monkeypatch):
    """Record (file name, epoch) of every checkpoint written."""
    saved, save = [], trainer.atomic_torch_save

    def spy(obj, path):
        saved.append((os.path.basename(path), obj["epoch"]))
        return save(obj, path)

    monkeypatch.setattr(trainer, "atomic_torch_save", spy)
    return saved


@pytest.mark.slow
def test_checkpoints_every_n_epochs_and_the_last(toy_set, tmp_path, monkeypatch):
    saved = _saves(monkeypatch)
    res = train_generator(toy_set, tmp_path / "run", epochs=5, checkpoint_every=2,
                          save_grids=False, **FAST)
    assert [e for name, e in saved if name == "last.pt"] == [2, 4, 5]
    # best.pt is written at those checkpoints only (at most 3 times, not at every new best)
    best_saves = [e for name, e in saved if name == "best.pt"]
    assert 1 <= len(best_saves) <= 3 and best_saves[-1] == res["best_epoch"]
    assert not (tmp_path / "run" / "grids").exists()
    with open(tmp_path / "run" / "log.csv") as f:
        assert len(list(csv.DictReader(f))) == 5
    # best.pt holds the weights of the best epoch, not of the epoch it was written at
    best = read_generator_checkpoint(tmp_path / "run" / "best.pt")
    assert best["epoch"] == res["best_epoch"]
    losses = [h["val_total"] for h in res["history"]]
    assert res["best_epoch"] == int(np.argmin(losses)) + 1


@pytest.mark.slow
def test_resume_from_a_sparse_checkpoint_matches_the_uninterrupted_run(toy_set, tmp_path):
    full = train_generator(toy_set, tmp_path / "full", epochs=4, checkpoint_every=2,
                           save_grids=False, **FAST)
    train_generator(toy_set, tmp_path / "cut", epochs=2, checkpoint_every=2, save_grids=False,
                    **FAST)
    train_generator(toy_set, tmp_path / "cut", epochs=4, checkpoint_every=2, save_grids=False,
                    resume=True, **FAST)
    a = torch.load(tmp_path / "full" / "last.pt", weights_only=True)["generator"]
    b = torch.load(tmp_path / "cut" / "last.pt", weights_only=True)["generator"]
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert full["history"][-1]["epoch"] == 4


def test_trainer_with_a_recipe_is_train_generator(toy_set, tmp_path):
    """Trainer(recipe) and train_generator(**keywords) train the same weights; the checkpoint's
    stored recipe keeps its keys and order (old checkpoints resume)."""
    from bob_facerev.attack.recipe import STUDY
    from bob_facerev.attack.trainer import Trainer

    recipe = STUDY.replace(epochs=2, batch_size=4, validation_fraction=0.25, w_id=0)
    by_class = Trainer(toy_set, tmp_path / "class", recipe, progress=False, grid_size=2).fit()
    by_keywords = train_generator(toy_set, tmp_path / "keywords", epochs=2, **FAST)
    assert [h["train_total"] for h in by_class["history"]] == [
        h["train_total"] for h in by_keywords["history"]]
    a = read_generator_checkpoint(tmp_path / "class" / "last.pt")
    b = read_generator_checkpoint(tmp_path / "keywords" / "last.pt")
    assert all(torch.equal(a["generator"][k], b["generator"][k]) for k in a["generator"])
    assert list(a["metadata"]["recipe"]) == [
        "epochs", "batch_size", "lr", "lr_step", "lr_gamma", "w_ssim", "w_id", "seed", "split_seed",
        "validation_fraction", "max_samples", "split", "optimizer", "scheduler", "id_loss",
        "weight_decay", "flip", "patience", "select", "thresholds"]
    assert a["metadata"]["recipe"] == b["metadata"]["recipe"]


def test_checkpoint_every_must_be_positive(toy_set, tmp_path):
    with pytest.raises(ValueError, match="checkpoint_every must be >= 1"):
        train_generator(toy_set, tmp_path / "x", epochs=2, checkpoint_every=0, **FAST)


@pytest.mark.slow
def test_grid_keeps_only_best_once_trained(toy_set, tmp_path, monkeypatch):
    """keep_last_checkpoint=False: last.pt goes once training is done, and a second run of the
    grid reuses best.pt instead of training again; another recipe trains anew."""
    from bob_facerev import experiment

    cfg = experiment.GridConfig(model="toy", output=str(tmp_path), train=dict(
        epochs=2, checkpoint_every=2, save_grids=False, keep_last_checkpoint=False, **FAST))
    best = experiment._generator(cfg, tmp_path, toy_set)
    folder = tmp_path / "generators" / "study"
    assert best == str(folder / "best.pt") and sorted(os.listdir(folder)) == [
        "best.pt", "done.json", "log.csv"]
    calls = []
    monkeypatch.setattr(trainer, "train_generator", lambda *a, **k: calls.append(k))
    assert experiment._generator(cfg, tmp_path, toy_set) == best and calls == []
    cfg.train = dict(cfg.train, epochs=3)
    experiment._generator(cfg, tmp_path, toy_set)
    assert len(calls) == 1 and calls[0]["epochs"] == 3
    assert "keep_last_checkpoint" not in calls[0]
