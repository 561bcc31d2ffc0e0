"""Example: the packaged grid ``study-dlib`` with one recipe field changed, the scale-free cosine
identity term instead of the study's embedding MSE (a change not measured yet)::

    bob facerev grid config/grid/study_dlib_cosine.py
"""

from bob_facerev.attack import recipe
from bob_facerev.config.grid.study_dlib import *  # noqa: F401,F403

train = dict(recipe.STUDY_DLIB.replace(id_loss="cosine").asdict(), workers=4)
output = "results/dlib-cosine"
