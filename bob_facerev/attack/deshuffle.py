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
  object with the same ``block_costs`` method (and optionally ``fit(blocks)``) plugs in.
"""

from __future__ import annotations

import copy
import os

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils.validation import check_is_fitted

from bob_facerev.protection.assignment import batched_assignment
from bob_facerev.protection.pemiu import check_embeddings, n_blocks, permute_blocks
from bob_facerev.utils import atomic_path

__all__ = [
    "MeanScorer",
    "GaussianScorer",
    "ClassifierScorer",
    "Deshuffler",
    "inverse_permutations",
    "true_permutations",
    "placement_accuracy",
    "exact_restoration_rate",
    "row_cosine",
    "evaluate_deshuffling",
    "learning_curve",
    "markdown_table",
    "plot_learning_curve",
    "DEFAULT_SIZES",
]

#: attacker set sizes of the learning curve (those above the available number are skipped)
DEFAULT_SIZES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)


# --------------------------------------------------------------------------- input checks
def _blocks(X, block_size, name):
    """Split ``(N, d)`` into ``(N, n, K)`` float64 blocks; K must divide d."""
    n = n_blocks(X.shape[1], block_size)
    return X.reshape(X.shape[0], n, block_size).astype(np.float64, copy=False)


# --------------------------------------------------------------------------- scorers
class MeanScorer:
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


class GaussianScorer:
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


class ClassifierScorer:
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
        (e.g. ``-log p(p | block)`` of a learned classifier). If it has ``fit(blocks)``, a copy
        is fitted on the attacker's blocks ``(N, n, K)``.
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
        blocks = _blocks(X, self.block_size, "the attacker's embeddings")
        if isinstance(self.scorer, str):
            if self.scorer not in _SCORERS:
                raise ValueError(
                    f"unknown scorer {self.scorer!r}; use one of {sorted(_SCORERS)} or an object "
                    "with a block_costs(blocks) method"
                )
            scorer = _SCORERS[self.scorer](self.reg)
        elif hasattr(self.scorer, "block_costs"):
            scorer = copy.deepcopy(self.scorer)
        else:
            raise ValueError(
                f"scorer {self.scorer!r} has no block_costs(blocks) method; pass 'mean', "
                "'gaussian' or an object implementing block_costs (see the Deshuffler docstring)"
            )
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
        return self.scorer_.block_costs(_blocks(X, self.block_size, "the protected templates"))

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
            cost = self.scorer_.block_costs(_blocks(X[sl], self.block_size, "templates"))
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
            total += self.scorer_.block_costs(_blocks(X[sl], self.block_size, "templates")).sum(0)
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


# --------------------------------------------------------------------------- metrics
def inverse_permutations(perms):
    """Inverse of permutations ``(..., n)`` along the last axis."""
    perms = np.asarray(perms)
    return np.argsort(perms, axis=-1).astype(np.int64)


def true_permutations(original, protected, block_size):
    """Recover the permutations that turned ``original`` into ``protected`` (both ``(N, d)``).

    Found by matching blocks exactly, independently of how the protection drew them, so the
    evaluation cannot inherit a bug of the protection. Raises ValueError when a protected block
    is not a block of its original template.
    """
    o = _blocks(check_embeddings(original, name="original"), block_size, "original")
    p = _blocks(check_embeddings(protected, name="protected"), block_size, "protected")
    if o.shape != p.shape:
        raise ValueError(f"original {o.shape} and protected {p.shape} blocks differ in shape")
    d2 = ((p[:, :, None, :] - o[:, None, :, :]) ** 2).sum(-1)  # (N, i protected, j original)
    perms = d2.argmin(-1)
    if not np.allclose(np.take_along_axis(d2, perms[..., None], -1), 0.0):
        raise ValueError("protected templates are not block permutations of the originals")
    return perms.astype(np.int64)


def placement_accuracy(estimated, true):
    """Share of blocks placed at their original position (chance: ``1 / n_blocks``)."""
    return float(np.mean(np.asarray(estimated) == np.asarray(true)))


def exact_restoration_rate(estimated, true):
    """Share of templates whose every block is placed correctly."""
    est, true = np.atleast_2d(estimated), np.atleast_2d(true)
    return float(np.mean(np.all(est == true, axis=-1)))


def row_cosine(a, b):
    """Cosine similarity between matching rows of ``a`` and ``b`` ``(N, d)`` -> ``(N,)``."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    num = np.einsum("nd,nd->n", a, b)
    den = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return num / np.maximum(den, np.finfo(float).tiny)


