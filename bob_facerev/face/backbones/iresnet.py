"""IResNet backbones of ArcFace (insightface ``arcface_torch``) and ElasticFace.

Both projects train the same "improved ResNet" (Deng et al., ArcFace, CVPR 2019): a 3x3 stem with
BN-PReLU, four stages of pre-activation basic blocks (BN-conv-BN-PReLU-conv-BN + shortcut) that each
halve the resolution, then BN, flatten, a fully connected layer and a feature BatchNorm.  A 112x112
RGB face normalised to about ``[-1, 1]`` becomes a 512-d embedding.

The module names below follow the published checkpoints (``conv1``, ``bn1``, ``prelu``,
``layer1.0.bn1`` ..., ``bn2``, ``fc``, ``features``) so that their state dicts load without
renaming; :func:`load_iresnet_checkpoint` adapts the container and prefixes each project uses.
"""

from __future__ import annotations

import logging
import os
import re

import torch
from torch import nn

logger = logging.getLogger(__name__)

#: blocks per stage for each depth
IRESNET_LAYERS = {
    18: (2, 2, 2, 2),
    34: (3, 4, 6, 3),
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    200: (6, 26, 60, 6),
}

#: checkpoint layouts understood by :func:`load_iresnet_checkpoint`
LAYOUTS = ("insightface", "elasticface")


