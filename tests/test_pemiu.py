"""PE-MIU permutations, transformer, scores and comparator."""

import pickle

import numpy as np
import pytest

from scipy.optimize import linear_sum_assignment

from bob_facerev.protection.comparator import PEMIUComparator, pemiu_scores
from bob_facerev.protection.pemiu import (
    PEMIU,
    check_embeddings,
    fixed_permutation,
    n_blocks,
    permute_blocks,
    random_permutations,
)


def pair_score(r, p, K):
    """Independent per-pair PE-MIU score: direct block distances, scipy, realigned cosine."""
    r = np.asarray(r, dtype=np.float64)
    p = np.asarray(p, dtype=np.float64)
    n = r.size // K
    rb, pb = r.reshape(n, K), p.reshape(n, K)
    cost = np.array([[np.sqrt(np.sum((rb[a] - pb[b]) ** 2)) for b in range(n)] for a in range(n)])
    _, cols = linear_sum_assignment(cost)
    q = pb[cols].ravel()
    return r @ q / (np.linalg.norm(r) * np.linalg.norm(q))


@pytest.fixture
def data():
    rng = np.random.default_rng(7)
    refs = rng.standard_normal((9, 512)).astype(np.float32)
    probes = np.concatenate([refs[:4] + 0.3 * rng.standard_normal((4, 512)),
                             rng.standard_normal((3, 512))]).astype(np.float32)
    return refs, probes


