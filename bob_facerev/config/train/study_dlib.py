"""``bob facerev train study-dlib``: the generator of the dlib grid, FFHQ with dlib embeddings.

The study's set-up (:mod:`bob_facerev.config.train.study`) with the offline default model and
:data:`bob_facerev.attack.recipe.STUDY_DLIB` (the study's recipe with an identity weight that
counts for dlib's small descriptors; the grid ``study-dlib`` trains with the same). Needs only
FFHQ::

    bob facerev train -vv study-dlib
"""

from bob_facerev.attack import recipe
from bob_facerev.config.train.study import *  # noqa: F401,F403  (FFHQ, the study's recipe)

model = "dlib"
training_set = "results/train/ffhq_dlib.npz"
output = "results/train/dlib"
globals().update(recipe.STUDY_DLIB.asdict())
