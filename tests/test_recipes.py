"""The "how to add" recipes of doc/development.rst, each exercised with a toy in a few lines."""

import dataclasses

import numpy as np
import pytest
import torch

from sklearn.base import BaseEstimator, TransformerMixin

from bob_facerev.attack.chain import VARIANTS, AttackerTools, build_chain, register_variant
from bob_facerev.attack.dataset import protect_embeddings
from bob_facerev.evaluation.score_files import protection_metadata
from bob_facerev.experiment import GridConfig, validate_grid
from bob_facerev.experiment_layout import GridLayout
from bob_facerev.face import registry
from bob_facerev.face.registry import ModelSpec, get_model_spec, register_model, unregister_model
from bob_facerev.protection.pemiu import PEMIU
from bob_facerev.protection.setting import Protection


# --- how to add a protection: a Protection subclass with its own name, labels and transformer


class Negate(BaseEstimator, TransformerMixin):
    """Toy protection step: PE-MIU (random per template), then every value negated."""

    def __init__(self, block_size=16, seed=0):
        self.block_size, self.seed = block_size, seed

    def fit(self, X, y=None):
        return self

    def transform(self, X, keys=None):
        return -PEMIU(self.block_size, seed=self.seed).transform(X, keys=keys)

    def _more_tags(self):
        return {"requires_fit": False, "bob_transform_extra_input": (("keys", "key"),)}


@dataclasses.dataclass(frozen=True)
class Negated(Protection):
    @property
    def name(self):
        return f"neg-{super().name}"

    def labels(self):
        return {**super().labels(), "facerev_negated": "yes"}

    def transformer(self, seed=0):
        return Negate(self.block_size, seed)


def test_recipe_add_a_protection(tmp_path):
    toy = Negated(16)  # random block order per template, K = 16, then negated
    X = np.random.default_rng(0).normal(size=(4, 128)).astype(np.float32)
    keys = ["a", "b", "c", "d"]
    # the trainer's data, the grid's folders and the score-file labels all follow the object
    np.testing.assert_array_equal(protect_embeddings(X, keys, toy, seed=3),
                                  -PEMIU(16, seed=3).transform(X, keys=keys))
    assert GridLayout(tmp_path).cell("study", toy).folder == tmp_path / "scores" / "study" / (
        "neg-k16-prandom")
    assert GridLayout(tmp_path).generator_folder(toy).name == "protected-neg-k16-prandom"
    meta = protection_metadata("dlib", toy, "study")
    assert (meta["facerev_block_size"], meta["facerev_moved_blocks"], meta["facerev_negated"]) == (
        "16", "random", "yes")
    # a grid config takes it like the study's settings (checked against the 128-d dlib model)
    cfg = GridConfig(model="dlib", bona_fide_database="facerev-demo",
                     attack_database="facerev-demo", training_database="facerev-demo",
                     protections=[Protection.none(), toy], output=str(tmp_path / "grid"))
    assert [p.name for p in validate_grid(cfg)] == ["none", "neg-k16-prandom"]
    # and the attack chain protects with its transformer
    chain = build_chain(toy, "study", AttackerTools("generator.pt"), "dlib")
    assert isinstance(chain.named_steps["pemiu"].estimator, Negate)


# --- how to add an attack variant: a function registered by name


@pytest.fixture
def toy_variant():
    @register_variant("negate-back")
    def negate_back(protection, tools):
        """Undo the toy's negation, then the study's generator."""
        return [("unnegate", Negate(protection.block_size))], tools.study_generator

    yield "negate-back"
    VARIANTS.pop("negate-back")


def test_recipe_add_an_attack_variant(toy_variant, tmp_path):
    chain = build_chain(Protection.random(16), toy_variant, AttackerTools("generator.pt"), "dlib")
    assert [name for name, _ in chain.steps] == ["pemiu", "unnegate", "reconstruct", "embed"]
    assert chain.named_steps["reconstruct"].estimator.checkpoint == "generator.pt"
    # the grid accepts it by name; an unregistered name is refused with the choices
    assert GridConfig(variants=("study", toy_variant)).variants == ("study", "negate-back")
    with pytest.raises(ValueError, match="negate-back"):
        GridConfig(variants=("study", "negate-bak"))


# --- how to add a model: a ModelSpec registered by name


class PatchColours(torch.nn.Module):
    """Toy face model: the mean colours of 4 x 4 patches of the crop, projected to 16-d."""

    def __init__(self):
        super().__init__()
        self.project = torch.nn.Linear(48, 16)

    def forward(self, x):
        return self.project(torch.nn.functional.adaptive_avg_pool2d(x, 4).flatten(1))


def patch_colours(path=None):
    """The factory: the network with its weights (seeded here; a real model reads ``path``)."""
    torch.manual_seed(0)
    net = PatchColours()
    if path is not None:
        net.load_state_dict(torch.load(path, weights_only=True))
    return net


@pytest.fixture
def toy_model():
    register_model(ModelSpec(name="patch-colours", backbone=patch_colours, embedding_size=16,
                             input_size=(112, 112), crop="arcface112", pixel_mean=127.5,
                             pixel_std=127.5, layout="torch"))
    yield "patch-colours"
    unregister_model("patch-colours")


@pytest.mark.slow
def test_recipe_add_a_model(toy_model):
    from bob_facerev.database.demo import demo_database
    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.pipelines import embedding_transformer, verification_pipeline

    samples = demo_database().all_samples()
    transformer = embedding_transformer(toy_model, device="cpu", n_jobs=1)
    embeddings = np.stack([s.data for s in transformer.transform(samples)])
    assert embeddings.shape == (10, 16) and embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-6)
    # the numbers are the toy's: patch means of the normalised 112x112 crop, projected, unit norm
    crops = FaceCropper(toy_model).transform([s.data for s in samples])
    x = (np.stack(crops).astype(np.float64) - 127.5) / 127.5
    pooled = x.reshape(10, 3, 4, 28, 4, 28).mean(axis=(3, 5)).reshape(10, 48)
    weights = patch_colours().project
    expected = pooled @ weights.weight.detach().double().numpy().T + weights.bias.detach().numpy()
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(embeddings, expected, atol=1e-5)
    assert len({tuple(np.round(e, 4)) for e in embeddings}) == 10  # ten different faces
    # deterministic: the extractor alone gives the same values again; known to the registry
    np.testing.assert_array_equal(FaceEmbedding(toy_model, device="cpu").transform(crops),
                                  embeddings)
    assert toy_model in registry.MODEL_NAMES
    pipeline = verification_pipeline(toy_model)
    assert [step.estimator.model for _, step in pipeline.transformer.steps] == [toy_model] * 2
    with pytest.raises(ValueError, match="registered already"):
        register_model(get_model_spec(toy_model))
