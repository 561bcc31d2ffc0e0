"""Per-model face alignment: raw photo (+ annotations) -> the model's aligned crop.

Crop kinds (the registry, :func:`bob_facerev.face.registry.get_model_spec`, gives each model's):

``"dlib_chip"``
    dlib's own 150x150 chip, ``dlib.get_face_chip(image, shape, 150, 0.25)``, from the 5 dlib
    landmarks: exactly what ``dlib.face_recognition_model_v1`` feeds its network.
``"arcface112"``
    ArcFace's 112x112 five-point alignment, what insightface and OpenCV's
    ``FaceRecognizerSF.alignCrop`` (SFace) do: the least-squares similarity transform
    (:func:`~bob_facerev.face.align.similarity_transform`, Umeyama's) that maps the face's five ArcFace points (eye
    centres, nose tip, mouth corners; the annotations' ``arcface5``, from dlib's 68-point
    landmarks, see :class:`~bob_facerev.face.annotator.DlibAnnotator`) onto
    :data:`~bob_facerev.face.align.ARCFACE_TEMPLATE5`, applied with bilinear interpolation (:func:`~bob_facerev.face.align.arcface_crop5`).
    Annotations without ``arcface5`` (the fallback geometry, a database's own eye annotations)
    are cropped from the two eye centres alone: bob.bio.face's
    :class:`~bob.bio.face.preprocessor.FaceCrop` with the eyes at its ArcFace positions
    (:func:`bob.bio.face.utils.cropped_positions_arcface`).

Samples without annotations are annotated inside :meth:`FaceCropper.transform` (by default with
:class:`~bob_facerev.face.annotator.DlibAnnotator`), so any folder of photos can be run as is.

Photos without a detected face (fail-safe crop)
-----------------------------------------------
When the annotator finds no face, the cropper falls back to a default geometry (``fallback=True``,
the default), as bob.bio.face's fail-safe annotators do: eye centres at fixed fractions of the
image's height and width, :data:`DEFAULT_FALLBACK_EYES` unless the sample carries its database's
own (the ``fallback_eyes`` sample attribute, see :class:`FallbackEyes`). The annotations used then
hold ``"facerev_fallback": True`` (logged at WARNING). dlib chips need 5 landmarks; they are
derived from the two eye centres by :func:`landmarks_from_eyes`: dlib's own 5-point template
(the one ``dlib.get_face_chip`` aligns to) placed by the similarity transform that maps its eye
centres onto the given ones, so the chip puts those eyes exactly where dlib puts detected eyes.
With ``fallback=False`` such a sample becomes None (logged), which Bob pipelines carry as a
failed sample.

A database supplies its geometry by adding a :class:`FallbackEyes` step to its sample loader
(``eyes`` as fractions ``{"leye": (y, x), "reye": (y, x)}`` of the image height and width):
:func:`with_fallback_eyes` does it for a ``CSVDatabase``.
"""

from __future__ import annotations

import logging

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin

from ..failures import FALLBACK_KEY
from .align import arcface_crop5
from .annotator import DlibAnnotator, as_bob_rgb

logger = logging.getLogger(__name__)

#: side of the attack's faces: reconstructions and training targets are the model's crop
#: resized to ATTACK_SIZE x ATTACK_SIZE (for ArcFace/ElasticFace that is the crop itself)
ATTACK_SIZE = 112

#: side of each crop kind, pixels
CROP_SIZES = {"dlib_chip": 150, "arcface112": 112}

#: dlib.get_face_chip's padding around the landmarks' face box (dlib's default)
DLIB_CHIP_PADDING = 0.25

#: dlib's 5-point face template, ``(x, y)`` in the unit face square before padding, in the
#: 5-point predictor's order (subject's left eye outer, inner; right eye outer, inner; nose
#: base): the points ``dlib.get_face_chip`` aligns to (``get_face_chip_details`` in
#: dlib/image_transforms/interpolation.h)
DLIB_TEMPLATE5 = (
    (0.8595674595992, 0.2134981538014),
    (0.6460604764104, 0.2289674387677),
    (0.1205750620789, 0.2137274526848),
    (0.3340850613712, 0.2290642403242),
    (0.4901123135679, 0.6277975316475),
)

#: default fallback eye centres, ``(y, x)`` as fractions of the image height and width, for
#: loosely centred face photos such as LFW's: LFW centres each 250x250 image on the face
#: detector's box enlarged 2.2 times (LFW technical report), i.e. a face box of side 250 / 2.2
#: = 113.6 px in the middle; in dlib's face boxes the eye centres lie at 0.295 of the side from
#: the top and at 0.29 / 0.71 of it from the left (medians over the 10 demo photos and 50 CFP
#: frontal photos), which gives eyes at y = 102 px and x = 101 / 149 px of 250. An estimate:
#: the detector box LFW used is not dlib's
DEFAULT_FALLBACK_EYES = {"leye": (0.407, 0.594), "reye": (0.407, 0.405)}


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


