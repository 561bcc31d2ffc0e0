"""``-t facerev-deshuffle``: key-free de-shuffling of PE-MIU templates (K=32, position means).

Needs fitting on unprotected embeddings of the same extractor (the attacker's own faces).
Build another variant in a config file of your own, e.g.
``transformer = Deshuffler(block_size=16, scorer="gaussian")``.
"""

from bob_facerev.attack.deshuffle import Deshuffler

transformer = Deshuffler(block_size=32, scorer="mean")
