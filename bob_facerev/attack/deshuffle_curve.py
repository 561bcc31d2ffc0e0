"""The learning-curve experiment of key-free de-shuffling: placement vs attacker-set size.

:func:`learning_curve` protects victims with PE-MIU and, for every block size, scorer and
number of attacker embeddings, fits :class:`~bob_facerev.attack.deshuffle.Deshuffler` on random
attacker subsets and measures it with
:func:`~bob_facerev.attack.deshuffle_metrics.evaluate_deshuffling`. ``bob facerev deshuffle``
runs it; :mod:`bob_facerev.attack.deshuffle_report` renders its table and plot.
"""

import numpy as np

from bob_facerev.protection.pemiu import check_embeddings, n_blocks

from .deshuffle import Deshuffler
from .deshuffle_metrics import evaluate_deshuffling, true_permutations

#: attacker set sizes of the learning curve (those above the available number are skipped)
DEFAULT_SIZES = (1, 3, 10, 30, 100, 300, 1000, 3000, 10000)


def _check_sets(attacker, victims, protection):
    if protection not in ("random", "fixed"):
        raise ValueError(f"protection must be 'random' or 'fixed', got {protection!r}")
    attacker = check_embeddings(attacker, name="the attacker's embeddings")
    victims = check_embeddings(victims, name="the victims' embeddings")
    if attacker.shape[1] != victims.shape[1]:
        raise ValueError(
            f"attacker (d={attacker.shape[1]}) and victim (d={victims.shape[1]}) embeddings "
            "differ in size; use embeddings of the same extractor"
        )
    return attacker, victims


def _protect(victims, K, protection, moved_blocks, seed):
    """The victims protected with block size ``K`` and their true permutations."""
    from bob_facerev.protection.setting import Protection

    nb = n_blocks(victims.shape[1], K)  # a clear error for a bad K
    if protection == "fixed":
        setting = Protection.fixed(K, nb if moved_blocks is None else moved_blocks)
    else:
        setting = Protection.random(K)
    Y = setting.transformer(seed).transform(victims, keys=np.arange(victims.shape[0]))
    return Y, true_permutations(victims, Y, K)


def _evaluate_subsets(attacker, victims, Y, true, K, scorer, size, reps, attacks, reg, rng):
    """``{attack: [metrics of each of reps random attacker subsets of this size]}``."""
    results = {a: [] for a in attacks}
    for _ in range(reps):
        subset = attacker[rng.choice(attacker.shape[0], size=size, replace=False)]
        model = Deshuffler(block_size=K, scorer=scorer, reg=reg).fit(subset)
        for a in attacks:
            results[a].append(
                evaluate_deshuffling(model, victims, Y, true, shared=(a == "shared"))
            )
    return results


def _curve_row(res, **labels):
    """One row of the table: the metrics of ``res`` (list of dicts) averaged, and ``labels``."""
    mean = {k: float(np.mean([r[k] for r in res])) for k in res[0]}
    return {
        **labels,
        "placement": mean["placement"],
        "placement_std": float(np.std([r["placement"] for r in res])),
        "exact": mean["exact"], "cosine": mean["cosine"],
        "cosine_protected": mean["cosine_protected"], "chance": mean["chance"],
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

    attacker, victims = _check_sets(attacker, victims, protection)
    A = attacker.shape[0]
    sizes = sorted({int(s) for s in sizes if 0 < s < A} | {A})
    rng = np.random.default_rng(seed)
    attacks = ["per-template"] + (["shared"] if protection == "fixed" else [])
    todo = [(K, s, size) for K in block_sizes for s in scorers for size in sizes]
    rows = []
    protected = {}
    for K, scorer, size in tqdm(todo, desc="deshuffle learning curve", disable=not progress):
        if K not in protected:
            protected[K] = _protect(victims, K, protection, moved_blocks, seed)
        if scorer in ("gaussian", "classifier") and size < 2:
            continue
        Y, true = protected[K]
        reps = 1 if size == A else repeats
        results = _evaluate_subsets(attacker, victims, Y, true, K, scorer, size, reps, attacks,
                                    reg, rng)
        for a, res in results.items():
            rows.append(_curve_row(
                res, block_size=K, n_blocks=victims.shape[1] // K, scorer=scorer, attack=a,
                protection=protection, n_attacker=size, repeats=reps,
            ))
    return pd.DataFrame(rows)
