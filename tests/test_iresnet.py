"""IResNet: architecture, checkpoint layouts, the registry and the embedding network."""

import pytest
import torch

from bob_facerev.face.backbones.iresnet import (
    IRESNET_LAYERS,
    IResNet,
    iresnet50,
    load_iresnet_checkpoint,
)
from bob_facerev.face.network import EmbeddingNetwork, load_embedding_network
from bob_facerev.face.registry import MODEL_NAMES, get_model_spec


def _tiny(seed=0):
    """A small IResNet with the real key structure (4 stages, downsample, fc, features)."""
    torch.manual_seed(seed)
    net = IResNet((1, 2, 1, 1), num_features=32, widths=(8, 8, 16, 16))
    # random BN statistics, so that loading them matters
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.BatchNorm1d, torch.nn.BatchNorm2d)):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.1, 0.1)
    return net.eval()


def test_iresnet_keys_follow_the_published_layout():
    keys = set(iresnet50().state_dict())
    for k in [
        "conv1.weight",
        "bn1.running_var",
        "prelu.weight",
        "layer1.0.bn1.weight",
        "layer1.0.conv1.weight",
        "layer1.0.prelu.weight",
        "layer1.0.bn3.bias",
        "layer1.0.downsample.0.weight",
        "layer1.0.downsample.1.running_mean",
        "layer3.13.conv2.weight",
        "bn2.weight",
        "fc.weight",
        "features.running_mean",
    ]:
        assert k in keys, k
    assert "layer3.14.conv1.weight" not in keys
    assert "layer1.1.downsample.0.weight" not in keys
    # IResNet-100: 3 + 13 + 30 + 3 blocks, fc from 512 x 7 x 7
    net = IResNet(IRESNET_LAYERS[100])
    assert [len(getattr(net, f"layer{i}")) for i in range(1, 5)] == [3, 13, 30, 3]
    assert net.fc.weight.shape == (512, 512 * 7 * 7)


def test_iresnet_forward_shape():
    net = _tiny()
    y = net(torch.rand(2, 3, 112, 112))
    assert y.shape == (2, 32)


@pytest.mark.parametrize(
    "layout, wrap",
    [
        ("insightface", lambda sd: sd),
        ("elasticface", lambda sd: sd),
        ("elasticface", lambda sd: {"module." + k: v for k, v in sd.items()}),
        ("elasticface", lambda sd: {"state_dict": {"module." + k: v for k, v in sd.items()}}),
    ],
    ids=["insightface", "elasticface", "elasticface-dataparallel", "elasticface-wrapped"],
)
def test_checkpoint_layouts_reproduce_outputs(tmp_path, layout, wrap):
    src = _tiny(seed=1)
    path = tmp_path / "backbone.pth"
    torch.save(wrap(src.state_dict()), path)
    dst = _tiny(seed=2)
    x = torch.rand(3, 3, 112, 112)
    with torch.no_grad():
        assert not torch.equal(dst(x), src(x))
        load_iresnet_checkpoint(dst, path, layout=layout)
        assert torch.equal(dst(x), src(x))
    assert not dst.training


