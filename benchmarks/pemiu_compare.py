"""PE-MIU comparison speed: pemiu_scores against a straightforward per-pair implementation.

Both score the same random 512-d templates (PE-MIU protected, random permutation per template) at
each block size K. The per-pair implementation builds the block cost matrix in Python loops,
solves it with scipy's ``linear_sum_assignment`` and takes the cosine of the realigned probe, one
pair at a time (as the public PE-MIU reference does); it scores the first ``--pairs`` pairs of the
``references x probes`` grid. ``pemiu_scores`` scores the whole grid. The table gives
comparisons per second of both, their ratio, and the largest absolute score difference on the
pairs both computed.

Run by hand::

    python benchmarks/pemiu_compare.py --references 1000 --probes 1000 --pairs 500
"""

import argparse
import time

import numpy as np

from scipy.optimize import linear_sum_assignment

from bob_facerev.protection.comparator import pemiu_scores
from bob_facerev.protection.pemiu import PEMIU


def pemiu_pair_reference(reference, probe, block_size):
    """Straightforward PE-MIU score of one pair (loops + scipy + cosine)."""
    n = len(reference) // block_size
    ref_blocks = [reference[i * block_size : (i + 1) * block_size] for i in range(n)]
    probe_blocks = [probe[i * block_size : (i + 1) * block_size] for i in range(n)]
    cost = np.empty((n, n))
    for i in range(n):
        for j in range(n):
            cost[i, j] = np.linalg.norm(ref_blocks[i] - probe_blocks[j])
    _, cols = linear_sum_assignment(cost)
    realigned = np.concatenate([probe_blocks[j] for j in cols])
    return float(
        np.dot(reference, realigned) / (np.linalg.norm(reference) * np.linalg.norm(realigned))
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--references", type=int, default=1000, help="N reference templates")
    parser.add_argument("--probes", type=int, default=1000, help="M probe templates")
    parser.add_argument("--pairs", type=int, default=500, help="pairs scored one by one")
    parser.add_argument("--dim", type=int, default=512, help="embedding dimension d")
    parser.add_argument("--block-sizes", type=int, nargs="+", default=[16, 32, 64, 128])
    parser.add_argument("--dtype", choices=["float32", "float64"], default="float32")
    parser.add_argument("--repeats", type=int, default=3, help="best of R interleaved timings")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    # identities: each probe is a noisy copy of a reference, so genuine pairs exist too
    refs = rng.standard_normal((args.references, args.dim)).astype(args.dtype)
    owner = rng.integers(0, args.references, args.probes)
    probes = (refs[owner] + 0.5 * rng.standard_normal((args.probes, args.dim))).astype(args.dtype)
    pairs = [(i, j) for i in range(args.references) for j in range(args.probes)][: args.pairs]

    rows = []
    for K in args.block_sizes:
        R = PEMIU(K, seed=1).transform(refs, keys=[f"r{i}" for i in range(len(refs))])
        Q = PEMIU(K, seed=1).transform(probes, keys=[f"p{j}" for j in range(len(probes))])
        pemiu_scores(R[:2], Q[:2], K)  # compile / load the numba cache outside the timing

        # best of `repeats` interleaved runs of both (the CPU is shared: the minimum is the
        # least disturbed run)
        t_slow = t_fast = np.inf
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            slow = np.array([pemiu_pair_reference(R[i], Q[j], K) for i, j in pairs])
            t_slow = min(t_slow, time.perf_counter() - t0)
            t0 = time.perf_counter()
            fast = pemiu_scores(R, Q, K)
            t_fast = min(t_fast, time.perf_counter() - t0)

        diff = max(abs(fast[i, j] - s) for (i, j), s in zip(pairs, slow))
        rate_slow = len(pairs) / t_slow
        rate_fast = fast.size / t_fast
        rows.append((K, len(pairs), rate_slow, fast.size, rate_fast, rate_fast / rate_slow, diff))

    print(f"d={args.dim}, {args.dtype}, references={args.references}, probes={args.probes}")
    print()
    print("| K | per-pair: pairs | per-pair: comparisons/s | pemiu_scores: pairs "
          "| pemiu_scores: comparisons/s | speed-up | max abs score diff |")
    print("|---|---|---|---|---|---|---|")
    for K, n_slow, r_slow, n_fast, r_fast, ratio, diff in rows:
        print(f"| {K} | {n_slow} | {r_slow:,.0f} | {n_fast} | {r_fast:,.0f} | {ratio:,.0f}x "
              f"| {diff:.1e} |")


if __name__ == "__main__":
    main()
