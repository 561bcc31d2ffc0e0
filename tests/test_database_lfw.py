"""LFW protocols from a small generated LFW-shaped folder (official file formats)."""

import csv

import numpy as np
import pytest

from PIL import Image

from bob_facerev.database.lfw import balanced_identities, build_lfw, lfw_database

# name -> (gender or None, number of images)
PEOPLE = {
    "Alice_Adams": ("F", 3),
    "Bob_Brown": ("M", 2),
    "Carl_Cole": ("M", 1),
    "Dana_Dole": ("F", 2),
    "Eve_Ellis": ("F", 1),
    "Fred_Ford": ("M", 4),
    "Gus_Grant": ("M", 1),
    "Hal_Hunt": ("M", 2),
    "Zed_Zane": (None, 1),
}
FOLDS, PER_FOLD = 10, 2


def expected_pairs():
    """(fold, name1, n1, name2, n2) as written to pairs.txt."""
    many = [n for n, (_, k) in PEOPLE.items() if k >= 2]
    names = list(PEOPLE)
    out = []
    for f in range(FOLDS):
        for j in range(PER_FOLD):
            n = many[(f * PER_FOLD + j) % len(many)]
            k = PEOPLE[n][1]
            out.append((f + 1, n, 1 + (f % k), n, 1 + ((f + 1) % k)))
        for j in range(PER_FOLD):
            a, b = names[(f + j) % len(names)], names[(f + j + 3) % len(names)]
            out.append((f + 1, a, 1, b, PEOPLE[b][1]))
    return out


def make_lfw(root, pairs=None):
    rng = np.random.default_rng(0)
    images = root / "lfw"
    for name, (_, k) in PEOPLE.items():
        (images / name).mkdir(parents=True)
        for i in range(1, k + 1):
            Image.fromarray(rng.integers(0, 255, (12, 10, 3), dtype=np.uint8)).save(images / name / f"{name}_{i:04d}.jpg")
    pairs = expected_pairs() if pairs is None else pairs
    lines = [f"{FOLDS}\t{PER_FOLD}"]
    for fold, a, i, b, j in pairs:
        lines.append(f"{a}\t{i}\t{j}" if a == b else f"{a}\t{i}\t{b}\t{j}")
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    for g, fname in (("M", "male_names.txt"), ("F", "female_names.txt")):
        rows = [f"{n}_{i:04d}.jpg" for n, (gg, k) in PEOPLE.items() if gg == g for i in range(1, k + 1)]
        (root / fname).write_text("\n".join(rows) + "\n")
    return images


