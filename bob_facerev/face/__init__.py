"""Faces: landmarks and crops, backbones, the model registry and the embedding extractor.

Names are imported lazily so that ``import bob_facerev.face`` does not import torch or dlib.
"""

_EXPORTS = {
    "ModelSpec": "registry",
    "get_model_spec": "registry",
    "MODEL_NAMES": "registry",
    "load_embedding_network": "network",
    "EmbeddingNetwork": "network",
    "FaceEmbedding": "extractor",
    "FaceCropper": "crop",
    "ATTACK_SIZE": "crop",
    "DlibAnnotator": "annotator",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        module = importlib.import_module(f"{__name__}.{_EXPORTS[name]}")
        return getattr(module, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
