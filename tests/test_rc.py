"""One rc module, one prefix: bob_facerev.rc reads Bob's configuration; old ``facerev.*`` keys warn."""

import logging

import pytest

from bob_facerev import rc


@pytest.fixture
def bobrc(tmp_path, monkeypatch):
    """An empty Bob configuration of this test; ``write(text)`` fills it (TOML)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    monkeypatch.setattr(rc, "_WARNED", set())

    def write(text):
        (tmp_path / "bobrc.toml").write_text(text)

    return write


def test_old_dask_key_is_read_with_a_warning_naming_the_new_key(bobrc, caplog):
    from bob_facerev.dask_clusters import jobqueue_settings

    bobrc('[facerev.dask]\ncpu_workers = 3\n')
    with caplog.at_level(logging.WARNING, logger="bob_facerev.rc"):
        settings = jobqueue_settings()
    assert settings["bob_facerev.dask.cpu_workers"] == 3  # read, not silently ignored
    lines = [r.getMessage() for r in caplog.records if r.name == "bob_facerev.rc"]
    assert len(lines) == 1 and "\n" not in lines[0]
    assert "facerev.dask.cpu_workers" in lines[0]
    assert "bob config set bob_facerev.dask.cpu_workers 3" in lines[0]
    with caplog.at_level(logging.WARNING, logger="bob_facerev.rc"):
        jobqueue_settings()  # once per key and process
    assert len([r for r in caplog.records if r.name == "bob_facerev.rc"]) == 1


def test_new_key_wins_and_the_old_one_is_named_as_ignored(bobrc, caplog):
    bobrc('[facerev]\ngpu_routing = "off"\n[bob_facerev]\ngpu_routing = "require"\n')
    from bob_facerev.distributed import resolve_routing_mode

    with caplog.at_level(logging.WARNING, logger="bob_facerev.rc"):
        assert resolve_routing_mode(None) == "require"
    (line,) = [r.getMessage() for r in caplog.records if r.name == "bob_facerev.rc"]
    assert "ignored" in line and "bob_facerev.gpu_routing" in line


def test_get_reads_the_new_prefix_and_defaults(bobrc, caplog):
    bobrc('[bob_facerev.dask]\ngpu_workers = 2\n')
    with caplog.at_level(logging.WARNING):
        assert rc.get(rc.key("dask", "gpu_workers"), 1) == 2
        assert rc.get(rc.key("dask", "cpu_workers"), 8) == 8
        assert rc.get(rc.GPU_ROUTING) is None
    assert not [r for r in caplog.records if r.name == "bob_facerev.rc"]
    assert rc.key("lfw", "directory") == "bob_facerev.lfw.directory"


def test_bob_config_set_is_what_rc_reads(bobrc, tmp_path):
    """The key written as ``bob config set`` writes it (clapper: nested TOML tables) is the key
    rc.get reads."""
    from clapper.rc import UserDefaults

    written = UserDefaults("bobrc.toml")  # what `bob config set KEY VALUE` does
    written["bob_facerev.sge.gpu_queue"] = "gpuq"
    written.write()
    assert "[bob_facerev.sge]" in (tmp_path / "bobrc.toml").read_text()
    assert rc.get("bob_facerev.sge.gpu_queue") == "gpuq"


def test_only_rc_opens_the_configuration_file():
    """Every other module goes through bob_facerev.rc (one reader, one deprecation rule)."""
    from pathlib import Path

    package = Path(rc.__file__).parent
    users = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                   if "UserDefaults" in p.read_text())
    assert users == ["rc.py"]
    old = sorted(str(p.relative_to(package)) for p in package.rglob("*.py")
                 if '"facerev.' in p.read_text() or "'facerev." in p.read_text())
    assert old == ["rc.py"]
