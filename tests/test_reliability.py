"""Nothing lost, nothing silently wrong: the guarantees of doc/reliability.rst.

Each test here failed before the fix it guards (issue "data safety, exit codes and early errors").
"""

import json
import os
import shlex

import numpy as np
import pytest

from click.testing import CliRunner
from PIL import Image

from bob_facerev.database import protocols
from bob_facerev.database.images import check_image, load_image
from bob_facerev.database.protocols import check_protocol_output, write_protocols

ROWS = [{"path": "a/a_1.jpg", "key": "a/a_1", "subject_id": "a", "template_id": "a_1"}]
PROTOCOLS = {"p": {"dev/for_probing.csv": ROWS}}


def one_line_error(output):
    """The ``Error: ...`` line of a click command, checking that there is exactly one and no
    traceback."""
    assert "Traceback" not in output, output
    errors = [line for line in output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, output
    return errors[0]


# --------------------------------------------------------------------------- 1. db build -o


def test_protocol_folder_with_a_foreign_manifest_is_not_replaced(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    (site / "manifest.json").write_text('{"name": "my web app", "start_url": "/"}')
    (site / "thesis.tex").write_text("precious")
    with pytest.raises(ValueError, match="Refusing to overwrite .*site"):
        write_protocols(site, PROTOCOLS)
    assert (site / "thesis.tex").read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["site"]


def test_our_protocol_folder_with_user_files_added_is_not_replaced(tmp_path):
    out = write_protocols(tmp_path / "p", PROTOCOLS)
    assert json.loads((out / "manifest.json").read_text())[protocols.MARKER] == protocols.FORMAT
    write_protocols(out, PROTOCOLS)  # ours, unchanged: replaced
    (out / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="Refusing to overwrite"):
        write_protocols(out, PROTOCOLS)
    assert (out / "notes.txt").read_text() == "mine"


def test_read_only_protocol_folder_is_refused_without_leftovers(tmp_path):
    out = write_protocols(tmp_path / "p", PROTOCOLS)
    before = (out / "p/dev/for_probing.csv").read_text()
    out.chmod(0o555)
    try:
        with pytest.raises(ValueError, match="read-only folder .*chmod u\\+w"):
            write_protocols(out, PROTOCOLS)
    finally:
        out.chmod(0o755)
    assert (out / "p/dev/for_probing.csv").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p"]  # no .p.old-* / .p.tmp-*


def test_db_build_into_read_only_parent_is_one_line_before_any_work(tmp_path, monkeypatch):
    from bob_facerev.script.db import db

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        # the image folder does not even exist: the output is refused before it is looked at
        result = CliRunner().invoke(db, ["build", "lfw", str(tmp_path / "nowhere"),
                                         "-o", str(parent / "protocols")])
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert str(parent) in line and "not a writable folder" in line
    assert list(parent.iterdir()) == []


def test_writable_uses_os_access_too(tmp_path, monkeypatch):
    # permission bits say writable, the OS says no (another user's folder, a read-only mount)
    monkeypatch.setattr(os, "access", lambda path, mode: False)
    with pytest.raises(ValueError, match="not a writable folder"):
        check_protocol_output(tmp_path / "new")


def test_db_build_hints_quote_paths_with_spaces(tmp_path, monkeypatch):
    from test_database_lfw import make_lfw

    from bob_facerev.script.db import db

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    root = tmp_path / "my data"
    root.mkdir()
    images = make_lfw(root)
    out = tmp_path / "my protocols"
    result = CliRunner().invoke(db, ["build", "lfw", str(images), "-o", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    hints = [line.strip() for line in result.output.splitlines() if "bob config set" in line]
    assert len(hints) == 2
    for hint in hints:  # pasted in a shell, each is one command with one path argument
        words = shlex.split(hint)
        assert words[:3] == ["bob", "config", "set"] and len(words) == 5
    assert shlex.split(hints[0])[4] == str(out)
    assert shlex.split(hints[1])[4] == str(images)


# --------------------------------------------------------------------------- 2. truncated images


def _truncated(tmp_path, ext):
    rng = np.random.default_rng(0)
    path = tmp_path / f"face.{ext}"
    Image.fromarray(rng.integers(0, 255, (64, 48, 3), dtype=np.uint8)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


@pytest.mark.parametrize("ext", ["jpg", "png"])
def test_truncated_images_are_refused_even_after_bob_io_base(tmp_path, ext):
    import bob.io.base  # noqa: F401  (turns PIL's LOAD_TRUNCATED_IMAGES on, process-wide)
    from PIL import ImageFile

    assert ImageFile.LOAD_TRUNCATED_IMAGES
    path = _truncated(tmp_path, ext)
    with pytest.raises(ValueError, match="Unreadable image .*face"):
        check_image(path)
    with pytest.raises(ValueError, match="Unreadable image .*face"):
        load_image(str(path))
    assert ImageFile.LOAD_TRUNCATED_IMAGES  # the global is restored


def test_db_build_cli_refuses_a_truncated_jpeg(tmp_path, monkeypatch):
    from test_database_lfw import make_lfw

    from bob_facerev.script.db import db

    import bob.io.base  # noqa: F401  (as under `bob facerev`)

    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    images = make_lfw(tmp_path)
    victim = images / "Fred_Ford" / "Fred_Ford_0002.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 255, (120, 100, 3), dtype=np.uint8)).save(victim)
    victim.write_bytes(victim.read_bytes()[:2000])
    result = CliRunner().invoke(db, ["build", "lfw", str(images), "-o", str(tmp_path / "p"), "--quiet"])
    assert result.exit_code == 1
    assert "1 unreadable image(s)" in one_line_error(result.output)
    assert "Fred_Ford_0002.jpg" in result.output
    assert not (tmp_path / "p").exists()


# --------------------------------------------------------------------------- 3. Ctrl-C, train


@pytest.fixture(scope="module")
def toy_set(tmp_path_factory):
    """12 samples of 16-d embeddings and noise faces (``model: toy``)."""
    from bob_facerev.attack.dataset import save_training_set

    rng = np.random.RandomState(0)
    path = tmp_path_factory.mktemp("data") / "toy.npz"
    faces = rng.randint(0, 256, (12, 3, 112, 112)).astype(np.uint8)
    save_training_set(path, faces, rng.randn(12, 16), [f"s{i:02d}" for i in range(12)], {"model": "toy"})
    return path


TRAIN = ["--w-id", "0", "-b", "4", "--validation-fraction", "0.25", "--grid-size", "3",
         "--device", "cpu"]


def _bob():
    import shutil
    import sys

    return shutil.which("bob", path=os.path.dirname(sys.executable)) or "bob"


@pytest.mark.slow
def test_ctrl_c_exits_130_and_says_how_to_resume(toy_set, tmp_path):
    import signal
    import subprocess
    import time

    out = tmp_path / "gen"
    proc = subprocess.Popen([_bob(), "facerev", "train", "-t", str(toy_set), "-o", str(out),
                             "-e", "100000", *TRAIN],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not out.is_dir() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.2)  # the command runs: bob, and dask_jobqueue's SIGINT handler, are loaded
    time.sleep(1.0)
    assert proc.poll() is None, proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "Interrupted: run the same command with --resume" in err
    assert str(out / "last.pt") in err
    assert "Traceback" not in err


def test_interruption_inside_a_command_is_130_even_under_dask_handler(monkeypatch):
    # in-process: the handler dask_jobqueue installs (sys.exit()) turns Ctrl-C into SystemExit(None)
    import importlib
    import signal

    import click
    import dask_jobqueue.runner

    from bob_facerev.script.facerev import FacerevGroup, set_resume_hint

    @click.group(cls=FacerevGroup)
    def group():
        pass

    @group.command()
    def work():
        set_resume_hint("resume like this")
        importlib.reload(dask_jobqueue.runner)  # a late import installs its handler again
        assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
        signal.raise_signal(signal.SIGINT)

    result = CliRunner().invoke(group, ["work"])
    assert result.exit_code == 130
    assert "Interrupted: resume like this" in result.output


@pytest.mark.slow
def test_resume_with_fewer_epochs_than_finished_is_refused(toy_set, tmp_path):
    from bob_facerev.script.train import train

    out = tmp_path / "gen"
    args = ["-t", str(toy_set), "-o", str(out), *TRAIN]
    result = CliRunner().invoke(train, [*args, "-e", "2"])
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(train, [*args, "-e", "1", "--resume"])
    assert result.exit_code == 1
    line = one_line_error(result.output)
    assert "already finished 2" in line and "-e 2" in line
    result = CliRunner().invoke(train, [*args, "-e", "2", "--resume"])  # nothing left to do: fine
    assert result.exit_code == 0 and "epoch 2:" in result.output


def test_train_device_cuda_without_gpu_is_one_line(toy_set, tmp_path, monkeypatch):
    import torch

    from bob_facerev.script.train import train

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for device, expected in (("cuda", "no CUDA GPU is available"), ("gpu0", "is not a device")):
        result = CliRunner().invoke(train, ["-t", str(toy_set), "-o", str(tmp_path / "g"),
                                            "--device", device])
        assert result.exit_code == 2
        line = one_line_error(result.output)
        assert f"'{device}'" in line and expected in line and "--device" in line
    assert not (tmp_path / "g").exists()


def test_train_protection_fixed_p1_is_one_line_before_work(toy_set, tmp_path):
    from bob_facerev.script.train import train

    result = CliRunner().invoke(train, ["-t", str(toy_set), "-o", str(tmp_path / "g"), "--protection",
                                        "fixed", "-K", "4", "-P", "1", *TRAIN])
    assert result.exit_code == 2
    assert "P=1 blocks cannot be moved" in one_line_error(result.output)
    assert not (tmp_path / "g").exists()


def test_failed_train_leaves_no_empty_output_folder(tmp_path):
    from bob_facerev.attack.dataset import save_training_set
    from bob_facerev.script.train import train

    path = tmp_path / "anonymous.npz"  # no model in its metadata and none given: refused
    rng = np.random.RandomState(0)
    save_training_set(path, rng.randint(0, 256, (4, 3, 112, 112)).astype(np.uint8), rng.randn(4, 8),
                      ["a", "b", "c", "d"], {})
    result = CliRunner().invoke(train, ["-t", str(path), "-o", str(tmp_path / "gen"), *TRAIN])
    assert result.exit_code == 1
    assert "does not say which extractor" in one_line_error(result.output)
    assert not (tmp_path / "gen").exists()


def test_train_output_in_read_only_parent_is_one_line(toy_set, tmp_path):
    from bob_facerev.script.train import train

    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = CliRunner().invoke(train, ["-t", str(toy_set), "-o", str(parent / "gen"), *TRAIN])
    finally:
        parent.chmod(0o755)
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert str(parent) in line and "not a writable folder" in line


# --------------------------------------------------------------------------- 4. early errors


def _grid_file(tmp_path, **settings):
    base = dict(model="dlib", bona_fide_database="facerev-demo", attack_database="facerev-demo",
                training_database="facerev-demo", train=dict(epochs=1))
    base.update(settings)
    path = tmp_path / "grid.py"
    path.write_text("".join(f"{k} = {v!r}\n" for k, v in base.items()))
    return path


@pytest.mark.parametrize("settings, expected", [
    (dict(variant=("study",)), "'variant' (did you mean 'variants'?)"),
    (dict(model="dlb"), "Unknown face model 'dlb'"),
    (dict(attack_database="facerev-demo-atack"), "(did you mean 'facerev-demo-attack'?)"),
    (dict(train=dict(epoch=3)), "train = dict(epoch=...): not a training setting (did you mean 'epochs'?)"),
    (dict(verification_block_sizes=(128,)), "K=128 is the whole 128-d embedding"),
    (dict(verification_block_sizes=(48,)), "K=48 does not divide"),
    (dict(deshuffle_scorer="gauss"), "deshuffle_scorer = 'gauss'"),
])
def test_grid_config_errors_are_one_line_before_any_work(tmp_path, settings, expected):
    from bob_facerev.script.grid import grid

    path = _grid_file(tmp_path, **settings)
    result = CliRunner().invoke(grid, [str(path), "-o", str(tmp_path / "out")])
    assert result.exit_code == 1, result.output
    assert expected in one_line_error(result.output)
    assert not (tmp_path / "out").exists()


def test_grid_protections_and_variants_checked(tmp_path):
    from bob_facerev.experiment import GridConfig, validate_grid
    from bob_facerev.protection.setting import Protection

    cfg = GridConfig(model="dlib", bona_fide_database="facerev-demo", attack_database="facerev-demo",
                     training_database="facerev-demo", output=str(tmp_path / "o"),
                     protections=[Protection(), Protection(32, 1)])
    with pytest.raises(ValueError, match="protection k32-p1 on dlib: moved_blocks P=1 .* 2 <= P <= 4"):
        validate_grid(cfg)
    with pytest.raises(ValueError, match=r"did you mean 'deshuffle'"):
        GridConfig(variants=("study", "deshufle"))
    cfg.protections = [Protection(), Protection(32, 4), Protection(16, None)]
    assert [p.name for p in validate_grid(cfg)] == ["none", "k32-p4", "k16-prandom"]


def _unconfigured_env(tmp_path):
    env = dict(os.environ, XDG_CONFIG_HOME=str(tmp_path / "config"), XDG_CACHE_HOME=str(tmp_path / "cache"))
    env.pop("BOBRC", None)
    return env


@pytest.mark.slow
@pytest.mark.parametrize("command", ["grid", "pipeline"])
def test_lfw_not_configured_is_one_line_and_creates_nothing(tmp_path, command):
    import subprocess

    from pathlib import Path

    out = tmp_path / "out"
    if command == "grid":
        config = Path(__file__).parents[1] / "config" / "grid" / "study_dlib.py"
        args = ["facerev", "grid", str(config), "-o", str(out)]
    else:
        args = ["bio", "pipeline", "simple", "-d", "facerev-lfw-view2", "-p", "facerev-dlib", "-o", str(out)]
    run = subprocess.run([_bob(), *args], capture_output=True, text=True, env=_unconfigured_env(tmp_path),
                         timeout=300)
    assert run.returncode == 1, run.stderr
    line = one_line_error(run.stdout + run.stderr)
    assert "LFW image folder is not configured" in line
    assert "bob config set bob_facerev.lfw.directory" in line
    assert not out.exists()


@pytest.mark.slow
def test_dlib_pemiu_k128_pipeline_is_refused(tmp_path):
    """No K=d resource is registered (test_pipelines_face.py); a pipeline config asking for one
    block is refused in one line by verification_pipeline, before any output."""
    import subprocess

    out = tmp_path / "out"
    config = tmp_path / "dlib_k128.py"
    config.write_text("from bob_facerev.pipelines import verification_pipeline\n"
                      "pipeline = verification_pipeline('dlib', block_size=128)\n")
    run = subprocess.run([_bob(), "bio", "pipeline", "simple", "-d", "facerev-demo", "-p",
                          str(config), "-o", str(out)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 1, run.stderr
    line = one_line_error(run.stdout + run.stderr)
    assert "one block" in line and "facerev-dlib-pemiu-k64" in line
    assert not out.exists()


@pytest.mark.parametrize("command", ["grid", "rsr", "deshuffle", "gender"])
def test_output_in_read_only_parent_is_one_line(tmp_path, command):
    import importlib

    cmd = getattr(importlib.import_module(f"bob_facerev.script.{command}"), command)
    np.savez(tmp_path / "e.npz", embeddings=np.random.default_rng(0).normal(size=(20, 128)),
             gender=np.array(["M", "F"] * 10))
    args = {"grid": [str(_grid_file(tmp_path))], "rsr": [str(_score_file(tmp_path, "s.csv"))],
            "deshuffle": ["-e", str(tmp_path / "e.npz")], "gender": ["--embeddings", str(tmp_path / "e.npz")]}
    parent = tmp_path / "locked"
    parent.mkdir()
    parent.chmod(0o555)
    try:
        result = CliRunner().invoke(cmd, [*args[command], "-o", str(parent / "out")])
    finally:
        parent.chmod(0o755)
    assert result.exit_code in (1, 2)
    line = one_line_error(result.output)
    assert str(parent) in line and "not a writable folder" in line
    assert list(parent.iterdir()) == []


@pytest.mark.parametrize("args, expected", [
    (["--protection", "fixed", "-P", "1", "-k", "32"], "Invalid value for -P: P=1 blocks cannot be moved"),
    (["--protection", "fixed", "-k", "128"], "K=128 does not leave"),
])
def test_deshuffle_impossible_settings_are_one_line(tmp_path, args, expected):
    from bob_facerev.script.deshuffle import deshuffle

    X = np.random.default_rng(0).normal(size=(40, 128))
    np.savez(tmp_path / "e.npz", embeddings=X)
    result = CliRunner().invoke(deshuffle, ["-e", str(tmp_path / "e.npz"), "--sizes", "5", "--repeats", "1",
                                            "-o", str(tmp_path / "out"), *args])
    assert result.exit_code == 2, result.output
    assert expected in one_line_error(result.output)
    assert not (tmp_path / "out").exists()


def test_deshuffle_nan_input_is_one_line(tmp_path):
    from bob_facerev.script.deshuffle import deshuffle

    X = np.random.default_rng(0).normal(size=(40, 128))
    X[7, 3] = np.nan
    np.savez(tmp_path / "e.npz", embeddings=X)
    result = CliRunner().invoke(deshuffle, ["-e", str(tmp_path / "e.npz"), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert "NaN or infinite values in 1 row(s) (first: [7])" in line


# --------------------------------------------------------------------------- 5. bob facerev rsr


def _score_file(tmp_path, name, impostors=None, attack=None):
    import pandas as pd

    from bob_facerev.evaluation import score_files

    imp = np.arange(100.0) if impostors is None else impostors
    gen = np.arange(100.0, 110.0)
    bona_fide = pd.DataFrame({
        "probe_subject_id": [f"p{i}" for i in range(imp.size)] + [f"g{i}" for i in range(10)],
        "probe_template_id": [f"t{i}" for i in range(imp.size + 10)],
        "bio_ref_subject_id": [f"r{i}" for i in range(imp.size)] + [f"g{i}" for i in range(10)],
        "score": np.concatenate([imp, gen]),
    })
    att = np.arange(90.0, 110.0) if attack is None else attack
    attack = {"probe_subject_id": [f"a{i}" for i in range(att.size)],
              "probe_template_id": [f"at{i}" for i in range(att.size)],
              "bio_ref_subject_id": [f"a{i}" for i in range(att.size)], "score": att}
    meta = score_files.protection_metadata(model="dlib", protection="k32-p4")
    return score_files.write_vuln_scores(tmp_path / name, bona_fide, attack, metadata=meta)


def test_rsr_writes_nothing_when_a_step_fails(tmp_path):
    from bob_facerev.script.rsr import rsr

    bad = _score_file(tmp_path, "nan.csv", attack=np.full(20, np.nan))  # tables work, DET fails
    out = tmp_path / "out"
    result = CliRunner().invoke(rsr, [str(bad), "-o", str(out)])
    assert result.exit_code == 2
    one_line_error(result.output)
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nan.csv"]  # no staging leftovers
    good = _score_file(tmp_path, "good.csv")
    result = CliRunner().invoke(rsr, [str(good), "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert {"rsr.md", "rsr.csv", "rsr.tex", "rsr_heatmap.png", "det.png"} <= {p.name for p in out.iterdir()}
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    result = CliRunner().invoke(rsr, [str(good), str(bad), "-o", str(out)])
    assert result.exit_code == 2
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # the old report is intact


def test_rsr_messages_name_the_file_and_the_problem(tmp_path):
    from bob_facerev.script.rsr import rsr

    empty = tmp_path / "empty.csv"
    empty.write_text("")
    result = CliRunner().invoke(rsr, [str(empty), "-o", str(tmp_path / "out")])
    assert result.exit_code == 2
    line = one_line_error(result.output)
    assert str(empty) in line and "is empty" in line
    nan = _score_file(tmp_path, "nanimp.csv", impostors=np.full(56, np.nan))
    result = CliRunner().invoke(rsr, [str(nan), "-o", str(tmp_path / "out")])
    line = one_line_error(result.output)
    assert "all 56 bona fide impostor scores are NaN" in line and "--bona-fide" in line
    assert not (tmp_path / "out").exists()


# --------------------------------------------------------------------------- 7. PE-MIU numerics


def test_pemiu_scores_of_huge_finite_values_equal_the_scaled_ones():
    from bob_facerev.protection.comparator import pemiu_scores
    from bob_facerev.protection.pemiu import PEMIU

    rng = np.random.default_rng(0)
    X = PEMIU(block_size=32, seed=1).transform(rng.normal(size=(6, 128)))
    Y = PEMIU(block_size=32, seed=2).transform(rng.normal(size=(5, 128)))
    reference = pemiu_scores(X, Y, 32)
    huge = pemiu_scores(X * 1e200, Y * 1e200, 32)
    assert np.isfinite(huge).all()
    np.testing.assert_allclose(huge, reference, rtol=0, atol=1e-12)
    peak = max(np.abs(X).max(), np.abs(Y).max())
    largest = pemiu_scores(X / peak * 1.7e308, Y / peak * 1.7e308, 32)  # up to the float maximum
    np.testing.assert_allclose(largest, reference, rtol=0, atol=1e-12)
    assert not np.isnan(pemiu_scores(X * 1e200, Y, 32)).any()  # one side huge: no NaN either


def test_pemiu_one_block_messages_offer_a_possible_fix():
    from bob_facerev.protection.pemiu import PEMIU, fixed_permutation

    with pytest.raises(ValueError, match="d/K=1 block .*use a smaller block size K") as e:
        fixed_permutation(1, 1)
    assert "2 <= P <= 1" not in str(e.value)
    with pytest.raises(ValueError, match=r"2 <= P <= 4 \(d/K\)"):
        fixed_permutation(4, 1)
    X = np.random.default_rng(0).normal(size=(3, 128))
    with pytest.raises(ValueError, match="one block.*unprotected.*at most 64"):
        PEMIU(block_size=128).transform(X)
    with pytest.raises(ValueError, match="one block"):
        PEMIU(block_size=128, moved_blocks=1).transform(X)
    np.testing.assert_array_equal(PEMIU(block_size=128, moved_blocks=0).transform(X), X)


# --------------------------------------------------------------------------- 9. sample keys


def test_no_face_warning_names_the_sample_key_in_the_pipeline_path(caplog):
    from bob.pipelines import Sample

    from bob_facerev.face.crop import FaceCropper
    from bob_facerev.pipelines import OptionalExtraInputWrapper

    class NoFace:  # an annotator that finds no face (no annotations_dir: no cache)
        def transform(self, images, **kwargs):
            return [None for _ in images]

    step = OptionalExtraInputWrapper(FaceCropper("dlib", annotator=NoFace(), fallback=False))
    blank = Sample(np.zeros((3, 40, 40), np.uint8), key="people/jane_0001", annotations=None)
    with caplog.at_level("WARNING", logger="bob_facerev"):
        out = step.transform([blank])
    assert out[0].data is None
    assert "sample people/jane_0001: no face found" in caplog.text
    assert "<no key>" not in caplog.text
