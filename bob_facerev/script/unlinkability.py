"""``bob facerev unlinkability``: can two PE-MIU applications' templates of one face be linked?"""

import os

import click


def database_faces(database, model="dlib", checkpoint=None, groups=None, name=None):
    """Face crops, embeddings and metadata of every sample of a Bob database.

    Parameters
    ----------
    database : bob.bio.base database
        With ``all_samples(groups)``.
    model, checkpoint
        Passed to :func:`bob_facerev.pipelines.embedding_transformer`.
    groups : list of str or None
    name : str or None
        The database's name, for messages.

    Returns
    -------
    dict
        ``crops`` (list of (3, H, W) uint8), ``embeddings`` (N, d) float32, ``subjects``,
        ``gender`` (``None`` where a sample has none) and ``keys``, lists of length N. Samples
        where no face was found are left out.
    """
    import numpy as np

    from bob_facerev.pipelines import embedding_transformer

    from bob_facerev.database.protocols import unique_samples

    samples = unique_samples(database, groups)
    pipe = embedding_transformer(model, checkpoint=checkpoint)
    cropped = pipe[0].transform(samples)
    out = pipe[1].transform(cropped)
    kept = [i for i, o in enumerate(out) if o.data is not None]
    if not kept:
        raise click.ClickException(f"no face found in any sample of {name or 'the database'}")
    return dict(
        crops=[np.asarray(cropped[i].data) for i in kept],
        embeddings=np.stack([np.asarray(out[i].data, np.float32) for i in kept]),
        subjects=[str(getattr(samples[i], "subject_id", "") or getattr(samples[i], "key", i))
                  for i in kept],
        gender=[getattr(samples[i], "gender", None) for i in kept],
        keys=[str(getattr(samples[i], "key", i)) for i in kept],
    )


def _load_input(embeddings, key, subjects_key, database, model, checkpoint):
    """``(X, subjects or None, source)`` from an .npz or a Bob database."""
    import numpy as np

    from .deshuffle import load_embeddings

    if (embeddings is None) == (database is None):
        raise click.UsageError("give either --embeddings FILE.npz or --database NAME (with --model)")
    if embeddings is not None:
        X = load_embeddings(embeddings, key)
        subjects = None
        if subjects_key:
            if not embeddings.endswith(".npz"):
                raise click.BadParameter("subject labels need an .npz file", param_hint="--subjects-key")
            with np.load(embeddings, allow_pickle=False) as f:
                if subjects_key not in f.files:
                    raise click.BadParameter(f"{embeddings} has no array {subjects_key!r} (it has "
                                             f"{f.files})", param_hint="--subjects-key")
                subjects = f[subjects_key]
        return X, subjects, os.path.basename(embeddings)
    from bob.bio.base.utils.resources import load_resource

    faces = database_faces(load_resource(database, "database"), model, checkpoint, name=database)
    return faces["embeddings"], np.asarray(faces["subjects"]), f"{database} ({model})"


@click.command(context_settings={"show_default": True}, epilog="""Examples:

\b
  bob facerev unlinkability -d facerev-demo -m dlib --applications 6 -o results/unlinkability-demo
  bob facerev unlinkability -e utkface_dlib.npz -k 16 -k 32 -k 64 -o results/unlinkability
""")
@click.option("--embeddings", "-e", type=click.Path(dir_okay=False),
              help="Unprotected embeddings: .npz with an (N, d) array under --key (or .npy).")
@click.option("--key", default="embeddings", help="Array name of the embeddings in the .npz.")
@click.option("--subjects-key", default=None,
              help="Array of subject labels in the .npz (default: each embedding its own subject).")
@click.option("--database", "-d", help="A Bob database resource (e.g. facerev-demo).")
@click.option("--model", "-m", default="dlib", help="Extractor for --database.")
@click.option("--checkpoint", default=None, help="Extractor weights (ArcFace/ElasticFace).")
@click.option("--block-size", "-k", "block_sizes", multiple=True, type=int,
              help="PE-MIU block sizes K (repeat). Default: 16, 32, 64 where they cut d in >= 2.")
@click.option("--comparator", "-c", "comparators", multiple=True,
              type=click.Choice(["pemiu", "cosine", "deshuffled-cosine"]),
              help="Comparators (repeat). Default: all three.")
@click.option("--applications", default=2, type=int,
              help="Applications (PE-MIU keys) per face; scores of all application pairs pooled.")
@click.option("--attacker-fraction", default=0.5, type=float,
              help="Share of the embeddings the de-shuffler learns from (not linked).")
@click.option("--max-templates", default=1000, type=int,
              help="Link at most this many victim templates (all pairs are scored).")
@click.option("--seed", default=0, type=int, help="Seeds the split and the PE-MIU keys.")
@click.option("--output", "-o", default="unlinkability", type=click.Path(file_okay=False),
              help="Folder for unlinkability.csv, .md and .png.")
def unlinkability(embeddings, key, subjects_key, database, model, checkpoint, block_sizes,
                  comparators, applications, attacker_fraction, max_templates, seed, output):
    """D<->sys of PE-MIU across applications: PE-MIU comparator, cosine, de-shuffled cosine.

    Every victim template is protected once per application (a random block permutation per
    template and application); mated pairs are the same subject in two applications, non-mated
    pairs different subjects. Writes the table (csv, md) and one figure with the score densities
    and D<->(s) per block size and comparator.
    """
    import numpy as np

    from bob_facerev.evaluation.unlinkability import plot_linkability
    from bob_facerev.evaluation.unlinkability_pemiu import COMPARATORS, markdown_table, unlinkability_study
    from bob_facerev.utils import atomic_write_text

    from .deshuffle import _split

    X, subjects, source = _load_input(embeddings, key, subjects_key, database, model, checkpoint)
    if X.ndim != 2:
        raise click.BadParameter(f"embeddings of shape {X.shape}, expected (N, d)")
    d = X.shape[1]
    block_sizes = block_sizes or tuple(k for k in (16, 32, 64) if d % k == 0 and k < d)
    comparators = comparators or COMPARATORS
    if applications < 2:
        raise click.BadParameter(f"needs >= 2 applications, got {applications}",
                                 param_hint="--applications")
    attacker = None
    victims = np.arange(X.shape[0])
    if "deshuffled-cosine" in comparators:
        att_idx, victims = _split(X.shape[0], attacker_fraction, seed)
        attacker = X[att_idx]
    if victims.size > max_templates:
        victims = np.sort(np.random.default_rng(seed).choice(victims, max_templates, replace=False))
    subj = None if subjects is None else np.asarray(subjects)[victims]
    try:
        table, results = unlinkability_study(
            X[victims], subj, block_sizes=block_sizes, comparators=comparators, attacker=attacker,
            n_applications=applications, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    os.makedirs(output, exist_ok=True)
    header = (f"Unlinkability of PE-MIU, {source}: {victims.size} victim templates, "
              f"{applications} applications"
              + (f", de-shuffler fitted on {len(attacker)} attacker embeddings" if attacker is not None
                 else "") + f", seed {seed}\n\n")
    md = markdown_table(table)
    atomic_write_text(os.path.join(output, "unlinkability.md"), header + md + "\n")
    atomic_write_text(os.path.join(output, "unlinkability.csv"), table.to_csv(index=False))
    panels = [(f"K={k}, {c}", results[(k, c)]) for c in comparators for k in block_sizes]
    png = plot_linkability(panels, os.path.join(output, "unlinkability.png"), ncols=len(block_sizes))
    click.echo(header + md)
    click.echo(f"\nwrote {output}/unlinkability.csv, unlinkability.md and {png}")
