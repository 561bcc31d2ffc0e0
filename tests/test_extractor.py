"""FaceEmbedding: shapes, normalisation, batching, pickling, input checks."""

import pickle
from dataclasses import replace

import numpy as np
import pytest
import torch

from bob_facerev.face.backbones.iresnet import IResNet
from bob_facerev.face.extractor import FaceEmbedding
from bob_facerev.face.network import load_embedding_network
from bob_facerev.face.registry import get_model_spec


def tiny_backbone():
    return IResNet((1, 1, 1, 1), num_features=16, widths=(8, 8, 8, 16))


# a registry entry with a small backbone, the ArcFace crop and normalisation
TINY = replace(
    get_model_spec("arcface-r50"), name="tiny", backbone=tiny_backbone, embedding_size=16
)


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    net = tiny_backbone()
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.1, 0.1)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save(net.state_dict(), path)
    return path


@pytest.fixture(scope="module")
def crops():
    return np.random.default_rng(0).integers(0, 256, size=(7, 3, 112, 112), dtype=np.uint8)


def reference(checkpoint, crops):
    """Straightforward computation: one crop at a time, normalisation written out."""
    net = tiny_backbone()
    net.load_state_dict(torch.load(checkpoint, weights_only=True))
    net.eval()
    out = []
    with torch.no_grad():
        for c in crops:
            x = (torch.from_numpy(c[None].astype(np.float32)) - 127.5) / 127.5
            e = net(x)[0].numpy()
            out.append(e / np.linalg.norm(e))
    return np.array(out)


def test_output_shape_dtype_norm(tiny_checkpoint, crops):
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, batch_size=3, device="cpu")
    y = fe.transform(list(crops))
    assert y.shape == (7, 16) and y.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y, reference(tiny_checkpoint, crops), atol=1e-5)
    # un-normalised output: same directions, other norms
    raw = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu", normalize=False)
    z = raw.transform(crops)
    assert not np.allclose(np.linalg.norm(z, axis=1), 1.0)
    np.testing.assert_allclose(z / np.linalg.norm(z, axis=1, keepdims=True), y, atol=1e-5)
    assert fe.transform([]).shape == (0, 16)


def test_batch_size_invariance(tiny_checkpoint, crops):
    outs = [
        FaceEmbedding(TINY, checkpoint=tiny_checkpoint, batch_size=b, device="cpu").transform(crops)
        for b in (1, 2, 7, 32)
    ]
    for y in outs[1:]:
        np.testing.assert_allclose(y, outs[0], atol=1e-5)


def test_embeddings_do_not_depend_on_the_split(tiny_checkpoint, crops):
    # Dask hands the extractor partitions of any size (no zero-padding to a full batch): a
    # sample's embedding agrees to 1e-6 however the samples are split
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, batch_size=4, device="cpu")
    whole = fe.transform(crops)
    for cut in (1, 3, 5):
        parts = np.concatenate([fe.transform(crops[:cut]), fe.transform(crops[cut:])])
        np.testing.assert_allclose(parts, whole, rtol=0, atol=1e-6)


def test_float_input_and_mixed_sizes(tiny_checkpoint, crops):
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu")
    y = fe.transform(crops)
    np.testing.assert_allclose(fe.transform(crops.astype(np.float32) / 255.0), y, atol=1e-5)
    # crops of another size are resized inside the network, group by group, order kept
    net = load_embedding_network(TINY, tiny_checkpoint)
    big = np.random.default_rng(1).random((2, 3, 128, 128)).astype(np.float32)
    with torch.no_grad():
        e = torch.nn.functional.normalize(net(torch.from_numpy(big)), dim=1).numpy()
    mixed = fe.transform([crops[0], big[0], crops[1], big[1]])
    np.testing.assert_allclose(mixed[[0, 2]], y[:2], atol=1e-5)
    np.testing.assert_allclose(mixed[[1, 3]], e, atol=1e-5)


def test_network_resize_path_equals_extractor(tiny_checkpoint):
    """The attack feeds float crops of another size to the network: same as the extractor."""
    rng = np.random.default_rng(2)
    crops96 = rng.integers(0, 256, size=(3, 3, 96, 96), dtype=np.uint8)
    net = load_embedding_network(TINY, tiny_checkpoint)
    x = torch.from_numpy(crops96.astype(np.float32) / 255.0)
    with torch.no_grad():
        e = net(x).numpy()
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu", normalize=False)
    np.testing.assert_allclose(fe.transform(crops96), e, atol=1e-5)


def test_lazy_loading_and_pickling(tiny_checkpoint, crops):
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu")
    assert not hasattr(fe, "network_")  # __init__ loads nothing
    y = fe.transform(crops[:2])
    assert hasattr(fe, "network_")
    blob = pickle.dumps(fe)
    assert len(blob) < 5000  # the network is not in there
    fe2 = pickle.loads(blob)
    assert not hasattr(fe2, "network_")
    np.testing.assert_allclose(fe2.transform(crops[:2]), y, atol=1e-6)
    assert fe._get_tags()["requires_fit"] is False


def test_missing_weights_fail_at_first_transform(tmp_path, monkeypatch, crops):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    fe = FaceEmbedding("arcface")  # constructing needs no weights
    with pytest.raises(ValueError, match="bob config set bob_facerev.arcface.checkpoint"):
        fe.transform(crops[:1])
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        FaceEmbedding("arcface", checkpoint=tmp_path / "nope.pth").transform(crops[:1])


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((112, 112), np.uint8), "grayscale"),
        (np.zeros((4, 112, 112), np.uint8), "RGBA"),
        (np.zeros((112, 112, 3), np.uint8), "transpose"),
        (np.zeros((3, 112, 112), np.int32), "dtype int32"),
        (np.full((3, 112, 112), 200.0, np.float32), "must be in \\[0, 1\\]"),
        (None, "None"),
    ],
)
def test_bad_input(tiny_checkpoint, bad, match):
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu")
    with pytest.raises(ValueError, match=match):
        fe.transform([np.zeros((3, 112, 112), np.uint8), bad])


def test_half_on_cpu_falls_back(tiny_checkpoint, crops, caplog):
    fe = FaceEmbedding(TINY, checkpoint=tiny_checkpoint, device="cpu", half=True)
    y = fe.transform(crops[:2])
    assert y.dtype == np.float32 and next(fe.network().parameters()).dtype == torch.float32
    assert "needs CUDA" in caplog.text


def test_dlib_default_model():
    """The bundled dlib model: 128-d, resize path from 112x112 reconstructions."""
    pytest.importorskip("bob_facerev.face.backbones.dlib_resnet")
    rng = np.random.default_rng(3)
    chips = rng.integers(0, 256, size=(2, 3, 150, 150), dtype=np.uint8)
    fe = FaceEmbedding(device="cpu")
    y = fe.transform(chips)
    assert y.shape == (2, 128)
    np.testing.assert_allclose(np.linalg.norm(y, axis=1), 1.0, rtol=1e-6)
    net = load_embedding_network("dlib")
    small = torch.from_numpy(chips[:, :, ::2, ::2].astype(np.float32) / 255.0)  # 75x75
    with torch.no_grad():
        e = torch.nn.functional.normalize(net(small), dim=1).numpy()
    np.testing.assert_allclose(fe.transform(chips[:, :, ::2, ::2]), e, atol=1e-5)
