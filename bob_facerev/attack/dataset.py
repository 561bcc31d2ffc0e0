"""Training data of the reconstruction attack: (aligned face, embedding) pairs.

A training set is built once through the Bob pipeline and cached in one ``.npz`` file:

``faces``
    ``(N, 3, 112, 112)`` uint8, RGB, the model's aligned crop resized to the attack size.
``embeddings``
    ``(N, d)`` float32, the extractor's embeddings of those samples (computed on the model's own crop).
``keys``
    ``(N,)`` str, the sample keys (the protection's per-template randomness follows them).
``metadata``
    0-d str, JSON: at least ``{"model": name, "embedding_size": d}``.
``validation`` (optional)
    ``(N,)`` bool, the database's own validation samples (FFHQ's seeded 90/10 split); when present
    the trainer uses this split instead of drawing one.
``subjects`` (optional)
    ``(N,)`` str, the subject of every sample, where the database has identities (CFP, LFW); the
    trainer's validation RSR then also counts type-II comparisons, and
    :func:`merge_training_sets` checks that merged databases share no person.

The file loads without pickle (``allow_pickle=False``).
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile

import numpy as np

from ..protection.setting import Protection
from ..utils import atomic_savez


def save_training_set(path, faces, embeddings, keys, metadata=None, validation=None, subjects=None):
    """Write a training set file atomically.

    Parameters
    ----------
    path : str or os.PathLike
        Ends with ``.npz``.
    faces : array-like, (N, 3, 112, 112) uint8
    embeddings : array-like, (N, d) float
    keys : sequence of str, (N,)
    metadata : dict, optional
        JSON-serialisable; should hold ``model``; ``embedding_size`` is set from the data.
    validation : array-like of bool, (N,), optional
        Marks the validation samples of a fixed split.
    subjects : sequence of str, (N,), optional
        The subject of every sample (only where the database has identities).
    """
    faces = np.asarray(faces)
    embeddings = np.asarray(embeddings, dtype=np.float32)
    keys = np.asarray([str(k) for k in keys])
    _check_arrays(faces, embeddings, keys, name=str(path))
    metadata = dict(metadata or {})
    metadata["embedding_size"] = int(embeddings.shape[1])
    metadata.setdefault("n_samples", int(len(faces)))
    arrays = dict(faces=faces, embeddings=embeddings, keys=keys, metadata=np.array(json.dumps(metadata)))
    if validation is not None:
        validation = np.asarray(validation, dtype=bool)
        if validation.shape != (len(faces),):
            raise ValueError(f"{path}: validation must be (N,) bool with N = {len(faces)}")
        arrays["validation"] = validation
    if subjects is not None:
        subjects = np.asarray([str(x) for x in subjects])
        if subjects.shape != (len(faces),):
            raise ValueError(f"{path}: subjects must be (N,) str with N = {len(faces)}")
        arrays["subjects"] = subjects
    if not os.fspath(path).endswith(".npz"):
        raise ValueError(f"a training set file must end with .npz, got {os.fspath(path)!r}")
    atomic_savez(path, **arrays)


def _check_arrays(faces, embeddings, keys, name):
    if faces.ndim != 4 or faces.shape[1:] != (3, 112, 112) or faces.dtype != np.uint8:
        raise ValueError(
            f"{name}: faces must be (N, 3, 112, 112) uint8, got {faces.shape} {faces.dtype}"
        )
    if embeddings.ndim != 2 or len(embeddings) != len(faces):
        raise ValueError(
            f"{name}: embeddings must be (N, d) with N = {len(faces)} faces, got {embeddings.shape}"
        )
    if len(keys) != len(faces):
        raise ValueError(f"{name}: {len(keys)} keys for {len(faces)} faces")
    if not np.all(np.isfinite(embeddings)):
        raise ValueError(f"{name}: embeddings contain NaN or inf values")


def load_training_set(path):
    """Read a training set file.

    Returns
    -------
    dict
        ``faces`` (N, 3, 112, 112) uint8, ``embeddings`` (N, d) float32, ``keys`` (N,) str,
        ``metadata`` dict (with ``embedding_size``; ``model`` when known), ``validation`` (N,) bool
        or None, ``subjects`` (N,) str or None.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"training set {path!r} does not exist: build it with "
            "bob_facerev.attack.dataset.build_training_set"
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            files = set(npz.files)
            arrays = {name: npz[name] for name in
                      ("faces", "embeddings", "keys", "metadata", "validation", "subjects")
                      if name in files}
        metadata = json.loads(str(arrays["metadata"])) if "metadata" in arrays else {}
    except (OSError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"training set {path!r} is unreadable (corrupt?): {e}") from e
    missing = {"faces", "embeddings"} - set(arrays)
    if missing:
        raise ValueError(f"training set {path!r} lacks the arrays {sorted(missing)}")
    faces = arrays["faces"]
    embeddings = arrays["embeddings"].astype(np.float32, copy=False)
    if "keys" in arrays:
        keys = arrays["keys"].astype(str)
    else:
        keys = np.array([str(i) for i in range(len(faces))])
    _check_arrays(faces, embeddings, keys, name=repr(path))
    metadata["embedding_size"] = int(embeddings.shape[1])
    validation = arrays.get("validation")
    if validation is not None and validation.shape != (len(faces),):
        raise ValueError(f"training set {path!r}: validation flags do not match the {len(faces)} faces")
    subjects = arrays.get("subjects")
    if subjects is not None and subjects.shape != (len(faces),):
        raise ValueError(f"training set {path!r}: subjects do not match the {len(faces)} faces")
    return {"faces": faces, "embeddings": embeddings, "keys": keys, "metadata": metadata,
            "validation": None if validation is None else validation.astype(bool),
            "subjects": None if subjects is None else subjects.astype(str)}


