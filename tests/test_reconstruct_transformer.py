"""The Reconstruct transformer: a trained generator as a Bob pipeline step."""

import pickle

import numpy as np
import pytest
import torch

from bob_facerev.attack.checkpoint import CHECKPOINT_FORMAT
from bob_facerev.attack.generator import Generator, reconstruct
from bob_facerev.attack.transformer import Reconstruct


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    generator = Generator(16)
    # non-trivial batch norm statistics, so evaluation mode matters
    generator.train()
    with torch.no_grad():
        generator(torch.randn(8, 16))
    generator.eval()
    path = tmp_path_factory.mktemp("gen") / "best.pt"
    torch.save(
        {
            "format": CHECKPOINT_FORMAT,
            "generator": generator.state_dict(),
            "metadata": {"model": "toy", "embedding_size": 16},
        },
        path,
    )
    return path, generator


def test_reconstruct_matches_generator(checkpoint):
    path, generator = checkpoint
    X = np.random.default_rng(0).normal(size=(5, 16)).astype("float32")
    images = Reconstruct(str(path), batch_size=2, device="cpu").transform(X)
    assert len(images) == 5
    assert all(im.shape == (3, 112, 112) and im.dtype == np.uint8 for im in images)
    expected = reconstruct(generator, X, device="cpu")
    np.testing.assert_array_equal(np.stack(images), expected)


def test_reconstruct_pickles_without_the_network(checkpoint):
    path, _ = checkpoint
    t = Reconstruct(str(path), device="cpu")
    X = np.ones((1, 16), dtype="float32")
    first = t.transform(X)[0]
    assert hasattr(t, "generator_")
    clone = pickle.loads(pickle.dumps(t))
    assert getattr(clone, "generator_", None) is None
    np.testing.assert_array_equal(clone.transform(X)[0], first)


def test_reconstruct_refuses_bad_input(checkpoint):
    path, _ = checkpoint
    t = Reconstruct(str(path), device="cpu")
    with pytest.raises(ValueError, match=r"\(N, 16\)"):
        t.transform(np.zeros((2, 12), dtype="float32"))
    with pytest.raises(ValueError, match="NaN"):
        t.transform(np.full((1, 16), np.nan, dtype="float32"))
    with pytest.raises(ValueError, match="toy"):
        Reconstruct(str(path), model="arcface", device="cpu").transform(np.zeros((1, 16)))
    with pytest.raises(FileNotFoundError):
        Reconstruct(str(path) + ".missing", device="cpu").transform(np.zeros((1, 16)))


def test_reconstruct_in_a_bob_sample_pipeline(checkpoint):
    from bob.pipelines import Sample, wrap

    path, generator = checkpoint
    X = np.random.default_rng(1).normal(size=(3, 16)).astype("float32")
    samples = [Sample(x, key=str(i)) for i, x in enumerate(X)]
    wrapped = wrap(["sample"], Reconstruct(str(path), device="cpu"))
    out = wrapped.transform(samples)
    assert [s.key for s in out] == ["0", "1", "2"]
    np.testing.assert_array_equal(np.stack([s.data for s in out]), reconstruct(generator, X))


def test_reconstruct_reads_the_configured_checkpoint(checkpoint, tmp_path, monkeypatch):
    from clapper.rc import UserDefaults

    from bob_facerev.attack.transformer import GENERATOR_RC_KEY

    path, generator = checkpoint
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    X = np.zeros((1, 16), dtype="float32")
    with pytest.raises(ValueError, match="bob config set bob_facerev.generator.checkpoint"):
        Reconstruct(device="cpu").transform(X)
    rc = UserDefaults("bobrc.toml")
    rc[GENERATOR_RC_KEY] = str(path)
    rc.write()
    np.testing.assert_array_equal(
        Reconstruct(device="cpu").transform(X)[0], reconstruct(generator, X)[0]
    )


def test_reconstruct_resource_is_a_sample_pipeline():
    from sklearn.pipeline import Pipeline

    from bob_facerev.config.transformer.reconstruct import transformer

    assert isinstance(transformer, Pipeline)
    assert isinstance(transformer.steps[-1][1].estimator, Reconstruct)