class IBasicBlock(nn.Module):
    """Pre-activation basic block: ``BN-conv3x3-BN-PReLU-conv3x3(stride)-BN`` plus shortcut."""

    def __init__(self, inplanes: int, planes: int, stride: int = 1, eps: float = 1e-5):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(inplanes, eps=eps)
        self.conv1 = nn.Conv2d(inplanes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes, eps=eps)
        self.prelu = nn.PReLU(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes, eps=eps)
        self.downsample = None
        if stride != 1 or inplanes != planes:
            self.downsample = nn.Sequential(
                nn.Conv2d(inplanes, planes, 1, stride=stride, bias=False),
                nn.BatchNorm2d(planes, eps=eps),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.bn3(self.conv2(self.prelu(self.bn2(self.conv1(self.bn1(x))))))
        shortcut = x if self.downsample is None else self.downsample(x)
        return out + shortcut


class IResNet(nn.Module):
    """IResNet for 112x112 faces.

    Parameters
    ----------
    layers : tuple of 4 int
        Number of :class:`IBasicBlock` per stage (see :data:`IRESNET_LAYERS`).
    num_features : int
        Embedding size ``d``.
    widths : tuple of 4 int
        Channels per stage; ``(64, 128, 256, 512)`` for every published model (smaller values are
        only useful for fast tests).
    input_size : int
        Side of the square input; the output of the last stage is ``input_size / 16``.

    Notes
    -----
    ``forward`` maps ``(N, 3, input_size, input_size)`` float (already normalised, typically
    ``(rgb_uint8 - 127.5) / 127.5``) to ``(N, num_features)``, not L2-normalised.
    """

    def __init__(
        self,
        layers=IRESNET_LAYERS[100],
        num_features: int = 512,
        widths=(64, 128, 256, 512),
        input_size: int = 112,
    ):
        super().__init__()
        if len(layers) != 4 or len(widths) != 4:
            raise ValueError(
                f"IResNet needs 4 stages; got layers={layers!r}, widths={widths!r}"
            )
        if input_size % 16:
            raise ValueError(f"IResNet input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        stem = widths[0]
        self.conv1 = nn.Conv2d(3, stem, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem, eps=1e-5)
        self.prelu = nn.PReLU(stem)
        inplanes = stem
        for i, (n_blocks, planes) in enumerate(zip(layers, widths), start=1):
            blocks = [IBasicBlock(inplanes, planes, stride=2)]
            blocks += [IBasicBlock(planes, planes) for _ in range(1, n_blocks)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            inplanes = planes
        self.bn2 = nn.BatchNorm2d(inplanes, eps=1e-5)
        self.dropout = nn.Dropout(p=0.0)
        side = input_size // 16
        self.fc = nn.Linear(inplanes * side * side, num_features)
        self.features = nn.BatchNorm1d(num_features, eps=1e-5)
        # both projects freeze the feature BN scale at 1
        nn.init.constant_(self.features.weight, 1.0)
        self.features.weight.requires_grad = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.prelu(self.bn1(self.conv1(x)))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        x = torch.flatten(self.bn2(x), 1)
        return self.features(self.fc(self.dropout(x)))


def iresnet50(**kwargs) -> IResNet:
    """IResNet-50 (``layers=(3, 4, 14, 3)``), 512-d."""
    return IResNet(IRESNET_LAYERS[50], **kwargs)


def iresnet100(**kwargs) -> IResNet:
    """IResNet-100 (``layers=(3, 13, 30, 3)``), 512-d: ArcFace/ElasticFace in the study."""
    return IResNet(IRESNET_LAYERS[100], **kwargs)


# ---------------------------------------------------------------------------------------------
# checkpoints


def read_backbone_file(path) -> dict:
    """Read a backbone's ``.pth`` file as it is (any layout; :func:`load_iresnet_checkpoint` maps
    its keys) with ``torch.load(weights_only=True)`` onto the CPU.

    Generator checkpoints of the attack are read by
    :func:`bob_facerev.attack.checkpoint.read_generator_checkpoint`, which also checks their format.

    Raises
    ------
    FileNotFoundError
        The file does not exist.
    ValueError
        The file is not a readable PyTorch checkpoint.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"Checkpoint file not found: {path!r}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (UnpicklingError, RuntimeError, EOFError)
        raise ValueError(
            f"Could not read the checkpoint {path!r} as a PyTorch state dict "
            f"(torch.load(weights_only=True) failed: {type(exc).__name__}: {exc}). "
            "Pass the backbone .pth file of an insightface arcface_torch or ElasticFace model."
        ) from exc


def _unwrap(obj, layout: str) -> dict:
    """Return the flat ``{name: tensor}`` dict inside a checkpoint object."""
    if isinstance(obj, dict) and layout == "elasticface":
        # training scripts sometimes save {"state_dict": ...} (or {"model": ...})
        for key in ("state_dict", "model", "backbone"):
            if key in obj and isinstance(obj[key], dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ValueError(
            f"The checkpoint does not hold a state dict of tensors (got {type(obj).__name__}); "
            f"layout {layout!r} expects the backbone's state_dict()."
        )
    return dict(obj)


def map_insightface_keys(state: dict) -> dict:
    """insightface ``arcface_torch`` ``backbone.pth``: the keys are the module names already."""
    return dict(state)


_MODULE_PREFIX = re.compile(r"^(module\.)+")


def map_elasticface_keys(state: dict) -> dict:
    """ElasticFace checkpoints: strip the ``module.`` prefix that ``DataParallel`` adds."""
    return {_MODULE_PREFIX.sub("", k): v for k, v in state.items()}


_KEY_MAPPERS = {"insightface": map_insightface_keys, "elasticface": map_elasticface_keys}


def load_iresnet_checkpoint(
    model: IResNet, path, layout: str = "insightface", name: str = "IResNet"
):
    """Load a published checkpoint into ``model`` (strict), in place.

    Parameters
    ----------
    model : IResNet
        The architecture the checkpoint is meant for.
    path : str or os.PathLike
        The ``.pth`` file.
    layout : {"insightface", "elasticface"}
        How the file stores the weights (see :func:`map_insightface_keys`,
        :func:`map_elasticface_keys`, an optional ``{"state_dict": ...}`` wrapper for ElasticFace).
    name : str
        The model name, for messages.

    Returns
    -------
    IResNet
        ``model`` with the weights, in eval mode.

    Raises
    ------
    FileNotFoundError, ValueError
        Missing or unreadable file, or keys/shapes that do not match the architecture (the message
        lists the missing and unexpected keys).
    """
    if layout not in _KEY_MAPPERS:
        raise ValueError(f"Unknown checkpoint layout {layout!r}; known: {', '.join(LAYOUTS)}")
    state = _KEY_MAPPERS[layout](_unwrap(read_backbone_file(path), layout))
    expected = model.state_dict()
    # checkpoints saved by old torch versions have no BN batch counters; they are not weights
    for key, value in expected.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    mismatched = sorted(
        f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(expected[k].shape)}"
        for k in set(state) & set(expected)
        if state[k].shape != expected[k].shape
    )
    if missing or unexpected or mismatched:

        def _fmt(keys):
            shown = ", ".join(keys[:8])
            return shown + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")

        parts = [
            f"The checkpoint {os.fspath(path)!r} does not match the {name} architecture "
            f"({type(model).__name__}, {layout} key layout)."
        ]
        if missing:
            parts.append(f"Missing keys: {_fmt(missing)}.")
        if unexpected:
            parts.append(f"Unexpected keys: {_fmt(unexpected)}.")
        if mismatched:
            parts.append(f"Shape mismatches: {_fmt(mismatched)}.")
        parts.append(
            "Check that the file is the backbone of the right model and depth "
            "(e.g. an IResNet-100 for 'arcface'/'elasticface', IResNet-50 for the '-r50' variants)."
        )
        raise ValueError(" ".join(parts))
    model.load_state_dict(state, strict=True)
    return model.eval()
