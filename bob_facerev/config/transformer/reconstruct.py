"""``-t facerev-reconstruct``: (protected) embeddings -> reconstructed faces (Bob transformer).

A sample-wrapped scikit-learn pipeline holding :class:`bob_facerev.attack.transformer.Reconstruct`
with the generator checkpoint configured by
``bob config set bob_facerev.generator.checkpoint /path/to/best.pt`` (a checkpoint written by
``bob facerev train``; the generator loads on the first sample). Samples of embeddings go in,
samples of ``(3, 112, 112)`` uint8 face images come out. For another generator write a config
file of your own: ``transformer = wrap(["sample"], make_pipeline(Reconstruct("best.pt")))``.
"""

from bob.pipelines import wrap
from sklearn.pipeline import make_pipeline

from bob_facerev.attack.transformer import GENERATOR_RC_KEY, Reconstruct

transformer = wrap(["sample"], make_pipeline(Reconstruct(checkpoint=None)))