@pytest.mark.parametrize("K", [16, 32, 64, 128])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_scores_equal_per_pair_implementation(data, K, dtype):
    refs, probes = data
    R = PEMIU(K, seed=3).transform(refs.astype(dtype), keys=[f"r{i}" for i in range(len(refs))])
    Q = PEMIU(K, seed=3).transform(probes.astype(dtype), keys=[f"p{i}" for i in range(len(probes))])
    R0, Q0 = R.copy(), Q.copy()
    S = pemiu_scores(R, Q, K)
    assert S.shape == (9, 7) and S.dtype == dtype
    expected = np.array([[pair_score(r, q, K) for q in Q] for r in R])
    np.testing.assert_allclose(S, expected, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(R, R0)  # inputs untouched
    np.testing.assert_array_equal(Q, Q0)
    # planted identities: genuine scores above impostor ones
    assert np.diag(S[:4, :4]).min() > S[4:].max()


def test_mixed_dtypes_give_float64(data):
    refs, probes = data
    assert pemiu_scores(refs, probes.astype(np.float64), 32).dtype == np.float64


@pytest.mark.parametrize("K", [16, 32, 64, 128])
def test_realigning_a_permuted_copy_scores_one(data, K):
    refs, _ = data
    shuffled = PEMIU(K).transform(refs)  # random per row
    assert not np.array_equal(shuffled, refs)
    S = pemiu_scores(refs, shuffled, K)
    np.testing.assert_allclose(np.diag(S), 1.0, atol=1e-6)
    assert (S[~np.eye(len(refs), dtype=bool)] < 0.9).all()


def test_scores_are_shuffle_invariant(data):
    refs, probes = data
    S = pemiu_scores(refs, probes, 32)
    S2 = pemiu_scores(PEMIU(32, seed=5).transform(refs), PEMIU(32, seed=6).transform(probes), 32)
    np.testing.assert_allclose(S, S2, atol=1e-6)


def test_zero_vector_scores_zero():
    x = np.zeros((1, 64))
    y = np.ones((2, 64))
    np.testing.assert_array_equal(pemiu_scores(x, y, 16), [[0.0, 0.0]])


def test_larger_grid_matches_reference_on_a_sample():
    rng = np.random.default_rng(11)
    R = rng.standard_normal((40, 128))
    Q = rng.standard_normal((300, 128))
    S = pemiu_scores(R, Q, 8)
    for i, j in zip(rng.integers(0, 40, 30), rng.integers(0, 300, 30)):
        assert abs(S[i, j] - pair_score(R[i], Q[j], 8)) < 1e-9


# --- permutations ---------------------------------------------------------------------------


@pytest.mark.parametrize("n, P", [(16, 0), (16, 2), (16, 3), (16, 4), (16, 16), (4, 2), (4, 4),
                                  (8, 8), (2, 2)])
def test_fixed_permutation_moves_exactly_P_blocks(n, P):
    for seed in range(20):
        perm = fixed_permutation(n, P, seed=seed)
        assert perm.dtype == np.int64
        assert sorted(perm) == list(range(n))
        assert int((perm != np.arange(n)).sum()) == P


def test_fixed_permutation_reproducible():
    np.testing.assert_array_equal(fixed_permutation(16, 6, seed=4), fixed_permutation(16, 6, seed=4))
    assert any(not np.array_equal(fixed_permutation(16, 6, seed=4), fixed_permutation(16, 6, seed=s))
               for s in range(5, 10))


def test_transform_with_P_moves_exactly_P_blocks():
    X = np.arange(2 * 512, dtype=np.float32).reshape(2, 512)
    Y = PEMIU(block_size=32, moved_blocks=5, seed=1).transform(X)
    moved = (Y.reshape(2, 16, 32) != X.reshape(2, 16, 32)).any(axis=2)
    assert moved.sum(axis=1).tolist() == [5, 5]
    np.testing.assert_array_equal(moved[0], moved[1])  # one permutation for all templates


def test_random_permutations_keyed():
    a = random_permutations(16, ["alice/1", "bob/1", "alice/1"], seed=0)
    assert a.shape == (3, 16)
    np.testing.assert_array_equal(a[0], a[2])
    assert not np.array_equal(a[0], a[1])
    np.testing.assert_array_equal(a, random_permutations(16, ["alice/1", "bob/1", "alice/1"]))
    assert not np.array_equal(a[0], random_permutations(16, ["alice/1"], seed=1)[0])
    for row in a:
        assert sorted(row) == list(range(16))


def test_permutations_are_stable_known_values():
    # BLAKE2b of str(key) + numpy's Generator: the same in every process (no PYTHONHASHSEED
    # dependence), so protected templates can be regenerated later
    assert random_permutations(16, ["x/1", 2], seed=3).tolist() == [
        [15, 5, 8, 13, 9, 6, 2, 14, 10, 4, 3, 7, 1, 0, 11, 12],
        [12, 3, 5, 8, 9, 13, 10, 6, 11, 4, 2, 1, 0, 14, 15, 7],
    ]
    assert fixed_permutation(16, 4, seed=0).tolist() == [
        0, 1, 2, 3, 7, 5, 6, 11, 4, 9, 10, 8, 12, 13, 14, 15]


def test_transform_keys_and_rows():
    X = np.random.default_rng(0).standard_normal((3, 256))
    t = PEMIU(block_size=16, seed=2)
    Y1 = t.transform(X, keys=["a", "b", "c"])
    Y2 = t.transform(X[::-1], keys=["c", "b", "a"])
    np.testing.assert_array_equal(Y1, Y2[::-1])  # keyed: independent of the order
    np.testing.assert_array_equal(t.transform(X), t.transform(X))  # no keys: seeded per row
    perms = t.permutations(3, 256, keys=["a", "b", "c"])
    np.testing.assert_array_equal(Y1, permute_blocks(X, perms, 16))


def test_permute_blocks_convention():
    X = np.arange(8.0)[None, :]
    Y = permute_blocks(X, [2, 0, 3, 1], 2)
    np.testing.assert_array_equal(Y, [[4, 5, 0, 1, 6, 7, 2, 3]])  # out block i = in block perm[i]
    assert Y.dtype == X.dtype
    with pytest.raises(ValueError, match="permutations"):
        permute_blocks(X, [0, 0, 1, 2], 2)
    with pytest.raises(ValueError, match="shape"):
        permute_blocks(X, [0, 1], 2)


def test_transformer_is_sklearn_and_picklable():
    from sklearn.base import clone

    t = PEMIU(block_size=64, moved_blocks=4, seed=9)
    assert t._more_tags()["requires_fit"] is False
    assert t._more_tags()["bob_transform_extra_input"] == (("keys", "key"),)
    assert clone(t).get_params() == {"block_size": 64, "moved_blocks": 4, "seed": 9}
    X = np.random.default_rng(1).standard_normal((2, 512)).astype(np.float32)
    assert t.fit(X) is t
    Y = pickle.loads(pickle.dumps(t)).transform(X)
    assert Y.dtype == np.float32
    np.testing.assert_array_equal(Y, t.transform(X))


def test_bob_sample_wrapper_passes_keys():
    from bob.pipelines import Sample, wrap

    X = np.random.default_rng(2).standard_normal((3, 128))
    samples = [Sample(x, key=k) for x, k in zip(X, ["s1/a", "s2/a", "s1/a"])]
    wrapped = wrap(["sample"], PEMIU(block_size=16, seed=4))
    out = np.array([s.data for s in wrapped.transform(samples)])
    np.testing.assert_array_equal(out, PEMIU(16, seed=4).transform(X, keys=["s1/a", "s2/a", "s1/a"]))
    gather = np.concatenate([np.arange(16) + 16 * b for b in random_permutations(8, ["s1/a"], 4)[0]])
    np.testing.assert_array_equal(out[0], X[0][gather])
    np.testing.assert_array_equal(out[2], X[2][gather])  # same key, same permutation


# --- comparator ----------------------------------------------------------------------------


def test_comparator_fuses_like_bob(data):
    refs, probes = data
    comp = PEMIUComparator(block_size=32)
    enroll = comp.create_templates([[refs[0], refs[1]], [refs[2]]], enroll=True)
    probe = comp.create_templates([[probes[0]], [probes[1], probes[2]]], enroll=False)
    S = comp.compare(enroll, probe)
    full = pemiu_scores(refs[:3], probes[:3], 32)
    expected = np.array([[max(full[0, 0], full[1, 0]), full[:2, 1:].max()],
                         [full[2, 0], full[2, 1:].max()]])
    np.testing.assert_allclose(S, expected, atol=1e-7)
    mean = PEMIUComparator(32, probes_score_fusion="mean", enrolls_score_fusion="mean")
    np.testing.assert_allclose(mean.compare(enroll, probe)[0, 1], full[:2, 1:].mean(), atol=1e-7)
    assert comp._more_tags()["requires_fit"] is False
    assert comp.create_templates([[]], enroll=False) == [None]


# --- bad input -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "refs, probes, K, match",
    [
        (np.ones((2, 512)), np.ones((2, 512)), 48, "does not divide"),
        (np.ones((2, 512)), np.ones((2, 512)), 0, "positive"),
        (np.ones((2, 512)), np.ones((2, 512)), 2.5, "integer"),
        (np.ones((2, 512)), np.ones((2, 256)), 32, "dimension d=256"),
        (np.ones((2, 512)), np.ones((0, 512)), 32, "empty"),
        (np.ones((0, 512)), np.ones((2, 512)), 32, "empty"),
        (np.ones(512), np.ones((2, 512)), 32, "1-D"),
        (np.ones((2, 512)), np.ones(512), 32, "1-D"),
        (np.ones((2, 2, 128)), np.ones((2, 512)), 32, "2-D"),
        (np.full((2, 512), np.nan), np.ones((2, 512)), 32, "NaN"),
        (np.ones((2, 512)), np.full((2, 512), np.inf), 32, "infinite"),
        ([np.ones(512), np.ones(256)], np.ones((2, 512)), 32, "different lengths"),
    ],
)
def test_scores_bad_input(refs, probes, K, match):
    with pytest.raises(ValueError, match=match):
        pemiu_scores(refs, probes, K)


@pytest.mark.parametrize("P, match", [(1, "P=1 is impossible"), (-2, "out of range"),
                                      (17, "out of range"), (2.0, "integer")])
def test_bad_moved_blocks(P, match):
    X = np.ones((2, 512))
    with pytest.raises(ValueError, match=match):
        PEMIU(block_size=32, moved_blocks=P).transform(X)


def test_bad_transform_input():
    t = PEMIU(block_size=32)
    with pytest.raises(ValueError, match="does not divide"):
        t.transform(np.ones((2, 500)))
    partly_nan = np.ones((1, 512))
    partly_nan[0, 3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        t.transform(partly_nan)
    # an all-NaN row is a failed sample (bob_facerev.failures): it stays NaN
    assert np.isnan(t.transform(np.full((1, 512), np.nan))).all()
    with pytest.raises(ValueError, match="2 keys for 3"):
        t.transform(np.ones((3, 512)), keys=["a", "b"])
    with pytest.raises(ValueError, match="seed"):
        PEMIU(32, seed=-1).transform(np.ones((1, 512)))
    with pytest.raises(ValueError, match="divisors of 500"):
        n_blocks(500, 32)
    with pytest.raises(ValueError, match="x\\[None, :\\]"):
        check_embeddings(np.ones(4))
