"""A face recognition network as one differentiable torch module on ``[0, 1]`` RGB crops.

:func:`load_embedding_network` is shared by the extractor (:mod:`bob_facerev.face.extractor`) and
the attack's identity loss, so both see exactly the same resize, normalisation and backbone.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .registry import ModelSpec, get_model_spec


class EmbeddingNetwork(nn.Module):
    """Resize, normalise and embed face crops.

    Parameters
    ----------
    backbone : torch.nn.Module
        ``(N, 3, H, W)`` normalised input -> ``(N, d)``.
    spec : ModelSpec
        Gives ``input_size = (H, W)``, ``pixel_mean``, ``pixel_std`` and ``embedding_size``.

    Notes
    -----
    ``forward(x)`` takes ``(N, 3, h, w)`` float RGB in ``[0, 1]`` (the model's crop at any size),
    resizes it bilinearly (``antialias=False``, differentiable) to ``(H, W)`` when needed, computes
    ``(x * 255 - pixel_mean) / pixel_std`` and returns ``(N, d)`` embeddings, not L2-normalised.
    """

    def __init__(self, backbone: nn.Module, spec: ModelSpec):
        super().__init__()
        self.backbone = backbone
        self.model_name = spec.name
        self.input_size = tuple(spec.input_size)
        self.embedding_size = spec.embedding_size
        # folded into one affine map: x * 255 / std - mean / std
        self.scale = 255.0 / spec.pixel_std
        self.shift = -spec.pixel_mean / spec.pixel_std

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != 3:
            raise ValueError(
                f"{self.model_name} network expects (N, 3, h, w) RGB crops, got shape "
                f"{tuple(x.shape)}"
            )
        if tuple(x.shape[-2:]) != self.input_size:
            x = F.interpolate(
                x, size=self.input_size, mode="bilinear", align_corners=False, antialias=False
            )
        return self.backbone(x * self.scale + self.shift)


def build_backbone(model, checkpoint=None) -> nn.Module:
    """The backbone of ``model`` with its weights (no resize/normalisation).

    Parameters
    ----------
    model : str or ModelSpec
        A registry name (see :func:`bob_facerev.face.registry.get_model_spec`).
    checkpoint : str or os.PathLike, optional
        Weights file; default: the ``bob config`` value of the model (IResNets) or the bundled
        weights (dlib).
    """
    from .backbones.iresnet import load_iresnet_checkpoint

    spec = get_model_spec(model)
    path = spec.checkpoint_path(checkpoint)
    if spec.layout in ("dlib", "onnx", "torch"):  # the factory reads (and checks) the weights
        return spec.backbone(path)
    return load_iresnet_checkpoint(spec.backbone(), path, layout=spec.layout, name=spec.name)


def load_embedding_network(model="dlib", checkpoint=None) -> EmbeddingNetwork:
    """Load a face recognition network that embeds ``[0, 1]`` RGB crops.

    Parameters
    ----------
    model : str or ModelSpec
        ``"dlib"``, ``"sface"``, ``"arcface"``, ``"elasticface"``, ``"arcface-r50"``,
        ``"elasticface-r50"``.
    checkpoint : str or os.PathLike, optional
        Weights file (default: ``bob config get bob_facerev.<model>.checkpoint``; dlib, sface:
        bundled with their packages).

    Returns
    -------
    EmbeddingNetwork
        In eval mode with frozen weights (gradients still flow to the input): ``(N, 3, h, w)``
        float in ``[0, 1]`` -> ``(N, d)`` float, un-normalised.

    Raises
    ------
    ValueError
        Unknown model, no configured checkpoint, unreadable or mismatching weights.
    FileNotFoundError
        The checkpoint file does not exist.
    """
    spec = get_model_spec(model)
    net = EmbeddingNetwork(build_backbone(spec, checkpoint), spec).eval()
    net.requires_grad_(False)
    return net
