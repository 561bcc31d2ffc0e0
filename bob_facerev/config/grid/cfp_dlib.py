"""The study's grid on real identities with dlib: CFP attacked, an attacker trained elsewhere.

dlib's ResNet (128-d, metric learning) as the attacked model, CFP in LFW's role: thresholds from
CFP-FF's 7,000 bona fide pairs at FMR 0.1 %, 1 %, 10 % (real different identities), one frontal
photo per CFP person attacked (type-I) and scored against the person's other frontal photos of
CFP-FF (type-II). The protections are the study's block counts for a 128-d embedding
(:func:`bob_facerev.protection.setting.study_grid`: K = 8, 16, 32 with P blocks moved, and random
per-template shuffles K = 4 ... 32). The generator is trained with the scale-free identity term
(:data:`bob_facerev.attack.recipe.SCALE_FREE`: ``id_loss="cosine"``, ``w_id=1``, horizontal
flips); its training faces never show a CFP person.

Set-up (once)::

    bob config set bob_facerev.cfp.directory /path/to/cfp
    bob facerev db build cfp /path/to/cfp
    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024

then ``bob facerev grid cfp-dlib`` (set ``training_set`` to an existing
dlib training-set ``.npz``, e.g. UTKFace's, to attack with another attacker's faces).
"""

from bob_facerev.attack import recipe
from bob_facerev.config.grid.cfp_sface import *  # noqa: F401,F403  (the CFP grid; model, recipe, output below)

model = "dlib"
train = dict(recipe.SCALE_FREE.asdict(), workers=4)
output = "results/grid-cfp-dlib"
