"""Reconstruction as a Bob pipeline step: (protected) embeddings in, face images out."""

import logging

import numpy as np

from sklearn.base import BaseEstimator, TransformerMixin

# the Bob configuration key of the default generator checkpoint (``checkpoint=None``)
from ..rc import GENERATOR_CHECKPOINT as GENERATOR_RC_KEY

logger = logging.getLogger(__name__)


def _configured_checkpoint():
    from .. import rc

    path = rc.get(GENERATOR_RC_KEY)
    if not path:
        raise ValueError(
            "Reconstruct has no generator checkpoint: pass checkpoint=PATH, or set one with "
            f"`bob config set {GENERATOR_RC_KEY} /path/to/best.pt` (train one with "
            "`bob facerev train`)"
        )
    return path


class Reconstruct(TransformerMixin, BaseEstimator):
    """Turns face embeddings back into face images with a trained generator.

    The generator (:class:`bob_facerev.attack.generator.Generator`) is loaded lazily from
    ``checkpoint`` on first use and dropped when the transformer is pickled, so that Dask
    can ship it to workers.

    Parameters
    ----------
    checkpoint : str or None
        Path to a generator checkpoint written by ``bob facerev train`` (a ``best.pt`` /
        ``last.pt`` file or its folder); ``None`` reads ``bob config``'s
        ``bob_facerev.generator.checkpoint``.
    model : str or None
        Name of the attacked face recognition model (``"dlib"``, ``"arcface"``, ...). When
        given, a checkpoint trained for another model is refused.
    batch_size : int
        Embeddings per forward pass.
    device : str or None
        ``"cpu"``, ``"cuda"``, ... ``None`` or ``"auto"`` picks CUDA when available
        (:func:`bob_facerev.utils.resolve_device`).
    half : bool
        Run the generator in float16 autocast (CUDA only).

    Notes
    -----
    ``transform`` returns Bob images: a list of ``numpy.uint8`` arrays of shape
    ``(3, 112, 112)`` (RGB), the attack's face crop of the attacked model. They are
    quantised to 8 bits, as any image an attacker would present.
    """

    def __init__(self, checkpoint=None, model=None, batch_size=64, device=None, half=False):
        self.checkpoint = checkpoint
        self.model = model
        self.batch_size = batch_size
        self.device = device
        self.half = half

    def _load(self):
        if getattr(self, "generator_", None) is None:
            from ..utils import resolve_device
            from .checkpoint import load_generator

            device = resolve_device(self.device)
            checkpoint = self.checkpoint or _configured_checkpoint()
            generator, metadata = load_generator(checkpoint, model=self.model, device=device)
            generator.eval()
            self.generator_ = generator
            self.metadata_ = metadata
            self.device_ = device
        return self.generator_

    @property
    def embedding_size(self):
        """Embedding size the generator expects (loads the checkpoint)."""
        return int(self._load().embedding_size)

    def transform(self, X):
        """Reconstruct faces.

        Parameters
        ----------
        X : array_like, shape (N, d)
            (Protected) embeddings.

        Returns
        -------
        list of numpy.ndarray
            N images, ``uint8``, shape ``(3, 112, 112)``, RGB.
        """
        import torch

        from .generator import reconstruct

        generator = self._load()
        X = np.asarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != generator.embedding_size:
            raise ValueError(
                f"The generator in {self.checkpoint} expects embeddings of shape "
                f"(N, {generator.embedding_size}), got shape {X.shape}: use a generator trained "
                "for this face recognition model."
            )
        if not np.all(np.isfinite(X)):
            raise ValueError("Reconstruct got embeddings with NaN or infinite values.")
        use_half = bool(self.half) and str(self.device_).startswith("cuda")
        with torch.autocast("cuda", dtype=torch.float16, enabled=use_half):
            images = reconstruct(generator, X, batch_size=self.batch_size, device=self.device_)
        return list(images)

    def fit(self, X=None, y=None):
        return self

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("generator_", None)
        return state

    def _more_tags(self):
        return {"requires_fit": False, "stateless": False, "facerev_gpu": True}
