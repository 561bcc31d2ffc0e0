"""``bob facerev saliency``: where the extractor looks, and which embedding blocks carry what."""

import os

import click


def _pick_face(subjects, face):
    """Index of the explained face and of its reference (another face of the subject, or itself)."""
    import numpy as np

    subjects = np.asarray(subjects)
    if face is None:
        counts = {s: int(np.sum(subjects == s)) for s in subjects}
        face = next((i for i, s in enumerate(subjects) if counts[s] > 1), 0)
    if not 0 <= face < len(subjects):
        raise click.BadParameter(f"face index {face} is not among the {len(subjects)} faces",
                                 param_hint="--face")
    others = [j for j in range(len(subjects)) if j != face and subjects[j] == subjects[face]]
    return face, (others[0] if others else face)


def _reconstructions(generator, model, X, keys, face, block_size, seed):
    """Faces reconstructed from face ``face``'s embedding: unprotected, protected, de-shuffled."""
    import numpy as np

    from bob_facerev.attack.deshuffle import Deshuffler
    from bob_facerev.attack.transformer import Reconstruct
    from bob_facerev.protection.pemiu import PEMIU

    x = X[face:face + 1]
    protected = PEMIU(block_size=block_size, seed=seed).transform(x, [keys[face]])
    rest = np.delete(X, face, axis=0)
    deshuffled = Deshuffler(block_size=block_size, scorer="mean").fit(rest).transform(protected)
    try:
        images = Reconstruct(generator, model=model, device="cpu").transform(
            np.concatenate([x, protected, deshuffled]))
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    return images, ["rec. unprotected", f"rec. PE-MIU K={block_size}", "rec. de-shuffled"]


def _block_data(faces, path, database, model, folds):
    """``(X, subjects or None, gender or None, source)`` of the per-block analysis."""
    import numpy as np

    from bob_facerev.evaluation.gender import parse_gender

    if path is None:
        X, subjects, gender = faces["embeddings"], faces["subjects"], faces["gender"]
        source = f"{database} ({model})"
    else:
        with np.load(path, allow_pickle=False) as f:
            if "embeddings" not in f.files:
                raise click.BadParameter(f"{path} has no array 'embeddings' (it has {f.files})",
                                         param_hint="--block-embeddings")
            X = f["embeddings"]
            subjects = f["subjects"] if "subjects" in f.files else None
            gender = f["gender"] if "gender" in f.files else None
        source = os.path.basename(path)
    if gender is not None:
        g = parse_gender(gender)
        keep = g >= 0
        if np.bincount(g[keep], minlength=2).min() < folds:  # too few to cross-validate
            gender = None
        else:  # unknown genders left out
            X, gender = X[keep], g[keep]
            subjects = None if subjects is None else np.asarray(subjects)[keep]
    return X, subjects, gender, source


@click.command(context_settings={"show_default": True}, epilog="""Examples:

\b
  bob facerev saliency -d facerev-demo -m dlib -o results/saliency-demo
  bob facerev saliency -d facerev-demo -m dlib --generator results/train/best.pt -k 32 -o out
""")
@click.option("--database", "-d", default="facerev-demo", help="A Bob database resource.")
@click.option("--model", "-m", default="dlib", help="White-box extractor (registry name).")
@click.option("--checkpoint", default=None, help="Extractor weights (ArcFace/ElasticFace).")
@click.option("--generator", "-g", default=None, type=click.Path(exists=True),
              help="Generator checkpoint (bob facerev train) for the reconstructions; without it "
                   "only the original face is explained.")
@click.option("--face", type=int, default=None,
              help="Index of the face to explain (default: the first with another face of its "
                   "subject, used as the reference).")
@click.option("--method", type=click.Choice(["integrated", "gradient"]), default="integrated",
              help="Integrated gradients or the plain input gradient.")
