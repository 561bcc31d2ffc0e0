"""Explainability: which pixels drive a comparison score, which embedding blocks carry identity.

* :func:`score_saliency`: gradient of the cosine score between a face's embedding and a
  reference embedding w.r.t. the face's pixels, for any white-box extractor (a torch module
  mapping ``(N, 3, h, w)`` RGB in ``[0, 1]`` to ``(N, d)``, e.g.
  :func:`bob_facerev.face.network.load_embedding_network`): the plain input gradient or
  integrated gradients (Sundararajan et al., ICML 2017);
* :func:`block_importance`: the drop in genuine-vs-impostor separability (ROC AUC of cosine
  scores) and in cross-validated gender accuracy when one PE-MIU block position is shuffled
  across templates or zeroed.
"""

import numpy as np
import pandas as pd

__all__ = ["SALIENCY_METHODS", "score_saliency", "verification_auc", "gender_accuracy",
           "block_importance", "plot_saliency", "plot_block_importance"]

SALIENCY_METHODS = ("gradient", "integrated")


def _as_batch(images):
    import torch

    x = torch.as_tensor(np.asarray(images))
    if x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[1] != 3:
        raise ValueError(f"images must be (N, 3, H, W) or (3, H, W) RGB, got {tuple(x.shape)}")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


def _scores(network, x, reference, crop):
    import torch

    if crop is not None:
        t, l, h, w = crop
        x = x[..., t:t + h, l:l + w]
    return torch.nn.functional.cosine_similarity(network(x), reference, dim=1)


def score_saliency(network, images, reference, method="integrated", steps=32, baseline=None,
                   crop=None):
    """Saliency of ``cos(network(image), reference)`` w.r.t. the image pixels.

    Parameters
    ----------
    network : torch.nn.Module
        ``(N, 3, h, w)`` float RGB in [0, 1] -> ``(N, d)`` embeddings; differentiable.
    images : array-like, shape (N, 3, H, W) or (3, H, W)
        uint8 in [0, 255] or float in [0, 1].
    reference : array-like, shape (N, d) or (d,)
        Reference embedding(s) the images are compared with.
    method : {"gradient", "integrated"}
        ``"gradient"``: ``|d score / d x|`` summed over the colour channels;
        ``"integrated"``: integrated gradients from ``baseline`` to ``x``,
        ``(x - baseline) * mean_alpha grad(baseline + alpha (x - baseline))`` summed over the
        channels (signed; the attributions add up to ``score(x) - score(baseline)``).
    steps : int
        Riemann steps (midpoint rule) of the integrated gradients.
    baseline : array-like, optional
        Same shape as ``images`` (float in [0, 1]); default black.
    crop : (top, left, height, width), optional
        The network sees only this window of the images; pixels outside it get 0.

    Returns
    -------
    maps : ndarray, shape (N, H, W)
        float32 saliency per pixel.
    scores : ndarray, shape (N,)
        The scores of the images.
    """
    import torch

    if method not in SALIENCY_METHODS:
        raise ValueError(f"method={method!r}: use one of {SALIENCY_METHODS}")
    if int(steps) < 1:
        raise ValueError(f"steps={steps!r}: integrated gradients need at least 1 step")
    param = next(network.parameters(), None)
    device = param.device if param is not None else torch.device("cpu")
    x = _as_batch(images).to(device)
    ref = torch.as_tensor(np.atleast_2d(np.asarray(reference)), dtype=torch.float32,
                          device=device).expand(x.shape[0], -1)
    with torch.no_grad():
        scores = _scores(network, x, ref, crop)
    if method == "gradient":
        xg = x.clone().requires_grad_(True)
        (grad,) = torch.autograd.grad(_scores(network, xg, ref, crop).sum(), xg)
        maps = grad.abs().sum(1)
    else:
        base = torch.zeros_like(x) if baseline is None else _as_batch(baseline).to(device)
        total = torch.zeros_like(x)
        for a in (np.arange(int(steps)) + 0.5) / int(steps):
            xa = (base + float(a) * (x - base)).requires_grad_(True)
            total += torch.autograd.grad(_scores(network, xa, ref, crop).sum(), xa)[0]
        maps = ((x - base) * total / int(steps)).sum(1)
    return maps.detach().cpu().numpy().astype(np.float32), scores.cpu().numpy()


def verification_auc(X, subjects):
    """ROC AUC of genuine (same subject, different templates) vs impostor cosine scores."""
    from sklearn.metrics import roc_auc_score

    from .unlinkability_pemiu import cosine_scores

    S = cosine_scores(X, X)
    iu = np.triu_indices(len(X), 1)
    subjects = np.asarray(subjects)
    same = (subjects[:, None] == subjects[None, :])[iu]
    if same.all() or not same.any():
        raise ValueError("verification_auc needs genuine and impostor pairs: give >= 2 subjects "
                         "with >= 2 templates for at least one of them")
    return float(roc_auc_score(same, S[iu]))


def gender_accuracy(X, gender, folds=5, seed=42):
    """Mean cross-validated accuracy of logistic regression on ``X`` (stratified folds)."""
    from .gender import make_classifier, stratified_folds

    gender = np.asarray(gender)
    accs = []
    for train, test in stratified_folds(gender, n_splits=folds, seed=seed):
        clf = make_classifier("logreg", seed).fit(X[train], gender[train])
        accs.append(np.mean(clf.predict(X[test]) == gender[test]))
    return float(np.mean(accs))


