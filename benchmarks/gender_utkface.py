"""Gender leakage on real embeddings: UTKFace faces, dlib ResNet (128-d), PE-MIU random per template.

Reads the UTKFace embedding cache (``embeddings`` (N, 128), ``gender`` with UTKFace's 0 = male,
1 = female, optional ``keys`` or ``files``), made by the face part's cache script from
UTKFace (``bob config set bob_facerev.utkface.directory DIR``). Draws a gender-balanced sample of the study's size (1,471 per gender,
seed 42), and prints the leakage table (unprotected; PE-MIU K in {8, 16, 32, 64}, both threat
models; 10-fold stratified CV) as markdown, with the time it took. Writes the CSV and markdown
next to the bar plot (default ``doc/_static/gender_utkface.png``).

Run by hand::

    OMP_NUM_THREADS=1 python benchmarks/gender_utkface.py [--cache CACHE/utkface_dlib.npz]
"""

import argparse
import os
import platform
import sys
import time

import numpy as np

from bob_facerev.evaluation.gender import format_table, leakage_table, parse_gender, plot_leakage
from bob_facerev.utils import atomic_path, data_cache

HERE = os.path.dirname(os.path.abspath(__file__))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("-k", "--block-size", type=int, action="append", dest="block_sizes")
    parser.add_argument("--per-gender", type=int, default=1471, help="0: all of the smaller gender")
    parser.add_argument("--folds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--plot", default=os.path.join(HERE, "..", "doc", "_static", "gender_utkface.png"))
    parser.add_argument("--csv", default=None, help="default: the plot path with .csv")
    parser.add_argument("--model", default="dlib", help="the extractor of the cache (plot title)")
    args = parser.parse_args(argv)

    if not os.path.exists(args.cache):
        sys.exit(f"{args.cache} not found: build the UTKFace embedding cache first")
    with np.load(args.cache, allow_pickle=False) as f:
        X = f["embeddings"]
        gender = f["gender"]
        # PE-MIU permutations are seeded per sample key: the file names when there are no keys
        keys = f["keys"] if "keys" in f.files else (f["files"] if "files" in f.files else None)
    labels = parse_gender(list(gender))
    print(
        f"{args.cache}: {X.shape[0]} embeddings of dimension {X.shape[1]}; gender classes "
        f"0: {np.sum(labels == 0)}, 1: {np.sum(labels == 1)}, unknown: {np.sum(labels < 0)}"
    )
    block_sizes = args.block_sizes or [8, 16, 32, 64]
    start = time.perf_counter()
    table = leakage_table(
        X,
        gender,
        keys=keys,
        block_sizes=block_sizes,
        n_splits=args.folds,
        seed=args.seed,
        n_per_gender=args.per_gender or None,
    )
    seconds = time.perf_counter() - start
    n, n0, n1 = table.iloc[0][["n", "n_class0", "n_class1"]]
    print(
        f"\nmachine: {platform.machine()} {os.cpu_count()}-core CPU (shared), Python "
        f"{platform.python_version()}; {n} samples ({n0} + {n1}), {args.folds}-fold stratified "
        f"CV, seed {args.seed}; {seconds:.0f} s\n"
    )
    print(format_table(table))
    os.makedirs(os.path.dirname(os.path.abspath(args.plot)), exist_ok=True)
    plot_leakage(table, args.plot, title=f"Gender prediction, UTKFace {args.model} embeddings (n = {n})")
    csv_path = args.csv or os.path.splitext(args.plot)[0] + ".csv"
    with atomic_path(csv_path) as tmp:
        table.to_csv(tmp, index=False)
    print(f"\nwrote {args.plot} and {csv_path}")


if __name__ == "__main__":
    main()
