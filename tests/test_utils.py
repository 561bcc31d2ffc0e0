"""Atomic writes: bob_facerev.utils."""

import os

import numpy as np
import pytest

from bob_facerev.utils import atomic_path, atomic_savez, atomic_write_text


def _names(folder):
    return sorted(p.name for p in folder.iterdir())


def test_target_appears_only_on_success(tmp_path):
    target = tmp_path / "sub" / "deeper" / "out.txt"  # parent folders are created
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent
        assert tmp.name.startswith(".out.txt.") and str(os.getpid()) in tmp.name
        assert tmp.suffix == ".txt"
        assert not tmp.exists()
        tmp.write_text("complete")
        assert not target.exists()  # nothing visible before the block ends
    assert target.read_text() == "complete"
    assert _names(target.parent) == ["out.txt"]


def test_temporary_names_are_unique(tmp_path):
    with atomic_path(tmp_path / "a.csv") as t1, atomic_path(tmp_path / "a.csv") as t2:
        assert t1 != t2
        t1.write_text("first")
        t2.write_text("second")
    assert (tmp_path / "a.csv").read_text() == "first"  # the last to finish wins
    assert _names(tmp_path) == ["a.csv"]


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt])
def test_error_keeps_old_content_and_leaves_no_temporary(tmp_path, exc):
    target = tmp_path / "scores.csv"
    target.write_text("old")
    with pytest.raises(exc):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise exc()
    assert target.read_text() == "old"
    assert _names(tmp_path) == ["scores.csv"]


def test_error_before_writing_leaves_nothing(tmp_path):
    target = tmp_path / "new.json"
    with pytest.raises(ValueError, match="boom"):
        with atomic_path(target):
            raise ValueError("boom")
    assert _names(tmp_path) == []


def test_failed_replace_removes_the_temporary(tmp_path):
    target = tmp_path / "taken"
    target.mkdir()  # a non-empty folder cannot be replaced by a file
    (target / "inside").write_text("x")
    with pytest.raises(OSError):
        with atomic_path(target) as tmp:
            tmp.write_text("new")
    assert _names(tmp_path) == ["taken"]


def test_suffix_preserved_for_numpy(tmp_path):
    target = tmp_path / "x.npz"
    with atomic_path(target) as tmp:
        assert tmp.name.endswith(".npz")
        np.savez(tmp, a=np.arange(3))  # numpy would append .npz if the name lacked it
    with np.load(target) as z:
        np.testing.assert_array_equal(z["a"], np.arange(3))
    assert _names(tmp_path) == ["x.npz"]


def test_atomic_write_text(tmp_path):
    target = tmp_path / "t" / "table.csv"
    assert atomic_write_text(str(target), "a,b\r\n1,2\n") == target
    assert target.read_bytes() == b"a,b\r\n1,2\n"  # written as given
    assert atomic_write_text(target, "new") == target
    assert target.read_text() == "new"
    assert _names(target.parent) == ["table.csv"]


def test_atomic_savez(tmp_path):
    arrays = dict(faces=np.zeros((2, 3), np.uint8), keys=np.asarray(["a", "b"]))
    assert atomic_savez(tmp_path / "set.npz", **arrays) == tmp_path / "set.npz"
    # written under the name given, even without the .npz suffix
    atomic_savez(tmp_path / "plain", **arrays)
    assert _names(tmp_path) == ["plain", "set.npz"]
    for name in ("set.npz", "plain"):
        with np.load(tmp_path / name) as z:
            for k, v in arrays.items():
                np.testing.assert_array_equal(z[k], v)


def test_lazy_exports_import_on_first_use():
    import sys

    import bob_facerev.protection as protection

    from bob_facerev.utils import lazy_exports

    getter = lazy_exports("bob_facerev.protection", {"pemiu_scores": "comparator"})
    assert getter("pemiu_scores") is sys.modules["bob_facerev.protection.comparator"].pemiu_scores
    assert protection.PEMIU.__module__ == "bob_facerev.protection.pemiu"
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        getter("nothing")


def test_resolve_device_is_the_one_auto_detection(tmp_path, monkeypatch):
    """"auto"/None -> CUDA when available, else CPU; the extractor, the reconstruction transformer
    and the trainer all ask bob_facerev.utils.resolve_device."""
    import torch

    from bob_facerev.attack import checkpoint
    from bob_facerev.attack.trainer import Trainer
    from bob_facerev.attack.transformer import Reconstruct
    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.utils import resolve_device

    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device(torch.device("cuda:1")) == torch.device("cuda:1")
    loaded_on = []

    def load_generator(path, model=None, device=None):
        loaded_on.append(device)
        return torch.nn.Identity(), {}

    monkeypatch.setattr(checkpoint, "load_generator", load_generator)
    for available, expected in ((False, "cpu"), (True, "cuda")):
        monkeypatch.setattr(torch.cuda, "is_available", lambda: available)
        assert resolve_device() == resolve_device("auto") == torch.device(expected)
        assert FaceEmbedding("dlib")._device() == torch.device(expected)
        Reconstruct("generator.pt")._load()
        assert loaded_on.pop() == torch.device(expected)
        trainer = Trainer(tmp_path / "missing.npz", tmp_path / "out", device="auto")
        with pytest.raises(FileNotFoundError):  # the device is chosen before the data is read
            trainer.fit()
        assert trainer.device_ == torch.device(expected)
    with pytest.raises(RuntimeError):
        resolve_device("gpu")
