"""DlibAnnotator (dlib detector + 5 landmarks) and FaceCropper (dlib chips, ArcFace 112)."""

import json
import logging
import os
import pickle

import numpy as np
import pytest

from bob_facerev.face.annotator import (
    LFW_EYES,
    DlibAnnotator,
    FixedAnnotator,
    as_bob_rgb,
    centred_face_annotations,
    place_face,
)
from bob_facerev.face.crop import ATTACK_SIZE, FaceCropper, dlib_chip, to_attack_size

DEMO = os.path.join(os.path.dirname(__file__), "..", "bob_facerev", "data", "demo", "images")


def load_demo(name):
    from PIL import Image

    return np.asarray(Image.open(os.path.join(DEMO, name)).convert("RGB")).transpose(2, 0, 1)


DEMO_NAMES = ["ardern_1.jpg", "biden_1.jpg", "macron_1.jpg", "obama_1.jpg", "sunak_1.jpg"]


@pytest.fixture(scope="module")
def annotator():
    return DlibAnnotator()


@pytest.fixture(scope="module")
def demo_annotations(annotator):
    return {name: annotator.annotate(load_demo(name), key=name) for name in DEMO_NAMES}


def test_eyes_are_sane(demo_annotations):
    for name, ann in demo_annotations.items():
        assert ann is not None, name
        (top, left), (bottom, right) = ann["topleft"], ann["bottomright"]
        for eye in ("leye", "reye"):
            y, x = ann[eye]
            assert top <= y < bottom and left <= x < right, (name, eye, ann)
            # eyes are in the upper half of the face box
            assert y < (top + bottom) / 2, (name, eye, ann)
        # Bob: leye is the subject's left eye, i.e. the larger x in the image
        assert ann["leye"][1] > ann["reye"][1], (name, ann)
        distance = ann["leye"][1] - ann["reye"][1]
        assert 0.25 * (right - left) < distance < 0.7 * (right - left), (name, ann)
        # eye centre = mean of that eye's two corner landmarks
        lm = np.array(ann["landmarks"])
        assert lm.shape == (5, 2)
        np.testing.assert_allclose(ann["leye"], lm[0:2].mean(0))
        np.testing.assert_allclose(ann["reye"], lm[2:4].mean(0))
        # the nose is below the eyes
        assert lm[4, 0] > max(ann["leye"][0], ann["reye"][0])


def test_landmarks_are_dlibs(demo_annotations):
    """The landmarks are those of dlib's shape predictor on dlib's detection."""
    import dlib
    import face_recognition_models as frm

    image = load_demo("obama_1.jpg").transpose(1, 2, 0).copy()
    rect = dlib.get_frontal_face_detector()(image, 1)[0]
    shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())(image, rect)
    expected = [[shape.part(i).y, shape.part(i).x] for i in range(5)]
    assert demo_annotations["obama_1.jpg"]["landmarks"] == expected


def test_largest_face_wins(annotator):
    small = load_demo("macron_1.jpg")  # 244 x 204
    big = load_demo("obama_1.jpg")
    canvas = np.zeros((3, big.shape[1] + 10, big.shape[2] + small.shape[2] + 10), np.uint8)
    canvas[:, : big.shape[1], : big.shape[2]] = big
    canvas[:, : small.shape[1], big.shape[2] + 10:] = small
    faces = annotator.annotations(canvas)
    assert len(faces) == 2
    ann = annotator.annotate(canvas)
    assert ann["leye"][1] < big.shape[2]  # the face of the larger photo
    assert ann == faces[0]