@click.option("--steps", default=32, type=int, help="Steps of the integrated gradients.")
@click.option("--block-size", "-k", default=None, type=int,
              help="PE-MIU block size K (protection and per-block analysis). Default: d/8.")
@click.option("--mode", type=click.Choice(["shuffle", "zero"]), default="shuffle",
              help="How one block position is destroyed in the per-block analysis.")
@click.option("--block-embeddings", default=None, type=click.Path(exists=True, dir_okay=False),
              help="Per-block analysis on this .npz (`embeddings`, optional `gender` and "
                   "`subjects`) instead of the database's faces.")
@click.option("--folds", default=2, type=int, help="Folds of the gender classifier.")
@click.option("--seed", default=0, type=int, help="PE-MIU key and shuffling seed.")
@click.option("--output", "-o", default="saliency", type=click.Path(file_okay=False),
              help="Folder for saliency.png, blocks.png, blocks.csv and blocks.md.")
def saliency(database, model, checkpoint, generator, face, method, steps, block_size, mode,
             block_embeddings, folds, seed, output):
    """Saliency of the comparison score w.r.t. the face, and identity/gender per embedding block.

    The score is the cosine between the extractor's embedding of each shown face (the original
    crop and, with --generator, its reconstructions from the unprotected, PE-MIU protected and
    de-shuffled templates) and the embedding of a reference face of the same subject.
    """
    import numpy as np

    from bob.bio.base.utils.resources import load_resource

    from bob_facerev.evaluation.saliency import (block_importance, plot_block_importance,
                                                 plot_saliency, score_saliency)
    from bob_facerev.evaluation.tables import markdown_table
    from bob_facerev.face.crop import to_attack_size
    from bob_facerev.face.network import load_embedding_network
    from bob_facerev.utils import atomic_write_text

    from .unlinkability import database_faces

    faces = database_faces(load_resource(database, "database"), model, checkpoint, name=database)
    X, subjects = faces["embeddings"], faces["subjects"]
    d = X.shape[1]
    block_size = block_size or d // 8
    if block_size < 1 or d % block_size or block_size == d:
        raise click.BadParameter(f"K={block_size} does not cut d={d} into >= 2 blocks", param_hint="-k")
    face, ref = _pick_face(subjects, face)
    images, labels = [to_attack_size(faces["crops"][face])], [f"original ({subjects[face]})"]
    if generator:
        rec, rec_labels = _reconstructions(generator, model, X, faces["keys"], face, block_size, seed)
        images, labels = images + rec, labels + rec_labels
    net = load_embedding_network(model, checkpoint)
    maps, scores = score_saliency(net, np.stack(images), X[ref], method=method, steps=steps)
    os.makedirs(output, exist_ok=True)
    png = plot_saliency(images, maps, labels, os.path.join(output, "saliency.png"), scores=scores)
    click.echo(f"{method} saliency of cos(face, reference {faces['keys'][ref]}): "
               + ", ".join(f"{lab}: {s:.3f}" for lab, s in zip(labels, scores)))
    Xb, subj, gender, source = _block_data(faces, block_embeddings, database, model, folds)
    try:
        table = block_importance(Xb, block_size, subjects=subj, gender=gender, mode=mode,
                                 folds=folds, seed=seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from exc
    header = (f"Per-block importance, {source}: {len(Xb)} embeddings, K={block_size}, "
              f"block {mode}d; baselines {table.attrs['baseline']}\n\n")
    md = markdown_table(table, floatfmt=[".0f"] + [".3f"] * (table.shape[1] - 1))
    atomic_write_text(os.path.join(output, "blocks.md"), header + md + "\n")
    atomic_write_text(os.path.join(output, "blocks.csv"), table.to_csv(index=False))
    bars = plot_block_importance(table, os.path.join(output, "blocks.png"),
                                 title=f"{source}, {len(Xb)} embeddings")
    click.echo(header + md)
    click.echo(f"\nwrote {png}, {bars}, {output}/blocks.csv and blocks.md")
