"""The attack experiment end to end on the bundled demo faces (offline, dlib default model)."""

import os
import re
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from bob_facerev.experiment import GridConfig, run_grid
from bob_facerev.protection.setting import Protection, study_grid

from score_checks import assert_scores_agree


def test_study_grid_follows_block_counts():
    grid = study_grid(512)
    names = [p.name for p in grid]
    assert names[0] == "none"
    assert names[1:11] == [
        "k32-p4", "k32-p8", "k32-p12", "k32-p16",
        "k64-p2", "k64-p4", "k64-p8",
        "k128-p2", "k128-p3", "k128-p4",
    ]
    assert len(names) == 15
    assert [p.name for p in grid if p.moved_blocks is None and p.block_size] == [
        "k16-prandom", "k32-prandom", "k64-prandom", "k128-prandom"
    ]
    # the same block counts on the 128-d default model
    small = {p.name for p in study_grid(128)}
    assert {"k8-p4", "k8-p16", "k16-p2", "k16-p8", "k32-p3", "k4-prandom"} <= small
    with pytest.raises(ValueError, match="do not divide"):
        study_grid(100)


@pytest.mark.parametrize("name", ["demo", "study_arcface", "study_elasticface", "study_dlib"])
def test_grid_config_files_load(name):
    from pathlib import Path

    path = Path(__file__).parents[1] / "config" / "grid" / f"{name}.py"
    cfg = GridConfig.from_file(path)
    expected = {"demo": "dlib", "study_dlib": "dlib", "study_arcface": "arcface",
                "study_elasticface": "elasticface"}[name]
    assert cfg.model == expected
    if name.startswith("study"):
        assert cfg.bona_fide_database == "facerev-lfw-view2"
        assert cfg.train["epochs"] == 100 and cfg.train["batch_size"] == 32
        assert cfg.protections is None  # the study's grid


def test_attack_scores_type1_and_type2_by_hand():
    from bob.pipelines import Sample

    from bob_facerev.attack.chain import attack_scores

    rng = np.random.default_rng(0)
    attacked = [Sample(None, key="a1", subject_id="A"), Sample(None, key="b1", subject_id="B")]
    refs = [Sample(None, key=k, subject_id=k[0].upper()) for k in ("a1", "a2", "a3", "b1", "c1")]
    X, Y, R = rng.normal(size=(2, 4)), rng.normal(size=(2, 4)), rng.normal(size=(5, 4))
    rows = attack_scores(attacked, X, Y, refs, R)
    assert [r["score"] for r in rows["type-I"]] == pytest.approx([X[0] @ Y[0], X[1] @ Y[1]])
    # type-II: the subject's *other* images only (a2, a3 for a1; none for b1)
    assert [(r["probe_key"], r["bio_ref_key"]) for r in rows["type-II"]] == [("a1", "a2"), ("a1", "a3")]
    assert [r["score"] for r in rows["type-II"]] == pytest.approx([R[1] @ Y[0], R[2] @ Y[0]])
    assert all(r["probe_subject_id"] == r["bio_ref_subject_id"] for r in rows["type-II"])


def test_grid_config_refuses_unknown_names(tmp_path):
    path = tmp_path / "grid.py"
    path.write_text("model = 'dlib'\nvariant = ('study',)\n")  # typo: variants
    with pytest.raises(ValueError, match=r"sets 'variant' \(did you mean 'variants'\?\)"):
        GridConfig.from_file(path)


def test_grid_config_rejects_unknown_variants():
    with pytest.raises(ValueError, match="unknown attack variant"):
        GridConfig(variants=("study", "magic"))


def _type1(path):
    df = pd.read_csv(path, dtype={"probe_attack_type": str}, keep_default_na=False)
    attack = df[df["probe_attack_type"] != ""]
    return attack.set_index("probe_key")["score"].astype(float).sort_index()


@pytest.fixture(scope="module")
def demo_grid(tmp_path_factory):
    out = tmp_path_factory.mktemp("grid")
    cfg = GridConfig(
        model="dlib",
        bona_fide_database="facerev-demo",
        attack_database="facerev-demo",
        training_database="facerev-demo",
        protections=[Protection(), Protection(32, 4), Protection(32, None)],
        variants=("study", "deshuffle"),
        train=dict(epochs=150, batch_size=10, lr_step=1000, validation_fraction=0.0, w_id=0.0,
                   progress=False, checkpoint_every=50, save_grids=False),
        n_faces=4,
        output=str(out),
    )
    return cfg, run_grid(cfg, progress=False)


