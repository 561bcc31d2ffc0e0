"""``bob facerev grid study-arcface``: the study's grid for ArcFace (IResNet100).

LFW attacked, FFHQ for the attacker, the study's recipe: see :mod:`bob_facerev.config.grid.study`.

    bob config set bob_facerev.arcface.checkpoint /path/to/backbone.pth
    bob facerev grid study-arcface -o results/arcface -l facerev-local-gpu
"""

from bob_facerev.config.grid.study import *  # noqa: F401,F403  (LFW, FFHQ, the grid, the recipe)

model = "arcface"
output = "results/arcface"
