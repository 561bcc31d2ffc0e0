"""The documentation's commands paste: no "smart" dashes or quotes in the built commands page."""

import re
import shutil

from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[1] / "doc"
# an en or em dash glued to an option name: what "--size" becomes under smart typography
DASHED_OPTION = re.compile("[\u2013\u2014][A-Za-z]")


def _build_commands_page(tmp_path, *overrides):
    """Build doc/commands.rst alone (as the root document) with doc/conf.py; its HTML text."""
    from sphinx.cmd.build import build_main

    src = tmp_path / "src"
    src.mkdir(parents=True)
    shutil.copy(DOC / "commands.rst", src / "commands.rst")
    (src / "_static").mkdir()
    out = tmp_path / "html"
    args = ["-q", "-b", "html", "-c", str(DOC), "-D", "root_doc=commands", *overrides,
            str(src), str(out)]
    assert build_main(args) == 0
    return (out / "commands.html").read_text(encoding="utf-8")


def test_commands_page_keeps_double_hyphens(tmp_path):
    html = _build_commands_page(tmp_path / "project")
    # the click option tables and the examples are there, with plain "--"
    for option in ("--size", "--output", "--resume", "--dask-client"):
        assert option in html, option
    assert "bob facerev demo -o facerev-demo-small --size small" in html
    assert not DASHED_OPTION.findall(html)
    assert "\u201c" not in html and "\u201d" not in html  # no curly quotes
    # the check bites: Sphinx's default typography turns the same page's "--" into dashes
    smart = _build_commands_page(tmp_path / "smart", "-D", "smartquotes=1")
    assert DASHED_OPTION.findall(smart)


def test_conf_turns_smart_quotes_off():
    ns = {}
    exec(compile((DOC / "conf.py").read_text(), str(DOC / "conf.py"), "exec"), ns)
    assert ns["smartquotes"] is False


def test_commands_page_names_the_demo_output():
    text = (DOC / "commands.rst").read_text()
    assert "facerev-demo/scores/study/k32-p2/scores-dev.csv" in text
    assert "results/demo/scores" not in text


def _machine_folders(root):
    """Absolute folders of the machine running the tests: the checkout's parent folder, the
    user's home and the temporary folder (``/`` itself is left out)."""
    import tempfile

    folders = {Path(root).resolve().parent, Path.home(), Path(tempfile.gettempdir())}
    return sorted(f"{str(f).rstrip('/')}/" for f in folders if str(f) != "/")


def test_machine_folders_are_those_of_this_run(tmp_path):
    folders = _machine_folders(tmp_path / "repo")
    assert f"{tmp_path}/" in folders and f"{Path.home()}/" in folders


def test_no_machine_paths_in_the_project():
    """No absolute folder of this machine in code, docs, configs or the README."""
    root = DOC.parent
    pattern = re.compile("|".join(re.escape(f) for f in _machine_folders(root)))
    files = [root / "README.rst", root / "setup.py"]
    for folder in ("bob_facerev", "benchmarks", "doc", "config"):
        files += [p for p in (root / folder).rglob("*") if p.suffix in (".py", ".rst", ".txt")
                  and "_build" not in p.parts]
    hits = [f"{p.relative_to(root)}:{i + 1}" for p in files
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines())
            if pattern.search(line)]
    assert not hits, hits
