"""batched_assignment against scipy.optimize.linear_sum_assignment."""

import numpy as np
import pytest

from scipy.optimize import linear_sum_assignment

from bob_facerev.protection.assignment import batched_assignment


def _scipy(cost):
    return np.stack([linear_sum_assignment(c)[1] for c in cost])


def _total(cost, perm):
    B, n = perm.shape
    return cost[np.arange(B)[:, None], np.arange(n)[None, :], perm].sum(axis=1)


def _check_valid(perm, n):
    assert perm.dtype == np.int64
    assert np.array_equal(np.sort(perm, axis=1), np.broadcast_to(np.arange(n), perm.shape))


@pytest.mark.parametrize("n", [1, 2, 3, 4, 8, 16, 32, 64])
def test_random_distinct_costs_equal_scipy_permutation(n):
    rng = np.random.default_rng(n)
    cost = rng.random((60, n, n))
    perm = batched_assignment(cost)
    assert perm.shape == (60, n)
    _check_valid(perm, n)
    np.testing.assert_array_equal(perm, _scipy(cost))


def test_block_distance_costs_equal_scipy():
    # the PE-MIU case: near-uniform L2 distances between blocks of Gaussian vectors
    rng = np.random.default_rng(0)
    a = rng.standard_normal((40, 32, 16))
    b = rng.standard_normal((40, 32, 16))
    cost = np.linalg.norm(a[:, :, None, :] - b[:, None, :, :], axis=-1)
    np.testing.assert_array_equal(batched_assignment(cost), _scipy(cost))


@pytest.mark.parametrize(
    "make",
    [
        lambda rng, s: rng.integers(0, 3, s).astype(float),  # many ties
        lambda rng, s: np.zeros(s),  # all equal
        lambda rng, s: np.ones(s) * 7.5,
        lambda rng, s: rng.integers(0, 2, s) * 1e12 + rng.random(s),  # large magnitudes
        lambda rng, s: -rng.random(s) * 1e6,  # negative
        lambda rng, s: np.broadcast_to(rng.random(s[-1]), s).copy(),  # equal rows
    ],
    ids=["ties", "zeros", "constant", "large", "negative", "equal-rows"],
)
@pytest.mark.parametrize("n", [2, 3, 4, 5, 16, 32])
def test_degenerate_costs_reach_the_optimum(make, n):
    rng = np.random.default_rng(n)
    cost = make(rng, (50, n, n))
    before = cost.copy()
    perm = batched_assignment(cost)
    _check_valid(perm, n)
    ours = _total(cost, perm)
    best = _total(cost, _scipy(cost))
    np.testing.assert_allclose(ours, best, rtol=1e-12, atol=1e-9)
    np.testing.assert_array_equal(cost, before)  # input untouched


def test_float32_and_integer_input():
    rng = np.random.default_rng(3)
    cost = rng.random((20, 8, 8)).astype(np.float32)
    np.testing.assert_array_equal(batched_assignment(cost), _scipy(cost.astype(np.float64)))
    icost = rng.integers(0, 1000, (20, 8, 8))
    np.testing.assert_allclose(_total(icost, batched_assignment(icost)), _total(icost, _scipy(icost)))


def test_identity_and_known_answer():
    cost = np.array([[[4.0, 1.0, 3.0], [2.0, 0.0, 5.0], [3.0, 2.0, 2.0]]])
    np.testing.assert_array_equal(batched_assignment(cost), [[1, 0, 2]])
    eye = 1.0 - np.eye(6)[None]
    np.testing.assert_array_equal(batched_assignment(eye), [np.arange(6)])


def test_empty_batch_and_empty_matrices():
    assert batched_assignment(np.zeros((0, 4, 4))).shape == (0, 4)
    assert batched_assignment(np.zeros((3, 0, 0))).shape == (3, 0)


@pytest.mark.parametrize(
    "cost, match",
    [
        (np.zeros((4, 4)), "single matrix"),
        (np.zeros((2, 3, 4)), "square"),
        (np.array([[[1.0, np.nan], [0.0, 1.0]]]), "NaN"),
        (np.array([[[1.0, np.inf], [0.0, 1.0]]]), "infinite"),
        (np.array([[["a", "b"], ["c", "d"]]]), "real numbers"),
    ],
)
def test_bad_input(cost, match):
    with pytest.raises(ValueError, match=match):
        batched_assignment(cost)