def read(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture
def lfw(tmp_path):
    images = make_lfw(tmp_path)
    out, manifest = build_lfw(images, tmp_path / "protocols", progress=False)
    return images, out, manifest


def test_view2(lfw):
    images, out, manifest = lfw
    pairs = expected_pairs()
    matching = read(out / "view2/dev/for_matching.csv")
    assert [(int(r["fold"]), r["enroll_template_id"], r["probe_template_id"]) for r in matching] == [
        (f, f"{a}/{a}_{i:04d}", f"{b}/{b}_{j:04d}") for f, a, i, b, j in pairs
    ]
    assert [sum(int(r["fold"]) == f for r in matching) for f in range(1, 11)] == [2 * PER_FOLD] * FOLDS
    enroll = read(out / "view2/dev/for_enrolling.csv")
    assert sorted(r["template_id"] for r in enroll) == sorted({f"{a}/{a}_{i:04d}" for _, a, i, _, _, in pairs})
    assert all(r["path"] == r["key"] + ".jpg" and r["subject_id"] == r["path"].split("/")[0] for r in enroll)
    summary = manifest["summary"]
    assert summary["pairs"] == 40 and summary["genuine_pairs"] == 20 and summary["folds"] == 10
    assert summary["identities"] == 9 and summary["images"] == 17


def test_view2_through_bob(lfw):
    images, out, _ = lfw
    db = lfw_database("view2", out, images)
    refs = {r.template_id: r for r in db.references()}
    scored = [(e, p.template_id) for p in db.probes() for e in p.references]
    assert len(scored) == 40
    assert sorted(scored) == sorted((f"{a}/{a}_{i:04d}", f"{b}/{b}_{j:04d}") for _, a, i, b, j in expected_pairs())
    genuine = sum(refs[e].subject_id == p for e, p in ((e, p.split("/")[0]) for e, p in scored))
    assert genuine == 20
    assert refs["Alice_Adams/Alice_Adams_0001"].gender == "F"
    sample = db.probes()[0][0]
    assert sample.data.shape == (3, 12, 10) and sample.data.dtype == np.uint8


def test_attack_and_genders(lfw):
    images, out, manifest = lfw
    attack = read(out / "attack/dev/for_probing.csv")
    assert [r["path"] for r in attack] == [f"{n}/{n}_0001.jpg" for n in sorted(PEOPLE)]
    assert {r["subject_id"]: r["gender"] for r in attack} == {n: g or "" for n, (g, _) in PEOPLE.items()}
    matching = read(out / "attack/dev/for_matching.csv")
    assert all(r["enroll_template_id"] == r["probe_template_id"] for r in matching) and len(matching) == 9
    # balanced: 3 F (all of them) + 3 of the 5 M drawn with default_rng(2021)
    males = sorted(n for n, (g, _) in PEOPLE.items() if g == "M")
    drawn = [males[i] for i in sorted(np.random.default_rng(2021).choice(5, size=3, replace=False))]
    balanced = read(out / "attack-balanced/dev/for_probing.csv")
    assert sorted(r["subject_id"] for r in balanced) == sorted(["Alice_Adams", "Dana_Dole", "Eve_Ellis"] + drawn)
    assert sum(r["gender"] == "F" for r in balanced) == sum(r["gender"] == "M" for r in balanced) == 3
    assert manifest["summary"]["male_identities"] == 5 and manifest["summary"]["female_identities"] == 3
    all_rows = read(out / "all/dev/for_enrolling.csv")
    assert len(all_rows) == 17 and len({r["key"] for r in all_rows}) == 17


def test_balanced_rules():
    genders = {n: g for n, (g, _) in PEOPLE.items() if g}
    assert balanced_identities(genders, PEOPLE, balance="sorted") == sorted(
        ["Alice_Adams", "Dana_Dole", "Eve_Ellis", "Bob_Brown", "Carl_Cole", "Fred_Ford"]
    )
    assert balanced_identities(genders, PEOPLE, n_per_gender=2, balance="sorted") == sorted(
        ["Alice_Adams", "Dana_Dole", "Bob_Brown", "Carl_Cole"]
    )
    runs = {tuple(balanced_identities(genders, PEOPLE, seed=s)) for s in range(20)}
    assert len(runs) > 1  # the seed matters ...
    assert balanced_identities(genders, PEOPLE, seed=7) == balanced_identities(genders, PEOPLE, seed=7)  # ... reproducibly
    with pytest.raises(ValueError, match="only 3 identities have gender F"):
        balanced_identities(genders, PEOPLE, n_per_gender=4)


def test_pick_random_is_seeded(tmp_path):
    images = make_lfw(tmp_path)
    a, _ = build_lfw(images, tmp_path / "a", pick="random", seed=3, progress=False)
    b, _ = build_lfw(images, tmp_path / "b", pick="random", seed=3, progress=False)
    assert read(a / "attack/dev/for_probing.csv") == read(b / "attack/dev/for_probing.csv")
    rows = read(a / "attack/dev/for_probing.csv")
    assert all(1 <= int(r["path"][-8:-4]) <= PEOPLE[r["subject_id"]][1] for r in rows)


def test_configured_resource(tmp_path, monkeypatch):
    images = make_lfw(tmp_path)
    out, _ = build_lfw(images, tmp_path / "protocols", progress=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "bobrc.toml").write_text(
        f'"bob_facerev.lfw.directory" = "{images}"\n"bob_facerev.lfw.protocols" = "{out}"\n'
    )
    from bob.bio.base.utils import load_resource

    db = load_resource("facerev-lfw-view2", "database")
    assert sum(len(p.references) for p in db.probes()) == 40
    attack = load_resource("facerev-lfw-attack", "database")
    assert len(attack.probes()) == 6


def test_not_configured(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    import bob_facerev.config.database.lfw as config  # importing never fails

    with pytest.raises(ValueError, match="bob config set bob_facerev.lfw.directory"):
        config.database_view2
    with pytest.raises(ValueError, match="bob facerev db build lfw /somewhere"):
        lfw_database("view2", original_directory="/somewhere")


# --- bad input: one clear error each, nothing written -------------------------------------


def check_fails(images, out, match):
    with pytest.raises(ValueError, match=match):
        build_lfw(images, out, progress=False)
    assert not out.exists()
    assert [p.name for p in out.parent.iterdir() if p.name.startswith(".")] == []


def test_bad_not_lfw(tmp_path):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "photo.png").write_bytes(b"")
    (tmp_path / "x" / "sub").mkdir()
    check_fails(tmp_path / "x", tmp_path / "out", r"is not an LFW folder: no Name/Name_NNNN.jpg .*photo.png")


def test_bad_empty(tmp_path):
    (tmp_path / "x").mkdir()
    check_fails(tmp_path / "x", tmp_path / "out", "is empty")
    check_fails(tmp_path / "nothing", tmp_path / "out", "does not exist")


def test_bad_missing_pairs(tmp_path):
    images = make_lfw(tmp_path)
    (tmp_path / "pairs.txt").unlink()
    check_fails(images, tmp_path / "out", r"Missing pairs.txt: looked in .*lfw and ")


def test_bad_missing_name_list(tmp_path):
    images = make_lfw(tmp_path)
    (tmp_path / "female_names.txt").unlink()
    check_fails(images, tmp_path / "out", "Missing female_names.txt")


def test_bad_pair_names_missing_image(tmp_path):
    pairs = expected_pairs()
    pairs[1] = (1, "Bob_Brown", 1, "Bob_Brown", 7)  # genuine line 3
    pairs[6] = (2, "Carl_Cole", 1, "Nobody_There", 1)  # impostor line 8
    images = make_lfw(tmp_path, pairs)
    check_fails(
        images, tmp_path / "out",
        r"names 2 image\(s\) missing .*line 3: .*Bob_Brown/Bob_Brown_0007.jpg; line 8: .*Nobody_There/Nobody_There_0001.jpg",
    )


def test_bad_pairs_format(tmp_path):
    images = make_lfw(tmp_path)
    (tmp_path / "pairs.txt").write_text("1100\nA 1 2\n")
    check_fails(images, tmp_path / "out", r"first line must be '<folds> <pairs per fold>'")
    lines = (tmp_path / "pairs.txt").read_text()
    make = expected_pairs()
    text = [f"{FOLDS}\t{PER_FOLD}"] + [f"{a}\t{i}\t{b}\t{j}" for _, a, i, b, j in make]
    (tmp_path / "pairs.txt").write_text("\n".join(text))
    check_fails(images, tmp_path / "out", r"line 2: expected 'name n1 n2' \(fold 1\)")
    assert lines


def test_bad_unreadable_image(tmp_path):
    images = make_lfw(tmp_path)
    (images / "Fred_Ford" / "Fred_Ford_0003.jpg").write_bytes(b"not a jpeg")
    check_fails(images, tmp_path / "out", r"1 unreadable image\(s\) .*Fred_Ford_0003.jpg")


def test_failed_rebuild_keeps_previous_protocols(tmp_path):
    images = make_lfw(tmp_path)
    out, _ = build_lfw(images, tmp_path / "out", progress=False)
    before = (out / "view2/dev/for_matching.csv").read_text()
    (images / "Fred_Ford" / "Fred_Ford_0003.jpg").write_bytes(b"broken")
    with pytest.raises(ValueError, match="unreadable"):
        build_lfw(images, out, progress=False)
    assert (out / "view2/dev/for_matching.csv").read_text() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_refuses_foreign_output_folder(tmp_path):
    images = make_lfw(tmp_path)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="Refusing to overwrite"):
        build_lfw(images, tmp_path / "mine", progress=False)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "precious"


def test_cli(tmp_path, monkeypatch):
    from click.testing import CliRunner

    from bob_facerev.script.db import db

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    images = make_lfw(tmp_path)
    result = CliRunner().invoke(db, ["build", "lfw", str(images), "-o", str(tmp_path / "p"), "--quiet"])
    assert result.exit_code == 0, result.output
    assert "pairs                40" in result.output
    assert "bob config set bob_facerev.lfw.protocols" in result.output
    (tmp_path / "pairs.txt").unlink()
    result = CliRunner().invoke(db, ["build", "lfw", str(images), "-o", str(tmp_path / "q")])
    assert result.exit_code == 1 and "Missing pairs.txt" in result.output