def has_identities(subjects):
    """Whether subject labels carry identities: some subject has at least two samples.

    A database where every template is its own "subject" (UTKFace: no identities) has none: its
    "different-subject" pairs include the same person photographed twice, so thresholds derived
    from them are not impostor thresholds.
    """
    if subjects is None:
        return False
    _, counts = np.unique(np.asarray([str(x) for x in subjects]), return_counts=True)
    return bool(len(counts) and counts.max() >= 2)


def file_digest(path, chunk=1 << 22):
    """SHA-256 hex digest of a file (identifies the training data in checkpoints)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def protect_embeddings(embeddings, keys, protection=None, seed=0):
    """Apply the attacker's view of the protection to training embeddings.

    Parameters
    ----------
    embeddings : numpy.ndarray, (N, d) float32
    keys : sequence of str, (N,)
        Per-template randomness follows the key (reproducible).
    protection : Protection, str or None
        The setting (:class:`~bob_facerev.protection.setting.Protection`, or anything
        :meth:`~bob_facerev.protection.setting.Protection.parse` accepts: a name such as
        ``"k32-p4"``; None is unprotected).
    seed : int
        Seed of the PE-MIU permutation(s).

    Returns
    -------
    numpy.ndarray, (N, d) float32
    """
    pemiu = Protection.parse(protection).transformer(seed)
    if pemiu is None:
        return np.asarray(embeddings, dtype=np.float32)
    return np.asarray(pemiu.transform(embeddings, keys=list(keys)), dtype=np.float32)


def split_indices(n, validation_fraction=0.1, seed=2021):
    """Random train/validation split of ``n`` samples (the study: 90/10, seed 2021).

    Returns
    -------
    train, validation : numpy.ndarray of int64
        Disjoint, sorted; the validation part has ``round(n * validation_fraction)`` samples (at least
        one when ``n > 1`` and the fraction is positive).
    """
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction}")
    n_val = int(round(n * validation_fraction))
    if validation_fraction > 0 and n > 1:
        n_val = max(n_val, 1)
    perm = np.random.RandomState(seed).permutation(n)
    return np.sort(perm[n_val:]).astype(np.int64), np.sort(perm[:n_val]).astype(np.int64)


def training_set_model(data, model, path):
    """The extractor of a loaded training set's embeddings: ``model``, else its metadata's; refused
    when they disagree or neither says."""
    data_model = data["metadata"].get("model")
    model = model if model is not None else data_model
    if model is None:
        raise ValueError(f"training set {os.fspath(path)!r} does not say which extractor made its "
                         "embeddings: pass model=... (e.g. 'dlib')")
    if data_model is not None and str(data_model) != str(model):
        raise ValueError(f"training set {os.fspath(path)!r} holds {data_model!r} embeddings, but "
                         f"model={model!r} was asked: use a training set built with {model!r}")
    return model


def training_split(data, max_samples=None, validation_fraction=0.1, split_seed=2021):
    """``(split, train_idx, val_idx)`` of a loaded training set: the file's own split
    (``"file"``, e.g. FFHQ's seeded 90/10) when it has one and all samples are used, else a random
    one (``"random"``, :func:`split_indices`) of at most ``max_samples`` samples."""
    n_file = len(data["embeddings"])
    used = np.arange(n_file)
    if max_samples is not None and int(max_samples) < n_file:
        used = np.sort(np.random.RandomState(split_seed).permutation(n_file)[: int(max_samples)])
    if data["validation"] is not None and max_samples is None:
        return "file", np.flatnonzero(~data["validation"]), np.flatnonzero(data["validation"])
    train_pos, val_pos = split_indices(len(used), validation_fraction, split_seed)
    return "random", used[train_pos], used[val_pos]


class ReconstructionDataset:
    """Torch map-style dataset of ``(face, embedding)`` pairs held in memory.

    Parameters
    ----------
    faces : numpy.ndarray, (N, 3, 112, 112) uint8
    embeddings : numpy.ndarray, (N, d) float32
        Already protected as wanted (see :func:`protect_embeddings`).
    indices : array-like of int, optional
        The subset to expose (e.g. the training part of :func:`split_indices`).
    flipped_embeddings : numpy.ndarray, (N, d) float32, optional
        The embeddings of the horizontally flipped faces (:func:`flipped_embeddings`, protected as
        ``embeddings``). When given, the dataset holds every face twice: as it is with its
        embedding, and mirrored with the mirrored face's own embedding.

    Notes
    -----
    Items are ``(face uint8 tensor (3, 112, 112), embedding float32 tensor (d,), index)``: faces stay
    uint8 until they reach the device (4x less to copy); ``index`` is the position in the file (plus
    ``N`` for a flipped face), so precomputed per-sample targets (identity embeddings) can be
    looked up.
    """

    def __init__(self, faces, embeddings, indices=None, flipped_embeddings=None):
        self.faces = faces
        self.embeddings = np.asarray(embeddings, dtype=np.float32)
        self.indices = (
            np.arange(len(faces), dtype=np.int64) if indices is None else np.asarray(indices, np.int64)
        )
        self.flipped_embeddings = (
            None if flipped_embeddings is None else np.asarray(flipped_embeddings, dtype=np.float32)
        )
        if self.flipped_embeddings is not None and self.flipped_embeddings.shape != self.embeddings.shape:
            raise ValueError(
                f"flipped_embeddings {self.flipped_embeddings.shape} must match the embeddings "
                f"{self.embeddings.shape}"
            )

    def __len__(self):
        return len(self.indices) * (1 if self.flipped_embeddings is None else 2)

    def __getitem__(self, i):
        import torch

        n = len(self.indices)
        if i >= n:  # the mirrored copy, with the mirrored face's own embedding
            j = int(self.indices[i - n])
            face = np.ascontiguousarray(self.faces[j][:, :, ::-1])
            embedding = torch.from_numpy(self.flipped_embeddings[j].copy())
            return torch.from_numpy(face), embedding, j + len(self.faces)
        j = int(self.indices[i])
        return torch.from_numpy(self.faces[j].copy()), torch.from_numpy(self.embeddings[j].copy()), j


def flip_faces(faces):
    """Horizontally mirrored copies of ``(N, 3, H, W)`` faces."""
    return np.ascontiguousarray(np.asarray(faces)[..., ::-1])


def flipped_embeddings(faces, indices, network, device="cpu", batch_size=64, normalize=True):
    """Embeddings of the horizontally flipped faces ``faces[indices]``, computed once.

    Parameters
    ----------
    faces : numpy.ndarray, (N, 3, 112, 112) uint8
    indices : array-like of int
        The faces to flip (rows outside stay zero).
    network : torch.nn.Module
        The white-box extractor, ``(N, 3, h, w)`` float RGB in ``[0, 1]`` -> ``(N, d)``
        (:func:`bob_facerev.face.network.load_embedding_network`).
    device : str or torch.device
    batch_size : int
    normalize : bool
        L2-normalise (the training set's embeddings are, see :func:`build_training_set`).

    Returns
    -------
    numpy.ndarray, (N, d) float32
        Indexed like ``faces``.

    Notes
    -----
    The stored embeddings come from the model's own crop; these come from the 112x112 attack-size
    face (resized by the network), so the mirrored pairs are as consistent as the network's input
    allows, and the generator is asked to produce exactly that mirrored face.
    """
    import torch

    indices = np.asarray(indices, dtype=np.int64)
    out = None
    network = network.to(device).eval()
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            idx = indices[start : start + batch_size]
            x = torch.from_numpy(flip_faces(faces[idx])).to(device).float().div_(255.0)
            emb = network(x).float()
            if normalize:
                emb = torch.nn.functional.normalize(emb, dim=1)
            emb = emb.cpu().numpy()
            if out is None:
                out = np.zeros((len(faces), emb.shape[1]), dtype=np.float32)
            out[idx] = emb
    return out if out is not None else np.zeros((len(faces), 0), dtype=np.float32)


def build_training_set(samples, model, output, checkpoint=None, transformer=None, batch_size=64,
                       progress=True):
    """Crop and embed face photos once through the Bob pipeline and cache them as a training set.

    Parameters
    ----------
    samples : bob database or list of bob.pipelines.Sample
        Raw face photos (Bob format ``(3, H, W)`` uint8, optional eye annotations). A database is read
        through ``background_model_samples()`` when it has some (FFHQ's training group), otherwise
        ``all_samples()``.
    model : str
        Extractor name (a registered model: ``"dlib"``, ``"sface"``, ``"arcface"``,
        ``"elasticface"``, ...).
    output : str or os.PathLike
        The ``.npz`` file to write (atomically).
    checkpoint : str, optional
        The extractor's weights (default: configured/bundled).
    transformer : sklearn.pipeline.Pipeline, optional
        Crop + embed on Bob samples (default
        ``bob_facerev.pipelines.embedding_transformer(model, checkpoint)``); its first step crops
        (:class:`~bob_facerev.face.crop.FaceCropper`), the following ones embed the crops.
    batch_size : int
        Samples per chunk.
    progress : bool
        Show a progress bar.

    Returns
    -------
    str
        ``output``. Samples where no face was found are left out (logged). The samples'
        ``subject_id`` are stored where the database has identities (:func:`has_identities`).

    Notes
    -----
    The embeddings come from the model's own crop (e.g. dlib's 150x150 chip); the stored faces are
    that crop resized to 112x112 (:func:`bob_facerev.face.crop.to_attack_size`), which is what the
    generator learns to output.
    """
    import logging

    samples, is_validation = _as_samples(samples)
    if not samples:
        raise ValueError("build_training_set got no samples")
    if transformer is None:
        from ..pipelines import embedding_transformer

        transformer = embedding_transformer(model, checkpoint=checkpoint)
    steps = [step for _, step in transformer.steps]
    cropper, embedders = steps[0], steps[1:]

    rows = []  # (face, embedding, key, is_validation, subject) of each sample with a face
    it = range(0, len(samples), batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=f"crop + embed ({model})", unit="batch")
    for start in it:
        rows += _crop_and_embed(samples[start : start + batch_size], cropper, embedders, start,
                                is_validation)
    skipped = len(samples) - len(rows)
    if skipped:
        logging.getLogger(__name__).warning(
            "build_training_set: no face found in %d of %d samples (left out)", skipped, len(samples)
        )
    if not rows:
        raise ValueError("build_training_set: no face found in any sample")
    faces, embeddings, keys, validation, subjects = (list(column) for column in zip(*rows))
    save_training_set(
        output,
        np.stack(faces).astype(np.uint8),
        np.stack(embeddings),
        keys,
        metadata={"model": str(model), "checkpoint": None if checkpoint is None else str(checkpoint),
                  "n_skipped": int(skipped)},
        validation=validation if any(validation) else None,
        subjects=subjects if all(subjects) and has_identities(subjects) else None,
    )
    return os.fspath(output)


def _crop_and_embed(chunk, cropper, embedders, start, is_validation):
    """``(face, embedding, key, is_validation, subject)`` of the samples of ``chunk`` (which starts
    at ``start``) where a face was found."""
    from ..face.crop import to_attack_size

    crops = cropper.transform(chunk)
    X = crops
    for step in embedders:
        X = step.transform(X)
    if len(X) != len(chunk):
        raise ValueError(f"the embedding pipeline returned {len(X)} samples for {len(chunk)}")
    rows = []
    for i, (sample, crop, emb) in enumerate(zip(chunk, crops, X)):
        crop, emb = getattr(crop, "data", crop), getattr(emb, "data", emb)
        if crop is None or emb is None:
            continue
        rows.append((to_attack_size(crop), np.asarray(emb, dtype=np.float32).reshape(-1),
                     str(getattr(sample, "key", start + i)), is_validation[start + i],
                     str(getattr(sample, "subject_id", ""))))
    return rows


def _as_samples(samples):
    """``(samples, is_validation)``: a database's training samples (``background_model_samples``)
    followed by its validation samples (``references`` + ``probes`` of ``dev``, one per key), or
    all its samples, or the given list."""
    if hasattr(samples, "background_model_samples"):
        train = list(samples.background_model_samples())
        if train:
            seen = {getattr(s, "key", None) for s in train}
            val = []
            for getter in ("references", "probes"):
                for template in getattr(samples, getter, lambda **k: [])(group="dev"):
                    for s in getattr(template, "samples", [template]):
                        key = getattr(s, "key", None)
                        if key not in seen:
                            seen.add(key)
                            val.append(s)
            return train + val, [False] * len(train) + [True] * len(val)
    if hasattr(samples, "all_samples"):
        samples = samples.all_samples()
    samples = list(samples)
    return samples, [False] * len(samples)

