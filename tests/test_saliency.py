"""Explainability (evaluation.saliency, ``bob facerev saliency``)."""

import numpy as np
import pandas as pd
import pytest
import torch

from bob_facerev.evaluation.saliency import (
    block_importance,
    gender_accuracy,
    plot_block_importance,
    plot_saliency,
    score_saliency,
    verification_auc,
)


class _ToyNet(torch.nn.Module):
    """A small smooth network: conv, tanh, global average pool, linear."""

    def __init__(self, d=8):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
        self.fc = torch.nn.Linear(6, d)

    def forward(self, x):
        return self.fc(torch.tanh(self.conv(x)).mean((2, 3)))


def _score(net, x, ref):
    with torch.no_grad():
        e = net(torch.as_tensor(x, dtype=torch.float32)[None])
        return float(torch.nn.functional.cosine_similarity(e, torch.as_tensor(ref)[None]))


def test_input_gradient_matches_finite_differences():
    net = _ToyNet()
    rng = np.random.default_rng(0)
    x = rng.uniform(0.2, 0.8, (3, 10, 12)).astype(np.float32)
    ref = rng.normal(size=8).astype(np.float32)
    maps, scores = score_saliency(net, x, ref, method="gradient")
    assert maps.shape == (1, 10, 12) and scores[0] == pytest.approx(_score(net, x, ref), abs=1e-6)
    eps, (i, j) = 1e-2, (4, 7)
    grads = []
    for c in range(3):
        up, down = x.astype(np.float64).copy(), x.astype(np.float64).copy()
        up[c, i, j] += eps
        down[c, i, j] -= eps
        grads.append((_score(net, up, ref) - _score(net, down, ref)) / (2 * eps))
    assert maps[0, i, j] == pytest.approx(np.abs(grads).sum(), rel=0.05)


def test_integrated_gradients_add_up_to_the_score_change():
    net = _ToyNet()
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, (2, 3, 16, 16)).astype(np.float32)
    ref = rng.normal(size=8).astype(np.float32)
    maps, scores = score_saliency(net, x, ref, method="integrated", steps=64)
    for n in range(2):
        change = scores[n] - _score(net, np.zeros((3, 16, 16)), ref)
        assert maps[n].sum() == pytest.approx(change, abs=0.02 * abs(change) + 1e-4)


@pytest.mark.parametrize("method", ["gradient", "integrated"])
def test_pixels_the_extractor_ignores_get_zero_saliency(method):
    """dlib's network sees only a 150x150 window of a 170x170 image: the border gets 0."""
    from bob_facerev.face.network import load_embedding_network

    net = load_embedding_network("dlib")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (3, 170, 170), dtype=np.uint8)
    ref = rng.normal(size=128).astype(np.float32)
    maps, _ = score_saliency(net, image, ref, method=method, steps=2, crop=(10, 10, 150, 150))
    inside = np.zeros((170, 170), bool)
    inside[10:160, 10:160] = True
    assert np.all(maps[0][~inside] == 0)
    assert np.mean(maps[0][inside] != 0) > 0.5


def test_bad_saliency_input():
    net = _ToyNet()
    with pytest.raises(ValueError, match="method"):
        score_saliency(net, np.zeros((3, 8, 8)), np.ones(8), method="lime")
    with pytest.raises(ValueError, match=r"\(N, 3, H, W\)"):
        score_saliency(net, np.zeros((8, 8)), np.ones(8))


def _planted(seed=0):
    """8 blocks of 8 values: blocks 2 and 5 carry the identity, block 6 the gender."""
    rng = np.random.default_rng(seed)
    n_subj, per = 40, 4
    subjects = np.repeat(np.arange(n_subj), per)
    gender = np.repeat(rng.integers(0, 2, n_subj), per)
    X = rng.normal(size=(subjects.size, 64))
    ident = rng.normal(size=(n_subj, 16))[subjects]
    X[:, 16:24] = 2 * ident[:, :8] + 0.5 * rng.normal(size=(subjects.size, 8))
    X[:, 40:48] = 2 * ident[:, 8:] + 0.5 * rng.normal(size=(subjects.size, 8))
    X[:, 48:56] += 1.0 * (2 * gender[:, None] - 1)
    return X, subjects, gender


