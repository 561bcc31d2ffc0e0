"""``bob facerev train study-arcface``: the study's generator, FFHQ with ArcFace embeddings.

The study's recipe (:mod:`bob_facerev.config.train.study`) with ArcFace as the attacked extractor
and the identity loss (white-box). Needs FFHQ and the ArcFace weights configured::

    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024
    bob config set bob_facerev.arcface.checkpoint /path/to/arcface_r100.pth
    bob facerev train -vv study-arcface

The training set (crops + embeddings of the 70,000 faces) is built once into ``training_set``;
re-running with ``--resume`` continues an interrupted training. Options override the config:
``bob facerev train study-arcface --protection fixed -K 64 -P 4 -o results/gen_k64_p4``.
"""

from bob_facerev.config.train.study import *  # noqa: F401,F403  (FFHQ, the study's recipe)

model = "arcface"
training_set = "results/train/ffhq_arcface.npz"
output = "results/train/arcface"
