"""Failures to acquire: samples without an embedding, and the summary of a verification run.

A sample whose face is not found and for which no fallback crop is made (``fallback=False``, see
:mod:`bob_facerev.face.crop`) has no embedding. In the package's verification pipelines
(:func:`bob_facerev.pipelines.verification_pipeline`) it carries a NaN embedding instead of
Bob's ``None``: Bob enrols it (instead of stopping with "None of the enrollment samples were
valid"), the comparators leave it out of templates that have other valid samples, and a template
with no valid sample scores NaN against everything: a failure to acquire, which ``bob vuln`` and
:mod:`bob_facerev.evaluation.rsr` count as failures.

At the end of scoring the pipeline logs one summary line (:func:`summary_line`) and writes it
next to the score file as ``<scores>.failures.json`` (:func:`failures_path`): samples (enrolled
and probed), how many failed, how many were cropped at the fallback geometry, comparisons, and how
many scored NaN.
"""

from __future__ import annotations

import csv
import json
import logging
import math

from pathlib import Path

import numpy as np

from dask.delayed import Delayed

from .utils import atomic_write_text

logger = logging.getLogger(__name__)

#: the annotation key the crop step sets (True: cropped at the fallback geometry)
FALLBACK_KEY = "facerev_fallback"


def is_failed(data):
    """Whether a sample's data is a failure: None, empty, or with any non-finite value."""
    if data is None:
        return True
    arr = np.asarray(data)
    if arr.dtype.kind not in "biuf":
        return False
    return arr.size == 0 or not bool(np.isfinite(arr).all())


def failed_embedding(size):
    """The embedding of a failed sample: ``(size,)`` float32 NaN."""
    return np.full(int(size), np.nan, dtype=np.float32)


def valid_features(features):
    """The features of a template that are not failures (see :func:`is_failed`)."""
    return [f for f in features if not is_failed(f)]


def used_fallback(sample):
    """Whether a sample's crop used the fallback geometry (its ``annotations`` say so)."""
    annotations = getattr(sample, "annotations", None)
    return bool(isinstance(annotations, dict) and annotations.get(FALLBACK_KEY, False))


def count_samples(samplesets):
    """``{"samples", "failed", "fallback"}`` counts over the samples of feature SampleSets."""
    counts = {"samples": 0, "failed": 0, "fallback": 0}
    for sset in samplesets:
        for s in getattr(sset, "samples", [sset]):
            counts["samples"] += 1
            counts["failed"] += is_failed(s.data)
            counts["fallback"] += used_fallback(s)
    return counts


def _count_partition(samplesets):
    return [count_samples(samplesets)]


def add_counts(counts):
    """Sum a list of count dicts (or pass one dict through); None stays None."""
    if counts is None or isinstance(counts, dict):
        return counts
    total = {}
    for c in counts:
        for k, v in c.items():
            total[k] = total.get(k, 0) + v
    return total


def count_features(features):
    """Counts of :func:`count_samples`: now for a list, lazily (a dask bag) for a bag."""
    import dask.bag

    if isinstance(features, dask.bag.Bag):
        return features.map_partitions(_count_partition)
    return count_samples(features)


def count_scores(path):
    """``{"comparisons", "nan"}`` of a Bob score file (CSV with ``score``, or 4/5 columns)."""
    path = Path(path)
    scores = []
    with open(path, newline="") as f:
        if path.suffix == ".csv":
            scores = [r["score"] for r in csv.DictReader(f)]
        else:
            scores = [line.split()[-1] for line in f if line.strip()]
    values = [float(s) if s not in ("", "None") else math.nan for s in scores]
    return {"comparisons": len(values), "nan": int(sum(math.isnan(v) for v in values))}


def failures_path(score_file):
    """Where the summary of ``score_file`` is written: ``<score_file>.failures.json``."""
    return Path(f"{score_file}.failures.json")


def summarize(score_file, references=None, probes=None):
    """The failure summary of a scored run (a dict; see the module doc).

    Parameters
    ----------
    score_file : str or pathlib.Path
        The written score file.
    references, probes : dict or None
        :func:`count_samples` of the enrolled and probed feature samples (None: unknown).
    """
    summary = {"score_file": str(score_file), **count_scores(score_file)}
    for name, counts in (("references", references), ("probes", probes)):
        if counts is not None:
            summary[name] = add_counts(counts)
    return summary


def summary_line(summary):
    """One line: failed and fallback samples, NaN comparisons."""
    parts = []
    for name in ("references", "probes"):
        c = summary.get(name)
        if c:
            parts.append(
                f"{name}: {c['failed']} of {c['samples']} samples failed (no embedding), "
                f"{c['fallback']} cropped at the fallback geometry"
            )
    parts.append(
        f"comparisons: {summary['nan']} of {summary['comparisons']} scored NaN "
        "(failure to acquire)"
    )
    return f"{summary['score_file']}: " + "; ".join(parts)


def report(score_file, references=None, probes=None):
    """Summarize a run, log the summary line and write :func:`failures_path`; returns it."""
    summary = summarize(score_file, references, probes)
    troubled = summary["nan"] or any(
        (summary.get(n) or {}).get(k) for n in ("references", "probes") for k in ("failed", "fallback")
    )
    logger.log(logging.WARNING if troubled else logging.INFO, "%s", summary_line(summary))
    atomic_write_text(failures_path(score_file), json.dumps(summary, indent=2) + "\n")
    return summary


def read_summary(score_file):
    """The summary written for ``score_file`` (:func:`report`), or None when there is none."""
    path = failures_path(score_file)
    if not path.is_file():
        return None
    return json.loads(path.read_text())


def _pack(post_processed, references, probes):
    return post_processed, add_counts(references), add_counts(probes)


def reporting_delayed(post_processed, references, probes, score_file):
    """A ``Delayed`` whose ``compute`` also reports the run's failures (in this process).

    Bob's ``execute_pipeline_simple`` computes the score writer's post-processing ``Delayed``
    and drops the result; this one computes it together with the sample counts, then calls
    :func:`report` where ``compute`` was called, so the summary line reaches the user's log
    rather than a worker's.
    """
    import dask

    packed = dask.delayed(_pack)(post_processed, references, probes)
    return _ReportingDelayed(packed.key, packed.dask, score_file=str(score_file))


class _ReportingDelayed(Delayed):
    """See :func:`reporting_delayed`."""

    __slots__ = ("_score_file",)

    def __init__(self, key, dsk, score_file):
        super().__init__(key, dsk)
        self._score_file = score_file

    def compute(self, **kwargs):
        post_processed, references, probes = super().compute(**kwargs)
        report(self._score_file, references, probes)
        return post_processed
