"""The base of the study's training configurations (``bob_facerev.train`` resources ``study-*``).

The recipe of Osorio-Roig et al. (WIFS 2023), :data:`bob_facerev.attack.recipe.STUDY`:
unprotected FFHQ embeddings, the generator of Shahreza et al., the identity loss through the
attacked extractor itself (white-box), FFHQ's seeded train/validation split. The modules
``study_arcface``, ``study_elasticface`` and ``study_dlib`` set the extractor, the files and (dlib)
the recipe. Needs FFHQ configured::

    bob config set bob_facerev.ffhq.directory /path/to/ffhq/images1024x1024
    bob facerev db build ffhq /path/to/ffhq/images1024x1024
"""

from bob_facerev.attack import recipe


database = "facerev-ffhq"
protection = "none"
amp = False
workers = 4
# the recipe's fields (epochs, batch_size, lr, ..., w_id) are the train command's option names
globals().update(recipe.STUDY.asdict())
