"""The study's grid on CFP from cached embeddings: a UTKFace-trained attacker against CFP people.

What ``bob facerev grid`` with a CFP grid config (``bob_facerev/config/grid/cfp_dlib.py``,
``cfp_sface.py``) does per cell, run on embeddings that were already computed, so that no CFP
photo is detected, cropped or embedded again:

* the attacked templates: the ``facerev-cfp-attack`` protocol (one frontal photo per person),
  restricted to the photos that have an embedding in ``--embeddings`` (the CFP-FF run's
  embeddings; the count left out is printed);
* the attack per cell: the package's own chain (:func:`bob_facerev.attack.chain.attack_chain`:
  PE-MIU -> [de-shuffling] -> generator -> the attacked extractor) on those templates, and
  :func:`bob_facerev.attack.chain.attack_scores` for type-I (against the template attacked) and
  type-II (against the person's other frontal photos in ``--embeddings``);
* the thresholds: FMR 0.1 / 1 / 10 % from ``--threshold-scores`` (CFP-FF bona fide scores of the
  same extractor: real different identities); the score files are written with those bona fide
  rows (:func:`bob_facerev.evaluation.rsr.write_vuln_scores`) and evaluated with
  :func:`bob_facerev.evaluation.rsr.evaluate_score_files`, as the grid's report does.

The de-shuffling variant fits its :class:`~bob_facerev.attack.deshuffle.Deshuffler` on the
attacker's unprotected embeddings (``--training-set``, e.g. UTKFace), never on CFP.

Example (the CFP database configured as in ``bob facerev db build cfp``)::

    python benchmarks/cfp_attack.py -m dlib --generator gen_dlib/best.pt \\
        --training-set utkface_dlib.npz --embeddings cfp_ff_dlib/embeddings.npz \\
        --threshold-scores cfp_ff_dlib/scores-dev.csv -o results/cfp_attack_dlib

``--protections none`` runs the unprotected row only; the default is the study's grid for the
embedding size (:func:`bob_facerev.protection.setting.study_grid`). Writes one score file per cell
under ``-o`` and ``rsr-type-I.md``/``rsr-type-II.md`` (with ``.csv``, ``.tex``).
"""

import argparse
import os
import time
from pathlib import Path

import numpy as np


def attacked_templates(database, embeddings):
    """``(samples, X, left_out)``: the attack protocol's samples that have a cached embedding."""
    from bob.pipelines import Sample

    from bob_facerev.attack.samples import database_samples
    from bob_facerev.experiment_config import load_database

    with np.load(embeddings, allow_pickle=False) as z:
        index = {str(k): i for i, k in enumerate(z["keys"])}
        E = z["embeddings"].astype(np.float32)
    samples, rows, left_out = [], [], []
    for s in database_samples(load_database(database)):
        if str(s.key) in index:
            samples.append(s)
            rows.append(index[str(s.key)])
        else:
            left_out.append(str(s.key))
    X = E[rows]
    return [Sample(x, parent=s) for s, x in zip(samples, X)], X, left_out


def references(embeddings):
    """The bona fide photos (keys, subjects) as samples, and their embeddings."""
    from bob.pipelines import Sample

    with np.load(embeddings, allow_pickle=False) as z:
        keys, subjects, R = z["keys"], z["subject_ids"], z["embeddings"].astype(np.float32)
    samples = [Sample(None, key=str(k), subject_id=str(s), template_id=str(k))
               for k, s in zip(keys, subjects)]
    return samples, R


def run_cell(protection, variant, args, templates, X, refs, R, deshufflers, bona_fide):
    """One cell: reconstruct, embed, score; returns the written score files."""
    from bob_facerev.attack.chain import attack_chain, attack_scores
    from bob_facerev.evaluation.rsr import protection_metadata, write_vuln_scores

    deshuffler = deshufflers(protection.block_size) if variant == "deshuffle" else None
    chain = attack_chain(protection, variant, args.generator, args.model, deshuffler=deshuffler,
                         seed=args.seed, batch_size=args.batch_size)
    Y = np.stack([np.asarray(r.data, dtype=np.float32) for r in chain.transform(templates)])
    rows = attack_scores(templates, X, Y, refs, R)
    written = []
    for comparison, attack_rows in rows.items():
        path = Path(args.output) / variant / protection.name / f"scores-{comparison}.csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        write_vuln_scores(path, bona_fide, attack_rows,
                          metadata=protection_metadata(args.model, protection, variant, comparison))
        written.append((comparison, path))
    return written


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-m", "--model", required=True, help="the attacked extractor (dlib, sface)")
    parser.add_argument("--generator", required=True, help="the unprotected generator's best.pt")
    parser.add_argument("--training-set", required=True,
                        help="the attacker's training set (its embeddings fit the de-shuffler)")
    parser.add_argument("--embeddings", required=True,
                        help="CFP embeddings (.npz: embeddings, keys, subject_ids) of --model")
    parser.add_argument("--threshold-scores", required=True,
                        help="CFP-FF bona fide scores (CSV) of --model")
    parser.add_argument("-d", "--database", default="facerev-cfp-attack")
    parser.add_argument("--protections", default=None,
                        help="comma-separated protection names (default: the study's grid)")
    parser.add_argument("--variants", default="study,deshuffle")
    parser.add_argument("--scorer", default="mean", help="de-shuffling scorer")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-people", type=int, default=None,
                        help="attack only the first N people (a quick check of the mechanics)")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args()

    from bob_facerev.attack.chain import DeshufflerCache
    from bob_facerev.attack.validation import thresholds_from_scores
    from bob_facerev.evaluation.rsr import evaluate_score_files, read_vuln_scores
    from bob_facerev.evaluation.tables import write_tables
    from bob_facerev.protection.setting import Protection, study_grid

    thresholds_from_scores(args.threshold_scores)  # refuses scores without genuine pairs
    bona_fide = read_vuln_scores(args.threshold_scores)[0]
    templates, X, left_out = attacked_templates(args.database, args.embeddings)
    refs, R = references(args.embeddings)
    if args.max_people:
        templates, X = templates[: args.max_people], X[: args.max_people]
    if not templates:
        raise SystemExit(f"no attacked photo of {args.database!r} has an embedding in "
                         f"{args.embeddings!r}: are they of the same database?")
    print(f"{len(templates)} attacked templates ({len(left_out)} of the protocol's photos have no "
          f"embedding in {os.path.basename(args.embeddings)}); {len(refs)} reference photos")
    grid = (study_grid(X.shape[1]) if args.protections is None
            else [Protection.parse(p) for p in args.protections.split(",")])
    deshufflers = DeshufflerCache(args.training_set, scorer=args.scorer)
    files = {}
    for protection in grid:
        for variant in args.variants.split(","):
            if variant == "deshuffle" and not protection.protected:
                continue
            start = time.time()
            for comparison, path in run_cell(protection, variant, args, templates, X, refs, R,
                                             deshufflers, bona_fide):
                files.setdefault(comparison, []).append(path)
            print(f"{variant} {protection.name}: {time.time() - start:.0f} s", flush=True)
    for comparison, paths in files.items():
        results = evaluate_score_files(paths)
        out = write_tables(results, Path(args.output) / f"rsr-{comparison}")
        print(f"\n### {comparison}\n")
        print(Path(out["md"]).read_text())


if __name__ == "__main__":
    main()
