"""Flip augmentation, subject labels and merged training sets (bob_facerev.attack.dataset)."""

import numpy as np
import pytest
import torch
from torch import nn

from bob_facerev.attack.dataset import (
    ReconstructionDataset,
    flip_faces,
    flipped_embeddings,
    has_identities,
    load_training_set,
    save_training_set,
)
from bob_facerev.attack.compose import merge_training_sets, split_by_people


class LeftRight(nn.Module):
    """A face 'extractor' that tells a face from its mirror: mean of each channel in the left and
    the right half, and of the top-left quarter (7-d)."""

    def forward(self, x):
        w = x.shape[-1] // 2
        h = x.shape[-2] // 2
        return torch.cat([x[..., :w].mean((2, 3)), x[..., w:].mean((2, 3)),
                          x[:, :1, :h, :w].mean((2, 3))], dim=1)


def _faces(n, seed=0):
    rng = np.random.RandomState(seed)
    return rng.randint(0, 256, size=(n, 3, 112, 112)).astype(np.uint8)


def test_flip_augmentation_pairs_each_flipped_face_with_its_own_embedding():
    faces = _faces(5)
    net = LeftRight()
    original = torch.nn.functional.normalize(net(torch.from_numpy(faces).float() / 255), dim=1).numpy()
    train = np.array([0, 2, 3])
    flipped = flipped_embeddings(faces, train, net, batch_size=2)
    assert flipped.shape == original.shape
    assert np.all(flipped[[1, 4]] == 0)  # only the asked faces are embedded
    ds = ReconstructionDataset(faces, original, train, flipped_embeddings=flipped)
    assert len(ds) == 6
    for k, j in enumerate(train):
        face, emb, idx = ds[k]
        assert idx == j and np.array_equal(face.numpy(), faces[j])
        assert np.allclose(emb.numpy(), original[j])
        face_f, emb_f, idx_f = ds[k + len(train)]
        assert idx_f == j + len(faces)
        assert np.array_equal(face_f.numpy(), faces[j][:, :, ::-1])
        # the mirrored face's own embedding: what the extractor says of *that* face ...
        own = torch.nn.functional.normalize(net(face_f[None].float() / 255), dim=1)[0].numpy()
        assert np.allclose(emb_f.numpy(), own, atol=1e-6)
        # ... which is not the original's (the extractor tells them apart)
        assert not np.allclose(emb_f.numpy(), original[j], atol=1e-3)
    assert np.array_equal(flip_faces(flip_faces(faces)), faces)
    with pytest.raises(ValueError, match="flipped_embeddings"):
        ReconstructionDataset(faces, original, train, flipped_embeddings=flipped[:, :3])


def test_subjects_roundtrip_and_identities(tmp_path):
    faces, emb = _faces(4), np.random.RandomState(1).normal(size=(4, 8)).astype(np.float32)
    path = tmp_path / "a.npz"
    save_training_set(path, faces, emb, ["k0", "k1", "k2", "k3"], {"model": "m"},
                      subjects=["p", "p", "q", "r"])
    data = load_training_set(path)
    assert data["subjects"].tolist() == ["p", "p", "q", "r"]
    assert has_identities(data["subjects"])
    assert not has_identities(["k0", "k1", "k2"])  # every sample its own "subject": UTKFace
    assert not has_identities(None)
    with pytest.raises(ValueError, match="subjects"):
        save_training_set(tmp_path / "b.npz", faces, emb, ["a", "b", "c", "d"], subjects=["p"])


def test_merge_training_sets_checks_people_and_models(tmp_path):
    rng = np.random.RandomState(2)

    def write(name, n, subjects=None, model="m", d=8):
        path = tmp_path / f"{name}.npz"
        save_training_set(path, _faces(n, seed=n), rng.normal(size=(n, d)).astype(np.float32),
                          [f"k{i}" for i in range(n)], {"model": model}, subjects=subjects)
        return path

    utk = write("utk", 3)
    cfp = write("cfp", 4, subjects=["001", "001", "002", "002"])
    merged = merge_training_sets([utk, cfp], tmp_path / "merged.npz")
    data = load_training_set(merged)
    a, b = load_training_set(utk), load_training_set(cfp)
    assert np.array_equal(data["faces"], np.concatenate([a["faces"], b["faces"]]))
    assert np.array_equal(data["embeddings"], np.concatenate([a["embeddings"], b["embeddings"]]))
    assert data["keys"].tolist()[:2] == ["utk/k0", "utk/k1"] and data["keys"][3] == "cfp/k0"
    assert data["subjects"].tolist() == ["utk/k0", "utk/k1", "utk/k2", "cfp/001", "cfp/001",
                                         "cfp/002", "cfp/002"]
    assert data["metadata"]["model"] == "m"
    # the attacked people must not be in the attacker's data
    with pytest.raises(ValueError, match="attacked subject"):
        merge_training_sets([utk, cfp], tmp_path / "m2.npz", exclude_subjects=["002", "900"])
    # one person in two files with identities
    cfp2 = write("cfp_other", 2, subjects=["002", "003"])
    with pytest.raises(ValueError, match="share 1 subject"):
        merge_training_sets([cfp, cfp2], tmp_path / "m3.npz")
    with pytest.raises(ValueError, match="different models"):
        merge_training_sets([utk, write("arc", 2, model="arcface")], tmp_path / "m4.npz")
    with pytest.raises(ValueError, match="embedding_sizes"):
        merge_training_sets([utk, write("big", 2, d=16)], tmp_path / "m5.npz")
    with pytest.raises(ValueError, match="at least two"):
        merge_training_sets([utk], tmp_path / "m6.npz")
    assert not (tmp_path / "m2.npz").exists()


def test_split_by_people_gives_disjoint_people(tmp_path):
    n = 12
    subjects = [f"p{i // 3}" for i in range(n)]  # 4 people x 3 photos
    path = tmp_path / "cfp.npz"
    save_training_set(path, _faces(n), np.random.RandomState(0).normal(size=(n, 8)).astype(np.float32),
                      [f"k{i}" for i in range(n)], {"model": "m"}, subjects=subjects)
    train_people, test_people = split_by_people(path, tmp_path / "train.npz", tmp_path / "test.npz",
                                                test_fraction=0.25, seed=1)
    assert len(test_people) == 1 and len(train_people) == 3
    assert set(train_people) | set(test_people) == {"p0", "p1", "p2", "p3"}
    train, test = load_training_set(tmp_path / "train.npz"), load_training_set(tmp_path / "test.npz")
    assert set(test["subjects"]) == set(test_people) and len(test["faces"]) == 3
    assert not set(train["subjects"]) & set(test["subjects"])
    original = load_training_set(path)
    k = list(original["keys"]).index(test["keys"][0])
    assert np.array_equal(test["faces"][0], original["faces"][k])
    assert np.array_equal(test["embeddings"][0], original["embeddings"][k])
    # the attacked people can then be kept out of a merged attacker set
    with pytest.raises(ValueError, match="attacked subject"):
        merge_training_sets([tmp_path / "train.npz", path], tmp_path / "m.npz",
                            exclude_subjects=test_people)
    utk = tmp_path / "utk.npz"
    save_training_set(utk, _faces(3), np.zeros((3, 8), np.float32) + 1, ["a", "b", "c"], {"model": "m"})
    with pytest.raises(ValueError, match="no subject identities"):
        split_by_people(utk, tmp_path / "x.npz", tmp_path / "y.npz")