def landmarks_from_eyes(leye, reye):
    """dlib's 5 landmarks for two eye centres: :data:`DLIB_TEMPLATE5` placed on the eyes.

    The similarity transform (rotation, uniform scale, shift) that maps the template's eye
    centres (the means of its two corners per eye) onto ``leye``/``reye`` is applied to all
    five template points, so ``dlib.get_face_chip`` on the result puts the given eye centres
    exactly where it puts detected ones.

    Parameters
    ----------
    leye, reye : tuple
        ``(y, x)`` of the subject's left eye (larger ``x``) and right eye, pixels.

    Returns
    -------
    list
        ``[[y, x] x 5]`` (floats), in dlib's 5-point order.
    """
    t = np.array([complex(x, y) for x, y in DLIB_TEMPLATE5])
    t_left, t_right = t[0:2].mean(), t[2:4].mean()
    left, right = complex(leye[1], leye[0]), complex(reye[1], reye[0])
    if left == right:
        raise ValueError(f"the two eyes are at the same position {tuple(leye)}")
    a = (left - right) / (t_left - t_right)
    z = a * (t - t_left) + left
    return [[float(p.imag), float(p.real)] for p in z]


def check_eye_fractions(eyes, what="fallback eyes"):
    """Validate ``{"leye": (y, x), "reye": (y, x)}`` fractions of the image size; returns them."""
    try:
        out = {k: (float(eyes[k][0]), float(eyes[k][1])) for k in ("leye", "reye")}
    except (KeyError, TypeError, IndexError, ValueError):
        raise ValueError(
            f"{what} {eyes!r}: give {{'leye': (y, x), 'reye': (y, x)}} as fractions of the "
            "image height and width, e.g. crop.DEFAULT_FALLBACK_EYES"
        ) from None
    if not all(0.0 <= v <= 1.0 for pair in out.values() for v in pair) or (
        out["leye"][1] <= out["reye"][1]
    ):
        raise ValueError(
            f"{what} {eyes!r}: fractions must lie in [0, 1], with the subject's left eye "
            "('leye') at the larger x (Bob's convention)"
        )
    return out


def fallback_annotations(shape, eyes=None):
    """Bob annotations of the fallback geometry for an image of ``shape`` (``(.., H, W)``).

    Parameters
    ----------
    shape : tuple
        The image shape; its last two entries are the height and width.
    eyes : dict or None
        Eye fractions (default :data:`DEFAULT_FALLBACK_EYES`).

    Returns
    -------
    dict
        ``leye``, ``reye`` (pixels), ``landmarks`` (:func:`landmarks_from_eyes`) and
        ``facerev_fallback: True``.
    """
    h, w = shape[-2:]
    fractions = check_eye_fractions(DEFAULT_FALLBACK_EYES if eyes is None else eyes)
    ann = {k: (fy * h, fx * w) for k, (fy, fx) in fractions.items()}
    ann["landmarks"] = landmarks_from_eyes(ann["leye"], ann["reye"])
    ann[FALLBACK_KEY] = True
    return ann


class FallbackEyes(TransformerMixin, BaseEstimator):
    """Database sample loader step: gives every sample its database's fallback geometry.

    Sets ``sample.fallback_eyes = eyes`` (fractions of the image height and width, see
    :func:`check_eye_fractions`), which :class:`FaceCropper` uses when no face is detected.

    Parameters
    ----------
    eyes : dict
        ``{"leye": (y, x), "reye": (y, x)}`` fractions.
    """

    def __init__(self, eyes=None):
        self.eyes = eyes

    def fit(self, X=None, y=None):
        return self

    def _more_tags(self):
        return {"requires_fit": False}

    def transform(self, samples):
        from bob.pipelines import DelayedSample

        eyes = check_eye_fractions(self.eyes, "FallbackEyes(eyes)")
        return [DelayedSample.from_sample(s, fallback_eyes=eyes) for s in samples]


