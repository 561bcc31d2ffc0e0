"""Example: the packaged ``attacker-random`` (an attacker trained on PE-MIU protected templates,
random block order per template, K=32), added after a study configuration::

    bob facerev train -vv config/train/study.py config/train/attacker_random.py
"""

from bob_facerev.config.train.attacker_random import *  # noqa: F401,F403

output = "results/train/arcface_pemiu_random_k32"
