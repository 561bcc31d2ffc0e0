"""ArcFace's five-point alignment: the template, a least-squares similarity fit, the warp.

The ``arcface112`` crop of :class:`~bob_facerev.face.crop.FaceCropper` (SFace, ArcFace,
ElasticFace) maps the face's five points (eye centres, nose tip, mouth corners; the ``arcface5``
annotations of :class:`~bob_facerev.face.annotator.DlibAnnotator`) onto
:data:`ARCFACE_TEMPLATE5`, as insightface and OpenCV's ``FaceRecognizerSF.alignCrop`` do.
"""

from __future__ import annotations

import numpy as np


#: ArcFace's five-point template of 112x112 crops, ``(x, y)`` pixels (pixel centres at integer
#: coordinates, OpenCV's convention): the image-left eye centre (the subject's right eye), the
#: image-right eye centre, the nose tip, the image-left and image-right mouth corners;
#: insightface's ``arcface_dst``, also the target of OpenCV's ``FaceRecognizerSF.alignCrop``
ARCFACE_TEMPLATE5 = (
    (38.2946, 51.6963),
    (73.5318, 51.5014),
    (56.0252, 71.7366),
    (41.5493, 92.3655),
    (70.7299, 92.2041),
)


def similarity_transform(src, dst):
    """Least-squares similarity transform (rotation, uniform scale, shift) mapping ``src`` to ``dst``.

    Umeyama's estimate without reflection (what ``skimage.transform.SimilarityTransform`` and
    insightface's alignment compute), in closed form with the points as complex numbers: the
    ``a`` and ``b`` minimising ``sum |a * src_i + b - dst_i|^2``.

    Parameters
    ----------
    src, dst : array_like
        ``(N, 2)`` points, ``N >= 2``, in the same coordinate order (e.g. ``(x, y)``).

    Returns
    -------
    numpy.ndarray
        ``(2, 3)`` float matrix ``M``: ``dst ~ M[:, :2] @ src + M[:, 2]`` (``cv2.warpAffine``'s
        forward map when the points are ``(x, y)``).
    """
    src, dst = np.asarray(src, dtype=float), np.asarray(dst, dtype=float)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise ValueError(f"similarity_transform needs two (N, 2) arrays of the same shape, "
                         f"N >= 2; got {src.shape} and {dst.shape}")
    zs, zd = src[:, 0] + 1j * src[:, 1], dst[:, 0] + 1j * dst[:, 1]
    zs0, zd0 = zs - zs.mean(), zd - zd.mean()
    spread = float(np.sum(np.abs(zs0) ** 2))
    if spread == 0.0:
        raise ValueError(f"similarity_transform: the source points {src.tolist()} coincide")
    a = np.sum(np.conj(zs0) * zd0) / spread
    b = zd.mean() - a * zs.mean()
    return np.array([[a.real, -a.imag, b.real], [a.imag, a.real, b.imag]])


def arcface_crop5(image, points, size=112):
    """ArcFace's five-point aligned crop of a photo.

    Parameters
    ----------
    image : numpy.ndarray
        ``(3, H, W)`` uint8 RGB.
    points : array_like
        The face's five ArcFace points ``[[y, x] x 5]`` (Bob's order of coordinates), in the
        order of :data:`ARCFACE_TEMPLATE5`: image-left eye centre, image-right eye centre, nose
        tip, image-left mouth corner, image-right mouth corner.
    size : int
        Side of the crop; the template is scaled by ``size / 112``.

    Returns
    -------
    numpy.ndarray
        ``(3, size, size)`` uint8 RGB: the image warped by the least-squares similarity
        (:func:`similarity_transform`) from ``points`` to the template, bilinear, black outside.
    """
    import cv2

    points = np.asarray(points, dtype=float)
    if points.shape != (5, 2):
        raise ValueError(f"arcface_crop5 needs the five ArcFace points [[y, x] x 5], got shape "
                         f"{points.shape}")
    template = np.asarray(ARCFACE_TEMPLATE5) * (size / 112.0)
    matrix = similarity_transform(points[:, ::-1], template)
    hwc = np.ascontiguousarray(image.transpose(1, 2, 0))
    out = cv2.warpAffine(hwc, matrix, (size, size), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    return np.ascontiguousarray(out.transpose(2, 0, 1))
