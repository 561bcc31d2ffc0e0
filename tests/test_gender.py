"""Gender leakage: planted gender signal, PE-MIU random shuffles, folds, CLI and metadata errors."""

import csv
import re

import numpy as np
import pytest

from click.testing import CliRunner
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score

from bob_facerev.evaluation import gender as G


def synthetic(n=300, d=256, period=64, seg=4, amp=0.15, seed=0):
    """Embeddings whose gender is a +-pattern ``u`` of length ``period`` repeated along the vector.

    PE-MIU with K a multiple of ``period`` moves whole copies of +-u: the signal survives any
    shuffle. With K = ``seg``, the blocks are segments of u put at random places; the segments
    average to zero at every offset, so no coordinate keeps a gender mean: near chance.
    """
    rng = np.random.default_rng(seed)
    u = rng.standard_normal(period).reshape(-1, seg)
    u -= u.mean(axis=0)
    u = (u / u.std()).ravel()
    y = np.repeat([0, 1], n // 2)
    sign = np.where(y[:, None] == 1, 1.0, -1.0)
    X = rng.standard_normal((n, d)) + amp * sign * np.tile(u, d // period)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def table():
    X, y = synthetic()
    return G.leakage_table(X, np.where(y == 1, "M", "F"), block_sizes=(4, 64), progress=False)


def _acc(table, protection, threat_model):
    t = table[(table.protection == protection) & (table.threat_model == threat_model)]
    return t.set_index("classifier")["mean"]


def test_unprotected_predicts_gender(table):
    acc = _acc(table, "unprotected", "none")
    assert list(acc.index) == list(G.CLASSIFIERS)
    for clf in ("svc-poly", "svc-rbf", "svc-sigmoid", "logreg"):
        assert acc[clf] > 0.9, (clf, acc[clf])
    assert acc["knn3"] > 0.75


def test_small_blocks_hide_gender_large_blocks_keep_it(table):
    for tm in G.THREAT_MODELS:
        small = _acc(table, "pemiu-k4", tm)
        large = _acc(table, "pemiu-k64", tm)
        assert (small < 0.6).all(), (tm, small.to_dict())
        for clf in ("svc-rbf", "logreg"):
            assert large[clf] > small[clf] + 0.25, (tm, clf, large[clf], small[clf])


def test_gender_leakage_equals_sklearn_cross_val_score():
    X, y = synthetic(n=120, d=64, period=16, seed=3)
    res = G.gender_leakage(X, y, classifiers=("logreg",), n_splits=5, seed=7)
    cv = StratifiedKFold(5, shuffle=True, random_state=7)
    ref = cross_val_score(LogisticRegression(max_iter=1000), X, y, cv=cv)
    np.testing.assert_allclose(res.loc["logreg", "folds"], ref)
    assert res.loc["logreg", "mean"] == pytest.approx(ref.mean())
    assert res.loc["logreg", "std"] == pytest.approx(ref.std())


def test_clean_train_threat_model_trains_on_clean_and_tests_on_protected():
    X, y = synthetic(n=120, d=64, period=16, seed=4)
    P = X[:, ::-1].copy()  # a "protection" that a clean-trained classifier cannot undo
    folds = G.stratified_folds(y, 5, 1)
    res = G.gender_leakage(P, y, classifiers=("logreg",), X_train=X, folds=folds)
    expected = [
        np.mean(LogisticRegression(max_iter=1000).fit(X[tr], y[tr]).predict(P[te]) == y[te])
        for tr, te in folds
    ]
    np.testing.assert_allclose(res.loc["logreg", "folds"], expected)
    with pytest.raises(ValueError, match="X_train must have the shape"):
        G.gender_leakage(P, y, X_train=X[:10])


def test_folds_are_stratified_and_reproducible():
    y = np.array([0] * 37 + [1] * 63)
    folds = G.stratified_folds(y, 10, seed=5)
    assert sorted(np.concatenate([te for _, te in folds]).tolist()) == list(range(100))
    for train, test in folds:
        assert len(test) == 10
        assert abs(np.sum(y[test] == 0) - 3.7) < 1  # each fold keeps the 37/63 ratio
        assert not set(train) & set(test)
    again = G.stratified_folds(y, 10, seed=5)
    other = G.stratified_folds(y, 10, seed=6)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(folds, other))
    X, yy = synthetic(n=100, d=64, period=16)
    r1 = G.gender_leakage(X, yy, ("svc-rbf", "knn3"), seed=3)
    r2 = G.gender_leakage(X, yy, ("svc-rbf", "knn3"), seed=3)
    assert r1.equals(r2)


def test_balanced_sampling_and_labels():
    labels = G.parse_gender(["M", "f", "Female", "male", "", None, 3, 0, 1, "1", float("nan")])
    assert labels.tolist() == [1, 0, 0, 1, -1, -1, -1, 0, 1, 1, -1]
    y = np.array([0] * 30 + [1] * 70)
    idx = G.balanced_indices(y, seed=1)
    assert np.sum(y[idx] == 0) == np.sum(y[idx] == 1) == 30
    assert np.array_equal(idx, G.balanced_indices(y, seed=1))
    assert not np.array_equal(idx, G.balanced_indices(y, seed=2))
    assert set(range(30)) <= set(idx)  # the minority is kept whole
    with pytest.raises(ValueError, match="exactly two classes"):
        G.balanced_indices(np.zeros(5))


def test_leakage_table_drops_unknown_and_balances():
    X, y = synthetic(n=100, d=64, period=16)
    gender = np.where(y == 1, "M", "F").astype(object)
    gender[:10] = ""  # ten women of unknown gender
    t = G.leakage_table(X, gender, block_sizes=(16,), classifiers=("logreg",), n_splits=4, progress=False)
    assert set(t.n) == {80} and set(t.n_class0) == {40} and set(t.n_class1) == {40}
    assert list(zip(t.protection, t.threat_model)) == [
        ("unprotected", "none"),
        ("pemiu-k16", "protected"),
        ("pemiu-k16", "clean-train"),
    ]
    with pytest.raises(ValueError, match="block"):
        G.leakage_table(X, gender, block_sizes=(7,), classifiers=("logreg",), progress=False)


class _Sample:
    def __init__(self, key, **attrs):
        self.key = key
        self.__dict__.update(attrs)


class _Database:
    def __init__(self, samples):
        self.samples = samples

    def all_samples(self, groups=None):
        return self.samples


def test_database_without_gender_metadata_is_a_clear_error():
    from bob_facerev.script.gender import database_embeddings

    db = _Database([_Sample("a.jpg"), _Sample("b.jpg")])
    with pytest.raises(ValueError, match="no gender metadata.*2 of 2 samples.*'a.jpg'"):
        database_embeddings(db, name="toy")
    db = _Database([_Sample("a.jpg", gender=""), _Sample("b.jpg", gender="?")])
    with pytest.raises(ValueError, match="no known value"):
        database_embeddings(db, name="toy")


def test_cli_on_npz(tmp_path):
    from bob_facerev.script.gender import gender

    X, y = synthetic(n=120, d=64, period=16, seed=2)
    path = tmp_path / "emb.npz"
    rec = X + 0.1 * np.random.default_rng(0).standard_normal(X.shape).astype(np.float32)
    np.savez(path, embeddings=X, gender=y, keys=np.arange(len(y)).astype(str), reconstructed_embeddings=rec)
    out = tmp_path / "out"
    res = CliRunner().invoke(
        gender,
        ["-e", str(path), "-k", "16", "-c", "logreg", "-c", "svc-rbf", "--folds", "4", "-o", str(out)],
    )
    assert res.exit_code == 0, res.output
    table = re.sub(" +", " ", res.output)  # markdown cells are padded (tabulate)
    assert "| pemiu-k16 | clean-train |" in table and "| reconstructed | protected |" in table
    with open(out / "gender.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 2 * (1 + 2 + 2)
    assert (out / "gender.png").stat().st_size > 1000
    direct = G.gender_leakage(X, y, ("logreg",), n_splits=4)
    row = [r for r in rows if r["protection"] == "unprotected" and r["classifier"] == "logreg"][0]
    assert float(row["mean"]) == pytest.approx(direct.loc["logreg", "mean"])
    # bad input: neither source, or a file without gender
    assert CliRunner().invoke(gender, ["-o", str(out)]).exit_code != 0
    np.savez(tmp_path / "bad.npz", embeddings=X)
    res = CliRunner().invoke(gender, ["-e", str(tmp_path / "bad.npz"), "-o", str(out)])
    assert res.exit_code != 0 and "gender" in res.output
