"""Example: the packaged grid ``study-dlib`` (LFW attacked, FFHQ for the attacker, dlib,
:data:`bob_facerev.attack.recipe.STUDY_DLIB`)::

    bob facerev grid config/grid/study_dlib.py      # the same as: bob facerev grid study-dlib
"""

from bob_facerev.config.grid.study_dlib import *  # noqa: F401,F403

output = "results/dlib"
