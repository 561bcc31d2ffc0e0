"""``bob facerev train``: train the reconstruction attack from a Bob-style config file."""

import logging

import click

from clapper.click import ConfigCommand, ResourceOption, verbosity_option

from ..attack.recipe import QUICK, STUDY, Recipe

logger = logging.getLogger("bob_facerev")

EPILOG = """\b
Examples:

  $ bob facerev train -vv demo

  $ bob facerev train -vv study-arcface --resume

  $ bob facerev train -vv study-arcface --protection fixed -K 64 -P 4 -o results/gen_k64_p4

\b
CONFIG is a packaged configuration (a bob_facerev.train resource: demo, study-arcface,
study-elasticface, study-dlib, attacker-random; bob facerev resources lists them) or a
Python file whose variables are named like the options below (training_set, model,
protection, block_size, moved_blocks, epochs, output, ...).
Generate a template with --dump-config my_train.py.
"""

#: the command's help: its recipe options default to :data:`~bob_facerev.attack.recipe.STUDY`
HELP = f"""Train the reconstruction attack (embedding -> face) on a cached training set.

Defaults are the study's recipe, bob_facerev.attack.recipe.STUDY (Adam {STUDY.lr:g},
StepLR({STUDY.lr_step}, {STUDY.lr_gamma:g}), batch {STUDY.batch_size}, {STUDY.epochs} epochs,
{1 - STUDY.validation_fraction:.0%}/{STUDY.validation_fraction:.0%} split with seed \
{STUDY.split_seed}, loss MSE + {STUDY.w_ssim:g} (1 - SSIM)/2 + {STUDY.w_id:g} ID with the
attacked extractor).
"""


def check_device(device):
    """Refuse a ``--device`` torch cannot use here, before any work (one-line click error)."""
    if str(device) == "auto":
        return
    import torch

    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError):
        raise click.BadParameter(f"{device!r} is not a device; use auto, cpu, cuda or cuda:N",
                                 param_hint="--device") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise click.BadParameter(f"{device!r}: no CUDA GPU is available on this machine; use "
                                     "--device cpu (or auto)", param_hint="--device")
        if dev.index is not None and dev.index >= count:
            raise click.BadParameter(f"{device!r}: this machine has {count} CUDA GPU(s) "
                                     f"(cuda:0 to cuda:{count - 1})", param_hint="--device")


@click.command(name="train", cls=ConfigCommand, entry_point_group="bob_facerev.train", epilog=EPILOG,
               help=HELP)
@click.option("--training-set", "-t", required=True, cls=ResourceOption,
              help="Cached training set (.npz: faces, embeddings, keys, metadata). Built from "
              "--database first when the file does not exist.")
@click.option("--database", "-d", default=None, entry_point_group="bob.bio.database", cls=ResourceOption,
              help="Database of face photos to build the training set from (only when the "
              "--training-set file does not exist yet).")
@click.option("--model", "-m", default=None, type=str, cls=ResourceOption,
              help="Extractor that made the embeddings (a registered model: dlib, sface, arcface, "
              "elasticface, ...); default: the "
              "training set's own metadata.")
@click.option("--checkpoint", default=None, type=str, cls=ResourceOption,
              help="Weights of --model, used when the training set is built.")
@click.option("--id-model", default=None, type=str, cls=ResourceOption,
              help="Extractor of the identity loss: default the attacked --model (white-box), "
              "another name for a proxy, 'none' for no identity term.")
@click.option("--id-checkpoint", default=None, type=str, cls=ResourceOption,
              help="Weights of --id-model.")
@click.option("--protection", default="none", show_default=True, cls=ResourceOption,
              type=click.Choice(["none", "fixed", "random"]),
              help="Protection applied to the training embeddings: none (the study's generator), "
              "fixed PE-MIU (K, P) or random PE-MIU block order per template.")
@click.option("--block-size", "-K", default=None, type=int, cls=ResourceOption,
              help="PE-MIU block size K.")
