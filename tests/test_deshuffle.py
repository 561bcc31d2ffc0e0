"""Tests of the key-free de-shuffling attack (bob_facerev.attack.deshuffle)."""

import itertools
import pickle
import re

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from bob_facerev.attack.deshuffle import Deshuffler, inverse_permutations
from bob_facerev.attack.deshuffle_curve import learning_curve
from bob_facerev.attack.deshuffle_metrics import (
    evaluate_deshuffling,
    exact_restoration_rate,
    placement_accuracy,
    row_cosine,
    true_permutations,
)
from bob_facerev.attack.deshuffle_report import learning_curve_markdown, plot_learning_curve
from bob_facerev.protection.pemiu import permute_blocks


def positional(n_templates, d=64, spread=3.0, noise=1.0, seed=0, pos_seed=123):
    """Embeddings whose block positions have distinct means (the attacker's signal)."""
    mean = np.random.default_rng(pos_seed).normal(scale=spread, size=d)
    rng = np.random.default_rng(seed)
    return (mean + noise * rng.normal(size=(n_templates, d))).astype(np.float32)


def random_perms(n_templates, n_blocks, seed=1):
    rng = np.random.default_rng(seed)
    return np.array([rng.permutation(n_blocks) for _ in range(n_templates)])


# ------------------------------------------------------------------ restoration
@pytest.mark.parametrize("scorer", ["mean", "gaussian"])
@pytest.mark.parametrize("block_size", [8, 16, 32])
def test_exact_restoration_with_positional_statistics(scorer, block_size):
    d = 64
    attacker, victims = positional(400, d, noise=0.5, seed=0), positional(300, d, noise=0.5, seed=1)
    perms = random_perms(len(victims), d // block_size)
    protected = permute_blocks(victims, perms, block_size)
    model = Deshuffler(block_size=block_size, scorer=scorer).fit(attacker)
    est = model.estimate_permutations(protected)
    # the estimate is in permute_blocks' convention: it *is* the protection's permutation
    np.testing.assert_array_equal(est, perms)
    restored = model.transform(protected)
    np.testing.assert_array_equal(restored, victims)
    assert restored.dtype == victims.dtype
    m = evaluate_deshuffling(model, victims, protected)
    assert m["placement"] == 1.0 and m["exact"] == 1.0
    assert m["cosine"] == pytest.approx(1.0)
    assert m["cosine_protected"] < 0.9


@pytest.mark.parametrize("scorer", ["mean", "gaussian"])
def test_isotropic_embeddings_stay_at_chance(scorer):
    """Without a position signal the attack must not report success it did not earn."""
    d, K, N = 64, 8, 2000
    rng = np.random.default_rng(5)
    attacker = rng.normal(size=(3000, d))
    victims = rng.normal(size=(N, d))
    perms = random_perms(N, d // K, seed=6)
    model = Deshuffler(block_size=K, scorer=scorer).fit(attacker)
    est = model.estimate_permutations(permute_blocks(victims, perms, K))
    chance = K / d
    # 16000 blocks: binomial std ~0.0026; the tolerance is ~8 std
    assert placement_accuracy(est, perms) == pytest.approx(chance, abs=0.02)
    assert exact_restoration_rate(est, perms) < 0.002  # chance 1/8! = 2.5e-5


def test_shared_permutation_pools_templates():
    """Fixed-key PE-MIU: pooling noisy templates finds the key a single template misses."""
    d, K = 64, 8
    attacker = positional(2000, d, spread=0.4, seed=0)
    victims = positional(500, d, spread=0.4, seed=1)
    perm = np.random.default_rng(3).permutation(d // K)
    protected = permute_blocks(victims, perm, K)
    model = Deshuffler(block_size=K).fit(attacker)
    per_template = placement_accuracy(model.estimate_permutations(protected), perm[None])
    assert per_template < 0.9
    np.testing.assert_array_equal(model.estimate_shared_permutation(protected), perm)
    assert evaluate_deshuffling(model, victims, protected, shared=True)["exact"] == 1.0


# ------------------------------------------------------------------ scorers
def test_mean_costs_match_direct_distances():
    K = 8
    X, Y = positional(50, seed=0), positional(4, seed=1)
    model = Deshuffler(block_size=K, scorer="mean").fit(X)
    cost = model.block_costs(Y)
    means = X.astype(float).reshape(50, -1, K).mean(0)
    b = Y.astype(float).reshape(4, -1, K)
    for t, i, p in itertools.product(range(4), range(8), range(8)):
        assert cost[t, i, p] == pytest.approx(np.sum((b[t, i] - means[p]) ** 2), rel=1e-9)


def test_gaussian_costs_are_shrunk_negative_log_likelihoods():
    K, reg = 8, 0.1
    X, Y = positional(40, seed=0), positional(3, seed=1)
    model = Deshuffler(block_size=K, scorer="gaussian", reg=reg).fit(X)
    cost = model.block_costs(Y)
    blocks = X.astype(float).reshape(40, -1, K)
    b = Y.astype(float).reshape(3, -1, K)
    for p in range(blocks.shape[1]):
        c = np.cov(blocks[:, p], rowvar=False)
        shrunk = (1 - reg) * c + reg * np.trace(c) / K * np.eye(K)
        dist = multivariate_normal(blocks[:, p].mean(0), shrunk)
        for t, i in itertools.product(range(3), range(b.shape[1])):
            assert cost[t, i, p] == pytest.approx(-dist.logpdf(b[t, i]), rel=1e-9)


def test_custom_scorer_hook():
    from sklearn.base import BaseEstimator

    class MedianScorer(BaseEstimator):
        """Cost: L1 distance to each position's median block."""

        def __init__(self, power=1):
            self.power = power

        def fit(self, blocks):
            self.medians_ = np.median(blocks, axis=0)
            return self

        def block_costs(self, blocks):
            return np.abs(blocks[:, :, None, :] - self.medians_[None, None]).sum(-1)

    scorer = MedianScorer(power=1)
    scorer.stale_ = "fitted state of the parameter"
    victims = positional(100, seed=1)
    perms = random_perms(100, 8)
    model = Deshuffler(block_size=8, scorer=scorer).fit(positional(200, seed=0))
    # a clone (sklearn.base.clone: same parameters, no fitted state) is fitted, not the parameter
    assert not hasattr(scorer, "medians_") and hasattr(model.scorer_, "medians_")
    assert model.scorer_ is not scorer and model.scorer_.get_params() == {"power": 1}
    assert not hasattr(model.scorer_, "stale_")
    np.testing.assert_array_equal(model.estimate_permutations(permute_blocks(victims, perms, 8)),
                                  perms)


# ------------------------------------------------------------------ confidence
def test_confidence_is_runner_up_gap_by_enumeration():
    d, K = 10, 2  # 5 blocks: 120 orders, enumerable
    X, Y = positional(30, d, spread=1.0, seed=0), positional(25, d, spread=1.0, seed=1)
    model = Deshuffler(block_size=K).fit(X)
    perms, conf = model.estimate_permutations(Y, return_confidence=True)
    cost = model.block_costs(Y)
    for t in range(len(Y)):
        totals = sorted(
            (sum(cost[t, i, q[i]] for i in range(5)), q) for q in itertools.permutations(range(5))
        )
        assert conf[t] == pytest.approx(totals[1][0] - totals[0][0], rel=1e-9, abs=1e-9)
        r, c = linear_sum_assignment(cost[t])
        assert cost[t, r, c].sum() == pytest.approx(totals[0][0])
        np.testing.assert_array_equal(perms[t], totals[0][1])
    np.testing.assert_array_equal(model.confidence(Y), conf)
    # a single block leaves no choice
    one = Deshuffler(block_size=d).fit(X)
    assert np.isinf(one.confidence(Y)).all()


def test_confidence_is_low_where_the_order_is_wrong():
    K = 8
    model = Deshuffler(block_size=K).fit(positional(500, seed=0))
    victims = positional(1000, noise=3.0, seed=3)
    perms = random_perms(1000, 8)
    est, conf = model.estimate_permutations(permute_blocks(victims, perms, K),
                                            return_confidence=True)
    right = np.all(est == perms, axis=1)
    assert 0.05 < 1 - right.mean() < 0.5  # a mix of right and wrong orders
    assert np.median(conf[right]) > 2 * np.median(conf[~right])
    low = conf < np.quantile(conf, 0.25)
    assert (~right[low]).mean() > 2 * (~right[~low]).mean()


# ------------------------------------------------------------------ metrics
def test_metrics_known_values():
    est = np.array([[0, 1, 2], [0, 2, 1]])
    true = np.array([[0, 1, 2], [0, 1, 2]])
    assert placement_accuracy(est, true) == pytest.approx(4 / 6)
    assert exact_restoration_rate(est, true) == 0.5
    np.testing.assert_array_equal(inverse_permutations([[2, 0, 1]]), [[1, 2, 0]])
    np.testing.assert_allclose(row_cosine([[1, 0], [1, 1]], [[0, 1], [2, 2]]), [0.0, 1.0])


def test_true_permutations_recovers_and_rejects():
    X = positional(20)
    perms = random_perms(20, 8)
    np.testing.assert_array_equal(true_permutations(X, permute_blocks(X, perms, 8), 8), perms)
    with pytest.raises(ValueError, match="not block permutations"):
        true_permutations(X, X + 1.0, 8)


def test_learning_curve_and_outputs(tmp_path):
    pytest.importorskip("bob_facerev.protection.pemiu").PEMIU  # noqa: B018
    attacker, victims = positional(300, seed=0), positional(120, seed=1)
    table = learning_curve(attacker, victims, block_sizes=(8, 16), scorers=("mean", "gaussian"),
                           sizes=(1, 3, 30), repeats=2, progress=False)
    assert set(table["n_attacker"]) == {1, 3, 30, 300}
    assert not ((table["scorer"] == "gaussian") & (table["n_attacker"] == 1)).any()
    full = table[table["n_attacker"] == 300]
    assert (full["placement"] == 1.0).all() and (full["exact"] == 1.0).all()
    np.testing.assert_allclose(full["cosine"], 1.0)
    np.testing.assert_allclose(table["chance"], table["block_size"] / 64)
    fixed = learning_curve(attacker, victims, block_sizes=(8,), scorers=("mean",), sizes=(10,),
                           protection="fixed", moved_blocks=4, progress=False)
    assert set(fixed["attack"]) == {"per-template", "shared"}
    every = learning_curve(attacker, victims, block_sizes=(8, 16), scorers=("mean",),
                           sizes=(10,), protection="fixed", progress=False)  # all blocks move
    assert (every[every["attack"] == "shared"]["exact"] == 1.0).all()
    assert (every["cosine_protected"] < 0.9).all()
    md = learning_curve_markdown(table)
    assert md.count("\n") == len(table) + 1 and "100.0%" in md
    png = plot_learning_curve(table, tmp_path / "curve.png")
    assert open(png, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ estimator plumbing
def test_sklearn_and_bob_plumbing():
    from bob.pipelines import Sample, wrap
    from bob.pipelines.wrappers import estimator_requires_fit

    X, V = positional(100, seed=0), positional(10, seed=1)
    perms = random_perms(10, 8)
    P = permute_blocks(V, perms, 8)
    model = Deshuffler(block_size=8, scorer="gaussian", reg=0.01)
    assert clone(model).get_params() == model.get_params()
    assert estimator_requires_fit(model)
    model.fit(X)
    again = pickle.loads(pickle.dumps(model))
    np.testing.assert_array_equal(again.transform(P), V)
    wrapped = wrap(["sample"], Deshuffler(block_size=8))
    wrapped.fit([Sample(x, key=str(i)) for i, x in enumerate(X)])
    out = wrapped.transform([Sample(p, key=str(i)) for i, p in enumerate(P)])
    np.testing.assert_array_equal(np.stack([s.data for s in out]), V)


def test_config_resource():
    from sklearn.pipeline import Pipeline

    from bob_facerev.config.transformer.deshuffle import transformer

    # a sample-wrapped pipeline, as `bob bio pipeline transform -t` requires
    assert isinstance(transformer, Pipeline)
    model = transformer.steps[-1][1].estimator
    assert isinstance(model, Deshuffler) and model.block_size == 32


# ------------------------------------------------------------------ errors
def test_errors_are_clear():
    X = positional(20, d=64)
    with pytest.raises(ValueError, match=r"K=24 does not divide the embedding dimension d=64"):
        Deshuffler(block_size=24).fit(X)
    model = Deshuffler(block_size=8).fit(X)
    with pytest.raises(ValueError, match=r"d=128 .*fitted on embeddings of d=64"):
        model.transform(positional(5, d=128))
    bad = X.copy()
    bad[3, 5] = np.nan
    with pytest.raises(ValueError, match=r"NaN or infinite values \(rows \[3\]\)"):
        Deshuffler(block_size=8).fit(bad)
    with pytest.raises(ValueError, match="NaN"):
        model.transform(bad)
    with pytest.raises(ValueError, match="at least 2 attacker embeddings"):
        Deshuffler(block_size=8, scorer="gaussian").fit(X[:1])
    with pytest.raises(ValueError, match="unknown scorer 'median'"):
        Deshuffler(block_size=8, scorer="median").fit(X)
    with pytest.raises(ValueError, match="no block_costs"):
        Deshuffler(block_size=8, scorer=object()).fit(X)

    class PlainScorer:  # block_costs but not an estimator: cannot be cloned
        def block_costs(self, blocks):
            return np.zeros(blocks.shape[:2] + blocks.shape[1:2])

    with pytest.raises(ValueError, match="not a scikit-learn estimator .*BaseEstimator"):
        Deshuffler(block_size=8, scorer=PlainScorer()).fit(X)
    with pytest.raises(ValueError, match=r"2-D \(N, d\) array, got a 1-D array of shape \(64,\)"):
        model.transform(X[0])
    with pytest.raises(NotFittedError):
        Deshuffler(block_size=8).transform(X)


def test_auto_shrinkage_beats_fixed_with_few_embeddings():
    """Ledoit-Wolf shrinkage keeps the gaussian scorer usable with fewer embeddings than K."""
    K = 16
    attacker, victims = positional(12, seed=0, spread=0.5), positional(400, seed=1, spread=0.5)
    perms = random_perms(400, 4)
    protected = permute_blocks(victims, perms, K)
    acc = {}
    for reg in (1e-3, "auto"):
        model = Deshuffler(block_size=K, scorer="gaussian", reg=reg).fit(attacker)
        acc[reg] = placement_accuracy(model.estimate_permutations(protected), perms)
    assert acc["auto"] > acc[1e-3] + 0.15  # measured: 0.76 vs 0.46
    assert np.all((model.scorer_.shrinkage_ > 0.1) & (model.scorer_.shrinkage_ <= 1))
    with pytest.raises(ValueError, match="reg must be a number in \\[0, 1\\] or 'auto'"):
        Deshuffler(block_size=K, scorer="gaussian", reg=2).fit(attacker)


def test_cli_writes_table_csv_and_plot(tmp_path):
    import pandas as pd
    from click.testing import CliRunner

    from bob_facerev.script.deshuffle import deshuffle

    pytest.importorskip("bob_facerev.protection.pemiu").PEMIU  # noqa: B018
    npz = tmp_path / "emb.npz"
    np.savez(npz, embeddings=positional(200, d=64, seed=0))
    out = tmp_path / "out"
    args = ["-e", str(npz), "-k", "8", "-k", "16", "-s", "mean", "--sizes", "1,10",
            "--repeats", "1", "-o", str(out)]
    res = CliRunner().invoke(deshuffle, args)
    assert res.exit_code == 0, res.output
    # the package's markdown tables (tabulate) pad their cells: compare with single spaces
    assert "| block_size | n_blocks | scorer |" in re.sub(" +", " ", res.output)
    table = pd.read_csv(out / "deshuffle.csv")
    assert sorted(set(table["n_attacker"])) == [1, 10, 100]
    assert (table[table["n_attacker"] == 100]["placement"] == 1.0).all()
    assert (out / "deshuffle_learning_curve.png").stat().st_size > 1000
    bad = CliRunner().invoke(deshuffle, ["-e", str(npz), "-k", "24", "-o", str(out)])
    assert bad.exit_code != 0 and "K=24 does not divide" in bad.output
    np.savez(tmp_path / "other.npz", X=np.zeros((3, 4)))
    bad = CliRunner().invoke(deshuffle, ["-e", str(tmp_path / "other.npz")])
    assert bad.exit_code != 0 and "has no array 'embeddings'" in bad.output


# ------------------------------------------------------------------ real faces
@pytest.mark.slow
def test_demo_faces_leave_one_out_placement():
    """Real dlib embeddings of the 10 demo faces: fit on 9, de-shuffle the held-out one.

    Measured (mean scorer): every block of every held-out face placed correctly for
    K = 8, 16, 32, 64 (16, 8, 4, 2 blocks; chance 6%, 12%, 25%, 50%).
    """
    bob_io = pytest.importorskip("bob.io.base")
    pipelines = pytest.importorskip("bob_facerev.pipelines")
    from bob.pipelines import Sample

    from bob_facerev.database.demo import demo_directory, demo_images

    samples = [
        Sample(bob_io.load(str(demo_directory() / "images" / r["path"])), key=r["path"])
        for r in demo_images()
    ]
    out = pipelines.embedding_transformer("dlib", device="cpu").transform(samples)
    X = np.stack([s.data for s in out if s.data is not None])
    assert X.shape == (10, 128)
    rng = np.random.default_rng(0)
    report = []
    for K in (8, 16, 32, 64):
        n = 128 // K
        perms = np.array([rng.permutation(n) for _ in range(len(X))])
        est = np.empty_like(perms)
        for i in range(len(X)):
            model = Deshuffler(block_size=K).fit(np.delete(X, i, axis=0))
            est[i] = model.estimate_permutations(permute_blocks(X[i : i + 1], perms[i], K))[0]
        acc = placement_accuracy(est, perms)
        report.append(f"K={K} ({n} blocks): placement {100 * acc:.0f}% "
                      f"(chance {100 / n:.0f}%), exact {100 * exact_restoration_rate(est, perms):.0f}%")
        assert acc >= 0.9 and acc > 1.5 / n
    print("\n" + "\n".join(report))
