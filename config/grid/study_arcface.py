"""Example: the packaged grid ``study-arcface`` (LFW attacked, FFHQ for the attacker, ArcFace)::

    bob config set bob_facerev.arcface.checkpoint /path/to/backbone.pth
    bob facerev grid config/grid/study_arcface.py -l facerev-local-gpu
"""

from bob_facerev.config.grid.study_arcface import *  # noqa: F401,F403

output = "results/arcface"
