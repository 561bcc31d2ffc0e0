"""Recipe comparison of the reconstruction attack: the study's identity loss against the scale-free
cosine one, with and without flip augmentation, judged by the RSR on people the attacker never saw.

For each extractor (``dlib``; ``sface`` when the model registry has it) and each recipe, one
generator is trained (``bob_facerev.attack.trainer.train_generator``; best epoch and early stopping
by the validation RSR at ``--select-fmr``), then its ``best.pt`` reconstructs a held-out *test set*
of other people, and the attacked extractor says how many reconstructions it accepts at the FMR
0.1 / 1 / 10 % thresholds: type-I (against the template reconstructed) and type-II (against the
person's other photos).

Inputs, ``{model}`` replaced by the extractor's name:

``--training-set``
    the attacker's training set (``build_training_set``, or ``merge_training_sets`` of UTKFace + FFHQ
    + CFP people disjoint from the test people);
``--test-set``
    the same format with ``subjects`` (e.g. CFP people the attacker never saw);
``--threshold-scores``
    bona fide scores of the extractor on a data set WITH identities (e.g. CFP-FF ``scores-dev.csv``).

Or, from one data set with identities (e.g. CFP, built with ``build_training_set`` from a database
whose samples carry ``subject_id``): ``--people-set`` is split by people (``--test-fraction`` of them
attacked, the others train the attacker, merged with the ``--extra-training`` files, e.g. UTKFace),
and without ``--threshold-scores`` the thresholds come from its different-identity pairs
(``bob_facerev.attack.validation.thresholds_from_embeddings``).

GPU session (one call; ``--epochs``/``--patience`` bound the device time)::

    python benchmarks/recipe_compare.py --models dlib,sface --device cuda --amp \\
        --training-set cache/train_{model}.npz --test-set cache/cfp_test_{model}.npz \\
        --threshold-scores cache/cfp_ff_{model}.csv --epochs 40 --patience 8 -o results/recipes

    python benchmarks/recipe_compare.py --models dlib,sface --device cuda --amp \
        --people-set cache/cfp_{model}.npz --extra-training cache/utkface_{model}.npz -o results/recipes

CPU check of the mechanics (``--quick``: the bundled demo faces train AND test, so the numbers say
nothing about generalisation; 2 epochs on 7 faces)::

    python benchmarks/recipe_compare.py --quick -o results/recipes

Writes ``recipes.csv`` and ``recipes.md`` (one row per model and recipe) into ``-o``.
"""

import argparse
import json
import os
import time

import numpy as np

FMRS = (0.001, 0.01, 0.1)


def recipes(w_id_study, w_id_cosine):
    """The compared recipes: (name, train_generator keyword arguments)."""
    out = []
    for id_loss, w_id in (("study", w_id_study), ("cosine", w_id_cosine)):
        for flip in (False, True):
            name = f"{id_loss}-wid{w_id:g}" + ("-flip" if flip else "")
            out.append((name, dict(id_loss=id_loss, w_id=w_id, flip=flip)))
    return out


def available_models(asked):
    from bob_facerev.face.registry import MODEL_NAMES

    models = []
    for m in asked:
        if m in MODEL_NAMES:
            models.append(m)
        else:
            print(f"skipping {m!r}: not in this installation's model registry {MODEL_NAMES}")
    return models


def test_rsr(best, model, test_set, thresholds, device):
    """Type-I and type-II RSR of a trained generator on the test set's people."""
    from bob_facerev.attack.dataset import has_identities, load_training_set
    from bob_facerev.attack.trainer import load_generator
    from bob_facerev.attack.validation import validation_rsr
    from bob_facerev.face.network import load_embedding_network

    data = load_training_set(test_set)
    generator, _ = load_generator(best, model=model, device=device)
    network = load_embedding_network(model).to(device)
    templates = data["embeddings"] / np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    subjects = data["subjects"] if has_identities(data["subjects"]) else None
    rates = validation_rsr(generator, network, data["embeddings"], templates, thresholds, device,
                           subjects=subjects)
    n_pairs = 0
    if subjects is not None:
        _, counts = np.unique(subjects, return_counts=True)
        n_pairs = int(np.sum(counts * (counts - 1)))
    rates = {k.replace("val_", "test_"): v for k, v in rates.items()}
    return dict(rates, n_test=len(templates), n_test_people=len(set(subjects)) if subjects is not None
                else 0, n_type2_pairs=n_pairs)


def quick_inputs(output):
    """The bundled demo faces as training set, test set and threshold scores (mechanics only)."""
    from bob_facerev.attack.dataset import build_training_set, load_training_set
    from bob_facerev.database.demo import demo_database

    path = os.path.join(output, "demo_dlib.npz")
    if not os.path.exists(path):
        build_training_set(demo_database("verification"), "dlib", path, progress=False)
    data = load_training_set(path)
    # the demo photos carry their people: all-vs-all bona fide scores, genuine and impostor
    emb = data["embeddings"] / np.linalg.norm(data["embeddings"], axis=1, keepdims=True)
    names = [k.rsplit("_", 1)[0] for k in data["keys"]]
    rows = ["probe_subject_id,bio_ref_subject_id,score"]
    for i in range(len(emb)):
        for j in range(i + 1, len(emb)):
            rows.append(f"{names[i]},{names[j]},{float(emb[i] @ emb[j])!r}")
    scores = os.path.join(output, "demo_dlib_scores.csv")
    with open(scores, "w") as f:
        f.write("\n".join(rows) + "\n")
    test = os.path.join(output, "demo_dlib_test.npz")
    if not os.path.exists(test):
        from bob_facerev.attack.dataset import save_training_set

        save_training_set(test, data["faces"], data["embeddings"], data["keys"], data["metadata"],
                          subjects=names)
    return path, test, scores


