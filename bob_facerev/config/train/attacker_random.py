"""``bob_facerev.train`` resource ``attacker-random``: an attacker who trains on protected templates.

The study's generator is trained on unprotected embeddings; this variant (also in the study) learns
from FFHQ templates protected like the attacked ones, here the original PE-MIU (K=32, every
template shuffled at random, no key). Added after a study configuration, it reuses that
configuration's training set::

    bob facerev train -vv study-arcface attacker-random

For a fixed permutation use ``--protection fixed -K 64 -P 4``.
"""

protection = "random"
block_size = 32
protection_seed = 0
output = "results/train/arcface_pemiu_random_k32"
