"""The demo grid: the bundled demo faces, the offline dlib default model, a quick generator.

Used by ``bob facerev demo``; also runs as ``bob facerev grid demo``.

The attacker here trains on the demo faces themselves (a fresh install has no other face data),
so the generator *memorises* the faces it later attacks: the numbers show the mechanics of the
benchmark (how the RSR falls as more blocks move, what key-free de-shuffling restores), not the
generalisation of the study's FFHQ-trained attack. ``bob facerev grid study-dlib`` (and the other
``study-*`` resources) with LFW and FFHQ do that.
"""

from bob_facerev.protection.setting import Protection

model = "dlib"
bona_fide_database = "facerev-demo"  # all-vs-all over the 10 demo photos: thresholds
attack_database = "facerev-demo"  # every demo photo is attacked (type-I), type-II vs the others
training_database = "facerev-demo"
# 128-d dlib embeddings: K=32 (4 blocks) and K=16 (8 blocks) with P blocks moved, and random
# per-template shuffles (the original PE-MIU)
protections = [
    Protection(),
    Protection(32, 2),
    Protection(32, 3),
    Protection(32, 4),
    Protection(16, 4),
    Protection(16, 8),
    Protection(32, None),
    Protection(16, None),
]
variants = ("study", "deshuffle")
verification_block_sizes = (16, 32)
# a memorising attacker: every face in training (no validation split), no learning-rate decay,
# pixel losses only (the identity term through the extractor makes a CPU training step about 7x
# slower; the study's configs keep it). Short enough for a laptop: 150 epochs of one batch of the
# 10 faces (a CPU step costs about the same for 5 or 10 faces; tests/test_experiment.py checks the
# story at 150 epochs); a checkpoint every 50 epochs (what
# resume needs), no per-epoch preview grids, and once trained only best.pt is kept (last.pt, with
# the optimiser state, is 160 MB): the output folder stays under 100 MB.
train = dict(epochs=150, batch_size=10, lr_step=1000, validation_fraction=0.0, w_id=0.0,
             progress="epochs", checkpoint_every=50, save_grids=False, keep_last_checkpoint=False)
n_faces = 10
output = "facerev-demo"
