"""The study's grid for ArcFace (IResNet100); see bob_facerev/config/grid/study.py.

    bob config set bob_facerev.arcface.checkpoint /path/to/backbone.pth
    bob facerev grid config/grid/study_arcface.py -o results/arcface -l facerev-local-gpu
"""

from bob_facerev.config.grid.study import *  # noqa: F401,F403  (LFW, FFHQ, the grid, the recipe)

model = "arcface"
output = "results/arcface"
