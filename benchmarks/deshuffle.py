"""Speed of key-free de-shuffling: ``Deshuffler.transform`` vs. a per-template scipy loop.

Run by hand::

    OMP_NUM_THREADS=1 NUMBA_NUM_THREADS=1 python benchmarks/deshuffle.py \
        [--templates 4000] [--baseline-templates 500] [--repeat 5]

(one thread for both sides: the ratio then measures the implementation, not the core count;
drop the variables to let numba's assignment use all cores.)

Synthetic 512-d embeddings with position-specific statistics (unit norm, like face
embeddings), protected with random-per-template PE-MIU. For each block size K and scorer it
times ``Deshuffler.transform`` (batched costs + the package's numba ``batched_assignment``)
and the straightforward implementation on the same inputs: for every template, its cost matrix
with plain numpy broadcasting, ``scipy.optimize.linear_sum_assignment``, and the block
reordering. Both must give identical restorations. Prints a markdown table.
"""

import argparse
import os
import platform
import time

import numpy as np
from scipy.optimize import linear_sum_assignment

from bob_facerev.attack.deshuffle import Deshuffler
from bob_facerev.protection.pemiu import PEMIU


def data(n, d=512, seed=0):
    rng = np.random.default_rng(seed)
    mean = np.random.default_rng(99).normal(size=d)
    X = mean + 1.5 * rng.normal(size=(n, d))
    return (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(np.float32)


def baseline(model, Y):
    """Per-template loop: naive cost matrix + scipy linear_sum_assignment."""
    K, sc = model.block_size, model.scorer_
    out = np.empty_like(Y)
    prec = np.linalg.inv(sc.covariances_) if model.scorer == "gaussian" else None
    for t, y in enumerate(Y):
        b = y.reshape(-1, K).astype(np.float64)
        diff = b[:, None, :] - sc.means_[None]  # (i protected, p position, K)
        if model.scorer == "mean":
            cost = (diff**2).sum(-1)
        else:
            cost = 0.5 * np.einsum("ipk,pkl,ipl->ip", diff, prec, diff) + sc.log_norms_
        rows, cols = linear_sum_assignment(cost)
        restored = np.empty_like(b)
        restored[cols] = b[rows]
        out[t] = restored.reshape(-1)
    return out


def best_time(fn, repeat=3):
    best = np.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t0)
    return best, res


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--templates", type=int, default=4000)
    parser.add_argument("--baseline-templates", type=int, default=500)
    parser.add_argument("--attacker", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5, help="best of this many runs")
    args = parser.parse_args()

    attacker, victims = data(args.attacker, seed=0), data(args.templates, seed=1)
    rows = []
    for K in (16, 32, 64, 128):
        Y = PEMIU(block_size=K).transform(victims, keys=np.arange(len(victims)))
        for scorer in ("mean", "gaussian"):
            model = Deshuffler(block_size=K, scorer=scorer).fit(attacker)
            model.transform(Y[:10])  # numba compilation, outside the timing
            sub = Y[: args.baseline_templates]
            t_fast = t_base = np.inf
            for _ in range(args.repeat):  # interleaved: both see the same load
                t, restored = best_time(lambda: model.transform(Y), repeat=1)
                t_fast = min(t_fast, t)
                t, ref = best_time(lambda: baseline(model, sub), repeat=1)
                t_base = min(t_base, t)
            assert np.array_equal(restored[: len(sub)], ref), "restorations differ"
            fast = len(Y) / t_fast
            slow = len(sub) / t_base
            placed = np.mean(np.all(restored == victims, axis=1))
            rows.append((K, 512 // K, scorer, fast, slow, fast / slow, placed))

    threads = {v: os.environ.get(v, "unset") for v in ("OMP_NUM_THREADS", "NUMBA_NUM_THREADS")}
    print(f"machine: {platform.machine()}, {os.cpu_count()} CPUs, {threads}, "
          f"{args.templates} templates (baseline {args.baseline_templates}), 512-d, "
          f"best of {args.repeat}\n")
    print("| K | blocks | scorer | transform (templates/s) | per-template scipy loop "
          "(templates/s) | speed-up | restored exactly |")
    print("|---|---|---|---|---|---|---|")
    for K, n, scorer, fast, slow, ratio, placed in rows:
        print(f"| {K} | {n} | {scorer} | {fast:,.0f} | {slow:,.0f} | {ratio:.1f}x | "
              f"{100 * placed:.1f}% |")


if __name__ == "__main__":
    main()
