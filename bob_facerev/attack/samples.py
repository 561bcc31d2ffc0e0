"""The attacked samples: read from a Bob database, embedded with a per-sample cache, cropped as
the attack sees them, and any Bob sample transformer run locally or on Dask."""

from __future__ import annotations

import logging

import numpy as np

logger = logging.getLogger(__name__)


def database_samples(database, group="dev"):
    """All samples of a database group (references and probes, each sample once, by key)."""
    refs = database.references(group=group)
    probes = database.probes(group=group)
    seen, out = set(), []
    for sset in list(refs) + list(probes):
        for s in sset.samples if hasattr(sset, "samples") else [sset]:
            if s.key not in seen:
                seen.add(s.key)
                out.append(s)
    return out


def subject_of(sample):
    return str(getattr(sample, "subject_id", getattr(sample, "template_id", sample.key)))


def template_of(sample):
    return str(getattr(sample, "template_id", sample.key))


def run_transformer(transformer, samples, dask_client, gpu_routing="auto", npartitions=None):
    """Run a Bob sample transformer, on Dask (GPU steps routed) when a client is given."""
    if dask_client is None:
        return transformer.transform(samples)
    import bob.pipelines

    from ..distributed import compute, route_to_gpu

    n = npartitions or max(1, min(len(samples), _n_workers(dask_client) * 2))
    dask_transformer = bob.pipelines.wrap(["dask"], transformer, npartitions=n)
    route_to_gpu(dask_transformer, gpu_routing=gpu_routing, client=dask_client)
    return list(compute(dask_transformer.transform(samples), dask_client))


def _n_workers(client):
    try:
        return max(1, len(client.scheduler_info()["workers"]))
    except Exception:  # noqa: BLE001 - a client without scheduler info still computes
        return 1


def embed_samples(samples, model, cache_dir, checkpoint=None, dask_client=None, batch_size=32,
                  gpu_routing="auto", fallback=True):
    """Crop and embed Bob samples, with a per-sample cache (Bob's CheckpointWrapper).

    Returns
    -------
    samples : list
        The samples with an embedding (same order as given). Samples without one (no face found
        and no fallback crop, see :mod:`bob_facerev.face.crop`) are dropped, logged one by one
        and counted in one summary line.
    X : ndarray, (N, d) float32
        Their L2-normalised embeddings.
    """
    import bob.pipelines

    from ..pipelines import embedding_transformer

    transformer = bob.pipelines.wrap(
        ["checkpoint"],
        embedding_transformer(model, checkpoint=checkpoint, batch_size=batch_size,
                              fallback=fallback),
        features_dir=str(cache_dir),
        model_path=str(cache_dir),
    )
    from ..failures import is_failed

    out = run_transformer(transformer, samples, dask_client, gpu_routing)
    kept, X = [], []
    for original, result in zip(samples, out):
        data = result.data
        if is_failed(data):
            logger.warning("no face found in sample %s: left out of the attack", original.key)
            continue
        kept.append(original)
        X.append(np.asarray(data, dtype=np.float32))
    if not X:
        raise ValueError("no face was found in any sample: check the database's images")
    if len(kept) < len(samples):
        logger.warning("%s: no embedding for %d of %d samples (no face found); they are left "
                       "out of the attack", cache_dir, len(samples) - len(kept), len(samples))
    return kept, np.stack(X)


def attack_faces(samples, model):
    """The original faces of ``samples`` as the attack sees them: the model's crop at 112x112
    (at their database's fallback geometry where no face is found)."""
    from ..face.crop import FaceCropper, to_attack_size

    cropper = FaceCropper(model=model)
    crops = cropper.transform(
        [s.data for s in samples],
        annotations=[getattr(s, "annotations", None) for s in samples],
        fallback_eyes=[getattr(s, "fallback_eyes", None) for s in samples],
    )
    return np.stack([to_attack_size(c) for c in crops])
