"""Faces: landmarks and crops, backbones, the model registry and the embedding extractor.

Names are imported lazily so that ``import bob_facerev.face`` does not import torch or dlib.
"""

from ..utils import lazy_exports

_EXPORTS = {
    "ModelSpec": "registry",
    "get_model_spec": "registry",
    "MODEL_NAMES": "registry",
    "register_model": "registry",
    "load_embedding_network": "network",
    "EmbeddingNetwork": "network",
    "FaceEmbedding": "extractor",
    "FaceCropper": "crop",
    "ATTACK_SIZE": "crop",
    "DlibAnnotator": "annotator",
}

__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(__name__, _EXPORTS)
