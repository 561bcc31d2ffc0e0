"""PE-MIU pipeline resources cover the block sizes of the default model's grids."""

from importlib.metadata import entry_points

import pytest

from bob_facerev.experiment import GridConfig
from bob_facerev.protection.setting import study_grid


def _pipeline_names():
    return {e.name for e in entry_points(group="bob.bio.pipeline")}


@pytest.mark.parametrize("config", ["study-dlib", "demo"])
def test_every_dlib_grid_block_size_has_a_pipeline(config):
    from bob_facerev.config import GRID, config_file

    cfg = GridConfig.from_file(config_file(config, GRID))
    protections = cfg.protections if cfg.protections is not None else study_grid(128)
    ks = {p.block_size for p in protections if p.block_size is not None}
    ks |= set(cfg.verification_block_sizes)
    assert 8 in ks or config == "demo"
    missing = sorted(k for k in ks if f"facerev-dlib-pemiu-k{k}" not in _pipeline_names())
    assert not missing, f"no facerev-dlib-pemiu-k{missing} pipeline resource"


def test_k8_pipeline_protects_with_blocks_of_8():
    from bob.bio.base import load_resource

    pipeline = load_resource("facerev-dlib-pemiu-k8", "pipeline")
    pemiu = pipeline.transformer.named_steps["pemiu"].estimator
    assert pemiu.block_size == 8 and pipeline.biometric_algorithm.block_size == 8
