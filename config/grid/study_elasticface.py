"""The study's grid for ElasticFace (IResNet100); see bob_facerev/config/grid/study.py.

    bob config set bob_facerev.elasticface.checkpoint /path/to/backbone.pth
    bob facerev grid config/grid/study_elasticface.py -o results/elasticface -l facerev-local-gpu
"""

from bob_facerev.config.grid.study import *  # noqa: F401,F403  (LFW, FFHQ, the grid, the recipe)

model = "elasticface"
output = "results/elasticface"
