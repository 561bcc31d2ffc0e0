"""An attacker who trains on protected templates: PE-MIU with a random block order per template.

The study's generator is trained on unprotected embeddings; this variant (also in the study) learns
from FFHQ templates protected like the attacked ones, here the original PE-MIU (K=32, every
template shuffled at random, no key). Reuses the study's training set::

    bob facerev train -vv config/train/study.py config/train/attacker_random.py

For a fixed permutation use ``--protection fixed -K 64 -P 4``.
"""

protection = "random"
block_size = 32
protection_seed = 0
output = "results/train/arcface_pemiu_random_k32"