def test_checkpoint_without_batch_counters_loads(tmp_path):
    src = _tiny(seed=1)
    sd = {k: v for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(sd, tmp_path / "old.pth")
    dst = load_iresnet_checkpoint(_tiny(seed=2), tmp_path / "old.pth")
    x = torch.rand(1, 3, 112, 112)
    with torch.no_grad():
        assert torch.equal(dst(x), src(x))


def test_missing_checkpoint(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothere.pth"):
        load_iresnet_checkpoint(_tiny(), tmp_path / "nothere.pth")


def test_unreadable_checkpoint(tmp_path):
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"this is not a torch file")
    with pytest.raises(ValueError, match="Could not read the checkpoint"):
        load_iresnet_checkpoint(_tiny(), bad)


def test_mismatched_checkpoint_lists_keys(tmp_path):
    sd = _tiny().state_dict()
    sd["head.weight"] = sd.pop("fc.weight")
    torch.save(sd, tmp_path / "renamed.pth")
    with pytest.raises(ValueError) as err:
        load_iresnet_checkpoint(_tiny(), tmp_path / "renamed.pth", name="arcface")
    msg = str(err.value)
    assert "arcface" in msg and "insightface" in msg
    assert "Missing keys: fc.weight" in msg and "Unexpected keys: head.weight" in msg

    # a different width: shape mismatch, reported as such
    other = IResNet((1, 2, 1, 1), num_features=64, widths=(8, 8, 16, 16))
    torch.save(other.state_dict(), tmp_path / "wide.pth")
    shape_msg = r"Shape mismatches: fc.bias: checkpoint \(64,\) vs model \(32,\)"
    with pytest.raises(ValueError, match=shape_msg):
        load_iresnet_checkpoint(_tiny(), tmp_path / "wide.pth")

    # DataParallel prefix with the insightface layout: every key unexpected
    torch.save({"module." + k: v for k, v in _tiny().state_dict().items()}, tmp_path / "dp.pth")
    with pytest.raises(ValueError, match="Unexpected keys: module."):
        load_iresnet_checkpoint(_tiny(), tmp_path / "dp.pth", layout="insightface")


def test_not_a_state_dict(tmp_path):
    torch.save([torch.zeros(3)], tmp_path / "list.pth")
    with pytest.raises(ValueError, match="state dict"):
        load_iresnet_checkpoint(_tiny(), tmp_path / "list.pth")


def test_registry():
    assert set(MODEL_NAMES) >= {"dlib", "arcface", "elasticface", "arcface-r50", "elasticface-r50"}
    arc = get_model_spec("arcface")
    assert (arc.embedding_size, arc.input_size, arc.crop) == (512, (112, 112), "arcface112")
    assert arc.checkpoint_key == "bob_facerev.arcface.checkpoint"
    assert get_model_spec("elasticface").layout == "elasticface"
    dlib = get_model_spec("dlib")
    assert (dlib.embedding_size, dlib.input_size, dlib.crop) == (128, (150, 150), "dlib_chip")
    assert get_model_spec(arc) is arc
    with pytest.raises(ValueError, match="known models: dlib, arcface"):
        get_model_spec("facenet")


def test_checkpoint_from_bob_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    spec = get_model_spec("elasticface")
    with pytest.raises(ValueError, match="bob config set bob_facerev.elasticface.checkpoint"):
        spec.checkpoint_path()
    (tmp_path / "bobrc.toml").write_text(
        '[bob_facerev.elasticface]\ncheckpoint = "/data/295672backbone.pth"\n'
    )
    assert spec.checkpoint_path() == "/data/295672backbone.pth"
    assert spec.checkpoint_path("/other.pth") == "/other.pth"
    assert get_model_spec("dlib").checkpoint_path() is None


def test_embedding_network_resizes_and_normalises():
    spec = get_model_spec("arcface")
    backbone = _tiny()
    net = EmbeddingNetwork(backbone, spec).eval()
    x = torch.rand(2, 3, 128, 128, requires_grad=True)
    y = net(x)
    ref = torch.nn.functional.interpolate(x, size=(112, 112), mode="bilinear", align_corners=False)
    with torch.no_grad():
        assert torch.allclose(y, backbone((ref * 255 - 127.5) / 127.5), atol=1e-5)
    y.sum().backward()  # differentiable w.r.t. the input
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(ValueError, match=r"\(N, 3, h, w\)"):
        net(torch.rand(2, 1, 112, 112))


def test_load_embedding_network_iresnet50(tmp_path):
    """A full-size random IResNet-50 through the registry, as a user's checkpoint would load."""
    torch.manual_seed(0)
    src = iresnet50().eval()
    torch.save({"module." + k: v for k, v in src.state_dict().items()}, tmp_path / "ef.pth")
    net = load_embedding_network("elasticface-r50", checkpoint=tmp_path / "ef.pth")
    assert not any(p.requires_grad for p in net.parameters())
    x = torch.rand(2, 3, 112, 112)
    with torch.no_grad():
        y = net(x)
        assert torch.equal(y, src(x * net.scale + net.shift))
        assert torch.allclose(y, src((x * 255 - 127.5) / 127.5), rtol=1e-4, atol=1e-4)
    # the insightface layout does not accept the DataParallel file
    with pytest.raises(ValueError, match="arcface-r50"):
        load_embedding_network("arcface-r50", checkpoint=tmp_path / "ef.pth")
