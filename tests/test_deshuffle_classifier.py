"""The learned de-shuffling scorer and separate attacker/victim files in `bob facerev deshuffle`."""

import numpy as np
import pytest

from bob_facerev.attack.deshuffle import ClassifierScorer, Deshuffler
from bob_facerev.attack.deshuffle_metrics import evaluate_deshuffling


def spread_only(n, d=32, K=4, seed=0):
    """Blocks that differ by position only in their spread: all means are zero."""
    scales = np.repeat(np.geomspace(0.2, 5.0, d // K), K)
    return np.random.default_rng(seed).normal(size=(n, d)) * scales


def protect(X, K, seed=1):
    from bob_facerev.protection.pemiu import PEMIU

    return PEMIU(block_size=K, seed=seed).transform(X, keys=np.arange(len(X)))


def test_classifier_costs_are_negative_log_probabilities():
    blocks = spread_only(300).reshape(300, 8, 4)
    scorer = ClassifierScorer().fit(blocks)
    cost = scorer.block_costs(blocks[:5])
    assert cost.shape == (5, 8, 8)
    np.testing.assert_allclose(np.exp(-cost).sum(axis=2), 1.0, atol=1e-9)
    with pytest.raises(ValueError, match="at least 2 attacker embeddings"):
        ClassifierScorer().fit(blocks[:1])


def test_classifier_places_blocks_the_mean_scorer_cannot():
    attacker, victims = spread_only(2000, seed=0), spread_only(300, seed=1)
    Y = protect(victims, 4)
    placement = {}
    for scorer in ("mean", "classifier"):
        model = Deshuffler(block_size=4, scorer=scorer).fit(attacker)
        placement[scorer] = evaluate_deshuffling(model, victims, Y)["placement"]
    # equal means: the mean scorer is near chance (1/8); the spreads give the classifier away
    assert placement["mean"] < 0.3
    assert placement["classifier"] > 0.6


def test_cli_separate_victims_file(tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from bob_facerev.script.deshuffle import deshuffle

    np.savez(tmp_path / "attacker.npz", embeddings=spread_only(400, seed=0))
    np.savez(tmp_path / "victims.npz", embeddings=spread_only(50, seed=1))
    out = tmp_path / "out"
    args = ["-e", str(tmp_path / "attacker.npz"), "--victims", str(tmp_path / "victims.npz"),
            "-k", "4", "-s", "mean", "-s", "classifier", "--sizes", "10", "--repeats", "1",
            "-o", str(out)]
    res = CliRunner().invoke(deshuffle, args)
    assert res.exit_code == 0, res.output
    assert "400 attacker, 50 victims (from " in res.output
    table = pd.read_csv(out / "deshuffle.csv")
    assert sorted(set(table["n_attacker"])) == [10, 400]
    assert set(table["scorer"]) == {"mean", "classifier"}
    np.savez(tmp_path / "other_d.npz", embeddings=np.ones((5, 16)))
    bad = CliRunner().invoke(deshuffle, ["-e", str(tmp_path / "attacker.npz"), "--victims",
                                         str(tmp_path / "other_d.npz")])
    assert bad.exit_code != 0 and "expected (N, 32) like --embeddings" in bad.output
    bad = CliRunner().invoke(deshuffle, ["-e", str(tmp_path / "attacker.npz"), "--victims",
                                         str(tmp_path / "missing.npz")])
    assert bad.exit_code != 0 and "no such file" in bad.output
