"""One Bob/scikit-learn transformer that embeds face crops with any registered backbone."""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

logger = logging.getLogger(__name__)


def _check_crop(i, crop):
    """Validate one crop; returns it as an ndarray."""
    if crop is None:
        raise ValueError(
            f"Crop {i} is None (no face was found in that image?). Drop failed samples before "
            "embedding, or run through bob.pipelines' SampleWrapper, which skips them."
        )
    crop = np.asarray(crop)
    if crop.ndim != 3 or crop.shape[0] != 3:
        hint = ""
        if crop.ndim == 2:
            hint = " It looks like a grayscale image: convert it to RGB first."
        elif crop.ndim == 3 and crop.shape[0] in (1, 4):
            hint = " Convert grayscale/RGBA images to 3-channel RGB first."
        elif crop.ndim == 3 and crop.shape[-1] == 3:
            hint = " It looks like (H, W, 3): Bob images are (3, H, W); transpose with (2, 0, 1)."
        raise ValueError(
            f"Crop {i} has shape {crop.shape}; expected a (3, H, W) RGB face crop.{hint}"
        )
    if crop.dtype != np.uint8 and not np.issubdtype(crop.dtype, np.floating):
        raise ValueError(
            f"Crop {i} has dtype {crop.dtype}; expected uint8 in [0, 255] or float in [0, 1]."
        )
    if crop.dtype != np.uint8 and crop.size and (crop.max() > 1.001 or crop.min() < -0.001):
        raise ValueError(
            f"Crop {i} is float with values in [{crop.min():.3g}, {crop.max():.3g}]; float crops "
            "must be in [0, 1] (divide by 255, or pass uint8)."
        )
    return crop


_NETWORKS = {}  # (model, checkpoint, device, half) -> network, in this process


def _cached_network(model, checkpoint, device, half):
    """The network of ``model`` on ``device``, loaded once per process.

    A Dask worker unpickles a fresh :class:`FaceEmbedding` (without its network) for every
    partition; the cache spares it a reload each time.  The networks are frozen (eval mode, no
    gradients), so instances may share one: do not modify it in place.  The last two
    networks are kept.
    """
    import os

    stamp = None  # a weights file replaced in place is loaded again
    if checkpoint is not None and os.path.isfile(checkpoint):
        stamp = os.stat(checkpoint).st_mtime_ns
    key = (model, None if checkpoint is None else str(checkpoint), stamp, device, bool(half))
    net = _NETWORKS.pop(key, None)
    if net is None:
        from .network import load_embedding_network

        net = load_embedding_network(model, checkpoint).to(device)
        if half:
            net = net.half()
    _NETWORKS[key] = net  # most recent last
    while len(_NETWORKS) > 2:
        _NETWORKS.pop(next(iter(_NETWORKS)))
    return net


class FaceEmbedding(TransformerMixin, BaseEstimator):
    """Embed aligned face crops with a registered face recognition network.

    Parameters
    ----------
    model : str
        Registry name: ``"dlib"`` (default, bundled weights), ``"arcface"``, ``"elasticface"``,
        ``"arcface-r50"``, ``"elasticface-r50"``.
    checkpoint : str, optional
        Weights file; default: ``bob config set bob_facerev.<model>.checkpoint PATH``.
    batch_size : int
        Crops per forward pass.
    device : str, optional
        Torch device; default ``"cuda"`` when available, else ``"cpu"``.
    half : bool
        Run in float16 (CUDA only; ignored with a warning on CPU).
    normalize : bool
        L2-normalise the embeddings.

    Notes
    -----
    ``transform(X)``: ``X`` is a list (or array) of ``N`` crops ``(3, h, w)``, ``uint8`` in
    ``[0, 255]`` or float in ``[0, 1]``, the crop of the model (see :mod:`bob_facerev.face.crop`) at
    any size; returns ``(N, d)`` float32.  The network loads on the first ``transform`` and is not
    pickled, so the estimator is cheap to ship to Dask workers.
    """

    def __init__(
        self,
        model="dlib",
        checkpoint=None,
        batch_size=32,
        device=None,
        half=False,
        normalize=True,
    ):
        self.model = model
        self.checkpoint = checkpoint
        self.batch_size = batch_size
        self.device = device
        self.half = half
        self.normalize = normalize

    # -- lazy state ------------------------------------------------------------------------

    def _device(self):
        from ..utils import resolve_device

        return resolve_device(self.device)

    def _use_half(self, device):
        if self.half and device.type != "cuda":
            logger.warning("FaceEmbedding(half=True) needs CUDA; running float32 on %s", device)
            return False
        return bool(self.half)

    def network(self):
        """The :class:`~bob_facerev.face.network.EmbeddingNetwork` (loaded on first use)."""
        net = getattr(self, "network_", None)
        if net is None:
            device = self._device()
            net = _cached_network(self.model, self.checkpoint, str(device),
                                  self._use_half(device))
            self.network_ = net
        return net

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("network_", None)
        return state

    def _more_tags(self):
        # facerev_gpu: routed to GPU workers under Dask (bob_facerev.distributed)
        return {"requires_fit": False, "stateless": True, "facerev_gpu": True}

    def fit(self, X, y=None):
        return self

    # -- work ------------------------------------------------------------------------------

    def transform(self, X):
        """Embed ``N`` crops ``(3, h, w)`` -> ``(N, d)`` float32 (unit norm if ``normalize``)."""
        import torch

        if self.batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {self.batch_size}")
        crops = [_check_crop(i, c) for i, c in enumerate(X)]
        net = self.network()
        if not crops:
            return np.zeros((0, net.embedding_size), dtype=np.float32)
        param = next(net.parameters())
        device, dtype = param.device, param.dtype
        # on CUDA, crops are stacked straight into pinned memory (one host copy, async upload)
        pinned = device.type == "cuda"
        out = np.empty((len(crops), net.embedding_size), dtype=np.float32)
        # crops of one size and kind are stacked; mixed inputs are embedded group by group
        groups = {}
        for i, c in enumerate(crops):
            groups.setdefault((c.shape, c.dtype == np.uint8), []).append(i)
        with torch.inference_mode():
            for (shape, is_uint8), indices in groups.items():
                host_dtype = torch.uint8 if is_uint8 else torch.float32
                for start in range(0, len(indices), self.batch_size):
                    idx = indices[start : start + self.batch_size]
                    # no zero-padding: a sample's embedding may differ in the last bits with
                    # the batch it is in (CPU kernels depend on the batch size), so results
                    # across Dask partitionings agree to ~1e-7, not bit-exactly (tested)
                    host = torch.empty((len(idx), *shape), dtype=host_dtype, pin_memory=pinned)
                    np.stack([crops[i] for i in idx], out=host.numpy())
                    x = host.to(device, non_blocking=pinned).to(dtype)
                    if is_uint8:
                        x = x / 255.0
                    emb = net(x).float()
                    if self.normalize:
                        emb = torch.nn.functional.normalize(emb, dim=1)
                    out[idx] = emb.cpu().numpy()
        return out
