"""``-t facerev-deshuffle``: key-free de-shuffling of PE-MIU templates (K=32, position means).

A sample-wrapped scikit-learn pipeline holding
:class:`bob_facerev.attack.deshuffle.Deshuffler`. It must be fitted on *unprotected* embeddings of
the same extractor (the attacker's own faces: the database's training samples when Bob fits it),
then transforms protected templates. Build another variant in a config file of your own, e.g.
``transformer = wrap(["sample"], make_pipeline(Deshuffler(block_size=16, scorer="gaussian")))``.
"""

from bob.pipelines import wrap
from sklearn.pipeline import make_pipeline

from bob_facerev.attack.deshuffle import Deshuffler

transformer = wrap(["sample"], make_pipeline(Deshuffler(block_size=32, scorer="mean")))
