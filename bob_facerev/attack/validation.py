"""Training judged by what the benchmark measures: the validation RSR.

Every epoch the trainer reconstructs the validation faces from their (protected) templates, embeds
the reconstructions with the attacked extractor and counts how many the face recognition system
accepts, at the decision thresholds of FMR 0.1 / 1 / 10 %:

type-I
    the reconstruction against the template it was made from;
type-II
    against the other validation samples of the same subject (only where the training set has
    subject labels with identities, see :func:`bob_facerev.attack.dataset.has_identities`).

The thresholds come from the caller: from the bona fide scores of the same extractor on a data set
*with identities* (CFP-FF, LFW View 2), read with :func:`thresholds_from_scores`, which refuses
score files without genuine comparisons: a database where every template is its own "subject"
(UTKFace) counts the same person photographed twice as an impostor and gives thresholds that are
too high.

This is the trainer's estimate (embeddings of the 112x112 reconstructions through the network,
compared by the dot product of L2-normalised embeddings, as the grid's scores); the benchmark's
numbers come from ``bob facerev grid``.
"""

from __future__ import annotations

import math

import numpy as np

from ..evaluation.rsr import DEFAULT_FMRS

#: the comparisons of the validation RSR
COMPARISONS = ("type1", "type2")


def rsr_column(comparison, fmr):
    """Name of a validation RSR column of ``log.csv``, e.g. ``val_type1_fmr0.1`` (FMR in %)."""
    return f"val_{comparison}_fmr{100 * float(fmr):g}"


def thresholds_from_scores(path, fmrs=DEFAULT_FMRS):
    """Decision thresholds at ``fmrs`` from a bona fide score file of a data set with identities.

    Parameters
    ----------
    path : str or os.PathLike
        A Bob CSV score file (``bob bio pipeline simple``, the grid's ``bona_fide/scores-dev.csv``)
        of the same extractor as the attacked one.
    fmrs : sequence of float

    Returns
    -------
    dict
        ``{fmr: threshold}``.

    Raises
    ------
    ValueError
        The file has no genuine comparisons (a database without subject identities: its
        "impostors" include the same person twice) or too few impostor scores.
    """
    from ..evaluation.rsr import fmr_thresholds, read_vuln_scores, split_bona_fide

    bona_fide, _ = read_vuln_scores(path)
    negatives, positives = split_bona_fide(bona_fide)
    if positives.size == 0:
        raise ValueError(
            f"{str(path)!r} has no genuine comparisons: its database has no subject identities, so "
            "its impostor scores include the same person twice; take thresholds from the bona fide "
            "scores of the same model on a data set with identities (CFP-FF, LFW View 2)"
        )
    return {row["fmr"]: row["threshold"] for row in fmr_thresholds(negatives, fmrs)}


def resolve_thresholds(thresholds, fmrs=DEFAULT_FMRS):
    """``(thresholds, source)`` from a score file path, a ``{fmr: threshold}`` mapping or None.

    A mapping is checked (FMRs in (0, 1), finite thresholds) and returned with float keys.
    """
    if thresholds is None:
        return None, None
    if isinstance(thresholds, dict):
        out = {}
        for fmr, thr in thresholds.items():
            fmr, thr = float(fmr), float(thr)
            if not 0 < fmr < 1 or not math.isfinite(thr):
                raise ValueError(
                    f"validation threshold {thr!r} at FMR {fmr!r}: give {{fmr: threshold}} with FMRs "
                    "in (0, 1), e.g. {0.001: 0.93}"
                )
            out[fmr] = thr
        if not out:
            raise ValueError("no validation threshold given: pass e.g. {0.001: 0.93} or a score file")
        return out, "given"
    import os

    return thresholds_from_scores(thresholds, fmrs), os.path.basename(os.fspath(thresholds))


def reconstruction_embeddings(generator, network, inputs, device, batch_size=64):
    """L2-normalised ``network(generator(inputs))``, ``(N, d)`` float32 numpy."""
    import torch

    generator.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(inputs), batch_size):
            x = torch.as_tensor(inputs[start : start + batch_size], device=device).float()
            emb = network(generator(x).float()).float()
            out.append(torch.nn.functional.normalize(emb, dim=1).cpu().numpy())
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def acceptance_rates(templates, reconstructed, thresholds, subjects=None):
    """Shares of reconstructions accepted at each threshold.

    Parameters
    ----------
    templates, reconstructed : numpy.ndarray, (N, d)
        L2-normalised embeddings of the validation faces and of their reconstructions.
    thresholds : dict
        ``{fmr: threshold}``; a comparison is accepted when ``score >= threshold``.
    subjects : sequence of str, optional
        Subject of each validation sample; type-II compares reconstruction ``i`` with every other
        sample ``j != i`` of its subject.

    Returns
    -------
    dict
        ``{rsr_column("type1", fmr): share, ...}`` and the ``type2`` columns (NaN without
        subjects or without any same-subject pair).
    """
    templates = np.asarray(templates, dtype=np.float64)
    reconstructed = np.asarray(reconstructed, dtype=np.float64)
    type1 = np.sum(templates * reconstructed, axis=1)
    type2 = _type2_scores(templates, reconstructed, subjects)
    out = {}
    for fmr, thr in sorted(thresholds.items()):
        out[rsr_column("type1", fmr)] = float(np.mean(type1 >= thr)) if type1.size else math.nan
        out[rsr_column("type2", fmr)] = float(np.mean(type2 >= thr)) if type2.size else math.nan
    return out


