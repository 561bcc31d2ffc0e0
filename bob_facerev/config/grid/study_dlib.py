"""``bob facerev grid study-dlib``: the study's grid on the offline default model (dlib, 128-d).

LFW attacked, FFHQ for the attacker. The grid is defined by block counts (16, 8 and 4 blocks), so
on 128-d embeddings it is K=8 with P=4, 8, 12, 16; K=16 with P=2, 4, 8; K=32 with P=2, 3, 4 (and
random shuffles with K=4..32). No weights to configure: only LFW and FFHQ (set-up: see
:mod:`bob_facerev.config.grid.study`)::

    bob facerev grid study-dlib -o results/dlib
"""

from bob_facerev.attack import recipe

model = "dlib"
bona_fide_database = "facerev-lfw-view2"
attack_database = "facerev-lfw-attack"
training_database = "facerev-ffhq"
protections = None
variants = ("study", "deshuffle")
verification_block_sizes = (8, 16, 32)
# dlib descriptors have norm ~0.6: the study's w_id (for ArcFace) leaves the identity term
# negligible, see doc/training.rst
train = dict(recipe.STUDY_DLIB.asdict(), workers=4)
batch_size = 128
output = "results/dlib"
