"""Real-data experiment: key-free de-shuffling of PE-MIU on UTKFace dlib embeddings.

Run by hand (after the UTKFace embedding cache exists)::

    python benchmarks/deshuffle_learning_curve.py \\
        [--embeddings CACHE/utkface_dlib.npz] [--output results/deshuffle_utkface] \\
        [--plot doc/_static/deshuffle_learning_curve.png]

K = 4, 8, 16, 32, 64 (32 to 2 blocks of the 128-d dlib embeddings). The embeddings are split
at random into an attacker half and a victim half (no image in both). The victims are protected
with random-per-template PE-MIU (and, as a second table, one fixed permutation moving all
blocks, attacked per template and pooled over all victims); growing attacker subsets (3 random
draws per size) fit a :class:`~bob_facerev.attack.deshuffle.Deshuffler` with the position-mean
scorer and the Gaussian scorer (Ledoit-Wolf shrinkage, and the fixed default ``reg=1e-3``).
Prints markdown tables, writes the CSVs into ``--output`` and the learning-curve plot to ``--plot``.
"""

import argparse
import os
import platform
import time

import numpy as np
import pandas as pd

from bob_facerev.attack.deshuffle_curve import learning_curve
from bob_facerev.attack.deshuffle_report import plot_learning_curve
from bob_facerev.evaluation.tables import markdown_table
from bob_facerev.utils import data_cache


def run(attacker, victims, protection, moved_blocks, sizes, repeats, seed):
    tables = []
    for scorer, reg, label in (
        ("mean", 1e-3, "mean"),
        ("gaussian", "auto", "gaussian auto"),
        ("gaussian", 1e-3, "gaussian reg=1e-3"),
    ):
        t = learning_curve(attacker, victims, block_sizes=(4, 8, 16, 32, 64), scorers=(scorer,),
                           sizes=sizes, protection=protection, moved_blocks=moved_blocks,
                           repeats=repeats, reg=reg, seed=seed)
        t["scorer"] = label
        tables.append(t)
    return pd.concat(tables, ignore_index=True)


def pivot(table, metric, attack="per-template"):
    """Markdown: one row per (K, scorer), one column per attacker-set size."""
    t = table[table["attack"] == attack]
    wide = t.pivot_table(index=["block_size", "n_blocks", "scorer"], columns="n_attacker",
                         values=metric, sort=True)
    cols = list(wide.columns)
    fmt = (lambda v: f"{v:.3f}") if metric.startswith("cosine") else (lambda v: f"{100 * v:.1f}")
    rows = [[K, n, scorer] + ["" if np.isnan(row[c]) else fmt(row[c]) for c in cols]
            for (K, n, scorer), row in wide.iterrows()]
    out = pd.DataFrame(rows, columns=["K", "blocks", "scorer"] + [str(c) for c in cols])
    return markdown_table(out, numparse=False)


def report(table, title):
    attacks = sorted(set(table["attack"]), reverse=True)
    for attack in attacks:
        for metric, name in (("placement", "blocks placed correctly (%)"),
                             ("exact", "templates restored exactly (%)"),
                             ("cosine", "mean cosine restored vs. original")):
            print(f"\n### {title}, {attack}: {name} by attacker-set size\n")
            print(pivot(table, metric, attack))
    base = table.groupby("block_size")[["chance", "cosine_protected"]].first()
    print("\nchance and no-attack cosine per K:\n")
    print(markdown_table(base, index=True))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--embeddings", default=str(data_cache("utkface_dlib.npz")))
    parser.add_argument("--output", default="results/deshuffle_utkface")
    parser.add_argument("--plot", default="doc/_static/deshuffle_learning_curve.png")
    parser.add_argument("--sizes", default="1,3,10,30,100,300,1000,3000")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--max-victims", type=int, default=3000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    data = np.load(args.embeddings)
    X = data["embeddings"]
    keep = np.isfinite(X).all(axis=1)
    X = X[keep]
    order = np.random.default_rng(args.seed).permutation(len(X))
    half = len(X) // 2
    attacker, victims = X[order[:half]], X[order[half:]][: args.max_victims]
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"{args.embeddings}: {len(X)} embeddings (d={X.shape[1]}, {int((~keep).sum())} "
          f"non-finite dropped); attacker {len(attacker)}, victims {len(victims)}; "
          f"{platform.machine()}, {os.cpu_count()} CPUs\n")
    os.makedirs(args.output, exist_ok=True)

    t0 = time.perf_counter()
    table = run(attacker, victims, "random", None, sizes, args.repeats, args.seed)
    table.to_csv(os.path.join(args.output, "random.csv"), index=False)
    report(table, "random permutation per template")
    os.makedirs(os.path.dirname(args.plot) or ".", exist_ok=True)
    plot_learning_curve(
        table, args.plot,
        title=f"De-shuffling random-per-template PE-MIU, UTKFace dlib embeddings "
              f"({len(victims)} victims; thin lines: chance / no attack)")

    fixed = run(attacker, victims, "fixed", None, [s for s in sizes if s <= 100], 1, args.seed)
    fixed.to_csv(os.path.join(args.output, "fixed.csv"), index=False)
    report(fixed, "one fixed permutation moving all blocks")
    print(f"\n{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