def test_grayscale_and_rgba(annotator, demo_annotations, caplog):
    rgb = load_demo("biden_1.jpg")
    reference = demo_annotations["biden_1.jpg"]
    rgba = np.concatenate([rgb, np.full_like(rgb[:1], 255)])
    with caplog.at_level(logging.INFO, logger="bob_facerev.face.annotator"):
        assert annotator.annotate(rgba) == reference
        assert "alpha" in caplog.text
        gray = rgb.mean(axis=0).round().astype(np.uint8)
        ann = annotator.annotate(gray)
        assert "grayscale" in caplog.text
    assert ann is not None
    for eye in ("leye", "reye"):
        np.testing.assert_allclose(ann[eye], reference[eye], atol=4)
    # crops of grayscale photos are 3-channel uint8 too
    crop = FaceCropper("dlib").transform([gray])[0]
    assert crop.shape == (3, 150, 150) and crop.dtype == np.uint8
    assert (crop[0] == crop[1]).all() and (crop[1] == crop[2]).all()


def test_bad_layouts():
    with pytest.raises(ValueError, match="transpose"):
        as_bob_rgb(np.zeros((50, 60, 3), np.uint8))
    with pytest.raises(ValueError, match="expected a Bob image"):
        as_bob_rgb(np.zeros((2, 50, 60), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        as_bob_rgb(np.zeros((3, 0, 60), np.uint8))
    with pytest.raises(ValueError, match="detector"):
        DlibAnnotator(detector="mtcnn").annotate(np.zeros((3, 10, 10), np.uint8))
    # float images in [0, 255] are rounded
    out = as_bob_rgb(np.full((3, 4, 4), 254.6))
    assert out.dtype == np.uint8 and (out == 255).all()
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        to_attack_size(np.full((3, 150, 150), 0.5))


def test_no_face_is_none_and_logged(annotator, caplog):
    noise = np.random.default_rng(0).integers(0, 256, (3, 120, 160), dtype=np.uint8)
    with caplog.at_level(logging.WARNING):
        assert annotator.annotate(noise, key="subject/noise") is None
        crops = FaceCropper("arcface", fallback=False).transform(
            [noise, load_demo("obama_1.jpg")], key=["subject/noise", "obama"])
    assert "subject/noise" in caplog.text
    assert crops[0] is None and crops[1].shape == (3, 112, 112)


def _dots(shape, eyes):
    """A black image with a red dot at the left eye and a green dot at the right eye."""
    image = np.zeros(shape, np.uint8)
    ys, xs = np.indices(shape[1:])
    for channel, eye in ((0, "leye"), (1, "reye")):
        y, x = eyes[eye]
        image[channel] = np.clip(255 * (1 - np.hypot(ys - y, xs - x) / 3), 0, 255).astype(np.uint8)
    return image


def _peak(channel):
    """Intensity-weighted centre ``(y, x)`` of a channel's dot."""
    weights = channel.astype(float)
    ys, xs = np.indices(channel.shape)
    return (ys * weights).sum() / weights.sum(), (xs * weights).sum() / weights.sum()


def test_landmarks_from_eyes_follow_dlibs_template(demo_annotations):
    from bob_facerev.face.crop import DLIB_TEMPLATE5, landmarks_from_eyes

    # the template's own eye centres give back the template (unit square, scaled by 100)
    t = np.array(DLIB_TEMPLATE5) * 100
    leye, reye = t[0:2].mean(0)[::-1], t[2:4].mean(0)[::-1]
    np.testing.assert_allclose(np.array(landmarks_from_eyes(leye, reye))[:, ::-1], t, atol=1e-9)
    # on real faces the derived landmarks land near dlib's (nose within 0.35 eye distances)
    for name, ann in demo_annotations.items():
        derived = np.array(landmarks_from_eyes(ann["leye"], ann["reye"]))
        found = np.array(ann["landmarks"], dtype=float)
        eye_distance = np.linalg.norm(np.subtract(ann["leye"], ann["reye"]))
        np.testing.assert_allclose(derived[:4].reshape(2, 2, 2).mean(1),
                                   found[:4].reshape(2, 2, 2).mean(1), atol=1e-6)
        assert np.linalg.norm(derived[4] - found[4]) < 0.35 * eye_distance, name
    with pytest.raises(ValueError, match="same position"):
        landmarks_from_eyes((5, 5), (5, 5))


@pytest.mark.parametrize("model", ["dlib", "arcface"])
def test_fallback_crops_at_the_default_eyes(model, caplog):
    """A face-less photo is cropped with its eyes where the model's crop puts detected eyes."""
    from bob.bio.face.utils import cropped_positions_arcface

    from bob_facerev.face.crop import DEFAULT_FALLBACK_EYES, DLIB_CHIP_PADDING, DLIB_TEMPLATE5

    h, w = 250, 250
    eyes = {k: (fy * h, fx * w) for k, (fy, fx) in DEFAULT_FALLBACK_EYES.items()}
    image = _dots((3, h, w), eyes)
    cropper = FaceCropper(model)
    with caplog.at_level(logging.WARNING):
        (crop, used), = cropper.transform_with_annotations([image], key=["no/face"])
    assert "no/face" in caplog.text and "fallback" in caplog.text
    assert used["facerev_fallback"] is True
    np.testing.assert_allclose(used["leye"], eyes["leye"])
    if model == "dlib":
        t = np.array(DLIB_TEMPLATE5)
        size, pad = 150, DLIB_CHIP_PADDING
        target = {k: ((pad + t[i:i + 2].mean(0)) / (1 + 2 * pad) * size)[::-1]
                  for k, i in (("leye", 0), ("reye", 2))}
    else:
        target = cropped_positions_arcface()
    for channel, eye in ((0, "leye"), (1, "reye")):
        assert np.abs(np.subtract(_peak(crop[channel]), target[eye])).max() <= 1.0, eye
    # a database's own geometry (per sample) and the cropper's explicit one
    other = {"leye": (0.5, 0.7), "reye": (0.5, 0.3)}
    moved = _dots((3, h, w), {k: (fy * h, fx * w) for k, (fy, fx) in other.items()})
    for c in (cropper.transform([moved], fallback_eyes=[other])[0],
              FaceCropper(model, fallback=other).transform([moved])[0]):
        for channel, eye in ((0, "leye"), (1, "reye")):
            assert np.abs(np.subtract(_peak(c[channel]), target[eye])).max() <= 1.0, eye


def test_fallback_is_not_used_on_faces_and_can_be_refused(demo_annotations):
    image = load_demo("obama_1.jpg")
    (crop, used), = FaceCropper("dlib").transform_with_annotations([image])
    assert used["facerev_fallback"] is False and used["landmarks"] == demo_annotations[
        "obama_1.jpg"]["landmarks"]
    blank = np.full((3, 120, 100), 128, np.uint8)
    assert FaceCropper("dlib", fallback=False).transform_with_annotations([blank]) == [(None, None)]
    with pytest.raises(ValueError, match="fractions"):
        FaceCropper("dlib", fallback={"leye": (0.4, 0.3), "reye": (0.4, 0.6)}).transform([blank])
    with pytest.raises(ValueError, match="fallback="):
        FaceCropper("dlib", fallback="yes").transform([blank])
    with pytest.raises(ValueError, match="per-sample"):
        FaceCropper("dlib").transform([blank], key=["a", "b"])


def test_cache(tmp_path, caplog):
    cached = DlibAnnotator(annotations_dir=str(tmp_path))
    assert cached._more_tags()["bob_transform_extra_input"] == (("key", "key"),)
    assert DlibAnnotator()._more_tags()["bob_transform_extra_input"] == ()
    image = load_demo("sunak_1.jpg")
    ann = cached.transform([image], key=["sunak/1"])[0]
    path = tmp_path / "sunak" / "1.json"
    stored = json.loads(path.read_text())
    assert stored["landmarks"] == ann["landmarks"]
    assert not [p for p in tmp_path.rglob("*.tmp*")]
    # re-used: a changed file is what comes back (no detection)
    stored["leye"] = [1.0, 2.0]
    path.write_text(json.dumps(stored))
    again = cached.annotate(image, key="sunak/1")
    assert again["leye"] == (1.0, 2.0) and again["reye"] == ann["reye"]
    # failures are cached as null
    blank = np.zeros((3, 90, 90), np.uint8)
    assert cached.annotate(blank, key="blank") is None
    assert json.loads((tmp_path / "blank.json").read_text()) is None
    with pytest.raises(ValueError, match="relative key"):
        cached.annotate(blank, key="../escape")
    # the cropper passes the keys to a caching annotator
    cropper = FaceCropper("dlib", annotator=cached)
    assert ("key", "key") in cropper._more_tags()["bob_transform_extra_input"]
    crop = cropper.transform([image], key=["sunak/2"])[0]
    assert crop.shape == (3, 150, 150) and (tmp_path / "sunak" / "2.json").exists()


def test_dlib_chip_is_dlibs(demo_annotations):
    """FaceCropper('dlib') == dlib.get_face_chip on dlib's own shape, pixel for pixel."""
    import dlib
    import face_recognition_models as frm

    image = load_demo("ardern_1.jpg")
    hwc = image.transpose(1, 2, 0).copy()
    rect = dlib.get_frontal_face_detector()(hwc, 1)[0]
    shape = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())(hwc, rect)
    expected = dlib.get_face_chip(hwc, shape, 150, 0.25).transpose(2, 0, 1)
    cropper = FaceCropper("dlib")
    assert cropper._more_tags()["requires_fit"] is False
    ours = cropper.transform([image], [demo_annotations["ardern_1.jpg"]])[0]
    assert ours.shape == (3, 150, 150) and ours.dtype == np.uint8
    np.testing.assert_array_equal(ours, expected)
    # without annotations: annotated inside, same chip
    np.testing.assert_array_equal(cropper.transform([image])[0], expected)
    # eye-only annotations (no landmarks) are re-annotated for dlib chips
    eyes_only = {k: demo_annotations["ardern_1.jpg"][k] for k in ("leye", "reye")}
    np.testing.assert_array_equal(cropper.transform([image], [eyes_only])[0], expected)
    np.testing.assert_array_equal(dlib_chip(image, demo_annotations["ardern_1.jpg"]), expected)


def test_arcface_crop_puts_eyes_at_arcface_positions():
    """Two bright dots at the annotated eyes land at bob.bio.face's ArcFace positions."""
    from bob.bio.face.utils import cropped_positions_arcface

    image = np.zeros((3, 200, 240), np.uint8)
    eyes = {"leye": (90, 150), "reye": (90, 90)}
    image[0, 89:92, 149:152] = 255  # leye: red
    image[1, 89:92, 89:92] = 255  # reye: green
    crop = FaceCropper("arcface").transform([image], [eyes])[0]
    assert crop.shape == (3, 112, 112) and crop.dtype == np.uint8
    target = cropped_positions_arcface()
    for channel, eye in ((0, "leye"), (1, "reye")):
        peak = np.unravel_index(np.argmax(crop[channel]), crop[channel].shape)
        assert np.abs(np.subtract(peak, target[eye])).max() <= 1, (eye, peak, target[eye])
    # ElasticFace uses the same crop
    np.testing.assert_array_equal(FaceCropper("elasticface").transform([image], [eyes])[0], crop)


def test_to_attack_size():
    assert ATTACK_SIZE == 112
    chip = np.full((3, 150, 150), 77, np.uint8)
    chip[0] = 200
    out = to_attack_size(chip)
    assert out.shape == (3, 112, 112) and out.dtype == np.uint8
    assert (out[0] == 200).all() and (out[1:] == 77).all()
    same = np.random.default_rng(0).integers(0, 256, (3, 112, 112), dtype=np.uint8)
    np.testing.assert_array_equal(to_attack_size(same), same)


def test_pickling_drops_models(annotator, demo_annotations):
    assert annotator._predictor is not None  # loaded by the fixture
    clone = pickle.loads(pickle.dumps(annotator))
    assert getattr(clone, "_predictor", None) is None
    cropper = FaceCropper("arcface")
    cropper.transform([load_demo("obama_1.jpg")], [demo_annotations["obama_1.jpg"]])
    state = cropper.__getstate__()
    assert "_facecrop" not in state and "_default_annotator" not in state
    with pytest.raises(ValueError, match="Unknown face model"):
        FaceCropper("vgg").transform([load_demo("obama_1.jpg")])


def test_bob_sample_pipeline_carries_failed_samples():
    """In a Bob sample pipeline a face-less photo becomes None and later steps skip it."""
    from bob.pipelines import Sample, wrap
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    seen = []

    def mean_pixel(crops):
        seen.extend(crops)
        return [c.mean() for c in crops]

    pipeline = make_pipeline(
        wrap(["sample"], FaceCropper("arcface", fallback=False)),
        wrap(["sample"], FunctionTransformer(mean_pixel)),
    )
    samples = [
        Sample(load_demo("obama_1.jpg"), key="obama", annotations=None, fallback_eyes=None),
        Sample(np.zeros((3, 100, 100), np.uint8), key="blank", annotations=None,
               fallback_eyes=None),
    ]
    out = pipeline.transform(samples)
    assert [s.key for s in out] == ["obama", "blank"]
    assert out[0].data > 0 and out[1].data is None
    assert len(seen) == 1 and seen[0].shape == (3, 112, 112)


def test_centred_face_geometry():
    ann = centred_face_annotations(250, 250)
    assert ann["leye"] == LFW_EYES["leye"] and ann["reye"] == LFW_EYES["reye"]
    lm = np.array(ann["landmarks"])
    # eye centres are the means of their corners (to the rounding of the landmarks)
    np.testing.assert_allclose(lm[0:2].mean(0), ann["leye"], atol=1)
    np.testing.assert_allclose(lm[2:4].mean(0), ann["reye"], atol=1)
    assert lm[4, 0] > ann["leye"][0] + 25 and abs(lm[4, 1] - 125) < 3  # nose below, centred
    (top, left), (bottom, right) = ann["topleft"], ann["bottomright"]
    assert top < lm[:, 0].min() and bottom > lm[:, 0].max()
    assert left < lm[:, 1].min() and right > lm[:, 1].max()
    # other sizes: scaled
    big = centred_face_annotations(500, 1000)
    assert big["leye"] == (220.0, 600.0)
    with pytest.raises(ValueError, match="positive"):
        centred_face_annotations(0, 250)


def test_fixed_annotator_skips_detection_and_matches_it(demo_annotations):
    """On an LFW-shaped photo, the fixed geometry is where dlib finds the face."""
    from bob_facerev.face.extractor import FaceEmbedding

    image = place_face(load_demo("obama_1.jpg"), demo_annotations["obama_1.jpg"])
    assert image.shape == (3, 250, 250)
    detected = DlibAnnotator().annotate(image)
    fixed = FixedAnnotator().annotate(image)
    assert fixed == centred_face_annotations(250, 250)
    np.testing.assert_allclose(detected["leye"], fixed["leye"], atol=3)
    np.testing.assert_allclose(detected["reye"], fixed["reye"], atol=3)
    np.testing.assert_allclose(detected["landmarks"], fixed["landmarks"], atol=8)
    # the crops agree: same identity to the dlib network
    chips = [FaceCropper("dlib", annotator=a).transform([image])[0]
             for a in (DlibAnnotator(), FixedAnnotator())]
    e = FaceEmbedding("dlib", device="cpu").transform(chips)
    assert float(e[0] @ e[1]) > 0.98
    # no face at all: detection fails, the fixed geometry still crops
    noise = np.random.default_rng(0).integers(0, 255, (3, 250, 250), dtype=np.uint8)
    assert FaceCropper("dlib", fallback=False).transform([noise])[0] is None
    assert FaceCropper("dlib", annotator=FixedAnnotator()).transform([noise])[0].shape == (3, 150, 150)


def test_annotator_in_processes_equals_serial(demo_annotations):
    images = [load_demo(n) for n in DEMO_NAMES[:4]]
    parallel = DlibAnnotator(n_jobs=2).transform(images)
    assert parallel == [demo_annotations[n] for n in DEMO_NAMES[:4]]
    assert DlibAnnotator(n_jobs=1).transform(images[:1]) == parallel[:1]