def _type2_scores(templates, reconstructed, subjects):
    if subjects is None:
        return np.zeros(0)
    subjects = np.asarray([str(s) for s in subjects])
    same = subjects[:, None] == subjects[None, :]
    np.fill_diagonal(same, False)
    return (reconstructed @ templates.T)[same]


def validation_rsr(generator, network, inputs, templates, thresholds, device, subjects=None,
                   batch_size=64):
    """The validation RSR of one epoch (see :func:`acceptance_rates`).

    Parameters
    ----------
    generator : torch.nn.Module
    network : torch.nn.Module
        The attacked extractor, ``[0, 1]`` RGB -> ``(N, d)``.
    inputs : numpy.ndarray, (N, d)
        The generator's inputs (the protected templates).
    templates : numpy.ndarray, (N, d)
        The unprotected L2-normalised templates the reconstructions are compared with.
    thresholds : dict
    device : torch.device
    subjects : sequence of str, optional
    batch_size : int
    """
    reconstructed = reconstruction_embeddings(generator, network, inputs, device, batch_size)
    return acceptance_rates(templates, reconstructed, thresholds, subjects)


def describe(rsr, select_fmr=None):
    """Short text of the type-I (and type-II) rates for the progress line, e.g.
    ``RSR@0.1% 45.0% (II 30.0%)``."""
    parts = []
    fmrs = sorted({float(k.rsplit("fmr", 1)[1]) / 100 for k in rsr})
    for fmr in fmrs if select_fmr is None else [select_fmr]:
        t1, t2 = rsr.get(rsr_column("type1", fmr)), rsr.get(rsr_column("type2", fmr))
        text = f"RSR@{100 * fmr:g}% {100 * t1:.1f}%"
        if t2 is not None and not math.isnan(t2):
            text += f" (II {100 * t2:.1f}%)"
        parts.append(text)
    return ", ".join(parts)


def thresholds_from_embeddings(embeddings, subjects, fmrs=DEFAULT_FMRS, max_impostors=5_000_000, seed=0):
    """Thresholds at ``fmrs`` from the different-identity pairs of a data set with identities.

    Parameters
    ----------
    embeddings : numpy.ndarray, (N, d)
        The extractor's embeddings (L2-normalised here; scores are cosine similarities).
    subjects : sequence of str, (N,)
        Must carry identities (:func:`bob_facerev.attack.dataset.has_identities`).
    fmrs : sequence of float
    max_impostors : int
        Above this many different-identity pairs a seeded random sample of them is used.
    seed : int

    Returns
    -------
    dict
        ``{fmr: threshold}``.
    """
    from ..evaluation.rsr import fmr_thresholds
    from .dataset import has_identities

    if not has_identities(subjects):
        raise ValueError(
            "thresholds need a data set with identities (several photos per person): every sample "
            "here is its own subject, so its 'impostor' pairs may show the same person twice"
        )
    x = np.asarray(embeddings, dtype=np.float64)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    subjects = np.asarray([str(s) for s in subjects])
    i, j = np.triu_indices(len(x), k=1)
    keep = subjects[i] != subjects[j]
    i, j = i[keep], j[keep]
    if len(i) > max_impostors:
        pick = np.sort(np.random.RandomState(seed).choice(len(i), max_impostors, replace=False))
        i, j = i[pick], j[pick]
    negatives = np.einsum("nd,nd->n", x[i], x[j])
    return {row["fmr"]: row["threshold"] for row in fmr_thresholds(negatives, fmrs)}


# --------------------------------------------------------------------------- the trainer's choices


def selection_score(val_terms, rsr, select_fmr):
    """The score ``best.pt`` maximises: ``(type-I RSR at select_fmr, -validation loss)`` with
    thresholds, else ``(-validation loss,)``."""
    loss = -float(val_terms["total"])
    if not rsr:
        return [loss]
    return [float(rsr[rsr_column("type1", select_fmr)]), loss]


def is_better(score, best):
    """Whether ``score`` (:func:`selection_score`) beats the best epoch's so far."""
    previous = best.get("score")
    if previous is None and best.get("val_loss") is not None:  # checkpoints before the extensions
        previous = [-best["val_loss"]]
    return previous is None or list(score) > list(previous)


def stop_early(patience, epochs_done, best):
    """Whether ``patience`` epochs have passed without a better one."""
    return (patience is not None and best.get("epoch") is not None
            and epochs_done - int(best["epoch"]) >= int(patience))


def epoch_rsr(generator, network, embeddings, data, val_idx, thresholds, device):
    """The validation RSR columns of one epoch (:func:`validation_rsr`); ``{}`` without
    thresholds."""
    if thresholds is None:
        return {}
    from .dataset import has_identities

    templates = data["embeddings"][val_idx]
    templates = templates / np.maximum(np.linalg.norm(templates, axis=1, keepdims=True), 1e-12)
    subjects = data["subjects"]
    subjects = subjects[val_idx] if has_identities(subjects) else None
    return validation_rsr(generator, network, embeddings[val_idx], templates, thresholds, device,
                          subjects=subjects)


def rsr_text(rsr, epoch_bar=None):
    """``", RSR@0.1% 45.0% ..."`` for the progress line (and the epoch bar); ``""`` without."""
    if not rsr:
        return ""
    text = describe(rsr)
    if epoch_bar is not None:
        epoch_bar.set_postfix_str(text)
    return ", " + text