@click.option("--moved-blocks", "-P", default=None, type=int, cls=ResourceOption,
              help="PE-MIU blocks moved P (fixed protection).")
@click.option("--protection-seed", default=0, show_default=True, type=int, cls=ResourceOption,
              help="Seed of the PE-MIU permutation(s).")
@click.option("--epochs", "-e", default=STUDY.epochs, show_default=True, type=int, cls=ResourceOption)
@click.option("--batch-size", "-b", default=STUDY.batch_size, show_default=True, type=int, cls=ResourceOption)
@click.option("--lr", default=STUDY.lr, show_default=True, type=float, cls=ResourceOption,
              help="Adam learning rate.")
@click.option("--lr-step", default=STUDY.lr_step, show_default=True, type=int, cls=ResourceOption,
              help="StepLR step (epochs).")
@click.option("--lr-gamma", default=STUDY.lr_gamma, show_default=True, type=float, cls=ResourceOption,
              help="StepLR factor.")
@click.option("--w-ssim", default=STUDY.w_ssim, show_default=True, type=float, cls=ResourceOption,
              help="Weight of (1 - SSIM) / 2.")
@click.option("--w-id", default=STUDY.w_id, show_default=True, type=float, cls=ResourceOption,
              help="Weight of the identity loss.")
@click.option("--seed", default=STUDY.seed, show_default=True, type=int, cls=ResourceOption,
              help="Seed of the initial weights and the data order.")
@click.option("--split-seed", default=STUDY.split_seed, show_default=True, type=int, cls=ResourceOption,
              help="Seed of the train/validation split.")
@click.option("--validation-fraction", default=STUDY.validation_fraction, show_default=True, type=float, cls=ResourceOption)
@click.option("--max-samples", default=STUDY.max_samples, type=int, cls=ResourceOption,
              help="Train on a random subset of this size.")
@click.option("--quick/--no-quick", default=False, show_default=True, cls=ResourceOption,
              help=f"CPU demo: at most {QUICK['epochs']} epochs on {QUICK['max_samples']} samples.")
@click.option("--device", default="auto", show_default=True, type=str, cls=ResourceOption,
              help="auto (CUDA when available), cpu, cuda, cuda:1, ...")
@click.option("--amp/--no-amp", default=False, show_default=True, cls=ResourceOption,
              help="Mixed precision (CUDA only).")
@click.option("--workers", "-w", default=0, show_default=True, type=int, cls=ResourceOption,
              help="DataLoader worker processes.")
@click.option("--output", "-o", required=True, type=str, cls=ResourceOption,
              help="Output folder: last.pt, best.pt, log.csv, grids/.")
@click.option("--resume/--no-resume", default=False, show_default=True, cls=ResourceOption,
              help="Continue from OUTPUT/last.pt.")
@click.option("--grid-size", default=8, show_default=True, type=int, cls=ResourceOption,
              help="Faces in the per-epoch PNG grid.")
# ---- this project's additions to the study's recipe (doc/training.rst)
@click.option("--id-loss", default=STUDY.id_loss, show_default=True, cls=ResourceOption,
              type=click.Choice(["study", "cosine"]),
              help="Identity term: the study's embedding MSE (its scale follows the extractor's "
              "embedding norm) or the scale-free 1 - cos (one --w-id for every extractor).")
@click.option("--weight-decay", default=STUDY.weight_decay, show_default=True, type=float, cls=ResourceOption,
              help="Decoupled weight decay (AdamW) when > 0; 0 is the study's Adam.")
@click.option("--flip/--no-flip", default=STUDY.flip, show_default=True, cls=ResourceOption,
              help="Add every training face mirrored, with the mirrored face's own embedding "
              "(computed once by the attacked extractor).")
@click.option("--threshold-scores", default=None, type=str, cls=ResourceOption,
              help="Bona fide score file (CSV) of the same extractor on a data set WITH identities "
              "(CFP-FF, LFW View 2): its FMR 0.1/1/10 % thresholds give the per-epoch validation "
              "RSR, which then chooses best.pt.")
