"""Example: the packaged training configuration ``study-arcface`` (the study's generator: FFHQ,
ArcFace, :data:`bob_facerev.attack.recipe.STUDY`)::

    bob facerev train -vv config/train/study.py     # the same as: bob facerev train study-arcface
    bob facerev train -vv config/train/study.py --resume
"""

from bob_facerev.config.train.study_arcface import *  # noqa: F401,F403

output = "results/train/arcface"
