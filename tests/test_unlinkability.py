"""D<->(s) and D<->sys of Gomez-Barrero et al. (evaluation.unlinkability)."""

import numpy as np
import pandas as pd
import pytest

from bob_facerev.evaluation.unlinkability import default_bins, linkability, mated_nonmated
from bob_facerev.evaluation.unlinkability_pemiu import (
    COMPARATORS,
    comparator_scores,
    markdown_table,
    protect_applications,
    unlinkability_study,
)

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


# ---------------------------------------------------------------- the done-when of issue 17
def test_identical_distributions_are_unlinkable_disjoint_ones_fully_linkable():
    rng = np.random.default_rng(1)
    s = rng.normal(0, 1, 2000)
    assert linkability(s, s.copy()).d_sys == 0.0
    assert linkability(s, s.copy(), integration="trapezoid").d_sys == 0.0
    r = linkability(rng.uniform(0.8, 0.9, 500), rng.uniform(0.0, 0.5, 5000))
    assert r.d_sys == pytest.approx(1.0)
    # where the non-mated scores lie, D<->(s) is 0
    assert np.all(r.d_local[r.bin_centers < 0.5] == 0)


def test_mated_nonmated_split():
    scores = np.arange(9.0).reshape(3, 3)
    m, nm = mated_nonmated(scores, ["a", "a", "b"])
    np.testing.assert_array_equal(m, [0, 1, 3, 4, 8])
    np.testing.assert_array_equal(nm, [2, 5, 6, 7])
    m, nm = mated_nonmated(scores, ["a", "a", "b"], exclude_diagonal=True)
    np.testing.assert_array_equal(m, [1, 3])
    with pytest.raises(ValueError, match="subjects"):
        mated_nonmated(scores, ["a", "b"])


def test_pemiu_comparator_links_two_permutations_but_not_independent_vectors():
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(300, 128)), rng.normal(size=(300, 128))
    a, b = protect_applications(X, 16, 2, seed=0)
    # the two applications really use different block orders
    assert not np.allclose(a, b)
    m, nm = mated_nonmated(comparator_scores(a, b, "pemiu", 16), np.arange(300))
    np.testing.assert_allclose(m, 1.0, atol=1e-9)  # realigned: the same template
    assert linkability(m, nm).d_sys > 0.99
    # "mated" pairs that are independent random vectors: no more alike than non-mated ones
    _, b_indep = protect_applications(Y, 16, 2, seed=0)
    m, nm = mated_nonmated(comparator_scores(a, b_indep, "pemiu", 16), np.arange(300))
    assert linkability(m, nm).d_sys < 0.1


def _faces(n_subjects=60, per_subject=2, d=128, seed=0):
    """Synthetic embeddings with a per-position offset (what a de-shuffler learns)."""
    rng = np.random.default_rng(seed)
    subjects = np.repeat(np.arange(n_subjects), per_subject)
    offset = np.linspace(-3, 3, d)
    X = rng.normal(size=(n_subjects, d))[subjects] + 0.5 * rng.normal(size=(subjects.size, d))
    return X + offset, subjects, rng.normal(size=(400, d)) + offset


def test_unlinkability_study_per_comparator():
    X, subjects, attacker = _faces()
    table, results = unlinkability_study(X, subjects, block_sizes=(16, 32), attacker=attacker,
                                         n_applications=3)
    assert len(table) == 6 and set(results) == {(k, c) for k in (16, 32) for c in COMPARATORS}
    # 3 application pairs x (60 subjects x 2 x 2 mated, 120 x 120 - 240 non-mated)
    assert set(table.n_mated) == {3 * 240} and set(table.n_nonmated) == {3 * (14400 - 240)}
    d = table.set_index(["block_size", "comparator"]).d_sys
    assert d[(16, "pemiu")] > 0.9 and d[(16, "deshuffled-cosine")] > 0.9
    # shuffled blocks compared as they are: far less linkable than after realignment
    assert d[(16, "cosine")] < d[(16, "pemiu")] - 0.3
    assert "| pemiu" in markdown_table(table)


def test_unlinkability_study_bad_input():
    X, subjects, attacker = _faces(10)
    with pytest.raises(ValueError, match="attacker"):
        unlinkability_study(X, subjects, comparators=("deshuffled-cosine",))
    with pytest.raises(ValueError, match="unknown comparator"):
        unlinkability_study(X, subjects, comparators=("hamming",))
    with pytest.raises(ValueError, match="block sizes"):
        unlinkability_study(X, subjects, block_sizes=(48,), comparators=("cosine",))
    with pytest.raises(ValueError, match="applications"):
        protect_applications(X, 16, 1)


def _png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def test_cli_on_npz(tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.unlinkability import unlinkability

    X, subjects, _ = _faces(40)
    np.savez(tmp_path / "emb.npz", embeddings=X, subject=subjects)
    out = tmp_path / "out"
    res = CliRunner().invoke(unlinkability, ["-e", str(tmp_path / "emb.npz"), "--subjects-key",
                                             "subject", "-k", "16", "-k", "64", "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "unlinkability.csv")
    assert list(table.block_size) == [16, 16, 16, 64, 64, 64]
    # half the 80 embeddings are the attacker's: 40 victims linked
    assert (table.n_mated + table.n_nonmated == 40 * 40).all()
    assert table.set_index(["block_size", "comparator"]).d_sys[(16, "pemiu")] > 0.9
    w, h = _png_size(out / "unlinkability.png")
    assert w > 300 and h > 3 * 150  # 3 rows (comparators) x 2 columns (K)
    assert "40 victim templates" in (out / "unlinkability.md").read_text()
    bad = CliRunner().invoke(unlinkability, ["-e", str(tmp_path / "emb.npz"), "--subjects-key",
                                             "id", "-o", str(out)])
    assert bad.exit_code != 0 and "no array 'id'" in bad.output


@pytest.mark.slow
def test_cli_on_the_demo_database(tmp_path):
    from click.testing import CliRunner

    from bob_facerev.script.unlinkability import unlinkability

    out = tmp_path / "demo"
    res = CliRunner().invoke(unlinkability, ["-d", "facerev-demo", "--applications", "4",
                                             "-c", "pemiu", "-c", "cosine", "-o", str(out)])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out / "unlinkability.csv").set_index(["block_size", "comparator"])
    # 10 demo faces of 5 people (2, 1, 2, 4, 1 faces): 4 + 1 + 4 + 16 + 1 = 26 mated pairs
    # (same face or same person) per application pair, 6 application pairs
    assert set(table.n_mated) == {6 * 26} and set(table.n_nonmated) == {6 * 74}
    assert table.d_sys[(16, "pemiu")] > 0.9
    assert _png_size(out / "unlinkability.png")[0] > 300