def evaluate_deshuffling(deshuffler, original, protected, true_perms=None, shared=False):
    """Placement metrics of a fitted :class:`Deshuffler` on one protected set.

    Parameters
    ----------
    deshuffler : Deshuffler (fitted)
    original, protected : ndarray (N, d)
        Victims' unprotected templates and their PE-MIU versions.
    true_perms : ndarray (N, n), optional
        The protection's permutations; recovered with :func:`true_permutations` if omitted.
    shared : bool
        Estimate one permutation for all templates (fixed-key PE-MIU) instead of one each.

    Returns
    -------
    dict
        ``placement`` (share of blocks placed correctly), ``exact`` (share of templates restored
        exactly), ``cosine`` (mean cosine restored vs. original), ``cosine_protected`` (mean
        cosine protected vs. original: the no-attack baseline), ``chance`` (``1 / n``).
    """
    K = deshuffler.block_size
    if true_perms is None:
        true_perms = true_permutations(original, protected, K)
    if shared:
        est = np.broadcast_to(deshuffler.estimate_shared_permutation(protected), true_perms.shape)
    else:
        est = deshuffler.estimate_permutations(protected)
    restored = permute_blocks(np.asarray(protected), inverse_permutations(est), K)
    return {
        "placement": placement_accuracy(est, true_perms),
        "exact": exact_restoration_rate(est, true_perms),
        "cosine": float(row_cosine(restored, original).mean()),
        "cosine_protected": float(row_cosine(protected, original).mean()),
        "chance": 1.0 / true_perms.shape[1],
    }


def learning_curve(
    attacker,
    victims,
    block_sizes=(8, 16, 32, 64),
    scorers=("mean", "gaussian"),
    sizes=DEFAULT_SIZES,
    protection="random",
    moved_blocks=None,
    repeats=3,
    reg=1e-3,
    seed=0,
    progress=True,
):
    """Placement metrics as a function of the number of attacker embeddings.

    The victims are protected with :class:`~bob_facerev.protection.pemiu.PEMIU` (one random
    permutation per template, or one fixed permutation moving ``moved_blocks`` blocks); for
    every block size, scorer and attacker-set size, ``repeats`` random attacker subsets are
    drawn, a :class:`Deshuffler` is fitted on each and evaluated with
    :func:`evaluate_deshuffling`.

    Parameters
    ----------
    attacker : ndarray (A, d)
        Unprotected embeddings available to the attacker (disjoint from the victims).
    victims : ndarray (V, d)
    block_sizes : sequence of int
    scorers : sequence of str
    sizes : sequence of int
        Attacker-set sizes; those above ``A`` are dropped, ``A`` itself is always added.
        The ``"gaussian"`` scorer skips sizes below 2.
    protection : {"random", "fixed"}
    moved_blocks : int, optional
        ``P`` for fixed protection (``None``: all ``n`` blocks move, whatever ``K``).
    repeats : int
        Attacker subsets per size (one when the size is ``A``).
    seed : int
        Seeds the protection and the subsets.

    Returns
    -------
    pandas.DataFrame
        One row per (block_size, scorer, attack, n_attacker), with columns ``block_size``,
        ``n_blocks``, ``scorer``, ``attack`` (``"per-template"``; also ``"shared"`` for fixed
        protection), ``protection``, ``n_attacker``, ``repeats``, ``placement``,
        ``placement_std``, ``exact``, ``cosine``, ``cosine_protected``, ``chance``.
    """
    import pandas as pd
    from tqdm import tqdm

    from bob_facerev.protection.pemiu import PEMIU

    if protection not in ("random", "fixed"):
        raise ValueError(f"protection must be 'random' or 'fixed', got {protection!r}")
    attacker = check_embeddings(attacker, name="the attacker's embeddings")
    victims = check_embeddings(victims, name="the victims' embeddings")
    if attacker.shape[1] != victims.shape[1]:
        raise ValueError(
            f"attacker (d={attacker.shape[1]}) and victim (d={victims.shape[1]}) embeddings "
            "differ in size; use embeddings of the same extractor"
        )
    A = attacker.shape[0]
    sizes = sorted({int(s) for s in sizes if 0 < s < A} | {A})
    rng = np.random.default_rng(seed)
    attacks = ["per-template"] + (["shared"] if protection == "fixed" else [])
    todo = [(K, s, size) for K in block_sizes for s in scorers for size in sizes]
    rows = []
    protected = {}
    for K, scorer, size in tqdm(todo, desc="deshuffle learning curve", disable=not progress):
        if K not in protected:
            nb = n_blocks(victims.shape[1], K)  # a clear error for a bad K
            if protection == "fixed":
                pe = PEMIU(block_size=K, moved_blocks=nb if moved_blocks is None else moved_blocks,
                           seed=seed)
            else:
                pe = PEMIU(block_size=K, seed=seed)
            Y = pe.transform(victims, keys=np.arange(victims.shape[0]))
            protected[K] = (Y, true_permutations(victims, Y, K))
        if scorer in ("gaussian", "classifier") and size < 2:
            continue
        Y, true = protected[K]
        reps = 1 if size == A else repeats
        results = {a: [] for a in attacks}
        for _ in range(reps):
            subset = attacker[rng.choice(A, size=size, replace=False)]
            model = Deshuffler(block_size=K, scorer=scorer, reg=reg).fit(subset)
            for a in attacks:
                results[a].append(
                    evaluate_deshuffling(model, victims, Y, true, shared=(a == "shared"))
                )
        for a, res in results.items():
            mean = {k: float(np.mean([r[k] for r in res])) for k in res[0]}
            rows.append({
                "block_size": K, "n_blocks": victims.shape[1] // K, "scorer": scorer,
                "attack": a, "protection": protection, "n_attacker": size, "repeats": reps,
                "placement": mean["placement"],
                "placement_std": float(np.std([r["placement"] for r in res])),
                "exact": mean["exact"], "cosine": mean["cosine"],
                "cosine_protected": mean["cosine_protected"], "chance": mean["chance"],
            })
    return pd.DataFrame(rows)