@pytest.mark.slow
def test_demo_chain_writes_scores_faces_and_report(demo_grid, tmp_path):
    from bob_facerev.evaluation.rsr import evaluate_score_files
    from bob_facerev.script.grid import grid_report

    cfg, summary = demo_grid
    assert summary["n_attacked"] == 10
    assert len(summary["scores"]) == 5  # none; k32-p4 x 2 variants; k32-prandom x 2 variants
    markdown, written = grid_report(summary, tmp_path / "report")
    for name in ("rsr.md", "rsr.csv", "rsr.tex", "rsr_heatmap.png", "det.png", "faces.png",
                 "report.md"):
        assert (tmp_path / "report" / name).stat().st_size > 200, name
    assert "Type-II" in markdown and "Verification" not in markdown

    results = evaluate_score_files(summary["scores"])
    rsr = results.set_index(["facerev_variant", "facerev_block_size", "facerev_moved_blocks",
                             "fmr"])["rsr"]
    for fmr in (0.001, 0.01, 0.1):
        # moving every block cannot make the attack easier than no protection at all
        assert rsr[("study", "none", "0", fmr)] >= rsr[("study", "32", "4", fmr)]

    none = _type1(summary["scores"][0])
    moved = _type1(next(p for p in summary["scores"] if "study/k32-p4" in p))
    assert len(none) == len(moved) == 10
    # the memorising generator is judged closer to the original without protection
    assert none.mean() > moved.mean() + 0.02


@pytest.mark.slow
def test_deshuffling_restores_the_unprotected_attack(demo_grid):
    cfg, summary = demo_grid
    none = _type1(summary["scores"][0])
    for name in ("deshuffle/k32-prandom", "deshuffle/k32-p4"):
        restored = _type1(next(p for p in summary["scores"] if name in p))
        # the de-shuffler (fitted on the attacker's embeddings) puts every block back, so the
        # attack sees exactly the unprotected templates
        np.testing.assert_allclose(restored.to_numpy(), none.to_numpy(), atol=1e-6)


@pytest.mark.slow
def test_bob_vuln_metrics_reports_the_same_rate(demo_grid):
    from bob_facerev.evaluation.rsr import evaluate_score_files

    _, summary = demo_grid
    path = summary["scores"][0]
    bob = os.path.join(os.path.dirname(sys.executable), "bob")
    out = subprocess.run([bob, "vuln", "metrics", "-c", "far", "-f", "0.1", path],
                         capture_output=True, text=True, check=True)
    line = next(ln for ln in out.stdout.splitlines() if "Attack Presentation Match Rate" in ln)
    iapmr = float(re.search(r"([0-9.]+)%", line).group(1)) / 100
    ours = evaluate_score_files([path], fmrs=(0.1,))["rsr"].iloc[0]
    assert iapmr == pytest.approx(ours, abs=1e-3)


@pytest.mark.slow
def test_dask_clients_give_the_same_scores(demo_grid, tmp_path):
    import shutil

    from distributed import Client, LocalCluster

    from bob_facerev.distributed import GPURoutingError

    cfg, summary = demo_grid
    reference = {p: _type1(p) for p in summary["scores"]}
    # the same grid (cached embeddings and generator) recomputed on Dask
    copy = tmp_path / "copy"
    shutil.copytree(cfg.output, copy)
    for resources in ({"GPU": 1}, None):
        with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                          resources=resources, dashboard_address=None) as cluster, \
                Client(cluster) as client:
            cfg_dask = GridConfig(**{**cfg.__dict__, "output": str(copy),
                                     "gpu_routing": "require" if resources else "off"})
            got = run_grid(cfg_dask, dask_client=client, force=True, progress=False)
            for ref_path, path in zip(summary["scores"], got["scores"]):
                got_scores, ref_scores = _type1(path), reference[ref_path]
                assert list(got_scores.index) == list(ref_scores.index)
                assert_scores_agree(got_scores.to_numpy(), ref_scores.to_numpy())
    # asking for GPU routing on a client without GPU workers fails at once
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False,
                      dashboard_address=None) as cluster, Client(cluster) as client:
        cfg_gpu = GridConfig(**{**cfg.__dict__, "output": str(copy), "gpu_routing": "require"})
        with pytest.raises(GPURoutingError, match="GPU"):
            run_grid(cfg_gpu, dask_client=client, force=True, progress=False)


@pytest.mark.slow
def test_protected_variant_trains_its_own_generator(demo_grid, tmp_path):
    """An attacker who knows (K, P) trains on protected templates and does better than the study's."""
    import shutil

    from bob_facerev.attack.trainer import load_generator

    cfg, summary = demo_grid
    copy = tmp_path / "copy"
    shutil.copytree(cfg.output, copy)
    protection = Protection(32, 4)
    cfg_protected = GridConfig(**{**cfg.__dict__, "output": str(copy),
                                  "protections": [protection], "variants": ("protected",)})
    got = run_grid(cfg_protected, progress=False)
    _, metadata = load_generator(copy / "generators" / "protected-k32-p4", model="dlib")
    assert (metadata["protection"], metadata["block_size"], metadata["moved_blocks"]) == (
        "fixed", 32, 4)
    protected = _type1(got["scores"][0])
    study = _type1(next(p for p in summary["scores"] if "study/k32-p4" in p))
    assert protected.mean() > study.mean() + 0.02
