"""dlib-default embeddings of UTKFace, computed once and cached (an npz) for other experiments.

Every image goes through the package's own chain: DlibAnnotator (HOG detector + 5 landmarks),
dlib's 150x150 chip, the torch port of dlib's ResNet (batched). The images are already aligned
200x200 crops, but they are still detected and aligned, as any photo would be. Images where no
face is found, or whose file name has invalid labels, are left out and listed.

The cache (``--output``, default ``utkface_dlib.npz`` in the data cache folder,
:func:`bob_facerev.utils.data_cache`), written atomically:

- ``embeddings`` (N, 128) float32 (dlib descriptors, not normalised),
- ``gender`` (N,) int8 (0 male, 1 female), ``age`` (N,) int16, ``race`` (N,) int8,
- ``files`` (N,) str (file names), ``crops`` (N, 3, 112, 112) uint8 (the chips at the attack's
  size, :func:`bob_facerev.face.crop.to_attack_size`),
- ``no_face`` and ``bad_labels`` (str arrays of skipped files).

It also times the batched torch forward against dlib-bin's ``compute_face_descriptor`` on the
same chips and prints a markdown table::

    python benchmarks/utkface_embeddings.py [--images DIR] [--output PATH] [--limit N]
"""

import argparse
import logging
import os
import time

import numpy as np

logger = logging.getLogger("utkface_embeddings")

#: ``bob config`` key of the UTKFace images folder (the aligned crops, ``*.jpg.chip.jpg``)
IMAGES_KEY = "bob_facerev.utkface.directory"


def default_images():
    """The UTKFace folder configured with ``bob config set bob_facerev.utkface.directory DIR``."""
    from bob_facerev import rc

    return rc.get(IMAGES_KEY)


def parse_labels(name):
    """``AGE_GENDER_RACE_DATETIME.jpg.chip.jpg`` -> (age, gender, race), or None if invalid."""
    parts = name.split("_")
    if len(parts) < 4:
        return None
    try:
        age, gender, race = int(parts[0]), int(parts[1]), int(parts[2])
    except ValueError:
        return None
    if gender not in (0, 1) or race not in range(5) or not 0 <= age <= 120:
        return None
    return age, gender, race


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", default=None,
                        help=f"UTKFace aligned images (default: bob config get {IMAGES_KEY})")
    parser.add_argument("--output", default=None,
                        help="cache file (default: utkface_dlib.npz in the data cache, "
                             "FACEREV_CACHE or bob config get bob_facerev.cache)")
    parser.add_argument("--limit", type=int, default=None, help="first N images only (tests)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--compare", type=int, default=256,
                        help="chips on which to time dlib-bin against the torch port")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    from bob_facerev.utils import data_cache

    args.output = args.output or str(data_cache("utkface_dlib.npz"))
    args.images = args.images or default_images()
    if not args.images:
        parser.error(f"no UTKFace folder: pass --images DIR or run `bob config set {IMAGES_KEY} DIR`")

    import dlib
    import face_recognition_models as frm
    import torch
    from PIL import Image
    from tqdm import tqdm

    from bob_facerev.face.annotator import DlibAnnotator
    from bob_facerev.face.backbones.dlib_resnet import load_dlib_resnet
    from bob_facerev.face.crop import dlib_chip, to_attack_size
    from bob_facerev.utils import atomic_savez

    names = sorted(f for f in os.listdir(args.images) if f.lower().endswith(".jpg"))
    if args.limit:
        names = names[: args.limit]
    annotator = DlibAnnotator()
    files, labels, chips, crops, no_face, bad_labels = [], [], [], [], [], []
    t0 = time.perf_counter()
    for name in tqdm(names, desc="detect + align", unit="img"):
        label = parse_labels(name)
        if label is None:
            logger.warning("%s: invalid labels in the file name, left out", name)
            bad_labels.append(name)
            continue
        image = np.asarray(Image.open(os.path.join(args.images, name)).convert("RGB"))
        image = image.transpose(2, 0, 1)
        annotations = annotator.annotate(image, key=name)
        if annotations is None:
            no_face.append(name)
            continue
        chip = dlib_chip(image, annotations)
        files.append(name)
        labels.append(label)
        chips.append(chip)
        crops.append(to_attack_size(chip))
    t_align = time.perf_counter() - t0

    model = load_dlib_resnet()
    embeddings = []
    t0 = time.perf_counter()
    with torch.no_grad():
        for i in tqdm(range(0, len(chips), args.batch_size), desc="embed", unit="batch"):
            x = torch.from_numpy(np.stack(chips[i:i + args.batch_size])).float()
            embeddings.append(model(x).numpy())
    t_embed = time.perf_counter() - t0
    embeddings = np.concatenate(embeddings).astype(np.float32)
    labels = np.array(labels)

    atomic_savez(
        args.output,
        embeddings=embeddings,
        age=labels[:, 0].astype(np.int16),
        gender=labels[:, 1].astype(np.int8),
        race=labels[:, 2].astype(np.int8),
        files=np.array(files),
        crops=np.stack(crops),
        no_face=np.array(no_face, dtype=str),
        bad_labels=np.array(bad_labels, dtype=str),
    )

    # the same chips through dlib-bin, one by one (its Python API has no batching)
    n_cmp = min(args.compare, len(chips))
    recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    t0 = time.perf_counter()
    reference = np.array([
        recognizer.compute_face_descriptor(np.ascontiguousarray(c.transpose(1, 2, 0)))
        for c in chips[:n_cmp]
    ])
    t_dlib = time.perf_counter() - t0
    with torch.no_grad():
        t0 = time.perf_counter()
        ours = np.concatenate([
            model(torch.from_numpy(np.stack(chips[i:min(i + args.batch_size, n_cmp)]))
                  .float()).numpy()
            for i in range(0, n_cmp, args.batch_size)
        ])
        t_torch = time.perf_counter() - t0
    max_diff = float(np.abs(ours - reference).max()) if n_cmp else float("nan")

    print(f"\nwrote {args.output}: {len(files)} embeddings; {len(no_face)} images without a "
          f"face, {len(bad_labels)} with invalid labels (of {len(names)})\n")
    print("| step | images | seconds | images/s |")
    print("|---|---|---|---|")
    print(f"| detect + landmarks + chip (DlibAnnotator, dlib_chip) | {len(names)} | "
          f"{t_align:.1f} | {len(names) / t_align:.1f} |")
    print(f"| embed, torch port, batch {args.batch_size} | {len(chips)} | {t_embed:.1f} | "
          f"{len(chips) / t_embed:.1f} |")
    if n_cmp:
        print(f"| embed, dlib-bin compute_face_descriptor (reference) | {n_cmp} | "
              f"{t_dlib:.2f} | {n_cmp / t_dlib:.1f} |")
        print(f"| embed, torch port, same chips | {n_cmp} | {t_torch:.2f} | "
              f"{n_cmp / t_torch:.1f} |")
        print(f"\ntorch port / dlib-bin speed ratio: {t_dlib / t_torch:.2f}; "
              f"max |torch - dlib| = {max_diff:.2e}")


if __name__ == "__main__":
    main()