def markdown_table(table, columns=("block_size", "n_blocks", "scorer", "attack", "n_attacker",
                                   "placement", "exact", "cosine", "cosine_protected", "chance")):
    """A learning-curve DataFrame as a markdown table (rates in %, cosines to 3 decimals)."""
    columns = [c for c in columns if c in table.columns]
    out = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for _, r in table.iterrows():
        cells = []
        for c in columns:
            v = r[c]
            if c in ("placement", "exact", "chance"):
                cells.append(f"{100 * v:.1f}%")
            elif c.startswith("cosine"):
                cells.append(f"{v:.3f}")
            else:
                cells.append(str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def plot_learning_curve(table, path, title=None):
    """Plot placement, exact restoration and cosine vs. attacker-set size; save to ``path``.

    Written atomically (:func:`bob_facerev.utils.atomic_path`). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metrics = [("placement", "blocks placed correctly"), ("exact", "templates restored exactly"),
               ("cosine", "cosine restored vs. original")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    groups = table.groupby(["block_size", "scorer", "attack"], sort=True)
    colors = {K: f"C{i}" for i, K in enumerate(sorted(table["block_size"].unique()))}
    styles = {s: ls for s, ls in zip(sorted(table["scorer"].unique()), ["-", "--", ":", "-."])}
    for (K, scorer, attack), g in groups:
        g = g.sort_values("n_attacker")
        label = f"K={K} ({g['n_blocks'].iloc[0]} blocks), {scorer}" + (
            "" if attack == "per-template" else f", {attack}")
        marker = "o" if attack == "per-template" else "s"
        for ax, (m, _) in zip(axes, metrics):
            ax.plot(g["n_attacker"], g[m], styles[scorer], color=colors[K], marker=marker,
                    ms=3, label=label)
    for K in colors:
        sub = table[table["block_size"] == K]
        axes[0].axhline(sub["chance"].iloc[0], color=colors[K], lw=0.6, alpha=0.5)
        axes[2].axhline(sub["cosine_protected"].iloc[0], color=colors[K], lw=0.6, alpha=0.5)
    for ax, (_, name) in zip(axes, metrics):
        ax.set_xscale("log")
        ax.set_xlabel("attacker embeddings")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.02)
    axes[1].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Key-free de-shuffling of PE-MIU (thin lines: chance / no attack)")
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:] or "png")
    plt.close(fig)
    return path
