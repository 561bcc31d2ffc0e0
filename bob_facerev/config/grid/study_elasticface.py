"""``bob facerev grid study-elasticface``: the study's grid for ElasticFace (IResNet100).

LFW attacked, FFHQ for the attacker, the study's recipe: see :mod:`bob_facerev.config.grid.study`.

    bob config set bob_facerev.elasticface.checkpoint /path/to/backbone.pth
    bob facerev grid study-elasticface -o results/elasticface -l facerev-local-gpu
"""

from bob_facerev.config.grid.study import *  # noqa: F401,F403  (LFW, FFHQ, the grid, the recipe)

model = "elasticface"
output = "results/elasticface"