@pytest.mark.parametrize("mode", ["shuffle", "zero"])
def test_block_importance_finds_the_planted_blocks(mode):
    X, subjects, gender = _planted()
    table = block_importance(X, 8, subjects=subjects, gender=gender, mode=mode)
    assert list(table.block) == list(range(8))
    top_identity = set(table.sort_values("identity_drop").block.iloc[-2:])
    assert top_identity == {2, 5}
    assert table.sort_values("gender_drop").block.iloc[-1] == 6
    assert table.attrs["baseline"]["gender_accuracy"] > 0.95
    np.testing.assert_allclose(table.identity_drop,
                               table.attrs["baseline"]["identity_auc"] - table.identity_auc)
    # the identity of the planted blocks is (nearly) all there is
    assert table.identity_drop[table.block.isin([2, 5])].min() > 5 * table.identity_drop[
        ~table.block.isin([2, 5])].abs().max()


def test_measures_and_bad_input():
    X, subjects, gender = _planted()
    assert verification_auc(X, subjects) > 0.95
    assert verification_auc(np.random.default_rng(0).normal(size=X.shape), subjects) < 0.6
    assert gender_accuracy(X, gender) > 0.95
    with pytest.raises(ValueError, match="genuine and impostor"):
        verification_auc(X[:4], subjects[:4])
    with pytest.raises(ValueError, match="mode"):
        block_importance(X, 8, subjects=subjects, mode="drop")
    with pytest.raises(ValueError, match="subjects"):
        block_importance(X, 8)


def test_figures(tmp_path):
    X, subjects, gender = _planted()
    table = block_importance(X, 16, subjects=subjects, gender=gender)
    p = plot_block_importance(table, tmp_path / "blocks.png", title="toy")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (3, 32, 32), dtype=np.uint8) for _ in range(3)]
    maps = [rng.normal(size=(32, 32)) for _ in range(3)]
    q = plot_saliency(images, maps, ["a", "b", "c"], tmp_path / "sal.png", scores=[0.1, 0.2, 0.3])
    for path in (p, q):
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="one each"):
        plot_saliency(images, maps[:2], ["a", "b", "c"], tmp_path / "x.png")


@pytest.fixture(scope="module")
def dlib_generator(tmp_path_factory):
    """An untrained (random) generator checkpoint for dlib's 128-d embeddings."""
    from bob_facerev.attack.generator import Generator
    from bob_facerev.attack.trainer import CHECKPOINT_FORMAT

    torch.manual_seed(0)
    generator = Generator(128).eval()
    path = tmp_path_factory.mktemp("gen") / "best.pt"
    torch.save({"format": CHECKPOINT_FORMAT, "generator": generator.state_dict(),
                "metadata": {"model": "dlib", "embedding_size": 128}}, path)
    return path


@pytest.mark.slow
def test_cli_on_the_demo_database(tmp_path, dlib_generator):
    from click.testing import CliRunner
    from PIL import Image

    from bob_facerev.script.saliency import saliency

    out = tmp_path / "sal"
    res = CliRunner().invoke(saliency, ["-d", "facerev-demo", "-g", str(dlib_generator), "-k", "32",
                                        "--steps", "4", "-o", str(out)])
    assert res.exit_code == 0, res.output
    # the original face and its three reconstructions, each with its score and map
    assert "original (ardern)" in res.output and "rec. de-shuffled" in res.output
    with Image.open(out / "saliency.png") as im:
        assert im.size[0] > 4 * 150
    table = pd.read_csv(out / "blocks.csv")
    assert list(table.block) == [0, 1, 2, 3]  # 128 / 32 blocks
    assert {"identity_auc", "identity_drop", "gender_accuracy", "gender_drop"} <= set(table)
    assert (out / "blocks.png").stat().st_size > 1000


def test_block_data_from_an_npz(tmp_path):
    from bob_facerev.script.saliency import _block_data

    X, subjects, gender = _planted()
    labels = np.where(gender == 1, "M", "F").astype(object)
    labels[:3] = ""  # unknown gender: left out
    np.savez(tmp_path / "b.npz", embeddings=X, gender=labels.astype(str), subjects=subjects)
    Xb, subj, g, source = _block_data(None, str(tmp_path / "b.npz"), "db", "dlib", folds=5)
    assert source == "b.npz" and len(Xb) == len(X) - 3 == len(subj) == len(g)
    np.testing.assert_array_equal(g, gender[3:])
    np.testing.assert_array_equal(Xb, X[3:])
    # a gender class smaller than the folds: no gender analysis
    np.savez(tmp_path / "c.npz", embeddings=X[:6], gender=np.array(["M"] * 5 + ["F"]))
    assert _block_data(None, str(tmp_path / "c.npz"), "db", "dlib", folds=2)[2] is None
