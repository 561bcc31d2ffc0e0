"""CFP-FF verification with the package's models: every image embedded once, the 7,000 pairs scored.

The batched equivalent of ``bob bio pipeline simple -d facerev-cfp-ff -p facerev-<model>`` (same
database samples, same ``FaceCropper`` and ``FaceEmbedding``, cosine scores), with each image
cropped and embedded once instead of once per role, and annotations read from a shared
``DlibAnnotator`` cache (``--annotations``), so that all models see the same faces. Writes
``<output>/<model>/scores-dev.csv`` (Bob's CSV score format) and
``<output>/<model>/embeddings.npz`` (``embeddings``, ``keys``, ``subject_ids`` of the images with a
face; input of ``bob facerev deshuffle``), and prints the EER per model
(``bob.measure.eer``) over the pairs whose two images have a face::

    python benchmarks/cfp_eer.py --models dlib sface --annotations CACHE/annotations --output OUT \
        [--folds 10] [--first-fold 1]
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from pathlib import Path

import numpy as np


def ff_samples():
    """Unique samples of ``facerev-cfp-ff`` and its pairs ``(fold, enroll key, probe key)``."""
    from bob_facerev.database.cfp import cfp_database
    from bob_facerev.database.protocols import read_csv

    db = cfp_database("ff")
    samples = {}
    for sset in list(db.references()) + list(db.probes()):
        for s in sset.samples:
            samples.setdefault(s.key, s)
    matching = read_csv(Path(db.dataset_protocols_path) / "ff" / "dev" / "for_matching.csv")
    pairs = [(int(r["fold"]), r["enroll_template_id"], r["probe_template_id"]) for r in matching]
    return samples, pairs


def embed(model, samples, annotations_dir, batch_size=64):
    """``{key: embedding or None}`` for one model."""
    from bob_facerev.face.annotator import DlibAnnotator
    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.face.extractor import FaceEmbedding

    cropper = FaceCropper(model, annotator=DlibAnnotator(annotations_dir=annotations_dir),
                          fallback=False)  # no face: the pair is left out, not a fallback crop
    extractor = FaceEmbedding(model, batch_size=batch_size, device="cpu")
    keys, out = list(samples), {}
    for start in range(0, len(keys), batch_size):
        chunk = keys[start : start + batch_size]
        crops = [cropper.crop(samples[k].data, None, k) for k in chunk]
        ok = [i for i, c in enumerate(crops) if c is not None]
        emb = extractor.transform([crops[i] for i in ok]) if ok else []
        out.update(dict.fromkeys(chunk))
        out.update({chunk[i]: e for i, e in zip(ok, emb)})
    return out


def save_embeddings(model, embeddings, samples, output):
    """``<output>/<model>/embeddings.npz`` of the images with a face."""
    from bob_facerev.utils import atomic_savez

    keys = [k for k, e in embeddings.items() if e is not None]
    atomic_savez(Path(output) / model / "embeddings.npz",
                 embeddings=np.stack([embeddings[k] for k in keys]).astype(np.float32),
                 keys=np.asarray(keys), subject_ids=np.asarray([samples[k].subject_id
                                                                 for k in keys]))


def score(model, embeddings, samples, pairs, output):
    """Write the score file; returns (EER, genuine, impostor, pairs left out)."""
    import bob.measure

    from bob_facerev.utils import atomic_path

    rows, genuine, impostor, skipped = [], [], [], 0
    for fold, e, p in pairs:
        a, b = embeddings.get(e), embeddings.get(p)
        if a is None or b is None:
            skipped += 1
            continue
        s = float(np.dot(a, b))
        same = samples[e].subject_id == samples[p].subject_id
        (genuine if same else impostor).append(s)
        rows.append((samples[p].template_id, samples[p].subject_id, samples[p].key,
                     samples[e].template_id, samples[e].subject_id, s, fold))
    path = Path(output) / model / "scores-dev.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["probe_template_id", "probe_subject_id", "probe_key", "bio_ref_template_id",
                    "bio_ref_subject_id", "score", "fold"])
        w.writerows(rows)
    genuine, impostor = np.asarray(genuine), np.asarray(impostor)
    threshold = bob.measure.eer_threshold(impostor, genuine)
    far, frr = bob.measure.farfrr(impostor, genuine, threshold)
    return (far + frr) / 2, genuine, impostor, skipped


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=["dlib", "sface"])
    parser.add_argument("--annotations", required=True, help="DlibAnnotator cache folder")
    parser.add_argument("--output", required=True)
    parser.add_argument("--folds", type=int, default=10,
                        help="Use the pairs of folds FIRST_FOLD .. FOLDS only (a shared CPU's budget)")
    parser.add_argument("--first-fold", type=int, default=1)
    args = parser.parse_args(argv)
    samples, pairs = ff_samples()
    pairs = [p for p in pairs if args.first_fold <= p[0] <= args.folds]
    used = {k for _, e, p in pairs for k in (e, p)}
    samples = {k: s for k, s in samples.items() if k in used}
    print(f"CFP-FF: {len(pairs)} pairs over {len(samples)} distinct images")
    for model in args.models:
        t0 = time.time()
        embeddings = embed(model, samples, os.path.expanduser(args.annotations))
        eer, gen, imp, skipped = score(model, embeddings, samples, pairs, args.output)
        save_embeddings(model, embeddings, samples, args.output)
        print(f"{model}: EER {100 * eer:.2f} % over {len(gen)} genuine + {len(imp)} impostor "
              f"pairs ({skipped} left out: no face found), genuine mean {gen.mean():.3f}, impostor "
              f"mean {imp.mean():.3f}, {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
