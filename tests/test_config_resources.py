"""Configuration has one source: the recipe feeds the train command and the packaged configs, and
the packaged configs resolve as Bob resources (``bob facerev grid study-dlib``)."""

import dataclasses
import importlib.metadata

from pathlib import Path

import pytest

from click.testing import CliRunner

from bob_facerev.attack.recipe import STUDY, STUDY_DLIB, Recipe
from bob_facerev.config import GRID, TRAIN, config_file, resource_names
from bob_facerev.experiment import GridConfig

ROOT = Path(__file__).parents[1]


@pytest.fixture
def spy_trainer(monkeypatch):
    """Replace the trainer: the train command's keyword arguments are recorded, nothing runs."""
    import bob_facerev.attack.trainer

    calls = []

    def train_generator(training_set, output, **kwargs):
        calls.append(dict(kwargs, training_set=training_set, output=output))
        return {"history": [], "last": "last.pt", "best": "best.pt"}

    monkeypatch.setattr(bob_facerev.attack.trainer, "train_generator", train_generator)
    return calls


def test_train_command_defaults_are_the_recipe_field_by_field():
    from bob_facerev.script.train import train

    params = {p.name: p for p in train.params}
    for field in dataclasses.fields(Recipe):
        assert field.name in params, f"--{field.name.replace('_', '-')} is missing"
        assert params[field.name].default == getattr(Recipe(), field.name), field.name
        assert type(params[field.name].default) is type(getattr(Recipe(), field.name)), field.name


def test_train_command_passes_the_recipe(tmp_path, spy_trainer):
    from bob_facerev.script.train import train

    (tmp_path / "set.npz").write_bytes(b"")
    args = ["-t", str(tmp_path / "set.npz"), "-o", str(tmp_path / "out"), "--device", "cpu"]
    result = CliRunner().invoke(train, args)
    assert result.exit_code == 0, result.output
    (kwargs,) = spy_trainer
    assert {k: kwargs[k] for k in STUDY.asdict()} == STUDY.asdict()
    result = CliRunner().invoke(train, args + ["--w-id", "0.5", "--flip"])
    assert result.exit_code == 0, result.output
    assert {k: spy_trainer[1][k] for k in STUDY.asdict()} == STUDY.replace(w_id=0.5, flip=True).asdict()


def test_train_resolves_the_packaged_study_dlib(tmp_path, spy_trainer, monkeypatch):
    """``bob facerev train study-dlib`` (a bob_facerev.train resource) trains with STUDY_DLIB."""
    from bob_facerev.script.train import train

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    (tmp_path / "set.npz").write_bytes(b"")
    result = CliRunner().invoke(train, ["study-dlib", "-d", "facerev-demo", "-t",
                                        str(tmp_path / "set.npz"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (kwargs,) = spy_trainer
    assert kwargs["model"] == "dlib" and kwargs["workers"] == 4
    assert {k: kwargs[k] for k in STUDY_DLIB.asdict()} == STUDY_DLIB.asdict()
    assert STUDY_DLIB.w_id != STUDY.w_id


def test_grid_resolves_the_packaged_study_dlib(tmp_path, monkeypatch):
    """``bob facerev grid study-dlib`` finds the installed resource: it gets as far as checking
    the config's databases (LFW is not configured here), before any output."""
    from bob_facerev.script.grid import grid

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    result = CliRunner().invoke(grid, ["--help"])
    assert result.exit_code == 0 and "study-dlib" in result.output
    out = tmp_path / "out"
    result = CliRunner().invoke(grid, ["study-dlib", "-o", str(out)])
    assert result.exit_code == 1
    assert "facerev-lfw-view2" in result.output and "bob_facerev.lfw.directory" in result.output
    assert not out.exists()
    result = CliRunner().invoke(grid, ["study-dlbi", "-o", str(out)])
    assert result.exit_code == 1 and "did you mean 'study-dlib'" in result.output


def test_packaged_grids_take_their_recipe_from_recipe_py():
    expected = {"study-arcface": ("arcface", STUDY), "study-elasticface": ("elasticface", STUDY),
                "study-dlib": ("dlib", STUDY_DLIB), "cfp-sface": ("sface", STUDY)}
    assert set(expected) | {"demo"} <= set(resource_names(GRID))
    for name, (model, recipe) in expected.items():
        cfg = GridConfig.from_file(config_file(name, GRID))
        assert cfg.model == model
        assert cfg.train == dict(recipe.asdict(), workers=4), name
    demo = GridConfig.from_file(config_file("demo", GRID))
    assert demo.model == "dlib" and demo.training_database == "facerev-demo"


def test_packaged_trainings_load_with_their_recipe():
    from clapper.config import load

    expected = {"study-arcface": ("arcface", STUDY), "study-elasticface": ("elasticface", STUDY),
                "study-dlib": ("dlib", STUDY_DLIB)}
    assert set(expected) | {"demo", "attacker-random"} <= set(resource_names(TRAIN))
    for name, (model, recipe) in expected.items():
        values = vars(load([name], entry_point_group=TRAIN))
        assert values["model"] == model and values["database"] == "facerev-ffhq"
        assert {k: values[k] for k in recipe.asdict()} == recipe.asdict(), name
    chained = vars(load(["study-arcface", "attacker-random"], entry_point_group=TRAIN))
    assert chained["protection"] == "random" and chained["model"] == "arcface"


@pytest.mark.parametrize("path", sorted(p.relative_to(ROOT).as_posix()
                                        for p in (ROOT / "config").rglob("*.py")))
def test_top_level_configs_are_examples_importing_the_packaged_ones(path):
    text = (ROOT / path).read_text()
    assert "from bob_facerev.config." in text, f"{path} does not import a packaged config"
    assert len(text.splitlines()) <= 15, f"{path} is more than a short example"


def test_configs_write_no_recipe_literals():
    """The recipe's values appear in recipe.py only: the configs read them from there."""
    literals = ("w_id=0.005", "w_id = 0.005", "lr=1e-3", "lr = 1e-3", "split_seed", "epochs=100",
                "epochs = 100", "w_ssim")
    for folder in (ROOT / "config", ROOT / "bob_facerev" / "config"):
        for path in folder.rglob("*.py"):
            found = [x for x in literals if x in path.read_text()]
            assert not found, f"{path} writes {found}"


def test_no_pipeline_resource_has_one_block():
    """K = d resources are not registered (verification_pipeline refuses them)."""
    names = [ep.name for ep in importlib.metadata.entry_points(group="bob.bio.pipeline")]
    assert "facerev-dlib-pemiu-k64" in names and "facerev-arcface-pemiu-k128" in names
    assert "facerev-dlib-pemiu-k128" not in names and "facerev-sface-pemiu-k128" not in names
