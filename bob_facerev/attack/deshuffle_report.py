"""The learning curve of key-free de-shuffling as a markdown table and a plot.

Renders the table of :func:`bob_facerev.attack.deshuffle_curve.learning_curve` (what
``bob facerev deshuffle`` prints and draws).
"""

import os

from bob_facerev.utils import atomic_path

#: the columns of :func:`learning_curve_markdown`, in order
MARKDOWN_COLUMNS = ("block_size", "n_blocks", "scorer", "attack", "n_attacker", "placement",
                    "exact", "cosine", "cosine_protected", "chance")


def _cell(column, value):
    if column in ("placement", "exact", "chance"):
        return f"{100 * value:.1f}%"
    if column.startswith("cosine"):
        return f"{value:.3f}"
    return str(value)


def learning_curve_markdown(table, columns=MARKDOWN_COLUMNS):
    """A learning-curve DataFrame as a markdown table (rates in %, cosines to 3 decimals).

    Rendered by the package's one markdown renderer,
    :func:`bob_facerev.evaluation.tables.markdown_table`.
    """
    from bob_facerev.evaluation.tables import markdown_table

    columns = [c for c in columns if c in table.columns]
    cells = table[columns].copy().astype(object)
    for c in columns:
        cells[c] = [_cell(c, v) for v in table[c]]
    return markdown_table(cells, numparse=False)


def plot_learning_curve(table, path, title=None):
    """Plot placement, exact restoration and cosine vs. attacker-set size; save to ``path``.

    Written atomically (:func:`bob_facerev.utils.atomic_path`). Returns ``path``.
    """
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    metrics = [("placement", "blocks placed correctly"), ("exact", "templates restored exactly"),
               ("cosine", "cosine restored vs. original")]
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.2))
    groups = table.groupby(["block_size", "scorer", "attack"], sort=True)
    colors = {K: f"C{i}" for i, K in enumerate(sorted(table["block_size"].unique()))}
    styles = {s: ls for s, ls in zip(sorted(table["scorer"].unique()), ["-", "--", ":", "-."])}
    for (K, scorer, attack), g in groups:
        g = g.sort_values("n_attacker")
        label = f"K={K} ({g['n_blocks'].iloc[0]} blocks), {scorer}" + (
            "" if attack == "per-template" else f", {attack}")
        marker = "o" if attack == "per-template" else "s"
        for ax, (m, _) in zip(axes, metrics):
            ax.plot(g["n_attacker"], g[m], styles[scorer], color=colors[K], marker=marker,
                    ms=3, label=label)
    for K in colors:
        sub = table[table["block_size"] == K]
        axes[0].axhline(sub["chance"].iloc[0], color=colors[K], lw=0.6, alpha=0.5)
        axes[2].axhline(sub["cosine_protected"].iloc[0], color=colors[K], lw=0.6, alpha=0.5)
    for ax, (_, name) in zip(axes, metrics):
        ax.set_xscale("log")
        ax.set_xlabel("attacker embeddings")
        ax.set_title(name)
        ax.grid(alpha=0.3)
    axes[0].set_ylim(0, 1.02)
    axes[1].set_ylim(0, 1.02)
    axes[0].legend(fontsize=7)
    fig.suptitle(title or "Key-free de-shuffling of PE-MIU (thin lines: chance / no attack)")
    fig.tight_layout()
    path = os.fspath(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format=os.path.splitext(path)[1][1:] or "png")
    plt.close(fig)
    return path
