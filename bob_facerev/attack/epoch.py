"""The pieces of training: its networks, identity targets, a pass over the data, grids, the log.

:class:`~bob_facerev.attack.trainer.Trainer` strings them together; ``benchmarks/train.py``
measures :func:`run_epoch` alone.
"""

from __future__ import annotations

import csv
import random
import time

import numpy as np
import torch

from ..utils import atomic_path
from .dataset import flip_faces, flipped_embeddings, protect_embeddings
from .losses import TERMS

#: the columns of ``log.csv`` (validation RSR columns follow when measured)
CSV_COLUMNS = (
    ["epoch", "lr"]
    + [f"train_{t}" for t in TERMS]
    + [f"val_{t}" for t in TERMS]
    + ["images_per_s", "data_wait_share", "seconds", "best"]
)


class Deterministic:
    """Context: deterministic torch algorithms on (when ``enabled``), restored on exit."""

    def __init__(self, enabled):
        self.enabled = enabled

    def __enter__(self):
        self.previous = (torch.are_deterministic_algorithms_enabled(),
                         torch.is_deterministic_algorithms_warn_only_enabled())
        if self.enabled:
            torch.use_deterministic_algorithms(True, warn_only=True)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self.previous[0], warn_only=self.previous[1])


def seed_worker(worker_id):
    """``DataLoader`` ``worker_init_fn``: numpy and python seeded from the worker's torch seed."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def _to_images(faces, device):
    return faces.to(device, non_blocking=True).float().div_(255.0)


@torch.no_grad()
def compute_id_targets(criterion, faces, indices, device, batch_size=64, progress=False, flip=False):
    """Identity-network embeddings of the real faces ``faces[indices]``, as an ``(N, d_id)`` tensor
    indexed like ``faces`` (rows outside ``indices`` are zero); of their mirror images with
    ``flip=True``."""
    out = None
    it = range(0, len(indices), batch_size)
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc="identity targets", unit="batch", leave=False)
    for start in it:
        idx = indices[start : start + batch_size]
        batch = flip_faces(faces[idx]) if flip else faces[idx]
        emb = criterion.embed(_to_images(torch.from_numpy(batch), device))
        if out is None:
            out = torch.zeros((len(faces), emb.shape[1]), dtype=torch.float32, device=device)
        out[torch.as_tensor(idx, device=device)] = emb
    return out


def _step(generator, criterion, batch, device, id_targets, optimizer, scaler, amp):
    """Forward (and, with ``optimizer``, backward) of one batch; returns ``(terms, batch size)``."""
    training = optimizer is not None
    faces, embeddings, idx = batch
    real = _to_images(faces, device)
    embeddings = embeddings.to(device, non_blocking=True)
    real_id = id_targets[idx.to(device)] if id_targets is not None else None
    with torch.set_grad_enabled(training), torch.autocast(device.type, enabled=amp):
        generated = generator(embeddings)
    with torch.set_grad_enabled(training):
        loss, terms = criterion(generated, real, real_id)
    if training:
        optimizer.zero_grad(set_to_none=True)
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
    return terms, len(faces)


def run_epoch(generator, criterion, loader, device, id_targets, optimizer=None, scaler=None,
              amp=False, progress=False, desc=""):
    """One pass; trains when ``optimizer`` is given. Returns (mean terms, n images, data wait s, s)."""
    generator.train(optimizer is not None)
    sums = {t: torch.zeros((), dtype=torch.float64, device=device) for t in TERMS}
    n, step, wait = 0, 0, 0.0
    start = time.perf_counter()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(loader), desc=desc, unit="batch", leave=False, dynamic_ncols=True)
    it = iter(loader)
    while True:
        t0 = time.perf_counter()
        try:
            batch = next(it)
        except StopIteration:
            break
        wait += time.perf_counter() - t0
        terms, b = _step(generator, criterion, batch, device, id_targets, optimizer, scaler, amp)
        for t in TERMS:
            sums[t] += terms[t].double() * b
        n += b
        step += 1
        if bar is not None:
            bar.update(1)
            if step % 10 == 1 or step == len(loader):
                bar.set_postfix({t: f"{(sums[t] / n).item():.4f}" for t in TERMS}, refresh=False)
    if bar is not None:
        bar.close()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    means = {t: (sums[t] / max(n, 1)).item() for t in TERMS}
    return means, n, wait, seconds


def save_grid(generator, faces, embeddings, path, device):
    """A PNG of real faces (top row) and the generator's reconstructions (bottom row)."""
    from PIL import Image

    generator.eval()
    with torch.no_grad():
        out = generator(torch.as_tensor(embeddings, device=device).float())
    fake = (out * 255).round().clamp(0, 255).to(torch.uint8).cpu().numpy()
    real = np.asarray(faces, dtype=np.uint8)
    rows = [np.concatenate(list(real), axis=2), np.concatenate(list(fake), axis=2)]
    grid = np.concatenate(rows, axis=1).transpose(1, 2, 0)
    with atomic_path(path) as tmp:
        Image.fromarray(grid).save(tmp)


def write_log(path, history):
    """``log.csv``: :data:`CSV_COLUMNS`, then any further (validation RSR) columns."""
    extra = [k for k in (history[-1] if history else {}) if k not in CSV_COLUMNS]  # validation RSR
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(CSV_COLUMNS) + extra)
        writer.writeheader()
        for row in history:
            writer.writerow({k: row.get(k) for k in list(CSV_COLUMNS) + extra})


def identity_network(id_network, id_model, id_checkpoint, model, w_id):
    """``(network or None, name, w_id)`` of the identity term (``"none"``, 0 when off)."""
    if id_network is not None:
        id_name = getattr(id_network, "model_name", type(id_network).__name__)
    elif w_id > 0 and (id_model is None or str(id_model).lower() != "none"):
        id_name = str(id_model or model)
        from ..face.network import load_embedding_network

        id_network = load_embedding_network(id_name, id_checkpoint)
    else:
        id_name = "none"
    if id_name == "none" or w_id == 0:
        return None, "none", 0.0
    return id_network, id_name, w_id


def attacked_network(network, model, id_network, id_name, needed, device):
    """The attacked extractor's network (flips, validation RSR) on ``device`` in evaluation mode:
    given, the identity network when it is the attacked model (white-box), else loaded (its
    configured weights); None when not ``needed``."""
    if not needed:
        return None
    if network is None and id_network is not None and id_name == str(model):
        network = id_network
    if network is None:
        from ..face.network import load_embedding_network

        network = load_embedding_network(str(model))
    return network.to(device).eval()


def training_flips(data, train_idx, network, protection_args, device, enabled):
    """Protected embeddings of the mirrored training faces (computed once), or None."""
    if not enabled:
        return None
    flipped = flipped_embeddings(data["faces"], train_idx, network, device=device)
    keys = [f"{k}#flip" for k in data["keys"]]  # per-template randomness of its own
    out = protect_embeddings(flipped, keys, *protection_args)  # (protection, seed)
    out[np.setdiff1d(np.arange(len(out)), train_idx)] = 0
    return out


def identity_targets(criterion, faces, train_idx, val_idx, device, flip, progress):
    """Identity targets of the real faces (and, with ``flip``, of the mirrored training faces at
    rows ``N + i``), or None without an identity term."""
    if not criterion.uses_id:
        return None
    targets = compute_id_targets(criterion, faces, np.concatenate([train_idx, val_idx]), device,
                                 progress=progress)
    if flip:
        mirrored = compute_id_targets(criterion, faces, train_idx, device, progress=progress, flip=True)
        targets = torch.cat([targets, mirrored])
    return targets