def _perturb(X, block, block_size, mode, rng):
    Y = np.array(X, dtype=np.float64, copy=True)
    cols = slice(block * block_size, (block + 1) * block_size)
    Y[:, cols] = 0.0 if mode == "zero" else Y[rng.permutation(len(Y)), cols]
    return Y


def block_importance(X, block_size, subjects=None, gender=None, mode="shuffle", folds=5,
                     seed=0):
    """Identity and gender carried by each block position of the embeddings.

    For every block position ``b`` (``d / K`` of them), the values of block ``b`` are shuffled
    across templates (``mode="shuffle"``: the block no longer belongs to its face) or set to 0
    (``"zero"``), and the identity and gender measures are recomputed.

    Parameters
    ----------
    X : array-like, shape (N, d)
    block_size : int
        ``K``; must divide ``d``.
    subjects : array-like, shape (N,), optional
        Subject labels: identity = :func:`verification_auc`.
    gender : array-like, shape (N,), optional
        Two classes: gender = :func:`gender_accuracy` (``folds``-fold).
    mode : {"shuffle", "zero"}
    folds, seed : int

    Returns
    -------
    pandas.DataFrame
        One row per block: ``block``, and for each measure given ``identity_auc`` /
        ``identity_drop`` (baseline - perturbed) and ``gender_accuracy`` / ``gender_drop``.
        The baselines are in ``table.attrs``.
    """
    from bob_facerev.protection.pemiu import check_embeddings, n_blocks

    X = check_embeddings(X)
    n = n_blocks(X.shape[1], block_size)
    if mode not in ("shuffle", "zero"):
        raise ValueError(f"mode={mode!r}: use 'shuffle' or 'zero'")
    if subjects is None and gender is None:
        raise ValueError("block_importance needs subjects (identity) and/or gender labels")
    measures = {}
    if subjects is not None:
        measures["identity_auc"] = lambda Y: verification_auc(Y, subjects)
    if gender is not None:
        measures["gender_accuracy"] = lambda Y: gender_accuracy(Y, gender, folds, seed)
    base = {name: f(X) for name, f in measures.items()}
    rng = np.random.default_rng(seed)
    rows = []
    for b in range(n):
        Y = _perturb(X, b, block_size, mode, rng)
        row = {"block": b}
        for name, f in measures.items():
            row[name] = f(Y)
            row[name.split("_")[0] + "_drop"] = base[name] - row[name]
        rows.append(row)
    table = pd.DataFrame(rows)
    table.attrs.update(baseline=base, mode=mode, block_size=int(block_size))
    return table


def _overlay(ax, image, saliency, title):
    ax.imshow(np.asarray(image).transpose(1, 2, 0))
    m = np.abs(saliency)
    ax.imshow(m / max(float(m.max()), 1e-12), cmap="inferno", alpha=0.6)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def plot_saliency(images, maps, labels, path, scores=None, dpi=100):
    """Faces (top row) and their saliency over the face (bottom row), side by side.

    Parameters
    ----------
    images : sequence of (3, H, W) uint8
    maps : sequence of (H, W) float
        Shown as ``|map|`` scaled to its maximum.
    labels : sequence of str
    path : str or Path
    scores : sequence of float, optional
        Comparison scores, added to the labels.
    """
    from .plots import _pyplot, _save

    plt = _pyplot()
    n = len(images)
    if not n == len(maps) == len(labels):
        raise ValueError(f"{n} images, {len(maps)} maps and {len(labels)} labels: give one each")
    fig, axes = plt.subplots(2, n, figsize=(1.9 * n, 4.0), squeeze=False)
    for i in range(n):
        axes[0, i].imshow(np.asarray(images[i]).transpose(1, 2, 0))
        axes[0, i].set_title(labels[i], fontsize=8)
        axes[0, i].axis("off")
        title = "saliency" if scores is None else f"score {float(scores[i]):.3f}"
        _overlay(axes[1, i], images[i], maps[i], title)
    fig.tight_layout()
    try:
        return _save(fig, path, dpi)
    finally:
        plt.close(fig)


def plot_block_importance(table, path, title=None, dpi=100):
    """Bar chart of the identity and gender drops per block (:func:`block_importance`)."""
    from .plots import _pyplot, _save

    plt = _pyplot()
    drops = [c for c in ("identity_drop", "gender_drop") if c in table.columns]
    fig, axes = plt.subplots(1, len(drops), figsize=(max(4.0, 0.25 * len(table)) * len(drops), 3.0),
                             squeeze=False)
    base = table.attrs.get("baseline", {})
    for ax, col in zip(axes[0], drops):
        ax.bar(table["block"], table[col], color="tab:blue" if col == "identity_drop" else "tab:orange")
        measure = "identity_auc" if col == "identity_drop" else "gender_accuracy"
        ax.set_title(f"{col.replace('_', ' ')} (baseline {measure.split('_')[1]} "
                     f"{base.get(measure, float('nan')):.3f})", fontsize=9)
        ax.set_xlabel(f"block position (K={table.attrs.get('block_size', '?')}, "
                      f"{table.attrs.get('mode', '')})")
        ax.set_ylabel("drop")
        ax.axhline(0, color="k", lw=0.5)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    try:
        return _save(fig, path, dpi)
    finally:
        plt.close(fig)