@click.option("--select-fmr", default=STUDY.select_fmr, show_default=True, type=float, cls=ResourceOption,
              help="FMR whose validation RSR (type-I) chooses best.pt and drives --patience.")
@click.option("--patience", default=STUDY.patience, type=int, cls=ResourceOption,
              help="Early stopping: stop after this many epochs without a better one.")
@verbosity_option(logger=logger, cls=ResourceOption)
def train(training_set, database, model, checkpoint, id_model, id_checkpoint, protection, block_size,
          moved_blocks, protection_seed, epochs, batch_size, lr, lr_step, lr_gamma, w_ssim, w_id, seed,
          split_seed, validation_fraction, max_samples, quick, device, amp, workers, output, resume,
          grid_size, id_loss, weight_decay, flip, threshold_scores, select_fmr, patience, **kwargs):
    """Train the reconstruction attack (see :data:`HELP`)."""
    import os

    from clapper.logging import setup

    from ..attack.trainer import train_generator
    from ..protection.setting import Protection

    if not logger.handlers:  # -v/-vv/-vvv set the level; show the epoch summaries on the console
        setup("bob_facerev")

    from ..utils import check_output_folder
    from .facerev import set_resume_hint

    output = os.fspath(output)
    try:
        check_output_folder(output)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--output") from None
    check_device(device)
    if protection == "fixed" and moved_blocks is not None and (moved_blocks == 1 or moved_blocks < 0):
        raise click.BadParameter(f"P={moved_blocks} blocks cannot be moved (one block cannot move "
                                 "alone); use 2 <= P <= d/K", param_hint="--moved-blocks")
    set_resume_hint(f"run the same command with --resume: {os.path.join(output, 'last.pt')} "
                    "holds the last finished epoch")
    training_set = os.fspath(training_set)
    if not os.path.exists(training_set):
        if database is None:
            raise click.BadParameter(
                f"{training_set!r} does not exist: give a --database to build it from, or build it "
                "with bob_facerev.attack.dataset.build_training_set",
                param_hint="--training-set",
            )
        if model is None:
            raise click.BadParameter("building a training set needs --model", param_hint="--model")
        from ..attack.dataset import build_training_set

        click.echo(f"building the training set {training_set} ({model} embeddings)")
        build_training_set(database, model, training_set, checkpoint=checkpoint)

    recipe = Recipe(
        epochs=epochs, batch_size=batch_size, lr=lr, lr_step=lr_step, lr_gamma=lr_gamma,
        w_ssim=w_ssim, w_id=w_id, seed=seed, split_seed=split_seed,
        validation_fraction=validation_fraction, max_samples=max_samples, id_loss=id_loss,
        weight_decay=weight_decay, flip=flip, patience=patience, select_fmr=select_fmr,
    )
    created = not os.path.exists(output)
    try:
        result = train_generator(
            training_set, output, model=model, id_model=id_model, id_checkpoint=id_checkpoint,
            protection=Protection.from_kind(protection, block_size, moved_blocks),
            protection_seed=protection_seed, quick=quick, device=device, amp=amp, workers=workers,
            resume=resume, grid_size=grid_size, thresholds=threshold_scores, **recipe.asdict(),
        )
    except (ValueError, FileNotFoundError) as e:
        raise click.ClickException(str(e)) from e
    finally:  # a run that failed before writing anything leaves no empty folder behind
        if created and os.path.isdir(output) and not os.listdir(output):
            os.rmdir(output)
    history = result["history"]
    if history:
        last = history[-1]
        click.echo(
            f"epoch {last['epoch']}: train loss {last['train_total']:.5f}, validation loss "
            f"{last['val_total']:.5f}; best epoch {result['best_epoch']} "
            f"(validation {result['best_val_loss']:.5f})"
        )
    if result.get("stopped_early"):
        click.echo(f"stopped early: no better epoch in the last {patience}")
    click.echo(f"checkpoints: {result['last']} and {result['best']}")
