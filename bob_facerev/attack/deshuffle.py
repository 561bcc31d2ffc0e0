"""Key-free de-shuffling: restore the block order of PE-MIU protected templates.

PE-MIU splits an embedding of size ``d`` into ``n = d / K`` blocks of ``K`` values and permutes
the blocks. Its protection rests on the block order being unknown. But every block *position* of
a face embedding has its own statistics (mean, spread, correlations), which an attacker learns
from unprotected embeddings of the same extractor. Assigning every protected block to the
position it most likely came from (a minimum-cost assignment, solved with the package's one
solver :func:`bob_facerev.protection.assignment.batched_assignment`) undoes the shuffle without
the key.

Conventions
-----------
* Permutations follow :func:`bob_facerev.protection.pemiu.permute_blocks`: a protected template
  ``Y = permute_blocks(X, perms, K)`` holds in its block ``i`` the original block ``perms[i]``.
  :meth:`Deshuffler.estimate_permutations` estimates exactly these ``perms``; the restoration is
  ``permute_blocks(Y, inverse_permutations(perms), K)``.
* A scorer maps blocks ``(N, n, K)`` to costs ``(N, n, n)``: ``cost[t, i, p]`` is the cost of
  protected block ``i`` of template ``t`` having come from original position ``p`` (lower is more
  likely). The built-in scorers are :class:`MeanScorer`, :class:`GaussianScorer` and
  :class:`ClassifierScorer` (a learned classifier returning ``-log p(position | block)``); any
  scikit-learn estimator (:class:`sklearn.base.BaseEstimator`) with the same ``block_costs``
  method (and optionally ``fit(blocks)``) plugs in: :meth:`Deshuffler.fit` fits a
  :func:`~sklearn.base.clone` of it.

The placement metrics are in :mod:`bob_facerev.attack.deshuffle_metrics`, the learning-curve
experiment in :mod:`bob_facerev.attack.deshuffle_curve`, its table and plot in
:mod:`bob_facerev.attack.deshuffle_report`.
"""

from __future__ import annotations

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin, clone
from sklearn.utils.validation import check_is_fitted

from bob_facerev.protection.assignment import batched_assignment
from bob_facerev.protection.pemiu import check_embeddings, n_blocks, permute_blocks

__all__ = [
    "MeanScorer",
    "GaussianScorer",
    "ClassifierScorer",
    "Deshuffler",
    "inverse_permutations",
    "split_blocks",
]


def split_blocks(X, block_size, name=None):
    """Split ``(N, d)`` into ``(N, n, K)`` float64 blocks; K must divide d."""
    n = n_blocks(X.shape[1], block_size)
    return X.reshape(X.shape[0], n, block_size).astype(np.float64, copy=False)


# --------------------------------------------------------------------------- scorers
class MeanScorer(BaseEstimator):
    """Cost = squared L2 distance between a protected block and each position's mean block.

    Attributes
    ----------
    means_ : ndarray, shape (n, K)
        Mean block of every position.
    """

    def fit(self, blocks):
        """Learn the mean block of every position from unprotected ``blocks`` ``(N, n, K)``."""
        self.means_ = blocks.mean(axis=0)
        return self

    def block_costs(self, blocks):
        """``(N, n, K)`` protected blocks -> ``(N, n, n)`` costs ``||b_i - mean_p||^2``."""
        sq = np.einsum("tik,tik->ti", blocks, blocks)[:, :, None]
        cross = blocks @ self.means_.T
        mu = np.einsum("pk,pk->p", self.means_, self.means_)[None, None, :]
        return np.maximum(sq - 2.0 * cross + mu, 0.0)


