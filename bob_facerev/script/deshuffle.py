"""``bob facerev deshuffle``: how well does key-free de-shuffling restore PE-MIU block order?"""

import os

import click


def _split(n, attacker_fraction, seed):
    import numpy as np

    if not 0.0 < attacker_fraction < 1.0:
        raise click.BadParameter(
            f"must be strictly between 0 and 1, got {attacker_fraction}", param_hint="--attacker-fraction"
        )
    order = np.random.default_rng(seed).permutation(n)
    n_att = int(round(attacker_fraction * n))
    if n_att < 1 or n_att >= n:
        raise click.BadParameter(
            f"splitting {n} embeddings with fraction {attacker_fraction} leaves an empty side; "
            "use more embeddings or another fraction",
            param_hint="--attacker-fraction",
        )
    return order[:n_att], order[n_att:]


def load_embeddings(path, key="embeddings", param_hint="--embeddings"):
    """``(N, d)`` array stored under ``key`` in an ``.npz`` (or ``.npy``) file."""
    import numpy as np

    if not os.path.isfile(path):
        raise click.BadParameter(f"no such file: {path}", param_hint=param_hint)
    data = np.load(path, allow_pickle=False)
    if isinstance(data, np.ndarray):
        return data
    if key not in data.files:
        raise click.BadParameter(
            f"{path} has no array {key!r} (it has {data.files}); save the (N, d) embeddings "
            f"with numpy.savez(path, {key}=X) or pass --key",
            param_hint=param_hint,
        )
    return data[key]


def _check_embeddings(X, name):
    import numpy as np

    if X.ndim != 2:
        raise click.BadParameter(f"{name} has shape {X.shape}, expected (N, d)",
                                 param_hint="--embeddings")
    bad = np.flatnonzero(~np.isfinite(X).all(axis=1))
    if bad.size:
        raise click.BadParameter(
            f"{name} has NaN or infinite values in {bad.size} row(s) (first: "
            f"{bad[:5].tolist()}); drop or repair those embeddings", param_hint="--embeddings")
    return X


def _check_block_sizes(block_sizes, d, protection, moved_blocks):
    """The block sizes K to run (default: 8, 16, 32, 64 where they divide d), checked."""
    if not block_sizes:
        block_sizes = tuple(k for k in (8, 16, 32, 64) if d % k == 0 and k < d)
    for k in block_sizes:
        if k < 1 or d % k:
            raise click.BadParameter(f"K={k} does not divide the embedding size d={d}",
                                     param_hint="-k")
        if d // k < 2:
            raise click.BadParameter(f"K={k} does not leave 2 blocks to shuffle in d={d} (one "
                                     f"block: no protection); use K <= {d // 2}", param_hint="-k")
    if protection == "fixed" and moved_blocks is not None:
        for k in block_sizes:
            if moved_blocks != 0 and not 2 <= moved_blocks <= d // k:
                raise click.BadParameter(
                    f"P={moved_blocks} blocks cannot be moved with K={k} (d={d}: {d // k} blocks); "
                    f"use 2 <= P <= {d // k}, or leave -P out to move all blocks",
                    param_hint="-P")
    return block_sizes


