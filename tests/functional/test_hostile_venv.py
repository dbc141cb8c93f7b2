"""A lock or spec cannot make pipeflow write into the user's Python environment
(issue 11): a ``.pth`` file pulled into a git-ignored ``.venv`` would run whenever the
venv is used (and made ``status`` run it once the venv looked trusted again)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit
from tests.functional.test_hostile_cache import clone, published, snapshot

PTH = "lib/python3.11/site-packages/zz.pth"


def _make_env(folder: Path, kind: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if kind == "venv":
        (folder / "pyvenv.cfg").write_text("home = /usr/bin\n")
    else:
        (folder / "conda-meta").mkdir()
    (folder / "lib/python3.11/site-packages").mkdir(parents=True)


@pytest.mark.parametrize(("env", "kind"), [(".venv", "venv"), ("envs/py", "conda")])
def test_pull_refuses_a_lock_source_inside_the_users_environment(
        project: Project, tmp_path: Path, env: str, kind: str) -> None:
    origin = published(project, tmp_path)
    marker = tmp_path / "MARKER"
    project.write(".gitignore", f"{env}/\n")
    project.write(f"{env}/{PTH}", f"import os; open({str(marker)!r}, 'w').write('ran')\n")
    assert project.run("add", f"{env}/{PTH}").code == 0  # no environment there
    assert project.run("push").code == 0
    commit(project, "a source inside the victim's env")
    project.git("push", "-q")
    victim = clone(origin, tmp_path / "victim")
    _make_env(victim.root / env, kind)  # the victim's own, git-ignored environment
    before = snapshot(victim.root / env)
    for args in (("pull",), ("checkout",), ("repro", "--pull")):
        res = victim.run(*args)
        assert res.code == 2, (args, res.text)
        assert f"{env}/{PTH}" in res.err and "Python environment" in res.err, res.err
        assert "Traceback" not in res.text
    assert snapshot(victim.root / env) == before
    assert not marker.exists()


def test_add_refuses_a_file_inside_an_environment(project: Project) -> None:
    assert project.run("init").code == 0
    _make_env(project.root / ".venv", "venv")
    project.write(f".venv/{PTH}", "import os\n")
    res = project.run("add", f".venv/{PTH}")
    assert res.code == 2 and "Python environment '.venv'" in res.err, res.text
    res = project.run("add", ".venv")
    assert res.code == 2 and "Python environment '.venv'" in res.err, res.text
    assert "sources" not in (project.lock() if (project.root / "pipeline.lock").exists()
                             else {})


def test_a_spec_output_inside_an_environment_is_a_spec_error(project: Project) -> None:
    assert project.run("init").code == 0
    _make_env(project.root / ".venv", "venv")
    project.spec({"make": {"cmd": f"echo x > .venv/{PTH}", "outs": [f".venv/{PTH}"]}})
    before = snapshot(project.root / ".venv")
    res = project.run("repro")
    assert res.code == 2 and "stage 'make'" in res.err and "Python environment" in res.err, \
        res.text
    assert snapshot(project.root / ".venv") == before
