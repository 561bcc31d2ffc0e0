"""``bob facerev gender``: soft-biometric (gender) leakage of clean, protected and reconstructed
templates."""

import os

import click

_CLASSIFIERS = ("svc-poly", "svc-rbf", "svc-sigmoid", "knn3", "logreg")
_THREAT_MODELS = ("protected", "clean-train")
#: default PE-MIU block counts d / K (the study: K = 16 and 128 on 512-d = 32 and 4 blocks)
DEFAULT_BLOCK_COUNTS = (32, 4)


def load_npz(path):
    """``(embeddings, gender, keys or None, reconstructed or None)`` from an ``.npz`` file with
    arrays ``embeddings`` (N, d), ``gender`` (N,), optional ``keys`` and
    ``reconstructed_embeddings``."""
    import numpy as np

    with np.load(path, allow_pickle=False) as f:
        missing = [k for k in ("embeddings", "gender") if k not in f.files]
        if missing:
            raise click.BadParameter(
                f"{path} lacks the array(s) {missing} (found {f.files}); it needs `embeddings` "
                "(N, d) and `gender` (N,), optionally `keys` and `reconstructed_embeddings`",
                param_hint="--embeddings",
            )
        keys = f["keys"] if "keys" in f.files else None
        rec = f["reconstructed_embeddings"] if "reconstructed_embeddings" in f.files else None
        return f["embeddings"], f["gender"], keys, rec


def database_embeddings(database, model="dlib", checkpoint=None, groups=None, name=None):
    """Embeddings and genders of every sample of a Bob database.

    The gender metadata is checked before any image is read (clear error when missing).

    Parameters
    ----------
    database : bob.bio.base database
        With ``all_samples(groups)`` returning samples that carry ``gender`` and ``key``.
    model, checkpoint
        Passed to :func:`bob_facerev.pipelines.embedding_transformer`.
    groups : list of str or None
    name : str or None
        The database's name, for messages.

    Returns
    -------
    X : ndarray (N, d), gender : list (N,), keys : list (N,)
        Samples where no face was found are left out.
    """
    import numpy as np

    from bob_facerev.evaluation.gender import samples_gender

    source = f"database {name or type(database).__name__}"
    from bob_facerev.database.protocols import unique_samples

    samples = unique_samples(database, groups)
    samples_gender(samples, source)

    from bob_facerev.pipelines import embedding_transformer

    out = embedding_transformer(model, checkpoint=checkpoint).transform(samples)
    kept = [(s, o) for s, o in zip(samples, out) if o.data is not None]
    if not kept:
        raise click.ClickException(f"no face found in any sample of {source}")
    X = np.stack([np.asarray(o.data, dtype=np.float32) for _, o in kept])
    return X, [s.gender for s, _ in kept], [str(getattr(s, "key", i)) for i, (s, _) in enumerate(kept)]


@click.command(
    epilog="""Examples:

\b
  bob facerev gender --embeddings utkface_dlib.npz -k 8 -k 16 -k 32 -k 64 -o results/gender
  bob facerev gender -d facerev-demo -m dlib --folds 2 -o results/gender-demo
"""
)
@click.option(
    "--embeddings",
    "-e",
    type=click.Path(exists=True, dir_okay=False),
    help="An .npz with `embeddings` (N, d), `gender` (M/F or 0/1), optional `keys` and "
    "`reconstructed_embeddings`.",
)
@click.option("--database", "-d", help="A Bob database resource whose samples have `gender` (e.g. facerev-demo).")
@click.option("--model", "-m", default="dlib", show_default=True, help="Extractor for --database.")
@click.option("--checkpoint", default=None, help="Extractor weights (ArcFace/ElasticFace).")
@click.option("--group", "-g", "groups", multiple=True, help="Database groups (default: all).")
@click.option(
    "--block-size",
    "-k",
    "block_sizes",
    multiple=True,
    type=int,
    help="PE-MIU block size K, repeatable (default: d/32 and d/4, the study's 16 and 128 on 512-d).",
)
@click.option(
    "--classifier",
    "-c",
    "classifiers",
    multiple=True,
    type=click.Choice(_CLASSIFIERS),
    help="Classifier, repeatable (default: all).",
)
@click.option(
    "--threat-model",
    "-t",
    "threat_models",
    multiple=True,
    type=click.Choice(_THREAT_MODELS),
    help="protected: train and test on protected templates; clean-train: train on clean, test on "
    "protected. Repeatable (default: both).",
)
@click.option("--folds", default=10, show_default=True, help="Stratified folds.")
@click.option("--seed", default=42, show_default=True, help="Seed of the folds, SVCs and balancing.")
@click.option("--pemiu-seed", default=0, show_default=True, help="Seed of the PE-MIU permutations.")
@click.option("--no-balance", is_flag=True, help="Keep the gender imbalance (no undersampling).")
@click.option(
    "--per-gender",
    type=int,
    default=None,
    help="Balanced sample size per gender (default: all of the smaller gender; the study: 1471).",
)
@click.option(
    "--output",
    "-o",
    default="gender",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Folder for gender.csv, gender.md and gender.png.",
)
def gender(
    embeddings,
    database,
    model,
    checkpoint,
    groups,
    block_sizes,
    classifiers,
    threat_models,
    folds,
    seed,
    pemiu_seed,
    no_balance,
    per_gender,
    output,
):
    """Gender prediction accuracy from clean, PE-MIU protected and reconstructed templates."""
    from bob_facerev.evaluation.gender import format_table, leakage_table, plot_leakage
    from bob_facerev.utils import atomic_write_text, check_output_folder

    if (embeddings is None) == (database is None):
        raise click.UsageError("give either --embeddings FILE.npz or --database NAME (with --model)")
    try:
        check_output_folder(output)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--output") from None
    if embeddings is not None:
        X, g, keys, rec = load_npz(embeddings)
        source = os.path.basename(embeddings)
    else:
        from bob.bio.base.utils.resources import load_resource

        db = load_resource(database, "database")
        try:
            X, g, keys = database_embeddings(db, model, checkpoint, list(groups) or None, database)
        except ValueError as exc:
            raise click.ClickException(str(exc)) from exc
        rec = None
        source = f"{database} ({model})"
    d = X.shape[1]
    if not block_sizes:
        block_sizes = tuple(d // n for n in DEFAULT_BLOCK_COUNTS if d % n == 0)
    try:
        table = leakage_table(
            X,
            g,
            keys=keys,
            block_sizes=block_sizes,
            reconstructed=rec,
            classifiers=classifiers or _CLASSIFIERS,
            threat_models=threat_models or _THREAT_MODELS,
            n_splits=folds,
            seed=seed,
            balance=not no_balance,
            pemiu_seed=pemiu_seed,
            n_per_gender=per_gender,
        )
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    os.makedirs(output, exist_ok=True)
    md = format_table(table)
    n, n0, n1 = table.iloc[0][["n", "n_class0", "n_class1"]]
    header = f"Gender leakage, {source}: {n} samples ({n0} + {n1}), {folds}-fold stratified CV, seed {seed}\n\n"
    atomic_write_text(os.path.join(output, "gender.md"), header + md + "\n")
    atomic_write_text(os.path.join(output, "gender.csv"), table.to_csv(index=False))
    plot_leakage(table, os.path.join(output, "gender.png"), title=f"Gender prediction, {source}")
    click.echo(header + md)
    click.echo(f"\nwrote {output}/gender.csv, gender.md, gender.png")
