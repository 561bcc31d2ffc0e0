"""ArcFace's five-point alignment of the ``arcface112`` crop (SFace, ArcFace, ElasticFace)."""

import json
import os

import numpy as np
import pytest

from bob_facerev.face import annotator as annotator_module
from bob_facerev.face.annotator import DlibAnnotator
from bob_facerev.face.align import ARCFACE_TEMPLATE5, arcface_crop5, similarity_transform
from bob_facerev.face.crop import FaceCropper, fallback_annotations

DEMO = os.path.join(os.path.dirname(__file__), "..", "bob_facerev", "data", "demo", "images")


def load_demo(name):
    from PIL import Image

    return np.asarray(Image.open(os.path.join(DEMO, name)).convert("RGB")).transpose(2, 0, 1)


def _apply(matrix, points):
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_similarity_transform_recovers_a_known_map():
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 200, (5, 2))
    angle, scale, shift = 0.3, 1.7, np.array([12.0, -40.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = src @ rot.T + shift
    matrix = similarity_transform(src, dst)
    np.testing.assert_allclose(matrix[:, :2], rot, atol=1e-12)
    np.testing.assert_allclose(matrix[:, 2], shift, atol=1e-9)
    # noisy points: the least-squares fit has a smaller residual than the true map's shifted
    noisy = dst + rng.normal(0, 2, dst.shape)
    fit = similarity_transform(src, noisy)
    residual = np.sum((_apply(fit, src) - noisy) ** 2)
    assert residual <= np.sum((dst - noisy) ** 2)
    # agrees with OpenCV's estimate on exact points
    import cv2

    cv_matrix, _ = cv2.estimateAffinePartial2D(src, dst)
    np.testing.assert_allclose(matrix, cv_matrix, atol=1e-6)
    with pytest.raises(ValueError, match="coincide"):
        similarity_transform(np.ones((5, 2)), dst)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        similarity_transform(src[:, :1], dst[:, :1])


def _face_of_dots(points_xy, shape=(3, 300, 280), sigma=4.0):
    """An image with one Gaussian dot per point, each in all channels, peak 250."""
    h, w = shape[1:]
    yy, xx = np.mgrid[0:h, 0:w].astype(float)
    img = np.zeros((h, w))
    for x, y in points_xy:
        img += 250 * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(np.round(img), 0, 255).astype(np.uint8)[None], 3, axis=0)


def _centroid(channel, x, y, radius=7):
    y0, x0 = int(round(y)), int(round(x))
    win = channel[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1].astype(float)
    yy, xx = np.mgrid[y0 - radius : y0 + radius + 1, x0 - radius : x0 + radius + 1]
    if win.sum() == 0:
        return np.inf, np.inf  # no dot there
    return (win * xx).sum() / win.sum(), (win * yy).sum() / win.sum()


def test_five_points_land_on_the_template():
    """A generated face (dots at known landmarks, rotated, scaled, shifted) maps onto the template."""
    template = np.asarray(ARCFACE_TEMPLATE5)
    angle, scale, shift = np.deg2rad(14.0), 2.3, np.array([60.0, 35.0])
    rot = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    points_xy = template @ rot.T + shift  # the face in the photo
    image = _face_of_dots(points_xy)
    points = points_xy[:, ::-1]  # Bob's (y, x)
    annotations = {"reye": tuple(points[0]), "leye": tuple(points[1]), "arcface5": points.tolist()}
    crop = FaceCropper("sface").transform([image], [annotations])[0]
    assert crop.shape == (3, 112, 112) and crop.dtype == np.uint8
    np.testing.assert_array_equal(crop, arcface_crop5(image, points))
    found = np.array([_centroid(crop[0], x, y) for x, y in template])
    error = np.sqrt(((found - template) ** 2).sum(axis=1))
    assert error.max() < 0.5, (found, error)
    # a wrong point order (mouth corners swapped with the eyes) is not "close enough"
    swapped = points[[3, 4, 2, 0, 1]]
    bad = arcface_crop5(image, swapped)
    found_bad = np.array([_centroid(bad[0], x, y) for x, y in template])
    assert np.sqrt(((found_bad - template) ** 2).sum(axis=1)).max() > 3
    with pytest.raises(ValueError, match="five ArcFace points"):
        arcface_crop5(image, points[:4])


def test_without_arcface5_the_crop_uses_the_eyes():
    """Eye-only annotations (a database's, the fallback geometry): bob.bio.face's eye crop."""
    from bob.bio.face.preprocessor import FaceCrop
    from bob.bio.face.utils import cropped_positions_arcface

    rng = np.random.default_rng(1)
    image = rng.integers(0, 256, (3, 200, 240), dtype=np.uint8)
    eyes = {"leye": (90.0, 150.0), "reye": (92.0, 90.0)}
    expected = FaceCrop(cropped_image_size=(112, 112), cropped_positions=cropped_positions_arcface(),
                        color_channel="rgb").transform([image], [eyes])[0]
    expected = np.clip(np.round(expected), 0, 255).astype(np.uint8)
    cropper = FaceCropper("sface")
    np.testing.assert_array_equal(cropper.transform([image], [eyes])[0], expected)
    # with the five points the crop differs (it is the five-point one)
    five = dict(eyes, arcface5=[[90, 88], [88, 152], [125, 120], [150, 95], [148, 147]])
    assert not np.array_equal(cropper.transform([image], [five])[0], expected)
    # the fallback geometry (no face found) has no five points: eye crop at the fallback eyes
    blank = np.zeros((3, 250, 250), np.uint8)
    blank[:, 100:104, 100:104] = 255
    crop, used = cropper.crop_and_annotations(blank)
    assert used["facerev_fallback"] is True and "arcface5" not in used
    fallback = fallback_annotations(blank.shape)
    np.testing.assert_array_equal(crop, cropper.transform([blank], [fallback])[0])


@pytest.fixture(scope="module")
def obama():
    image = load_demo("obama_1.jpg")
    return image, DlibAnnotator(n_jobs=1).annotate(image)


def test_annotator_gives_the_five_points(obama):
    _, ann = obama
    points = np.asarray(ann["arcface5"])
    assert points.shape == (5, 2)
    # template order: image-left eye (the subject's right, "reye"), image-right eye, nose tip,
    # image-left and image-right mouth corners; eye-contour centres close to the 5-point eyes
    np.testing.assert_allclose(points[0], ann["reye"], atol=4)
    np.testing.assert_allclose(points[1], ann["leye"], atol=4)
    eye_y, nose, mouth = points[:2, 0].mean(), points[2], points[3:]
    eye_distance = points[1, 1] - points[0, 1]
    assert eye_distance > 20
    assert eye_y + 0.3 * eye_distance < nose[0] < mouth[:, 0].min()
    assert points[0, 1] < nose[1] < points[1, 1] and mouth[0, 1] < mouth[1, 1]


def test_old_cache_files_get_the_points_without_detection(tmp_path, obama, monkeypatch):
    image, ann = obama
    old = {k: v for k, v in ann.items() if k != "arcface5"}
    path = tmp_path / "obama.json"
    path.write_text(json.dumps(old))
    cached = DlibAnnotator(annotations_dir=str(tmp_path), n_jobs=1)
    cached._load()
    monkeypatch.setattr(cached, "detect", lambda image: pytest.fail("detection ran"))
    again = cached.annotate(image, key="obama")
    np.testing.assert_allclose(again["arcface5"], ann["arcface5"])
    assert again["leye"] == ann["leye"]
    assert json.loads(path.read_text()) == json.loads(json.dumps(old))  # the file is kept


def test_altered_68_point_model_is_refused(monkeypatch):
    monkeypatch.setattr(annotator_module, "SHAPE68_SHA256", "0" * 64)
    with pytest.raises(ValueError, match="shape_predictor_68_face_landmarks.dat.*SHA-256"):
        DlibAnnotator()._load()
