"""Training speed of the reconstruction attack: images/s per step and the share of time waiting for data.

Runs the trainer's own epoch loop (``bob_facerev.attack.epoch.run_epoch``: DataLoader, uint8 faces
converted on the device, generator, loss, Adam step) for a few steps in three settings:

* ``no ID``: MSE + SSIM only;
* ``ID, precomputed targets`` (what the trainer does): the identity network embeds the generated
  faces each step, the real faces' embeddings were computed once;
* ``ID, recomputed targets`` (the straightforward loop): the identity network embeds the real faces
  again at every step.

The identity network is the dlib ResNet (``load_embedding_network("dlib")``), or ``--id-model``.
Data: a training set ``.npz`` (``--data``; B1's UTKFace cache layout with ``crops``/``files`` works
too), else random faces and embeddings. Prints a markdown table.

    python benchmarks/train.py                     # CPU
    python benchmarks/train.py --device cuda --amp --batch-size 32 --steps 50
"""

import argparse
import os
import time

import numpy as np
import torch

from bob_facerev.utils import data_cache


def load_data(path, n, embedding_size, seed=0):
    if path and os.path.exists(path):
        with np.load(path, allow_pickle=False) as z:
            faces = z["faces"] if "faces" in z.files else z["crops"]
            emb = z["embeddings"]
            idx = np.sort(np.random.RandomState(seed).permutation(len(faces))[:n])
            return np.ascontiguousarray(faces[idx]), np.asarray(emb[idx], np.float32), path
    rng = np.random.RandomState(seed)
    faces = rng.randint(0, 256, size=(n, 3, 112, 112), dtype=np.uint8)
    return faces, rng.randn(n, embedding_size).astype(np.float32), "random"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=6, help="timed training steps per setting")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--id-model", default="dlib")
    parser.add_argument("--id-checkpoint", default=None, help="weights of --id-model")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    from bob_facerev.attack.dataset import ReconstructionDataset
    from bob_facerev.attack.generator import Generator
    from bob_facerev.attack.losses import ReconstructionLoss
    from bob_facerev.attack.epoch import compute_id_targets, run_epoch
    from bob_facerev.face.network import load_embedding_network

    device = torch.device(args.device)
    amp = args.amp and device.type == "cuda"
    n = args.batch_size * (args.steps + args.warmup)
    faces, emb, source = load_data(args.data, n, 128)
    d = emb.shape[1]
    id_net = load_embedding_network(args.id_model, args.id_checkpoint).to(device)

    settings = [
        ("no ID", ReconstructionLoss(w_id=0.0), False),
        ("ID, precomputed targets", ReconstructionLoss(id_network=id_net), True),
        ("ID, recomputed targets", ReconstructionLoss(id_network=id_net), False),
    ]
    rows = []
    for name, loss, precompute in settings:
        torch.manual_seed(0)
        gen = Generator(d).to(device)
        opt = torch.optim.Adam(gen.parameters(), lr=1e-3)
        scaler = torch.amp.GradScaler("cuda") if amp else None
        loss = loss.to(device)
        targets = None
        t_targets = 0.0
        if precompute:
            t0 = time.perf_counter()
            targets = compute_id_targets(loss, faces, np.arange(len(faces)), device)
            if device.type == "cuda":
                torch.cuda.synchronize()
            t_targets = (time.perf_counter() - t0) / len(faces)
        ds = ReconstructionDataset(faces, emb)
        warm = torch.utils.data.Subset(ds, range(args.batch_size * args.warmup))
        timed = torch.utils.data.Subset(ds, range(args.batch_size * args.warmup, len(ds)))
        kw = dict(batch_size=args.batch_size, shuffle=True, num_workers=args.workers,
                  generator=torch.Generator().manual_seed(0), pin_memory=device.type == "cuda")
        run_epoch(gen, loss, torch.utils.data.DataLoader(warm, **kw), device, targets, opt, scaler, amp)
        terms, count, wait, seconds = run_epoch(
            gen, loss, torch.utils.data.DataLoader(timed, **kw), device, targets, opt, scaler, amp
        )
        rows.append((name, count / seconds, wait / seconds, t_targets))

    print(f"device {device}{' (amp)' if amp else ''}, batch {args.batch_size}, {args.steps} timed "
          f"steps, {args.workers} workers, torch threads {torch.get_num_threads()}, data: {source}, "
          f"identity network: {args.id_model}\n")
    print("| setting | images/s | data wait share | one-off target cost (s/image) | speed vs straightforward |")
    print("|---|---|---|---|---|")
    straightforward = rows[2][1]
    for name, ips, share, tt in rows:
        ratio = f"{ips / straightforward:.2f}x" if name != "no ID" else "-"
        print(f"| {name} | {ips:.1f} | {100 * share:.2f} % | {tt:.4f} | {ratio} |")


if __name__ == "__main__":
    main()
