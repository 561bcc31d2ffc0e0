"""Soft-biometric leakage: how well gender can be predicted from (protected) face templates.

The study (Osorio-Roig et al., WIFS 2023) trains scikit-learn classifiers on embeddings and
reports the cross-validated accuracy: 0.5 means the templates hide gender, 1.0 that they give it
away. This module does the same over any ``(X, y)``:

* :func:`gender_leakage`: one feature matrix, classifiers x stratified folds -> mean and std.
  Threat model "clean-train" trains each fold on other features (``X_train``: the clean
  templates) than it tests on (``X``: the protected ones), fold for fold.
* :func:`leakage_table`: the study's table: unprotected, PE-MIU random per template for each block
  size K, and embeddings of reconstructed faces, under both threat models, on a gender-balanced
  sample.
* :func:`plot_leakage`: a bar plot of that table.

Classifiers (:data:`CLASSIFIERS`): ``svc-poly``, ``svc-rbf``, ``svc-sigmoid`` (``SVC(kernel=...,
random_state=42)`` with default hyper-parameters, as in the study), ``knn3`` (k = 3 nearest
neighbours after ``StandardScaler``) and ``logreg`` (logistic regression, ``max_iter=1000``).
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from ..utils import atomic_path
from .tables import markdown_table

logger = logging.getLogger(__name__)

__all__ = [
    "CLASSIFIERS",
    "THREAT_MODELS",
    "make_classifier",
    "parse_gender",
    "balanced_indices",
    "stratified_folds",
    "gender_leakage",
    "leakage_table",
    "format_table",
    "plot_leakage",
]

#: classifier names, in the order of the study's table
CLASSIFIERS = ("svc-poly", "svc-rbf", "svc-sigmoid", "knn3", "logreg")

#: threat models: ``protected`` = trained and tested on protected templates (an attacker who knows
#: the protection); ``clean-train`` = trained on clean templates, tested on protected ones
THREAT_MODELS = ("protected", "clean-train")

_MALE = {"m", "male", "man"}
_FEMALE = {"f", "female", "woman"}


def make_classifier(name, seed=42):
    """A fresh, unfitted classifier by name (see :data:`CLASSIFIERS`).

    Parameters
    ----------
    name : str
    seed : int
        ``random_state`` of the SVCs (the study used 42).

    Returns
    -------
    sklearn estimator
    """
    if name.startswith("svc-"):
        kernel = name[4:]
        if kernel in ("poly", "rbf", "sigmoid", "linear"):
            return SVC(kernel=kernel, random_state=seed)
    elif name == "knn3":
        return make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=3))
    elif name == "logreg":
        return LogisticRegression(max_iter=1000)
    raise ValueError(f"unknown classifier {name!r}; choose from {CLASSIFIERS} (or svc-linear)")


def parse_gender(values):
    """Gender labels to integer classes; unknown values become -1.

    ``"M"``/``"male"`` -> 1 and ``"F"``/``"female"`` -> 0 (any case); the integers 0 and 1 (or
    the strings ``"0"``/``"1"``) are kept as they are, whatever convention they follow (UTKFace:
    0 = male): accuracy does not depend on which class is which. Anything else (``""``, ``None``,
    NaN, UTKFace's stray ``3``) is unknown.

    Parameters
    ----------
    values : sequence, shape (N,)

    Returns
    -------
    ndarray of int64, shape (N,)
        0, 1 or -1 (unknown).
    """
    out = np.full(len(values), -1, dtype=np.int64)
    for i, v in enumerate(values):
        if isinstance(v, bytes):
            v = v.decode()
        if isinstance(v, str):
            s = v.strip().lower()
            if s in _MALE:
                out[i] = 1
            elif s in _FEMALE:
                out[i] = 0
            elif s in ("0", "1"):
                out[i] = int(s)
        elif isinstance(v, (int, np.integer, float, np.floating)) and v in (0, 1):
            out[i] = int(v)
    return out


def _check_labels(y, name="y"):
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"{name} must be 1-D (one label per embedding), got shape {y.shape}")
    classes = np.unique(y)
    if len(classes) != 2:
        raise ValueError(
            f"{name} must hold exactly two classes (gender), found {classes.tolist()[:10]}; drop "
            "samples of unknown gender first (parse_gender marks them -1)"
        )
    return y


def balanced_indices(y, seed=42, n_per_class=None):
    """Indices of a class-balanced subset: the majority class is undersampled at random.

    Parameters
    ----------
    y : array_like, shape (N,)
        Two classes.
    seed : int
    n_per_class : int, optional
        Samples per class (at most the minority's count; default: the minority's count).

    Returns
    -------
    ndarray of int64, shape (2 * n,)
        Sorted row indices; reproducible under ``seed``.
    """
    y = _check_labels(y)
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(y, return_counts=True)
    n = counts.min()
    if n_per_class is not None:
        if n_per_class > n:
            raise ValueError(
                f"n_per_class={n_per_class} is more than the {n} samples of the smaller class"
            )
        n = int(n_per_class)
    picked = [
        rng.choice(np.flatnonzero(y == c), size=n, replace=False) if k > n else np.flatnonzero(y == c)
        for c, k in zip(classes, counts)
    ]
    return np.sort(np.concatenate(picked)).astype(np.int64)


def stratified_folds(y, n_splits=10, seed=42):
    """Stratified, shuffled K-fold split: list of ``(train_index, test_index)``.

    ``StratifiedKFold(n_splits, shuffle=True, random_state=seed)``: every test fold keeps the
    class ratio of ``y`` (to one sample), and the same seed gives the same folds.
    """
    y = _check_labels(y)
    if np.bincount(np.unique(y, return_inverse=True)[1]).min() < n_splits:
        raise ValueError(
            f"n_splits={n_splits} is more than the {np.bincount(np.unique(y, return_inverse=True)[1]).min()}"
            " samples of the smaller class; use fewer folds or more samples"
        )
    skf = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return list(skf.split(np.zeros((len(y), 1)), y))


def gender_leakage(
    X, y, classifiers=CLASSIFIERS, n_splits=10, seed=42, X_train=None, folds=None
):
    """Cross-validated gender prediction accuracy per classifier.

    Parameters
    ----------
    X : array_like, shape (N, d)
        Features the classifiers are tested on (e.g. protected templates).
    y : array_like, shape (N,)
        Gender labels, two classes.
    classifiers : sequence of str
        Names from :data:`CLASSIFIERS`.
    n_splits : int
        Number of stratified folds.
    seed : int
        Seed of the folds and of the SVCs' ``random_state``.
    X_train : array_like, shape (N, d), optional
        Features the classifiers are *trained* on, row for row the same samples as ``X`` (threat
        model "clean-train": train folds clean, test folds protected). Default: ``X``.
    folds : list of (train_index, test_index), optional
        Precomputed folds (default :func:`stratified_folds` ``(y, n_splits, seed)``).

    Returns
    -------
    pandas.DataFrame
        Index ``classifier``; columns ``mean``, ``std`` (over folds, ``ddof=0``) and ``folds``
        (the per-fold accuracies, a list).
    """
    X = np.asarray(X)
    y = _check_labels(y)
    if X.ndim != 2 or X.shape[0] != len(y):
        raise ValueError(f"X must be (N, d) with N = len(y) = {len(y)}, got shape {X.shape}")
    X_train = X if X_train is None else np.asarray(X_train)
    if X_train.shape != X.shape:
        raise ValueError(
            f"X_train must have the shape of X {X.shape} (the same samples), got {X_train.shape}"
        )
    folds = stratified_folds(y, n_splits, seed) if folds is None else folds
    rows = {}
    for name in classifiers:
        proto = make_classifier(name, seed)
        accs = []
        smallest = min(len(train) for train, _ in folds)
        note = ""
        if name == "knn3" and smallest < 3:
            # tiny sets (the demo): k cannot exceed the training fold
            logger.warning("knn3 with %d training samples per fold: k = %d", smallest, smallest)
            proto.set_params(kneighborsclassifier__n_neighbors=smallest)
            note = (f"k = {smallest}: the training folds have {smallest} samples, so every "
                    "neighbour votes (a tie between the genders: chance)")
        for train, test in folds:
            clf = clone(proto).fit(X_train[train], y[train])
            accs.append(float(np.mean(clf.predict(X[test]) == y[test])))
        rows[name] = {"mean": float(np.mean(accs)), "std": float(np.std(accs)), "folds": accs,
                      "note": note}
    out = pd.DataFrame.from_dict(rows, orient="index")
    out.index.name = "classifier"
    return out


def leakage_table(
    embeddings,
    gender,
    keys=None,
    block_sizes=(16, 32),
    reconstructed=None,
    classifiers=CLASSIFIERS,
    threat_models=THREAT_MODELS,
    n_splits=10,
    seed=42,
    balance=True,
    pemiu_seed=0,
    n_per_gender=None,
    progress=True,
):
    """The leakage table: protections x threat models x classifiers.

    Parameters
    ----------
    embeddings : array_like, shape (N, d)
        Clean (unprotected) templates.
    gender : sequence, shape (N,)
        Gender labels (see :func:`parse_gender`); samples of unknown gender are left out.
    keys : sequence, shape (N,), optional
        Sample keys, which seed each template's PE-MIU permutation (default: row numbers).
    block_sizes : sequence of int
        PE-MIU block sizes K (random permutation per template); each must divide d.
    reconstructed : array_like, shape (N, d'), optional
        Embeddings of the faces reconstructed (from protected templates) for the same samples.
        Under "clean-train" they are tested with classifiers trained on ``embeddings`` (needs
        d' = d).
    classifiers, n_splits, seed
        As in :func:`gender_leakage`; ``seed`` also draws the balanced sample.
    threat_models : sequence of str
        Subset of :data:`THREAT_MODELS`.
    balance : bool
        Undersample the majority gender (:func:`balanced_indices`).
    pemiu_seed : int
        Seed of the PE-MIU permutations.
    n_per_gender : int, optional
        With ``balance``: samples per gender (default: all of the smaller gender).
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    pandas.DataFrame
        Long format, one row per (protection, threat_model, classifier) with ``mean``, ``std``,
        ``n`` (samples) and ``n_class0``/``n_class1`` (per gender class). ``protection`` is ``"unprotected"`` (threat model ``"none"``), ``"pemiu-k{K}"`` or
        ``"reconstructed"``.
    """
    from tqdm import tqdm

    X, y, keys, R = _leakage_samples(embeddings, gender, keys, reconstructed, threat_models,
                                     balance, seed, n_per_gender)
    folds = stratified_folds(y, n_splits, seed)
    jobs = _leakage_jobs(X, keys, R, block_sizes, threat_models, pemiu_seed)
    out = []
    n0, n1 = int(np.sum(y == 0)), int(np.sum(y == 1))
    for protection, tm, Xt, Xtr in tqdm(jobs, desc="gender leakage", disable=not progress):
        res = gender_leakage(Xt, y, classifiers, n_splits, seed, X_train=Xtr, folds=folds)
        for clf, r in res.iterrows():
            out.append(
                dict(
                    protection=protection,
                    threat_model=tm,
                    classifier=clf,
                    mean=r["mean"],
                    std=r["std"],
                    n=len(y),
                    n_class0=n0,
                    n_class1=n1,
                    note=r.get("note", ""),
                )
            )
    return pd.DataFrame(out)


def _leakage_samples(embeddings, gender, keys, reconstructed, threat_models, balance, seed,
                     n_per_gender):
    """The checked inputs of :func:`leakage_table`, restricted to the (balanced) known genders.

    Returns ``(X, y, keys, R)``: templates, gender classes, key strings, reconstructed
    embeddings (or None), one row per kept sample.
    """
    X = np.asarray(embeddings)
    if X.ndim != 2:
        raise ValueError(f"embeddings must be (N, d), got shape {X.shape}")
    labels = parse_gender(list(gender))
    if len(labels) != len(X):
        raise ValueError(f"got {len(labels)} gender labels for {len(X)} embeddings")
    for tm in threat_models:
        if tm not in THREAT_MODELS:
            raise ValueError(f"unknown threat model {tm!r}; choose from {THREAT_MODELS}")
    keys = np.arange(len(X)).astype(str) if keys is None else np.asarray([str(k) for k in keys])
    R = None if reconstructed is None else np.asarray(reconstructed)
    if R is not None and len(R) != len(X):
        raise ValueError(
            f"reconstructed has {len(R)} rows for {len(X)} embeddings; they must be the same samples"
        )
    known = np.flatnonzero(labels >= 0)
    if len(known) < len(labels):
        logger.warning("%d samples of unknown gender left out", len(labels) - len(known))
    rows = known[balanced_indices(labels[known], seed, n_per_gender)] if balance else known
    return X[rows], labels[rows], keys[rows], None if R is None else R[rows]


def _leakage_jobs(X, keys, R, block_sizes, threat_models, pemiu_seed):
    """``(protection, threat model, test templates, training templates or None)`` per row group."""
    from bob_facerev.protection.pemiu import PEMIU

    jobs = [("unprotected", "none", X, None)]
    for k in block_sizes:
        P = PEMIU(block_size=int(k), moved_blocks=None, seed=pemiu_seed).transform(X, keys=list(keys))
        for tm in threat_models:
            jobs.append((f"pemiu-k{k}", tm, P, X if tm == "clean-train" else None))
    if R is not None:
        for tm in threat_models:
            if tm == "clean-train" and R.shape[1] != X.shape[1]:
                logger.warning("reconstructed embeddings are %d-d, clean ones %d-d: no clean-train", R.shape[1], X.shape[1])
                continue
            jobs.append(("reconstructed", tm, R, X if tm == "clean-train" else None))
    return jobs


def format_table(table, digits=3):
    """Markdown table: one row per (protection, threat model), one column per classifier,
    cells ``mean ± std``."""
    t = table.copy()
    t["cell"] = [f"{m:.{digits}f} ± {s:.{digits}f}" for m, s in zip(t["mean"], t["std"])]
    order = list(dict.fromkeys(t["classifier"]))
    wide = t.pivot_table(
        index=["protection", "threat_model"], columns="classifier", values="cell", aggfunc="first", sort=False
    )[order]
    cells = pd.DataFrame(
        [[prot, tm, *(row[c] for c in order)] for (prot, tm), row in wide.iterrows()],
        columns=["protection", "threat model", *order],
    )
    lines = [markdown_table(cells, numparse=False)]
    notes = [_n_text(table)] + _notes(table)
    notes = [n for n in notes if n]
    return "\n".join(lines + ([""] + notes if notes else []))


def plot_leakage(table, path, title="Gender prediction accuracy"):
    """Bar plot (accuracy ± std per classifier, grouped by protection and threat model), written
    atomically to ``path`` (PNG). The title gives the number of samples (per gender); the notes
    of the table (e.g. a k-NN whose k was cut to a tiny training fold) are printed under it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = list(dict.fromkeys(zip(table["protection"], table["threat_model"])))
    classifiers = list(dict.fromkeys(table["classifier"]))
    notes = _notes(table)
    width = 0.8 / len(classifiers)
    fig, ax = plt.subplots(figsize=(max(6, 1.1 * len(groups) + 2), 4.5 + 0.3 * len(notes)))
    x = np.arange(len(groups))
    for j, clf in enumerate(classifiers):
        sub = table[table["classifier"] == clf].set_index(["protection", "threat_model"])
        means = [sub.loc[g, "mean"] if g in sub.index else np.nan for g in groups]
        stds = [sub.loc[g, "std"] if g in sub.index else 0 for g in groups]
        label = clf + (f" ({notes.index(notes_of(table, clf)) + 1})" if notes_of(table, clf)
                       else "")
        ax.bar(x + (j - (len(classifiers) - 1) / 2) * width, means, width, yerr=stds, label=label,
               capsize=2)
    ax.axhline(0.5, color="k", lw=0.8, ls="--")
    ax.set_xticks(x)
    ax.set_xticklabels([p if tm == "none" else f"{p}\n{tm}" for p, tm in groups], fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("accuracy (dashed: chance)")
    ax.set_title(f"{title}\n{_n_text(table)}", fontsize=10)
    ax.legend(fontsize=7, ncol=len(classifiers), loc="upper center", bbox_to_anchor=(0.5, -0.2))
    if notes:
        fig.text(0.01, 0.01, "\n".join(f"({i + 1}) {n}" for i, n in enumerate(notes)), fontsize=7,
                 va="bottom", wrap=True)
    fig.tight_layout(rect=(0, 0.06 * len(notes), 1, 1))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return path


def _n_text(table):
    """``"n = 4 samples (2 per gender)"``, from the table's counts."""
    if not {"n", "n_class0", "n_class1"} <= set(table.columns) or table.empty:
        return ""
    n, a, b = (int(table[c].iloc[0]) for c in ("n", "n_class0", "n_class1"))
    per = f"{a} per gender" if a == b else f"{a} and {b} per gender"
    return f"n = {n} samples ({per})"


def notes_of(table, classifier):
    """The note of a classifier's rows (``""`` when none)."""
    if "note" not in table.columns:
        return ""
    notes = [n for n in table.loc[table["classifier"] == classifier, "note"] if n]
    return f"{classifier}: {notes[0]}" if notes else ""


def _notes(table):
    classifiers = dict.fromkeys(table["classifier"])
    return list(dict.fromkeys(n for n in map(lambda c: notes_of(table, c), classifiers) if n))


def samples_gender(samples, source="the database"):
    """The ``gender`` attribute of Bob samples, or a clear error when the metadata is missing.

    Parameters
    ----------
    samples : sequence of bob.pipelines.Sample
    source : str
        Named in the error message (e.g. the database resource).

    Returns
    -------
    list
        One raw gender value per sample (see :func:`parse_gender`).

    Raises
    ------
    ValueError
        When no sample is given, or samples lack a ``gender`` attribute, or none has a known
        gender.
    """
    if len(samples) == 0:
        raise ValueError(f"{source} has no samples")
    missing = [s for s in samples if not hasattr(s, "gender")]
    if missing:
        example = getattr(missing[0], "key", None) or getattr(missing[0], "path", "?")
        raise ValueError(
            f"{source} has no gender metadata: {len(missing)} of {len(samples)} samples (e.g. "
            f"{example!r}) lack a `gender` attribute. Use a database whose CSV protocol has a "
            "`gender` column (M/F), e.g. facerev-demo or facerev-lfw-attack, or pass "
            "--embeddings FILE.npz with a `gender` array."
        )
    values = [s.gender for s in samples]
    if not np.any(parse_gender(values) >= 0):
        raise ValueError(
            f"{source} has a `gender` attribute but no known value (M/F/0/1) in it; "
            f"found e.g. {values[:3]!r}"
        )
    return values
