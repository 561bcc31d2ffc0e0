"""Seconds of ``score_sample_templates`` on LFW-shaped templates: Bob's scan vs the index.

Each of N probes has one reference among N enrolled templates (as LFW View 2 with one image per
template); the templates are Bob ``DelayedSample`` objects (as Bob's checkpoints hand them
over) holding 128-d vectors. Both implementations score the same templates with the package's
:class:`~bob_facerev.pipelines.CosineSimilarity`; the scores are checked equal. Run by hand::

    python benchmarks/score_templates.py --templates 1500 3850
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np


def templates(n, dim=128, seed=0):
    from bob.pipelines import DelayedSample, Sample

    rng = np.random.default_rng(seed)
    enroll = [DelayedSample(lambda v=rng.normal(size=dim): v, template_id=f"t{i}")
              for i in range(n)]
    probes = [Sample(rng.normal(size=(1, dim)), template_id=f"p{i}", references=[f"t{i}"])
              for i in range(n)]
    return probes, enroll


def main(argv=None):
    from bob.bio.base.pipelines import BioAlgorithm

    from bob_facerev.pipelines import CosineSimilarity

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--templates", type=int, nargs="+", default=[1500, 3850])
    args = parser.parse_args(argv)
    algorithm = CosineSimilarity()
    print(f"machine: {platform.platform()}")
    print("| templates | Bob's scan (s) | index (s) | ratio |")
    print("|---|---|---|---|")
    for n in args.templates:
        probes, enroll = templates(n)
        start = time.perf_counter()
        bob = BioAlgorithm.score_sample_templates(algorithm, probes, enroll, False)
        scan = time.perf_counter() - start
        start = time.perf_counter()
        ours = algorithm.score_sample_templates(probes, enroll, False)
        index = time.perf_counter() - start
        a = np.array([s.data for ss in bob for s in ss.samples], dtype=float)
        b = np.array([s.data for ss in ours for s in ss.samples], dtype=float)
        if a.shape != b.shape or not np.array_equal(a, b):
            raise SystemExit(f"{n} templates: the scores differ")
        print(f"| {n} | {scan:.2f} | {index:.2f} | {scan / index:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
