"""The protection value object: names, labels and kinds round-trip; bad settings are refused."""

import pytest

from bob_facerev.protection.setting import Protection, study_grid


@pytest.mark.parametrize("p", [Protection.none(), Protection.fixed(32, 4), Protection.random(16)])
def test_round_trips(p):
    assert Protection.from_name(p.name) == p
    assert Protection.from_labels(p.labels()) == p
    assert Protection.from_kind(p.kind, p.block_size, p.moved_blocks) == p
    assert Protection.parse(p.name) is not p and Protection.parse(p) is p


def test_names_labels_and_kinds():
    assert [Protection.none().name, Protection.fixed(32, 4).name, Protection.random(16).name] == [
        "none", "k32-p4", "k16-prandom"]
    assert Protection.random(16).labels() == {"facerev_block_size": "16",
                                              "facerev_moved_blocks": "random"}
    assert Protection.none().labels() == {"facerev_block_size": "none",
                                          "facerev_moved_blocks": "0"}
    assert [p.kind for p in (Protection(), Protection(8, 2), Protection(8))] == [
        "none", "fixed", "random"]
    assert Protection.from_labels({"facerev_block_size": "32.0",
                                   "facerev_moved_blocks": "4"}) == Protection(32, 4)


def test_transformer():
    assert Protection.none().transformer() is None
    t = Protection.fixed(32, 4).transformer(seed=3)
    assert (t.block_size, t.moved_blocks, t.seed) == (32, 4, 3)


@pytest.mark.parametrize("bad, match", [
    (lambda: Protection(None, 4), "without a block size"),
    (lambda: Protection(0), "positive integer"),
    (lambda: Protection(8, 1.5), "positive integer"),
    (lambda: Protection.fixed(8, None), "moved blocks"),
    (lambda: Protection.from_kind("none", 8), "takes no block size"),
    (lambda: Protection.from_kind("random", 8, 2), "leave moved_blocks unset"),
    (lambda: Protection.from_kind("fixd", 8, 2), "must be one of"),
    (lambda: Protection.from_name("k32p4"), "unknown protection name"),
])
def test_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        bad()


def test_check_against_embedding_size():
    assert Protection.fixed(32, 4).check(512).block_size == 32
    with pytest.raises(ValueError):
        Protection.fixed(30, 4).check(512)
    with pytest.raises(ValueError):
        Protection.fixed(32, 17).check(512)  # 16 blocks cannot move 17


def test_study_grid():
    grid = study_grid(512)
    assert grid[0] == Protection.none()
    assert [p.name for p in grid if p.kind == "fixed"][:4] == ["k32-p4", "k32-p8", "k32-p12",
                                                                "k32-p16"]
    assert [p.block_size for p in grid if p.kind == "random"] == [16, 32, 64, 128]
    assert len(grid) == 1 + 4 + 3 + 3 + 4
    assert [p.block_size for p in study_grid(128) if p.kind == "fixed"][0] == 8
