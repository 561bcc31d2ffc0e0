"""``bob facerev train study-elasticface``: the study's generator, FFHQ with ElasticFace embeddings.

The study's recipe (:mod:`bob_facerev.config.train.study`) with ElasticFace as the attacked
extractor and the identity loss. Needs FFHQ and the ElasticFace weights configured::

    bob config set bob_facerev.elasticface.checkpoint /path/to/elasticface.pth
    bob facerev train -vv study-elasticface
"""

from bob_facerev.config.train.study import *  # noqa: F401,F403  (FFHQ, the study's recipe)

model = "elasticface"
training_set = "results/train/ffhq_elasticface.npz"
output = "results/train/elasticface"
