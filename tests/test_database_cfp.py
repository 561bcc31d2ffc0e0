"""CFP protocols from a small generated CFP-shaped folder (the release's file formats)."""

import csv

import numpy as np
import pytest

from PIL import Image

from bob_facerev.database.cfp import build_cfp, cfp_database

PEOPLE, FRONTAL, PROFILE, FOLDS = 4, 10, 4, 10


def frontal_index(person, number):
    """1-based index in Pair_list_F.txt of frontal image ``number`` of ``person`` (1-based)."""
    return (person - 1) * FRONTAL + number


def profile_index(person, number):
    return (person - 1) * PROFILE + number


def expected_splits():
    """``{"FF": [(fold, i, j, genuine)], "FP": [...]}``, each fold's same pairs then diff."""
    out = {"FF": [], "FP": []}
    for f in range(1, FOLDS + 1):
        p, q = 1 + f % PEOPLE, 1 + (f + 1) % PEOPLE
        out["FF"] += [(f, frontal_index(p, 1 + f % 9), frontal_index(p, 10), True),
                      (f, frontal_index(q, 2), frontal_index(q, 3), True),
                      (f, frontal_index(p, 5), frontal_index(q, 5), False)]
        out["FP"] += [(f, frontal_index(p, 1), profile_index(p, 1 + f % 4), True),
                      (f, frontal_index(p, 2), profile_index(q, 4), False)]
    return out


def path_of(pose, index):
    n = FRONTAL if pose == "frontal" else PROFILE
    return f"Data/Images/{(index - 1) // n + 1:03d}/{pose}/{(index - 1) % n + 1:02d}.jpg"


def make_cfp(root):
    rng = np.random.default_rng(0)
    for pose, n in (("frontal", FRONTAL), ("profile", PROFILE)):
        lines = []
        for index in range(1, PEOPLE * n + 1):
            path = root / path_of(pose, index)
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(path)
            lines.append(f"{index} ../{path_of(pose, index)}")
        name = "Pair_list_F.txt" if pose == "frontal" else "Pair_list_P.txt"
        (root / "Protocol").mkdir(exist_ok=True)
        (root / "Protocol" / name).write_text("\n".join(lines) + "\n")
    for split, pairs in expected_splits().items():
        for f in range(1, FOLDS + 1):
            folder = root / "Protocol" / "Split" / split / f"{f:02d}"
            folder.mkdir(parents=True)
            for name, genuine in (("same.txt", True), ("diff.txt", False)):
                rows = [f"{i},{j}" for ff, i, j, g in pairs if ff == f and g == genuine]
                (folder / name).write_text("\n".join(rows) + "\n")
    (root / "Data" / "list_name.txt").write_text("".join(f"Person {p}\n" for p in range(1, 5)))
    return root


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def cfp(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    out, manifest = build_cfp(root, tmp_path / "protocols", progress=False)
    return root, out, manifest


def test_counts(cfp):
    _, _, manifest = cfp
    assert manifest["summary"] == {
        "identities": 4, "frontal_images": 40, "profile_images": 16, "ff_pairs": 30,
        "ff_genuine_pairs": 20, "fp_pairs": 20, "fp_genuine_pairs": 10, "folds": 10,
        "attack": 4,
        # other frontal photos of the attacked people (frontal/01) that appear in FF pairs
        "type2_references": len({path_of("frontal", k) for _, i, j, _ in expected_splits()["FF"]
                                 for k in (i, j)} - {path_of("frontal", frontal_index(p, 1))
                                                      for p in range(1, 5)}),
    }


@pytest.mark.parametrize("protocol, split, second", [("ff", "FF", "frontal"),
                                                     ("fp", "FP", "profile")])
def test_pairs_and_folds(cfp, protocol, split, second):
    _, out, _ = cfp
    matching = read(out / protocol / "dev" / "for_matching.csv")
    key = lambda pose, i: path_of(pose, i)[:-4]  # noqa: E731
    assert [(int(r["fold"]), r["enroll_template_id"], r["probe_template_id"]) for r in matching] == [
        (f, key("frontal", i), key(second, j)) for f, i, j, _ in expected_splits()[split]]
    enroll = read(out / protocol / "dev" / "for_enrolling.csv")
    assert [r["path"] for r in enroll] == sorted({path_of("frontal", i)
                                                  for _, i, _, _ in expected_splits()[split]})
    row = enroll[0]
    assert row["key"] == row["template_id"] == row["path"][:-4]
    assert row["subject_id"] == row["path"].split("/")[2]


def test_ff_through_bob(cfp):
    root, out, _ = cfp
    db = cfp_database("ff", out, root)
    refs = {r.template_id: r for r in db.references()}
    scored = [(e, p.template_id, p.subject_id) for p in db.probes() for e in p.references]
    assert len(scored) == 30
    assert sum(refs[e].subject_id == s for e, _, s in scored) == 20
    sample = db.probes()[0][0]
    assert sample.data.shape == (3, 12, 10) and sample.data.dtype == np.uint8


def test_attack_selection(cfp, tmp_path):
    root, out, _ = cfp
    probes = read(out / "attack" / "dev" / "for_probing.csv")
    assert [r["path"] for r in probes] == [f"Data/Images/{p:03d}/frontal/01.jpg" for p in range(1, 5)]
    assert read(out / "attack" / "dev" / "for_enrolling.csv") == probes
    assert [(r["enroll_template_id"], r["probe_template_id"])
            for r in read(out / "attack" / "dev" / "for_matching.csv")] == [
        (r["template_id"], r["template_id"]) for r in probes]
    out2, _ = build_cfp(root, tmp_path / "random", pick="random", seed=7, progress=False)
    rng = np.random.default_rng(7)
    expected = [f"Data/Images/{p:03d}/frontal/{int(rng.integers(10)) + 1:02d}.jpg"
                for p in range(1, 5)]
    assert [r["path"] for r in read(out2 / "attack" / "dev" / "for_probing.csv")] == expected


def test_configured_resources(cfp, tmp_path, monkeypatch):
    root, out, _ = cfp
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bobrc.toml").write_text(
        f'"bob_facerev.cfp.directory" = "{root}"\n"bob_facerev.cfp.protocols" = "{out}"\n')
    from bob.bio.base.utils import load_resource

    assert sum(len(p.references) for p in load_resource("facerev-cfp-ff", "database").probes()) == 30
    assert sum(len(p.references) for p in load_resource("facerev-cfp-fp", "database").probes()) == 20
    assert len(load_resource("facerev-cfp-attack", "database").probes()) == 4


