"""PE-MIU transformers (random permutation per template, keyed by the sample key, seed 0).

Resources ``facerev-pemiu-k16``, ``-k32``, ``-k64``, ``-k128`` (entry-point group
``bob.bio.transformer``, e.g. ``bob bio pipeline transform DATABASE facerev-pemiu-k32``): a
sample-wrapped scikit-learn pipeline holding :class:`bob_facerev.protection.pemiu.PEMIU` with
block size K in {16, 32, 64, 128}. ``transformer`` is the K=32 one.
"""

from bob.pipelines import wrap
from sklearn.pipeline import make_pipeline

from bob_facerev.protection.pemiu import PEMIU


def _pemiu(block_size):
    return wrap(["sample"], make_pipeline(PEMIU(block_size=block_size)))


transformer_k16 = _pemiu(16)
transformer_k32 = _pemiu(32)
transformer_k64 = _pemiu(64)
transformer_k128 = _pemiu(128)
transformer = transformer_k32
