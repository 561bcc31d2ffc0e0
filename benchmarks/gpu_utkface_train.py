"""Train the study's generator on UTKFace dlib embeddings on a GPU (FFHQ's role in the study).

Runs with torch alone (no Bob needed on the GPU machine): the package's trainer, generator, loss and
dlib ResNet port. Input: the packed set of ``benchmarks/utkface_pack.py`` and dlib's
``dlib_face_recognition_resnet_model_v1.dat`` (the identity loss, white-box). Output: ``log.csv``,
the best generator in float16, split in parts of < 16 MiB (``generator.partN``), its metadata
(``metadata.json``) and the last epoch's face grid.

    python benchmarks/gpu_utkface_train.py --data .gpu/utkface.npz --dat .gpu/dlib.dat \
        --epochs 25 --output $OUT
"""

import argparse
import io
import json
import os
import shutil
import time

import numpy as np
import torch

from PIL import Image


def main():
    from bob_facerev.attack.dataset import save_training_set
    from bob_facerev.attack.checkpoint import read_generator_checkpoint
    from bob_facerev.attack.trainer import train_generator

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", required=True)
    parser.add_argument("--dat", required=True)
    parser.add_argument("--epochs", type=int, default=25)
    parser.add_argument("--w-id", type=float, default=0.005)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--limit", type=int, default=None, help="first N faces (smoke tests)")
    parser.add_argument("--output", required=True)
    args = parser.parse_args()
    start = time.time()
    with np.load(args.data, allow_pickle=False) as z:
        jpeg, offsets, embeddings, keys = z["jpeg"], z["offsets"], z["embeddings"], z["keys"]
    n = len(offsets) - 1 if args.limit is None else min(args.limit, len(offsets) - 1)
    faces = np.stack([
        np.asarray(Image.open(io.BytesIO(jpeg[offsets[i]:offsets[i + 1]].tobytes())).convert("RGB"))
        .transpose(2, 0, 1)
        for i in range(n)
    ])
    work = os.path.join(args.output, "work")
    os.makedirs(work, exist_ok=True)
    training_set = os.path.join(work, "utkface_dlib.npz")
    save_training_set(training_set, faces, embeddings[:n], keys[:n],
                      metadata={"model": "dlib", "source": "UTKFace crop_part1 (JPEG q80)"})
    print(f"decoded {n} faces in {time.time() - start:.1f} s; "
          f"{torch.cuda.get_device_name() if torch.cuda.is_available() else 'cpu'}", flush=True)
    result = train_generator(
        training_set, os.path.join(work, "gen"), model="dlib", id_checkpoint=args.dat,
        epochs=args.epochs, w_id=args.w_id, device=args.device, workers=args.workers,
        progress=False,
    )
    for row in result["history"]:
        print(f"epoch {row['epoch']}: train {row['train_total']:.5f} val {row['val_total']:.5f} "
              f"(mse {row['val_mse']:.5f}) {row['images_per_s']:.0f} images/s, "
              f"data wait {100 * row['data_wait_share']:.1f} %", flush=True)
    state = read_generator_checkpoint(result["best"])
    weights = {k: (v.half() if v.is_floating_point() else v) for k, v in state["generator"].items()}
    buf = io.BytesIO()
    torch.save(weights, buf)
    blob = buf.getvalue()
    part = 15 * 2**20
    for i in range(0, len(blob), part):
        with open(os.path.join(args.output, f"generator.part{i // part}"), "wb") as f:
            f.write(blob[i:i + part])
    with open(os.path.join(args.output, "metadata.json"), "w") as f:
        json.dump(state["metadata"], f, indent=1, default=str)
    shutil.copy(os.path.join(work, "gen", "log.csv"), os.path.join(args.output, "log.csv"))
    grids = sorted(os.listdir(os.path.join(work, "gen", "grids")))
    if grids:
        shutil.copy(os.path.join(work, "gen", "grids", grids[-1]), os.path.join(args.output, "grid.png"))
    shutil.rmtree(work)
    print(f"best epoch {result['best_epoch']}, total {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