class GaussianScorer(BaseEstimator):
    """Cost = negative log-likelihood (nats) under each position's Gaussian.

    Every position ``p`` gets a mean ``mu_p`` and a covariance shrunk towards a scaled identity,
    ``S_p = (1 - reg) C_p + reg * (trace(C_p) / K) I`` (``C_p`` the sample covariance), which
    keeps it invertible when the attacker has fewer embeddings than ``K``.

    Parameters
    ----------
    reg : float in [0, 1] or "auto"
        Shrinkage weight. ``"auto"``: the Ledoit-Wolf weight, estimated per position from the
        data (:func:`sklearn.covariance.ledoit_wolf_shrinkage`); strong for few embeddings,
        weak for many. A small fixed weight over-fits when the attacker has about ``K``
        embeddings or fewer.

    Attributes
    ----------
    means_ : ndarray, shape (n, K)
    covariances_ : ndarray, shape (n, K, K)
        The shrunk covariances ``S_p``.
    whiteners_ : ndarray, shape (n, K, K)
        ``W_p`` with ``W_p W_p^T`` the inverse of ``S_p``.
    log_norms_ : ndarray, shape (n,)
        Log normalising constants of the Gaussians.
    shrinkage_ : ndarray, shape (n,)
        The shrinkage weight used per position.
    """

    def __init__(self, reg=1e-3):
        self.reg = reg

    def fit(self, blocks):
        """Learn per-position Gaussians from unprotected ``blocks`` ``(N, n, K)``, ``N >= 2``."""
        N, n, K = blocks.shape
        auto = isinstance(self.reg, str) and self.reg == "auto"
        if not auto and not (isinstance(self.reg, (int, float)) and 0.0 <= self.reg <= 1.0):
            raise ValueError(f"reg must be a number in [0, 1] or 'auto', got {self.reg!r}")
        if N < 2:
            raise ValueError(
                f"the gaussian scorer needs at least 2 attacker embeddings to estimate a "
                f"covariance, got {N}; use scorer='mean' or more embeddings"
            )
        self.means_ = blocks.mean(axis=0)
        resid = blocks - self.means_
        cov = np.einsum("tpk,tpl->pkl", resid, resid) / (N - 1)
        target = np.trace(cov, axis1=1, axis2=2) / K
        if np.any(target <= 0):
            raise ValueError(
                "some block positions do not vary across the attacker embeddings (zero "
                "variance); the gaussian scorer cannot model them, use scorer='mean'"
            )
        if auto:
            from sklearn.covariance import ledoit_wolf_shrinkage

            reg = np.array([ledoit_wolf_shrinkage(blocks[:, p]) for p in range(n)])
        else:
            reg = np.full(n, float(self.reg))
        self.shrinkage_ = reg
        cov = (1.0 - reg[:, None, None]) * cov + reg[:, None, None] * target[:, None, None] * np.eye(K)
        self.covariances_ = cov
        # precision = W W^T with W the Cholesky factor of the precision
        self.whiteners_ = np.linalg.cholesky(np.linalg.inv(cov))
        logdet = np.linalg.slogdet(cov)[1]
        self.log_norms_ = 0.5 * (logdet + K * np.log(2.0 * np.pi))
        return self

    def block_costs(self, blocks):
        """``(N, n, K)`` protected blocks -> ``(N, n, n)`` negative log-likelihoods."""
        N, n, K = blocks.shape
        # one GEMM: every block whitened by every position's whitener
        # ||(x - mu_p) W_p||^2 = ||x W_p||^2 - 2 x . (W_p W_p^T mu_p) + ||mu_p W_p||^2
        x = blocks.reshape(N * n, K)
        W = self.whiteners_.transpose(1, 0, 2).reshape(K, n * K)  # [k, (p, l)]
        z = (x @ W).reshape(N * n, n, K)
        quad = np.einsum("mpk,mpk->mp", z, z)
        mw = np.einsum("pk,pkl->pl", self.means_, self.whiteners_)  # mu_p W_p
        lin = x @ np.einsum("pkl,pl->kp", self.whiteners_, mw)  # x . (W_p (mu_p W_p)^T)
        const = np.einsum("pl,pl->p", mw, mw)
        return (0.5 * (quad - 2.0 * lin + const) + self.log_norms_).reshape(N, n, n)


