"""D<->(s) and D<->sys of Gomez-Barrero et al. (evaluation.unlinkability)."""

import numpy as np
import pytest

from bob_facerev.evaluation.unlinkability import default_bins, linkability

# hand computation on bins [0, 0.5), [0.5, 1]:
#   mated    0.1 | 0.6 0.7 0.8 -> densities 0.5, 1.5
#   nonmated 0.1 0.2 0.3 | 0.9 -> densities 1.5, 0.5
#   LR = 1/3, 3;  D = 0, 2*3/4 - 1 = 0.5
#   D_sys (sum) = 0.5 * 1.5 * 0.5 = 0.375; trapezoid over centres 0.25, 0.75: (0 + 0.75)/2 * 0.5
MATED = [0.1, 0.6, 0.7, 0.8]
NONMATED = [0.1, 0.2, 0.3, 0.9]


def test_hand_computation():
    r = linkability(MATED, NONMATED, bins=[0.0, 0.5, 1.0])
    np.testing.assert_allclose(r.p_mated, [0.5, 1.5])
    np.testing.assert_allclose(r.p_nonmated, [1.5, 0.5])
    np.testing.assert_allclose(r.d_local, [0.0, 0.5])
    assert r.d_sys == pytest.approx(0.375)
    assert linkability(MATED, NONMATED, bins=[0.0, 0.5, 1.0],
                       integration="trapezoid").d_sys == pytest.approx(0.1875)
    np.testing.assert_allclose(r.bin_centers, [0.25, 0.75])


def test_omega():
    # omega = 2: omega * LR = 2/3, 6 -> D = 0, 2 * 6/7 - 1 = 5/7
    r = linkability(MATED, NONMATED, omega=2.0, bins=[0.0, 0.5, 1.0])
    np.testing.assert_allclose(r.d_local, [0.0, 5 / 7])
    assert r.d_sys == pytest.approx(5 / 7 * 1.5 * 0.5)


def test_bins_without_nonmated_scores_are_fully_linkable():
    r = linkability([0.8, 0.9], [0.1, 0.2], bins=2)
    np.testing.assert_allclose(r.d_local, [0.0, 1.0])
    assert r.d_sys == pytest.approx(1.0)


def test_random_scores_against_a_loop():
    rng = np.random.default_rng(0)
    m, nm = rng.normal(1, 1, 700), rng.normal(0, 1, 3000)
    r = linkability(m, nm, omega=1.0)
    assert len(r.d_local) == default_bins(700) == 70
    edges = np.linspace(min(m.min(), nm.min()), max(m.max(), nm.max()), 71)
    width = edges[1] - edges[0]
    d_sys = 0.0
    for i in range(70):
        last = i == 69
        in_m = np.sum((m >= edges[i]) & ((m <= edges[i + 1]) if last else (m < edges[i + 1])))
        in_nm = np.sum((nm >= edges[i]) & ((nm <= edges[i + 1]) if last else (nm < edges[i + 1])))
        pm, pnm = in_m / (m.size * width), in_nm / (nm.size * width)
        if pnm == 0:
            d = 1.0 if pm > 0 else 0.0
        else:
            lr = pm / pnm
            d = 2 * lr / (1 + lr) - 1 if lr > 1 else 0.0
        assert r.d_local[i] == pytest.approx(d)
        d_sys += d * pm * width
    assert r.d_sys == pytest.approx(d_sys)
    assert 0.2 < r.d_sys < 0.6
    # identical distributions are (nearly) unlinkable
    assert linkability(rng.normal(0, 1, 5000), rng.normal(0, 1, 5000)).d_sys < 0.1


def test_bad_input():
    with pytest.raises(ValueError, match="omega"):
        linkability(MATED, NONMATED, omega=0)
    with pytest.raises(ValueError, match="non-mated"):
        linkability(MATED, [])
    with pytest.raises(ValueError, match="increasing"):
        linkability(MATED, NONMATED, bins=[1.0, 0.0])
