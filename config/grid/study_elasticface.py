"""Example: the packaged grid ``study-elasticface`` (LFW attacked, FFHQ for the attacker)::

    bob config set bob_facerev.elasticface.checkpoint /path/to/backbone.pth
    bob facerev grid config/grid/study_elasticface.py -l facerev-local-gpu
"""

from bob_facerev.config.grid.study_elasticface import *  # noqa: F401,F403

output = "results/elasticface"
