"""The torch port of dlib's face recognition ResNet against dlib-bin itself."""

import itertools
import os

import numpy as np
import pytest
import torch

from bob_facerev.face.backbones.dlib_resnet import (
    DlibModelError,
    default_model_path,
    load_dlib_resnet,
    read_dlib_resnet,
)

DEMO = os.path.join(os.path.dirname(__file__), "..", "bob_facerev", "data", "demo")


def demo_faces():
    """(file name, subject, (H, W, 3) uint8 RGB) of the bundled demo photos."""
    import csv

    from PIL import Image

    csv_path = os.path.join(DEMO, "images.csv")
    if not os.path.exists(csv_path):
        pytest.fail(f"demo faces missing: {csv_path}")
    with open(csv_path) as f:
        rows = list(csv.DictReader(f))
    return [
        (row["path"], row["subject_id"],
         np.asarray(Image.open(os.path.join(DEMO, "images", row["path"])).convert("RGB")))
        for row in rows
    ]


@pytest.fixture(scope="module")
def dlib_chips():
    """dlib-bin's own chips and descriptors: (names, subjects, (N,150,150,3), (N,128))."""
    import dlib
    import face_recognition_models as frm

    detector = dlib.get_frontal_face_detector()
    predictor = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    recognizer = dlib.face_recognition_model_v1(frm.face_recognition_model_location())
    names, subjects, chips, descriptors = [], [], [], []
    for name, subject, img in demo_faces():
        boxes = detector(img, 1)
        assert len(boxes) >= 1, name
        shape = predictor(img, max(boxes, key=lambda r: r.area()))
        chip = dlib.get_face_chip(img, shape, 150, 0.25)
        names.append(name)
        subjects.append(subject)
        chips.append(chip)
        descriptors.append(np.array(recognizer.compute_face_descriptor(chip)))
    return names, subjects, np.stack(chips), np.stack(descriptors)


@pytest.fixture(scope="module")
def model():
    return load_dlib_resnet()


def _to_tensor(chips):
    return torch.from_numpy(np.ascontiguousarray(chips)).permute(0, 3, 1, 2).float()


def test_matches_dlib(model, dlib_chips):
    _, _, chips, reference = dlib_chips
    assert len(chips) >= 8
    with torch.no_grad():
        ours = model(_to_tensor(chips)).numpy()
    assert ours.shape == (len(chips), 128) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, reference, atol=1e-4, rtol=0)
    # batching does not change a descriptor
    with torch.no_grad():
        single = model(_to_tensor(chips[3:4])).numpy()
    np.testing.assert_allclose(single[0], ours[3], atol=1e-5)


def test_same_person_scores_higher(model, dlib_chips):
    _, subjects, chips, _ = dlib_chips
    with torch.no_grad():
        emb = torch.nn.functional.normalize(model(_to_tensor(chips)), dim=1).numpy()
    genuine, impostor = [], []
    for i, j in itertools.combinations(range(len(subjects)), 2):
        (genuine if subjects[i] == subjects[j] else impostor).append(emb[i] @ emb[j])
    assert len(genuine) >= 5 and len(impostor) >= 20
    assert min(genuine) > max(impostor), (min(genuine), max(impostor))


def test_gradient_reaches_input(model, dlib_chips):
    """The input gradient equals a central finite difference (float64 copy of the model)."""
    chips = _to_tensor(dlib_chips[2][:2]).double()
    m64 = load_dlib_resnet().double()
    direction = torch.randn(chips.shape, generator=torch.Generator().manual_seed(0),
                            dtype=torch.float64)
    target = torch.randn(2, 128, generator=torch.Generator().manual_seed(1), dtype=torch.float64)

    def loss(x):
        return (m64(x) * target).sum()

    x = chips.clone().requires_grad_(True)
    loss(x).backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0
    eps = 1e-3
    with torch.no_grad():
        numeric = (loss(chips + eps * direction) - loss(chips - eps * direction)) / (2 * eps)
    analytic = (x.grad * direction).sum()
    assert abs(float(numeric - analytic)) <= 1e-4 * max(1.0, abs(float(analytic)))


def test_weights_layout():
    weights = read_dlib_resnet()
    np.testing.assert_allclose(weights["means"], [122.782, 117.001, 104.298], atol=1e-4)
    convs = [p["weight"] for kind, p in weights["layers"] if kind == "con_4"]
    assert len(convs) == 29
    assert convs[0].shape == (32, 3, 7, 7) and convs[-1].shape == (256, 256, 3, 3)
    n_params = sum(a.size for _, p in weights["layers"] for a in p.values())
    assert 5_500_000 < n_params < 5_700_000  # "5.6 M parameters"


def test_missing_file(tmp_path):
    with pytest.raises(DlibModelError, match="not found"):
        load_dlib_resnet(tmp_path / "nope.dat")


@pytest.mark.parametrize("damage", ["truncated", "garbage", "flipped_byte"])
def test_corrupt_file(tmp_path, damage):
    with open(default_model_path(), "rb") as f:
        data = bytearray(f.read())
    if damage == "truncated":
        data = data[: len(data) // 2]
    elif damage == "garbage":
        data = bytearray(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8))
    else:
        data[data.index(b"\x01\x05con_4") - 2] = 0x09  # an integer header becomes nonsense
    path = tmp_path / "model.dat"
    path.write_bytes(bytes(data))
    with pytest.raises(DlibModelError, match="not a valid"):
        load_dlib_resnet(path)
