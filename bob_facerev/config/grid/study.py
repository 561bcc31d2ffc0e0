"""The study's grid (Osorio-Roig et al., WIFS 2023): LFW attacked, FFHQ for the attacker.

The base of the ``bob_facerev.grid`` resources ``study-arcface`` and ``study-elasticface``
(:mod:`bob_facerev.config.grid.study_arcface`, ``.study_elasticface``), which set ``model`` and
``output``. PE-MIU with one fixed permutation per (K, P) for all subjects (K=32: P=4, 8, 12, 16;
K=64: P=2, 4, 8; K=128: P=2, 3, 4), random per-template shuffles for K=16..128, and the
unprotected baseline; thresholds from LFW View 2 at FMR 0.1 %, 1 %, 10 %. The generator is trained
on unprotected FFHQ embeddings with the study's recipe
(:data:`bob_facerev.attack.recipe.STUDY`).

Set-up (once)::

    bob config set bob_facerev.lfw.directory /path/to/lfw
    bob facerev db build lfw /path/to/lfw            # pairs.txt, male_names.txt, female_names.txt
    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024
    bob config set bob_facerev.arcface.checkpoint /path/to/backbone.pth      # or .elasticface.
"""

from bob_facerev.attack import recipe

bona_fide_database = "facerev-lfw-view2"
attack_database = "facerev-lfw-attack"  # one image per identity, gender-balanced
training_database = "facerev-ffhq"
protections = None  # the study's grid (bob_facerev.protection.setting.study_grid)
variants = ("study", "deshuffle")  # add "protected" for generators trained on protected templates
verification_block_sizes = (16, 32, 64, 128)
train = dict(recipe.STUDY.asdict(), workers=4)
batch_size = 128
