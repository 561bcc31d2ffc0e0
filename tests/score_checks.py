"""Shared assertion: two runs of a pipeline agree to a tolerance and decide alike.

Embeddings are not zero-padded to a fixed batch any more, so their last bits may depend on how
the samples were split (Dask partitions, templates batched together): runs are compared to
``1e-6`` on scores, and their accept/reject decisions must be identical at every threshold that
separates two distinct reference scores (and at the given ones).
"""

import numpy as np

ATOL = 1e-6


def assert_scores_agree(got, expected, thresholds=(), atol=ATOL):
    """``got`` equals ``expected`` within ``atol`` and gives the same decisions.

    Parameters
    ----------
    got, expected : array-like
        Scores of the same comparisons, in the same order.
    thresholds : sequence of float
        Extra decision thresholds (e.g. the study's); the midpoints between consecutive distinct
        ``expected`` scores are always checked.
    """
    got = np.asarray(got, dtype=float)
    expected = np.asarray(expected, dtype=float)
    assert got.shape == expected.shape, (got.shape, expected.shape)
    np.testing.assert_allclose(got, expected, rtol=0, atol=atol)
    distinct = np.unique(expected)
    cuts = np.concatenate([(distinct[1:] + distinct[:-1]) / 2, np.asarray(thresholds, float)])
    accept_got = got[:, None] >= cuts[None, :]
    accept_expected = expected[:, None] >= cuts[None, :]
    flipped = np.argwhere(accept_got != accept_expected)
    assert not len(flipped), f"{len(flipped)} decisions differ, first at score {flipped[0][0]}"