class ClassifierScorer(BaseEstimator):
    """Cost = ``-log p(position | block)`` of a learned per-position classifier.

    A multinomial logistic regression (:class:`sklearn.linear_model.LogisticRegression`) is
    trained to tell, from a block's values alone, which position it came from: every attacker
    block is one training example labelled with its position. Its features are the block's
    values, their squares and the block's L2 norm (so it can use spreads, not only means),
    standardised on the attacker's blocks. Unlike :class:`GaussianScorer` it makes no
    distributional assumption and is trained discriminatively.

    Parameters
    ----------
    C : float
        Inverse L2 regularisation strength.
    max_iter : int
        Solver iterations.
    max_examples : int
        At most this many attacker blocks train it (a seeded random subset), bounding its cost.
    seed : int
        Seeds the subset.

    Attributes
    ----------
    model_ : sklearn.pipeline.Pipeline
        Standardisation and the fitted classifier; classes are the positions ``0 .. n-1``.
    """

    def __init__(self, C=1.0, max_iter=300, max_examples=200_000, seed=0):
        self.C = C
        self.max_iter = max_iter
        self.max_examples = max_examples
        self.seed = seed

    @staticmethod
    def _features(blocks):
        x = blocks.reshape(-1, blocks.shape[-1])
        return np.hstack([x, x * x, np.linalg.norm(x, axis=1, keepdims=True)])

    def fit(self, blocks):
        """Learn position classes from unprotected ``blocks`` ``(N, n, K)``."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        N, n, _ = blocks.shape
        if N < 2:
            raise ValueError(f"the classifier scorer needs at least 2 attacker embeddings, got {N}")
        X, y = self._features(blocks), np.tile(np.arange(n), N)
        if X.shape[0] > self.max_examples:
            keep = np.random.default_rng(self.seed).choice(X.shape[0], self.max_examples,
                                                           replace=False)
            X, y = X[keep], y[keep]
        self.model_ = make_pipeline(
            StandardScaler(), LogisticRegression(C=self.C, max_iter=self.max_iter)
        ).fit(X, y)
        self.n_positions_ = n
        return self

    def block_costs(self, blocks):
        """``(N, n, K)`` protected blocks -> ``(N, n, n)`` costs ``-log p(position | block)``."""
        N, n, _ = blocks.shape
        logp = self.model_.predict_log_proba(self._features(blocks))
        cost = np.full((N * n, n), np.inf)
        cost[:, self.model_.classes_] = -logp
        # positions never seen cannot be chosen; keep costs finite for the assignment solver
        cost[~np.isfinite(cost)] = 1e6
        return cost.reshape(N, n, n)


_SCORERS = {
    "mean": lambda reg: MeanScorer(),
    "gaussian": lambda reg: GaussianScorer(reg=reg),
    "classifier": lambda reg: ClassifierScorer(),
}


# --------------------------------------------------------------------------- the estimator
class Deshuffler(TransformerMixin, BaseEstimator):
    """Restore the block order of PE-MIU protected templates without the key.

    ``fit`` learns per-position block statistics from *unprotected* embeddings of the same
    extractor (the attacker's own faces); ``transform`` assigns each protected block to the
    position it most likely came from (minimum total cost over all block orders) and returns
    the templates in the estimated original order.

    Parameters
    ----------
    block_size : int
        PE-MIU block size ``K``; must divide the embedding size ``d``.
    scorer : {"mean", "gaussian", "classifier"} or object
        ``"mean"``: cost = squared L2 distance to each position's mean block
        (:class:`MeanScorer`). ``"gaussian"``: negative log-likelihood under each position's
        Gaussian with shrunk covariance (:class:`GaussianScorer`, needs >= 2 embeddings).
        ``"classifier"``: ``-log p(position | block)`` of a logistic regression trained on the
        attacker's blocks (:class:`ClassifierScorer`, needs >= 2 embeddings).
        Or any object with ``block_costs(blocks (N, n, K)) -> (N, n, n)`` where
        ``cost[t, i, p]`` is the cost of protected block ``i`` having come from position ``p``
        (e.g. ``-log p(p | block)`` of a learned classifier), a scikit-learn estimator
        (:class:`sklearn.base.BaseEstimator`). If it has ``fit(blocks)``, a
        :func:`~sklearn.base.clone` is fitted on the attacker's blocks ``(N, n, K)``.
    reg : float in [0, 1] or "auto"
        Covariance shrinkage of the ``"gaussian"`` scorer (``"auto"``: Ledoit-Wolf, see
        :class:`GaussianScorer`).
    batch_size : int
        Templates scored per chunk (bounds memory to about ``batch_size * d * n`` floats).

    Attributes
    ----------
    dim_ : int
        Embedding size ``d`` seen in ``fit``.
    n_blocks_ : int
        ``d / K``.
    scorer_ : object
        The fitted scorer.
    n_fit_ : int
        Number of attacker embeddings.
    """

    def __init__(self, block_size=32, scorer="mean", reg=1e-3, batch_size=2048):
        self.block_size = block_size
        self.scorer = scorer
        self.reg = reg
        self.batch_size = batch_size

    def _more_tags(self):
        return {"requires_fit": True, "stateless": False}

    def fit(self, X, y=None):
        """Learn per-position statistics from unprotected embeddings ``X`` ``(N, d)``."""
        X = check_embeddings(X, name="the attacker's embeddings")
        blocks = split_blocks(X, self.block_size, "the attacker's embeddings")
        if isinstance(self.scorer, str):
            if self.scorer not in _SCORERS:
                raise ValueError(
                    f"unknown scorer {self.scorer!r}; use one of {sorted(_SCORERS)} or an object "
                    "with a block_costs(blocks) method"
                )
            scorer = _SCORERS[self.scorer](self.reg)
        elif not hasattr(self.scorer, "block_costs"):
            raise ValueError(
                f"scorer {self.scorer!r} has no block_costs(blocks) method; pass 'mean', "
                "'gaussian' or an object implementing block_costs (see the Deshuffler docstring)"
            )
        elif not hasattr(self.scorer, "get_params"):
            raise ValueError(
                f"scorer {self.scorer!r} is not a scikit-learn estimator (no get_params): "
                "derive its class from sklearn.base.BaseEstimator (its __init__ storing its "
                "parameters), so that fit can clone it"
            )
        else:
            scorer = clone(self.scorer)
        if hasattr(scorer, "fit"):
            scorer.fit(blocks)
        self.scorer_ = scorer
        self.dim_ = X.shape[1]
        self.n_blocks_ = blocks.shape[1]
        self.n_fit_ = X.shape[0]
        return self

    def _check_protected(self, X):
        check_is_fitted(self, "scorer_")
        X = check_embeddings(X, name="the protected templates")
        if X.shape[1] != self.dim_:
            raise ValueError(
                f"the protected templates have d={X.shape[1]} values but the Deshuffler was "
                f"fitted on embeddings of d={self.dim_}; fit it on unprotected embeddings of the "
                "same extractor (same size) as the protected templates"
            )
        return X

    def block_costs(self, X):
        """Cost matrices ``(N, n, n)`` of protected templates ``X`` ``(N, d)``.

        ``cost[t, i, p]``: cost of protected block ``i`` having come from position ``p``.
        """
        X = self._check_protected(X)
        return self.scorer_.block_costs(split_blocks(X, self.block_size, "the protected templates"))

    def _chunks(self, N, per_template=1):
        step = max(1, int(self.batch_size) // per_template)
        return [slice(s, min(s + step, N)) for s in range(0, N, step)]

    def estimate_permutations(self, X, return_confidence=False):
        """Estimate the PE-MIU permutations of protected templates ``X`` ``(N, d)``.

        Returns
        -------
        perms : ndarray of int64, shape (N, n_blocks)
            In the convention of :func:`~bob_facerev.protection.pemiu.permute_blocks`:
            protected block ``i`` is estimated to be original block ``perms[t, i]``.
        confidence : ndarray of float, shape (N,)
            Only with ``return_confidence=True``: the cost gap between the second-best and the
            best block order (``>= 0``; ``inf`` when there is a single block). For the
            ``"gaussian"`` scorer this is the log-likelihood ratio (nats) of the chosen order
            over its strongest rival; for ``"mean"`` it is in squared-L2 units (twice that
            ratio under a unit-variance isotropic Gaussian). Near 0: the order is a coin toss
            between (at least) two candidates; large: the chosen order clearly wins.
            It costs ``n_blocks`` extra assignments per template.
        """
        X = self._check_protected(X)
        N = X.shape[0]
        perms = np.empty((N, self.n_blocks_), dtype=np.int64)
        conf = np.empty(N) if return_confidence else None
        for sl in self._chunks(N, self.n_blocks_):
            cost = self.scorer_.block_costs(split_blocks(X[sl], self.block_size, "templates"))
            perms[sl] = batched_assignment(cost)
            if return_confidence:
                conf[sl] = _runner_up_gap(cost, perms[sl])
        return (perms, conf) if return_confidence else perms

    def confidence(self, X):
        """Per-template confidence ``(N,)``; see :meth:`estimate_permutations`."""
        return self.estimate_permutations(X, return_confidence=True)[1]

    def estimate_shared_permutation(self, X):
        """One permutation ``(n_blocks,)`` for templates protected with the *same* key.

        Against fixed-permutation PE-MIU the attacker pools all protected templates: the cost
        of an order is the sum of the templates' costs (their joint negative log-likelihood for
        the ``"gaussian"`` scorer), minimised with one assignment.
        """
        X = self._check_protected(X)
        total = np.zeros((self.n_blocks_, self.n_blocks_))
        for sl in self._chunks(X.shape[0]):
            total += self.scorer_.block_costs(split_blocks(X[sl], self.block_size, "templates")).sum(0)
        return batched_assignment(total[None])[0]

    def transform(self, X):
        """Protected templates ``(N, d)`` -> templates in the estimated original order ``(N, d)``."""
        X = self._check_protected(X)
        perms = self.estimate_permutations(X)
        return permute_blocks(X, inverse_permutations(perms), self.block_size)


def _runner_up_gap(cost, perm):
    """Cost of the second-best assignment minus the best one, per template.

    The runner-up differs from the optimum in at least one row, so it is the best assignment
    with one optimal edge forbidden, minimised over the ``n`` edges (first step of Murty's
    ranking of assignments).
    """
    B, n, _ = cost.shape
    rows = np.arange(n)
    best = np.take_along_axis(cost, perm[..., None], axis=2)[..., 0].sum(1)
    if n == 1:
        return np.full(B, np.inf)
    big = (np.abs(cost).max(axis=(1, 2)) + 1.0) * (n + 1) * 4.0
    rep = np.repeat(cost[:, None], n, axis=1)  # (B, n forbidden edge, n, n)
    tb = np.arange(B)[:, None]
    rep[tb, rows[None], rows[None], perm] = big[:, None]
    alt = batched_assignment(rep.reshape(B * n, n, n)).reshape(B, n, n)
    alt_cost = np.take_along_axis(rep, alt[..., None], axis=3)[..., 0].sum(2).min(1)
    return np.maximum(alt_cost - best, 0.0)


def inverse_permutations(perms):
    """Inverse of permutations ``(..., n)`` along the last axis."""
    perms = np.asarray(perms)
    return np.argsort(perms, axis=-1).astype(np.int64)