def people_inputs(model, args):
    """Split ``--people-set`` by people, merge the attacker's part with ``--extra-training``;
    returns ``(training_set, test_set, thresholds source)``."""
    from bob_facerev.attack.compose import merge_training_sets, split_by_people
    from bob_facerev.attack.dataset import load_training_set
    from bob_facerev.attack.validation import thresholds_from_embeddings

    folder = os.path.join(args.output, model, "data")
    os.makedirs(folder, exist_ok=True)
    people = args.people_set.format(model=model)
    train, test = os.path.join(folder, "people_train.npz"), os.path.join(folder, "people_test.npz")
    _, test_people = split_by_people(people, train, test, args.test_fraction, seed=0)
    extra = [p.format(model=model) for p in args.extra_training.split(",")] if args.extra_training else []
    training_set = train
    if extra:
        training_set = os.path.join(folder, "attacker.npz")
        merge_training_sets(extra + [train], training_set, exclude_subjects=test_people)
    if args.threshold_scores:
        return training_set, test, args.threshold_scores.format(model=model)
    data = load_training_set(people)
    return training_set, test, thresholds_from_embeddings(data["embeddings"], data["subjects"], FMRS)


def run(args):
    from bob_facerev.attack.trainer import train_generator
    from bob_facerev.attack.validation import resolve_thresholds

    os.makedirs(args.output, exist_ok=True)
    models = ["dlib"] if args.quick else available_models(args.models.split(","))
    results = []
    for model in models:
        if args.quick:
            training_set, test_set, scores = quick_inputs(args.output)
        elif args.people_set:
            training_set, test_set, scores = people_inputs(model, args)
        else:
            training_set, test_set, scores = (p.format(model=model) for p in
                                              (args.training_set, args.test_set, args.threshold_scores))
        thresholds, source = resolve_thresholds(scores, FMRS)  # refuses scores without identities
        source = os.path.basename(source) if isinstance(scores, str) else "different-identity pairs"
        for name, recipe in recipes(args.w_id_study, args.w_id_cosine):
            out = os.path.join(args.output, model, name)
            start = time.perf_counter()
            result = train_generator(
                training_set, out, model=model, thresholds=thresholds, select_fmr=args.select_fmr,
                patience=args.patience, epochs=args.epochs, batch_size=args.batch_size,
                weight_decay=args.weight_decay, validation_fraction=args.validation_fraction,
                device=args.device, amp=args.amp, workers=args.workers, resume=True,
                progress="epochs", **recipe,
            )
            seconds = time.perf_counter() - start
            row = dict(model=model, recipe=name, **recipe, best_epoch=result["best_epoch"],
                       epochs_run=len(result["history"]), train_seconds=round(seconds, 1),
                       training_set=os.path.basename(training_set), test_set=os.path.basename(test_set),
                       thresholds_from=source,
                       thresholds=json.dumps({f"{k:g}": round(v, 4) for k, v in thresholds.items()}))
            row.update(test_rsr(result["best"], model, test_set, thresholds, args.device))
            results.append(row)
            print(row)
    write_tables(results, args.output)
    return results


def write_tables(results, output):
    import pandas as pd

    from bob_facerev.evaluation.tables import markdown_table
    from bob_facerev.utils import atomic_write_text

    df = pd.DataFrame(results)
    atomic_write_text(os.path.join(output, "recipes.csv"), df.to_csv(index=False))
    cols = ["model", "recipe", "best_epoch", "epochs_run"] + [c for c in df.columns
                                                             if c.startswith("test_type")]
    table = df[cols].copy()
    for c in cols[4:]:
        table[c] = (100 * table[c]).map(lambda v: f"{v:.1f} %")
    atomic_write_text(os.path.join(output, "recipes.md"), markdown_table(table) + "\n")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="dlib,sface")
    parser.add_argument("--training-set", help="training set .npz, {model} replaced")
    parser.add_argument("--test-set", help="held-out people .npz with subjects, {model} replaced")
    parser.add_argument("--threshold-scores", help="bona fide score CSV with identities, {model} replaced")
    parser.add_argument("--people-set", help="data set with identities to split by people, {model} replaced")
    parser.add_argument("--extra-training", help="comma-separated training sets merged into the attacker's")
    parser.add_argument("--test-fraction", type=float, default=0.2, help="share of --people-set people attacked")
    parser.add_argument("--w-id-study", type=float, default=1.0,
                        help="w_id of the study's MSE term (config/grid/study_dlib.py: 1)")
    parser.add_argument("--w-id-cosine", type=float, default=0.1,
                        help="w_id of the cosine term (untuned starting point)")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--patience", type=int, default=8)
    parser.add_argument("--select-fmr", type=float, default=0.001)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--weight-decay", type=float, default=0.0)
    parser.add_argument("--validation-fraction", type=float, default=0.1)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", action="store_true")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="CPU check on the bundled demo faces: 2 epochs, mechanics only")
    parser.add_argument("-o", "--output", required=True)
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs, args.patience, args.batch_size = 2, None, 4
        args.validation_fraction, args.device, args.amp = 0.3, "cpu", False
    elif not (args.people_set or (args.training_set and args.test_set and args.threshold_scores)):
        parser.error("give --people-set, or --training-set, --test-set and --threshold-scores "
                     "(or --quick)")
    return run(args)


if __name__ == "__main__":
    main()