def test_not_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import bob_facerev.config.database.cfp as config  # importing never fails

    with pytest.raises(ValueError, match="bob config set bob_facerev.cfp.directory"):
        config.database_ff
    with pytest.raises(ValueError, match="Unknown CFP protocol 'view2'"):
        cfp_database("view2")


# --- broken folders: one clear error each, nothing written ----------------------------------


def check_fails(root, match):
    out = root.parent / "protocols"
    with pytest.raises(ValueError, match=match):
        build_cfp(root, out, progress=False)
    assert not out.exists()


def test_bad_not_a_folder(tmp_path):
    check_fails(tmp_path / "nowhere", "CFP folder .*nowhere does not exist.*Data/Images/ and Protocol/")


@pytest.mark.parametrize("name", ["Pair_list_F.txt", "Pair_list_P.txt"])
def test_bad_missing_pair_list(tmp_path, name):
    root = make_cfp(tmp_path / "cfp")
    (root / "Protocol" / name).unlink()
    check_fails(root, f"Missing CFP protocol file .*Protocol/{name}.*Point to the CFP release")


def test_bad_missing_split(tmp_path):
    import shutil

    root = make_cfp(tmp_path / "cfp")
    shutil.rmtree(root / "Protocol" / "Split" / "FP")
    check_fails(root, "Missing CFP split .*Split/FP .*folds 01/ .. 10/")


def test_bad_missing_fold_file(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    (root / "Protocol" / "Split" / "FF" / "03" / "diff.txt").unlink()
    check_fails(root, "Missing CFP protocol file .*Split/FF/03/diff.txt")


def test_bad_missing_images(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    (root / "Data/Images/002/profile/03.jpg").unlink()
    (root / "Data/Images/004/frontal/10.jpg").unlink()
    check_fails(root, r"2 image\(s\) listed in .*Protocol are missing from .*"
                      r"Data/Images/004/frontal/10.jpg; .*Data/Images/002/profile/03.jpg")


def test_bad_unreadable_image(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    (root / "Data/Images/001/frontal/02.jpg").write_bytes(b"not a jpeg")
    check_fails(root, "Unreadable image .*001/frontal/02.jpg")


def test_bad_pair_list_line(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    path = root / "Protocol" / "Pair_list_P.txt"
    path.write_text(path.read_text().replace("profile/02.jpg", "frontal/02.jpg", 1))
    check_fails(root, "Pair_list_P.txt, line 2: expected a new index and a profile image")


def test_bad_split_index(tmp_path):
    root = make_cfp(tmp_path / "cfp")
    (root / "Protocol" / "Split" / "FF" / "01" / "same.txt").write_text("1,99\n")
    check_fails(root, "Split/FF/01/same.txt, line 1: expected 'i,j' .*got '1,99'")


def test_cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bob_facerev.script.db import db

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = make_cfp(tmp_path / "cfp")
    result = CliRunner().invoke(db, ["build", "cfp", str(root), "-o", str(tmp_path / "p"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "ff_pairs             30" in result.output
    assert "bob config set bob_facerev.cfp.directory" in result.output
    (root / "Protocol" / "Pair_list_F.txt").unlink()
    result = CliRunner().invoke(db, ["build", "cfp", str(root), "-o", str(tmp_path / "q")])
    assert result.exit_code == 1 and "Missing CFP protocol file" in result.output