def with_fallback_eyes(database, eyes):
    """Add a :class:`FallbackEyes` step to a Bob ``CSVDatabase``'s sample loader; returns it.

    This is how a database supplies the geometry the crop step falls back to, e.g.
    ``with_fallback_eyes(make_database(...), {"leye": (0.4, 0.6), "reye": (0.4, 0.4)})``.
    """
    check_eye_fractions(eyes)
    database.transformer.steps.append(("fallbackeyes", FallbackEyes(eyes)))
    return database


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
    fallback : bool or dict
        What to do when the annotator finds no face (module doc). ``True``: crop at the
        sample's ``fallback_eyes`` (its database's geometry), else at
        :data:`DEFAULT_FALLBACK_EYES`; a dict ``{"leye": (y, x), "reye": (y, x)}`` of
        fractions: crop there (for every sample); ``False``: the sample fails (None).

    Notes
    -----
    ``transform(images, annotations=None)``: ``images`` are ``(3, H, W)`` uint8 RGB (grayscale
    and RGBA are converted); returns ``(3, S, S)`` uint8 crops (``S`` = 150 for ``dlib_chip``,
    112 for ``arcface112``), None for a sample whose face was not found (``fallback=False``).
    dlib chips need the 5 dlib landmarks: samples with only eye annotations are re-annotated.
    In a Bob sample pipeline the step asks for each sample's ``annotations``,
    ``fallback_eyes`` and ``key`` (it names the sample in the logs and the annotator's cache):
    wrap it with :class:`bob_facerev.pipelines.OptionalExtraInputWrapper`, which passes None for
    the ones a sample lacks (Bob's plain SampleWrapper needs all three).
    :meth:`transform_with_annotations` also returns the annotations each crop used, with
    ``"facerev_fallback"`` True or False.
    """

    def __init__(self, model="dlib", annotator=None, fallback=True):
        self.model = model
        self.annotator = annotator
        self.fallback = fallback

    def _more_tags(self):
        extra = [("annotations", "annotations"), ("fallback_eyes", "fallback_eyes"),
                 ("key", "key")]
        return {"requires_fit": False, "bob_transform_extra_input": tuple(extra)}

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

    def _fallback_eyes(self, sample_eyes):
        """The eye fractions of the fallback, or None when it is off."""
        if self.fallback is True:
            return sample_eyes if sample_eyes is not None else DEFAULT_FALLBACK_EYES
        if self.fallback is False or self.fallback is None:
            return None
        if isinstance(self.fallback, dict):
            return self.fallback
        raise ValueError(
            f"FaceCropper(fallback={self.fallback!r}): use True, False or eye fractions "
            "{'leye': (y, x), 'reye': (y, x)}"
        )

    def crop(self, image, annotations=None, key=None, fallback_eyes=None):
        """One sample: ``(3, H, W)`` photo -> ``(3, S, S)`` uint8 crop, or None (no face)."""
        return self.crop_and_annotations(image, annotations, key, fallback_eyes)[0]

    def crop_and_annotations(self, image, annotations=None, key=None, fallback_eyes=None):
        """One sample -> ``(crop, annotations used)``; ``(None, None)`` when it failed."""
        kind = crop_kind(self.model)
        name = key if key is not None else "<no key>"
        eyes = self._fallback_eyes(fallback_eyes)
        image = as_bob_rgb(image, key)
        needed = ("landmarks",) if kind == "dlib_chip" else ("leye", "reye")
        if annotations and annotations.get(FALLBACK_KEY):
            annotations = None  # a previous run's fallback: detect again
        if not annotations or any(k not in annotations for k in needed):
            if annotations:
                logger.debug("sample %s: annotations %s lack %s; re-annotating", name,
                             sorted(annotations), needed)
            annotations = self._annotate(image, key)
            if not annotations and eyes is None:
                logger.warning("sample %s: no face found, no %s crop (sample failed)",
                               name, kind)
                return None, None
            if not annotations:
                annotations = fallback_annotations(image.shape, eyes)
                logger.warning("sample %s: no face found; %s crop at the fallback eyes "
                               "%s (annotations['%s'] = True)", name, kind,
                               check_eye_fractions(eyes), FALLBACK_KEY)
        annotations = dict(annotations)
        annotations.setdefault(FALLBACK_KEY, False)
        if kind == "dlib_chip":
            return dlib_chip(image, annotations), annotations
        return self._arcface_crop(image, annotations), annotations

    def _arcface_crop(self, image, annotations):
        if annotations.get("arcface5") is not None:
            return arcface_crop5(image, annotations["arcface5"], CROP_SIZES["arcface112"])
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

    def transform_with_annotations(self, X, annotations=None, key=None, fallback_eyes=None):
        """Like :meth:`transform`, returning ``(crop, annotations used)`` pairs."""
        n = len(X)
        columns = {"annotations": annotations, "key": key, "fallback_eyes": fallback_eyes}
        columns = {k: [None] * n if v is None else list(v) for k, v in columns.items()}
        bad = {k: len(v) for k, v in columns.items() if len(v) != n}
        if bad:
            raise ValueError(
                f"FaceCropper.transform got {n} images but {bad} per-sample values; pass one "
                "of each per image"
            )
        return [
            self.crop_and_annotations(x, a, k, e)
            for x, a, k, e in zip(X, columns["annotations"], columns["key"],
                                  columns["fallback_eyes"])
        ]

    def transform(self, X, annotations=None, key=None, fallback_eyes=None):
        """Crop a list of photos; see the class notes.

        Parameters
        ----------
        X : list of numpy.ndarray
            ``(3, H, W)`` photos.
        annotations : list of (dict or None) or None
            Per-sample Bob annotations.
        key : list of str or None
            Per-sample keys (logs, annotation cache).
        fallback_eyes : list of (dict or None) or None
            Per-sample fallback geometry (the database's; see :class:`FallbackEyes`).

        Returns
        -------
        list of (numpy.ndarray or None)
            ``(3, S, S)`` uint8 crops; None for failed samples.
        """
        return [c for c, _ in self.transform_with_annotations(X, annotations, key, fallback_eyes)]