def _parse_sizes(sizes):
    try:
        return [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise click.BadParameter(f"expected comma-separated integers, got {sizes!r}",
                                 param_hint="--sizes") from None


def _parse_reg(reg):
    if reg == "auto":
        return reg
    try:
        return float(reg)
    except ValueError:
        raise click.BadParameter(f"expected a number in [0, 1] or 'auto', got {reg!r}",
                                 param_hint="--reg") from None


@click.command(context_settings={"show_default": True})
@click.option("--embeddings", "-e", required=True, type=click.Path(dir_okay=False),
              help="Unprotected embeddings: .npz with an (N, d) array under --key (or .npy).")
@click.option("--key", default="embeddings", help="Array name inside the .npz file.")
@click.option("--victims", "-v", default=None, type=click.Path(dir_okay=False),
              help="Victims' unprotected embeddings (same format and --key), e.g. from another "
                   "data set; then every --embeddings row is the attacker's and nothing is split.")
@click.option("--attacker-fraction", default=0.5, type=float,
              help="Share of the embeddings the attacker learns from; the rest are the victims.")
@click.option("--block-size", "-k", "block_sizes", multiple=True, type=int,
              help="PE-MIU block sizes K (repeat). Default: 8, 16, 32, 64 where they divide d.")
@click.option("--scorer", "-s", "scorers", multiple=True, type=click.Choice(["mean", "gaussian", "classifier"]),
              help="Block scorers (repeat). Default: mean and gaussian.")
@click.option("--sizes", default="1,3,10,30,100,300,1000,3000,10000",
              help="Attacker-set sizes of the learning curve (comma separated; the whole "
                   "attacker set is always added).")
@click.option("--protection", type=click.Choice(["random", "fixed"]), default="random",
              help="PE-MIU with one random permutation per template, or one fixed permutation.")
@click.option("--moved-blocks", "-P", type=int, default=None,
              help="Blocks moved by the fixed permutation (default: all).")
@click.option("--max-victims", default=5000, type=int, help="Evaluate on at most this many victims.")
@click.option("--repeats", default=3, type=int, help="Random attacker subsets per size.")
@click.option("--reg", default="1e-3",
              help="Covariance shrinkage of the gaussian scorer: a weight in [0, 1] or 'auto' "
                   "(Ledoit-Wolf).")
@click.option("--seed", default=0, type=int, help="Seeds the split, the protection and the subsets.")
@click.option("--output", "-o", default="deshuffle", type=click.Path(file_okay=False),
              help="Folder for deshuffle.csv and deshuffle_learning_curve.png.")
def deshuffle(embeddings, key, victims, attacker_fraction, block_sizes, scorers, sizes, protection,
              moved_blocks, max_victims, repeats, reg, seed, output):
    """Key-free de-shuffling of PE-MIU templates: placement table and learning curve.

    Splits the embeddings into an attacker set and victims, protects the victims with PE-MIU,
    learns per-position block statistics from growing attacker subsets and reports the share
    of blocks placed correctly, of templates restored exactly, and the cosine between
    restored and original templates (chance: 1 / number of blocks).

    Example: bob facerev deshuffle -e utkface_dlib.npz -k 16 -k 32 -o results/deshuffle

    With --victims, the attacker learns from all of --embeddings and the victims come from the
    other file (attacker and victims from different data sets).
    """
    from bob_facerev.attack.deshuffle_curve import learning_curve
    from bob_facerev.attack.deshuffle_report import learning_curve_markdown, plot_learning_curve
    from bob_facerev.utils import atomic_path, check_output_folder

    try:
        check_output_folder(output)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--output") from None
    X = _check_embeddings(load_embeddings(embeddings, key), f"{embeddings}:{key}")
    d = X.shape[1]
    block_sizes = _check_block_sizes(block_sizes, d, protection, moved_blocks)
    size_list, reg = _parse_sizes(sizes), _parse_reg(reg)
    if victims is None:
        att_idx, vic_idx = _split(X.shape[0], attacker_fraction, seed)
        attacker, victim_X = X[att_idx], X[vic_idx[:max_victims]]
    else:
        attacker, victim_X = X, load_embeddings(victims, key, "--victims")[:max_victims]
        if victim_X.ndim != 2 or victim_X.shape[1] != d:
            raise click.BadParameter(
                f"{victims}:{key} has shape {victim_X.shape}, expected (N, {d}) like --embeddings "
                "(embeddings of the same extractor)", param_hint="--victims")
    click.echo(f"{X.shape[0]} embeddings of d={d}: {len(attacker)} attacker, {len(victim_X)} "
               "victims" + (f" (from {victims})" if victims else "") + f"; PE-MIU {protection}"
               + (f" P={moved_blocks}" if protection == "fixed" else ""))
    try:
        table = learning_curve(
            attacker, victim_X, block_sizes=block_sizes, scorers=scorers or ("mean", "gaussian"),
            sizes=size_list, protection=protection, moved_blocks=moved_blocks, repeats=repeats,
            reg=reg, seed=seed,
        )
    except ValueError as e:
        raise click.ClickException(str(e)) from e
    click.echo(learning_curve_markdown(table))
    os.makedirs(output, exist_ok=True)
    csv = os.path.join(output, "deshuffle.csv")
    with atomic_path(csv) as tmp:
        table.to_csv(tmp, index=False)
    png = plot_learning_curve(table, os.path.join(output, "deshuffle_learning_curve.png"))
    click.echo(f"wrote {csv} and {png}")
