"""The UTKFace embedding cache as an attacker's training set (the trainer's ``.npz`` format).

``benchmarks/utkface_embeddings.py`` caches UTKFace through the package's dlib pipeline: raw dlib
descriptors (``embeddings``), the 112x112 attack crops (``crops``) and the file names. The trainer
(:func:`bob_facerev.attack.trainer.train_generator`) reads the format of
:func:`bob_facerev.attack.dataset.save_training_set`; this script converts one into the other,
with the embeddings L2-normalised as the package's pipelines deliver them (``FaceEmbedding``), so
the generator learns the templates the attacked system stores. UTKFace has no identities: no
``subjects`` are written, and thresholds must come from another data set (CFP-FF)::

    python benchmarks/utkface_training_set.py --cache utkface_dlib.npz --output train_utkface_dlib.npz
"""

import argparse

import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cache", required=True, help="utkface_embeddings.py's npz")
    parser.add_argument("--output", required=True, help="the training set to write (.npz)")
    parser.add_argument("--model", default="dlib", help="the extractor of the cache")
    args = parser.parse_args()

    from bob_facerev.attack.dataset import save_training_set

    with np.load(args.cache, allow_pickle=False) as z:
        missing = {"embeddings", "crops", "files"} - set(z.files)
        if missing:
            raise SystemExit(f"{args.cache!r} lacks {sorted(missing)}: is it a "
                             "utkface_embeddings.py cache?")
        E = z["embeddings"].astype(np.float32)
        crops, files = z["crops"], z["files"]
    norms = np.linalg.norm(E, axis=1, keepdims=True)
    if not np.all(norms > 0):
        raise SystemExit(f"{args.cache!r} holds zero embeddings: rebuild the cache")
    save_training_set(args.output, crops, E / norms, files,
                      metadata={"model": args.model, "source": "UTKFace (utkface_embeddings.py)"})
    print(f"wrote {args.output}: {len(files)} faces, {E.shape[1]}-d, L2-normalised "
          f"(raw norms {float(norms.min()):.3f}-{float(norms.max()):.3f})")


if __name__ == "__main__":
    main()
