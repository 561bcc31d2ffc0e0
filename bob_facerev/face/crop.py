"""Per-model face alignment: raw photo (+ annotations) -> the model's aligned crop.

Crop kinds (the registry, :func:`bob_facerev.face.registry.get_model_spec`, gives each model's):

``"dlib_chip"``
    dlib's own 150x150 chip, ``dlib.get_face_chip(image, shape, 150, 0.25)``, from the 5 dlib
    landmarks: exactly what ``dlib.face_recognition_model_v1`` feeds its network.
``"arcface112"``
    112x112 with the eyes at bob.bio.face's ArcFace positions
    (:func:`bob.bio.face.utils.cropped_positions_arcface`), cropped by
    :class:`bob.bio.face.preprocessor.FaceCrop`.

Samples without annotations are annotated inside :meth:`FaceCropper.transform` (by default with
:class:`~bob_facerev.face.annotator.DlibAnnotator`), so any folder of photos can be run as is. A
sample whose face is not found becomes None (logged), which Bob pipelines carry as a failed
sample.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from .annotator import DlibAnnotator, as_bob_rgb

logger = logging.getLogger(__name__)

#: side of the attack's faces: reconstructions and training targets are the model's crop
#: resized to ATTACK_SIZE x ATTACK_SIZE (for ArcFace/ElasticFace that is the crop itself)
ATTACK_SIZE = 112

#: side of each crop kind, pixels
CROP_SIZES = {"dlib_chip": 150, "arcface112": 112}

#: dlib.get_face_chip's padding around the landmarks' face box (dlib's default)
DLIB_CHIP_PADDING = 0.25


def crop_kind(model):
    """Crop kind (a key of :data:`CROP_SIZES`) of a registered model name or ModelSpec."""
    from .registry import get_model_spec

    kind = get_model_spec(model).crop
    if kind not in CROP_SIZES:
        raise ValueError(f"model {model!r} has unknown crop kind {kind!r}; known: "
                         f"{sorted(CROP_SIZES)}")
    return kind


def dlib_chip(image, annotations, size=150, padding=DLIB_CHIP_PADDING):
    """dlib's aligned face chip from Bob annotations with ``landmarks`` (5 dlib points).

    Parameters
    ----------
    image : numpy.ndarray
        ``(3, H, W)`` uint8 RGB.
    annotations : dict
        With ``"landmarks"``: ``[[y, x] x 5]`` in dlib's 5-point order (see
        :mod:`bob_facerev.face.annotator`); ``topleft``/``bottomright`` if present.

    Returns
    -------
    numpy.ndarray
        ``(3, size, size)`` uint8 RGB.
    """
    import dlib

    landmarks = np.asarray(annotations["landmarks"], dtype=float)
    if landmarks.shape != (5, 2):
        raise ValueError(
            f"dlib chips need the 5 dlib landmarks [[y, x] x 5], got shape {landmarks.shape}"
        )
    points = [dlib.point(int(round(x)), int(round(y))) for y, x in landmarks]
    if "topleft" in annotations and "bottomright" in annotations:
        (t, l), (b, r) = annotations["topleft"], annotations["bottomright"]
        rect = dlib.rectangle(int(l), int(t), int(r) - 1, int(b) - 1)
    else:
        ys, xs = landmarks[:, 0], landmarks[:, 1]
        rect = dlib.rectangle(int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))
    shape = dlib.full_object_detection(rect, points)
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    chip = dlib.get_face_chip(hwc, shape, size, padding)
    return np.ascontiguousarray(chip.transpose(2, 0, 1))


def to_attack_size(crop):
    """A model's crop resized to the attack's ``(3, 112, 112)`` uint8 (PIL bicubic).

    Parameters
    ----------
    crop : numpy.ndarray
        ``(3, S, S)`` uint8 RGB (or float in ``[0, 255]``).
    """
    from PIL import Image

    crop = as_bob_rgb(crop)
    if crop.shape[1:] == (ATTACK_SIZE, ATTACK_SIZE):
        return crop.copy()
    pil = Image.fromarray(np.ascontiguousarray(crop.transpose(1, 2, 0)))
    pil = pil.resize((ATTACK_SIZE, ATTACK_SIZE), Image.Resampling.BICUBIC)
    return np.ascontiguousarray(np.asarray(pil).transpose(2, 0, 1))


class FaceCropper(TransformerMixin, BaseEstimator):
    """Bob transformer: raw photos (+ optional annotations) -> the model's aligned crops.

    Parameters
    ----------
    model : str
        A registered face model (``"dlib"``, ``"arcface"``, ``"elasticface"``, ...); its crop
        kind comes from the registry.
    annotator : bob.bio.base.annotator.Annotator, str or None
        Annotates samples that have no (usable) annotations; a resource name is loaded with
        :func:`bob.bio.base.load_resource`. None: a default
        :class:`~bob_facerev.face.annotator.DlibAnnotator`. Its ``annotations_dir`` cache, if
        any, gets the sample keys.

    Notes
    -----
    ``transform(images, annotations=None)``: ``images`` are ``(3, H, W)`` uint8 RGB (grayscale
    and RGBA are converted); returns ``(3, S, S)`` uint8 crops (``S`` = 150 for ``dlib_chip``,
    112 for ``arcface112``), None for a sample whose face was not found. dlib chips need the 5
    dlib landmarks: samples with only eye annotations are re-annotated.
    """

    def __init__(self, model="dlib", annotator=None):
        self.model = model
        self.annotator = annotator

    def _more_tags(self):
        # the key always: warnings about a sample without a face name it (and the annotator's
        # annotations_dir cache, if any, files by it)
        extra = (("annotations", "annotations"), ("key", "key"))
        return {"requires_fit": False, "bob_transform_extra_input": extra}

    def fit(self, X=None, y=None):
        return self

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_default_annotator", None)
        state.pop("_facecrop", None)
        return state

    def _annotator_or_none(self):
        if isinstance(self.annotator, str):
            from bob.bio.base import load_resource

            return load_resource(self.annotator, "annotator")
        return self.annotator

    def _get_annotator(self):
        annotator = self._annotator_or_none()
        if annotator is None:
            if getattr(self, "_default_annotator", None) is None:
                self._default_annotator = DlibAnnotator()
            annotator = self._default_annotator
        return annotator

    @property
    def crop_size(self):
        """Side ``S`` of the crops, pixels."""
        return CROP_SIZES[crop_kind(self.model)]

    def _annotate(self, image, key):
        annotator = self._get_annotator()
        kwargs = {"key": [key]} if getattr(annotator, "annotations_dir", None) else {}
        return annotator.transform([image], **kwargs)[0]

    def crop(self, image, annotations=None, key=None):
        """One sample: ``(3, H, W)`` photo -> ``(3, S, S)`` uint8 crop, or None (no face)."""
        kind = crop_kind(self.model)
        name = key if key is not None else "<no key>"
        image = as_bob_rgb(image, key)
        needed = ("landmarks",) if kind == "dlib_chip" else ("leye", "reye")
        if not annotations or any(k not in annotations for k in needed):
            if annotations:
                logger.debug("sample %s: annotations %s lack %s; re-annotating", name,
                             sorted(annotations), needed)
            annotations = self._annotate(image, key)
            if not annotations:
                logger.warning("sample %s: no face found, no %s crop (sample failed)",
                               name, kind)
                return None
        if kind == "dlib_chip":
            return dlib_chip(image, annotations)
        return self._arcface_crop(image, annotations)

    def _arcface_crop(self, image, annotations):
        if getattr(self, "_facecrop", None) is None:
            from bob.bio.face.preprocessor import FaceCrop
            from bob.bio.face.utils import cropped_positions_arcface

            self._facecrop = FaceCrop(
                cropped_image_size=(CROP_SIZES["arcface112"],) * 2,
                cropped_positions=cropped_positions_arcface(),
                color_channel="rgb",
            )
        eyes = {"leye": annotations["leye"], "reye": annotations["reye"]}
        out = self._facecrop.transform([image], [eyes])[0]
        return np.clip(np.round(out), 0, 255).astype(np.uint8)

    def transform(self, X, annotations=None, key=None):
        """Crop a list of photos; see the class notes.

        Parameters
        ----------
        X : list of numpy.ndarray
            ``(3, H, W)`` photos.
        annotations : list of (dict or None) or None
            Per-sample Bob annotations.
        key : list of str or None
            Per-sample keys (logs, annotation cache).

        Returns
        -------
        list of (numpy.ndarray or None)
            ``(3, S, S)`` uint8 crops; None for failed samples.
        """
        n = len(X)
        annotations = [None] * n if annotations is None else list(annotations)
        keys = [None] * n if key is None else list(key)
        if len(annotations) != n or len(keys) != n:
            raise ValueError(
                f"FaceCropper.transform got {n} images, {len(annotations)} annotations and "
                f"{len(keys)} keys; pass one of each per image"
            )
        return [self.crop(x, a, k) for x, a, k in zip(X, annotations, keys)]
