"""Pack the UTKFace dlib cache as a small training set for a GPU machine (JPEG faces).

The GPU machine receives at most 64 MiB with the working tree, so the 112x112 attack crops of
``benchmarks/utkface_embeddings.py``'s cache travel as JPEG (quality 80, about 30 MiB for 9,326
faces) with their dlib embeddings. ``benchmarks/gpu_utkface_train.py`` decodes them there.

    python benchmarks/utkface_pack.py --cache CACHE/utkface_dlib.npz --output .gpu/utkface.npz
"""

import argparse
import io
import os

import numpy as np

from PIL import Image

from bob_facerev.utils import data_cache


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("--output", default=".gpu/utkface.npz")
    parser.add_argument("--quality", type=int, default=80)
    args = parser.parse_args()
    with np.load(args.cache, allow_pickle=False) as z:
        crops, embeddings, files = z["crops"], z["embeddings"], z["files"]
    blobs = []
    for crop in crops:
        buf = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(crop.transpose(1, 2, 0))).save(
            buf, "JPEG", quality=args.quality
        )
        blobs.append(np.frombuffer(buf.getvalue(), dtype=np.uint8))
    offsets = np.cumsum([0] + [len(b) for b in blobs])
    os.makedirs(os.path.dirname(args.output) or ".", exist_ok=True)
    np.savez(args.output, jpeg=np.concatenate(blobs), offsets=offsets,
             embeddings=embeddings.astype(np.float32), keys=np.asarray([str(f) for f in files]))
    print(f"{len(blobs)} faces, {os.path.getsize(args.output) / 2**20:.1f} MiB -> {args.output}")


if __name__ == "__main__":
    main()
