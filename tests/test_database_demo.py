"""The bundled demo set: files, credits, protocols, and the Bob database objects."""

import filecmp
import importlib.metadata

import numpy as np
import pytest

from bob_facerev.database.demo import build_demo_protocols, demo_database, demo_directory, demo_images


def test_demo_files_and_credits():
    root = demo_directory()
    images = demo_images()
    files = sorted(p.name for p in (root / "images").glob("*.jpg"))
    assert files == [r["path"] for r in images]
    assert len(files) >= 10
    subjects = {r["subject_id"] for r in images}
    assert len(subjects) >= 4
    assert {r["gender"] for r in images} == {"M", "F"}
    credits = (root / "CREDITS.md").read_text()
    for name in files:  # every file has a line naming its source and licence
        line = next(line for line in credits.splitlines() if f"`images/{name}`" in line)
        assert ("Public domain" in line) or ("CC BY" in line)
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total < 2_000_000


def test_bundled_protocols_equal_a_fresh_build(tmp_path):
    out = build_demo_protocols(tmp_path / "protocols")
    bundled = demo_directory() / "protocols"
    for proto in ("verification", "attack"):
        for f in sorted((out / proto / "dev").iterdir()):
            assert filecmp.cmp(f, bundled / proto / "dev" / f.name, shallow=False), f


def test_verification_protocol():
    db = demo_database("verification")
    refs, probes = db.references(), db.probes()
    # first image of each subject enrolled, the others probed, all-vs-all
    assert sorted(r.template_id for r in refs) == ["ardern_1", "biden_1", "macron_1", "obama_1", "sunak_1"]
    assert sorted(p.template_id for p in probes) == ["ardern_2", "macron_2", "obama_2", "obama_3", "obama_4"]
    assert all(sorted(p.references) == sorted(r.template_id for r in refs) for p in probes)
    genuine = sum(p.subject_id == r.subject_id for p in probes for r in refs)
    assert genuine == 5
    gender = {r.subject_id: r.gender for r in refs}
    assert gender == {"ardern": "F", "biden": "M", "macron": "M", "obama": "M", "sunak": "M"}
    sample = refs[0][0]
    assert sample.key == "ardern_1"
    image = sample.data
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[0] == 3
    assert max(image.shape[1:]) <= 500
    # a colour photo, not a grey one repeated
    assert np.abs(image[0].astype(int) - image[2].astype(int)).mean() > 3


def test_attack_protocol():
    db = demo_database("attack")
    refs, probes = db.references(), db.probes()
    assert len(refs) == len(probes) == 5
    assert {p.template_id: p.references for p in probes} == {r.template_id: [r.template_id] for r in refs}
    assert sorted(r.gender for r in refs) == ["F", "M", "M", "M", "M"]


def test_demo_resource_is_registered():
    eps = {ep.name: ep.value for ep in importlib.metadata.entry_points(group="bob.bio.database")}
    assert eps["facerev-demo"] == "bob_facerev.config.database.demo:database"
    from bob.bio.base.utils import load_resource

    db = load_resource("facerev-demo", "database")
    assert len(db.references()) == 5 and len(db.probes()) == 5
    attack = load_resource("facerev-demo-attack", "database")
    assert len(attack.probes()) == 5


def test_unknown_protocol():
    with pytest.raises(ValueError, match="Unknown demo protocol 'x'"):
        demo_database("x")
