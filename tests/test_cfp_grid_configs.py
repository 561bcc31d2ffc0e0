"""The CFP grid configurations load, attack the right databases, and train with real settings."""

import inspect
import os

import pytest

GRID = os.path.join(os.path.dirname(__file__), "..", "bob_facerev", "config", "grid")


@pytest.mark.parametrize("name, model", [("cfp_dlib.py", "dlib"), ("cfp_sface.py", "sface")])
def test_cfp_grid_config(tmp_path, monkeypatch, name, model):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))  # no configuration needed
    from bob_facerev.attack.trainer import train_generator
    from bob_facerev.experiment import GridConfig

    cfg = GridConfig.from_file(os.path.join(GRID, name))
    assert (cfg.model, cfg.bona_fide_database, cfg.attack_database) == (
        model, "facerev-cfp-ff", "facerev-cfp-attack")
    assert set(cfg.variants) == {"study", "deshuffle"}
    accepted = set(inspect.signature(train_generator).parameters) | {"keep_last_checkpoint"}
    assert set(cfg.train) <= accepted, set(cfg.train) - accepted


def test_cfp_dlib_trains_with_the_scale_free_identity_term(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    from bob_facerev.experiment import GridConfig

    cfg = GridConfig.from_file(os.path.join(GRID, "cfp_dlib.py"))
    assert (cfg.train["id_loss"], cfg.train["w_id"], cfg.train["flip"]) == ("cosine", 1.0, True)
