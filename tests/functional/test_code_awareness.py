"""Issue 4: a stage reruns when — and only when — what it runs changes.

The table below applies one edit at a time to a sample project (a script, helper
modules nobody declared, a package, a relative import, a non-Python code file, a
virtual environment with small local distributions) and checks, after each edit,
what ``status`` says and whether ``repro`` runs the stage.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project

SCRIPT = '''"""Train a model (stage `train`)."""
import yaml

import fakepkg
import mathutil
from pkg import helper
from tools import shout


def main() -> None:
    """Entry point."""
    rows = open("data.csv").read().split()
    total = mathutil.square(len(rows)) + fakepkg.VALUE
    text = f"{total} {helper.label()} {shout('x')} {yaml.__name__}\\n"
    with open("out.txt", "w") as fh:
        fh.write(text)
    with open("runs.log", "a") as fh:
        fh.write("train\\n")


main()
'''

MATHUTIL = '''"""Math helpers."""


def square(x: int) -> int:
    """The square of x."""
    result = x * x
    return result
'''

HELPER = '''from . import consts


def label() -> str:
    name = consts.NAME
    return name.upper()
'''


def site_packages(root: Path) -> Path:
    [site] = (root / ".venv" / "lib").glob("python*/site-packages")
    return site


def install(site: Path, name: str, version: str, *, top: str | None = None,
            requires: tuple[str, ...] = ()) -> None:
    """Put a (fake) distribution ``name`` at ``version`` in ``site``, replacing others."""
    for old in site.glob(f"{name}-*.dist-info"):
        shutil.rmtree(old)
    info = site / f"{name}-{version}.dist-info"
    info.mkdir()
    meta = [f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"]
    meta += [f"Requires-Dist: {r}\n" for r in requires]
    (info / "METADATA").write_text("".join(meta))
    if top:
        (info / "top_level.txt").write_text(f"{top}\n")
    # as if installed a while ago: pipeflow does not remember an index of folders
    # changed within the last two seconds (they could change again unseen)
    old = time.time_ns() - 10**10
    os.utime(site, ns=(old, old))


@pytest.fixture
def sample(project: Project) -> Project:
    root = project.root
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(root / ".venv")], check=True)
    site = site_packages(root)
    (site / "fakepkg").mkdir()
    (site / "fakepkg" / "__init__.py").write_text("VALUE = 1\n")
    install(site, "fakepkg", "1.0", top="fakepkg", requires=("fakedep>=1", "never; extra == 'x'"))
    install(site, "fakedep", "2.0", top="fakedep")
    install(site, "otherpkg", "3.0", top="otherpkg")
    project.write(".gitignore", ".venv/\n")
    project.write("data.csv", "a\nb\nc\n")
    project.write("src/train.py", SCRIPT)
    project.write("src/mathutil.py", MATHUTIL)
    project.write("src/pkg/__init__.py", "from .impl import base\n")
    project.write("src/pkg/impl.py", "def base() -> int:\n    return 1\n")
    project.write("src/pkg/helper.py", HELPER)
    project.write("src/pkg/consts.py", "NAME = 'n'\n")
    project.write("src/unused.py", "X = 1\n")
    project.write("lib/tools.py", "def shout(s: str) -> str:\n    return s + '!'\n")
    project.write("conf/template.txt", "{total}\n")
    project.spec({"train": {
        "cmd": "PYTHONPATH=lib .venv/bin/python src/train.py",
        "deps": ["data.csv", "src/train.py"],
        "code": ["conf/template.txt"],
        "env": {"vars": ["PF_SEED"]},
        "outs": ["out.txt"],
    }})
    return project


def edit(rel: str, old: str, new: str) -> Callable[[Project], None]:
    def apply(p: Project) -> None:
        text = p.read(rel)
        assert old in text, f"{old!r} not in {rel}"
        p.write(rel, text.replace(old, new, 1))
    return apply


def write(rel: str, text: str) -> Callable[[Project], None]:
    return lambda p: p.write(rel, text)


def remove(rel: str) -> Callable[[Project], None]:
    return lambda p: (p.root / rel).unlink()


def both(*steps: Callable[[Project], None]) -> Callable[[Project], None]:
    def apply(p: Project) -> None:
        for step in steps:
            step(p)
    return apply


def package(name: str, version: str, **kw: object) -> Callable[[Project], None]:
    return lambda p: install(site_packages(p.root), name, version, **kw)  # type: ignore[arg-type]


@dataclass
class Row:
    what: str
    apply: Callable[[Project], None]
    reruns: bool
    """Its fingerprint changes: it runs (or its outputs for that fingerprint come back
    from the run cache)."""
    reason: str | None = None
    """A line ``status`` must show (None: the stage is up to date)."""
    env: tuple[str, str | None] | None = None
    """An environment variable to set (or unset: None) instead of editing a file."""


TABLE = [
    Row("comment in the script (also a declared dep)",
        edit("src/train.py", "import yaml\n", "import yaml  # config files\n"), False),
    Row("blank lines and line breaks in the script",
        both(edit("src/train.py", "    rows = open(", "\n    rows = open(\n        "),
             edit("src/train.py", "\n\nmain()", "\n\n\n\nmain()")), False),
    Row("module docstring of the script",
        edit("src/train.py", "Train a model", "Fit the model"), False),
    Row("function docstring of a helper",
        edit("src/mathutil.py", "The square of x.", "x times x."), False),
    Row("comment in an undeclared helper",
        edit("src/mathutil.py", "    result = x * x\n", "    # multiply\n    result = x * x\n"),
        False),
    Row("quote style in a module reached by a relative import",
        edit("src/pkg/consts.py", "'n'", '"n"'), False),
    Row("reformatting a helper (indentation, spaces)",
        edit("src/pkg/helper.py", "    name = consts.NAME\n    return name.upper()\n",
             "    name=consts.NAME\n    return (name.upper())\n"), False),
    Row("a module nobody imports", edit("src/unused.py", "X = 1", "X = 2"), False),
    Row("a package the stage does not import", package("otherpkg", "3.1", top="otherpkg"),
        False),
    Row("an environment variable the stage does not declare", lambda p: None, False,
        env=("PF_UNDECLARED", "1")),
    Row("a line of logic in the script",
        edit("src/train.py", "+ fakepkg.VALUE", "+ fakepkg.VALUE + 1"), True,
        "code modified: src/train.py"),
    Row("a helper module the script imports and nobody declared",
        edit("src/mathutil.py", "x * x", "x ** 2"), True, "code modified: src/mathutil.py"),
    Row("renaming a local variable",
        edit("src/mathutil.py", "result = x ** 2\n    return result",
             "res = x ** 2\n    return res"), True, "code modified: src/mathutil.py"),
    Row("an annotation", edit("src/mathutil.py", "x: int", "x: float"), True,
        "code modified: src/mathutil.py"),
    Row("a helper imported through a package __init__",
        edit("src/pkg/impl.py", "return 1", "return 2"), True,
        "code modified: src/pkg/impl.py"),
    Row("a module reached by a relative import", edit("src/pkg/consts.py", '"n"', '"m"'),
        True, "code modified: src/pkg/consts.py"),
    Row("statement order in a helper",
        edit("src/pkg/helper.py", "from . import consts\n",
             "from . import consts\n\nSUFFIX = ''\n"), True, "code modified: src/pkg/helper.py"),
    Row("a module found through PYTHONPATH in the command",
        edit("lib/tools.py", "'!'", "'?'"), True, "code modified: lib/tools.py"),
    Row("a file that is not Python, declared as code",
        write("conf/template.txt", "{total} rows\n"), True, "code modified: conf/template.txt"),
    Row("a new helper module the script starts to import",
        both(write("src/extra.py", "K = 3\n"),
             edit("src/train.py", "import mathutil\n", "import extra\nimport mathutil\n")),
        True, "code added: src/extra.py"),
    Row("a project module shadowing `import yaml`", write("src/yaml.py", "X = 1\n"), True,
        "import resolution changed: yaml -> src/yaml.py"),
    Row("removing the shadowing module", remove("src/yaml.py"), True,
        "env: package PyYAML added"),
    Row("version of an imported package", package("fakepkg", "1.1", top="fakepkg",
                                                  requires=("fakedep>=1",)),
        True, "env: fakepkg 1.0 -> 1.1"),
    Row("version of a package an imported one requires",
        package("fakedep", "2.1", top="fakedep"), True, "env: fakedep 2.0 -> 2.1"),
    Row("a declared variable set", lambda p: None, True, "env: PF_SEED unset -> 7",
        env=("PF_SEED", "7")),
    Row("a declared variable changed", lambda p: None, True, "env: PF_SEED 7 -> 8",
        env=("PF_SEED", "8")),
    Row("a declared variable unset", lambda p: None, True, "env: PF_SEED 8 -> unset",
        env=("PF_SEED", None)),
    Row("a data dependency", write("data.csv", "a\nb\n"), True,
        "dependency modified: data.csv"),
    Row("a decorator", edit("lib/tools.py", "def shout", "@staticmethod\ndef shout"), True,
        "code modified: lib/tools.py"),
]


def test_edits_rerun_exactly_when_what_runs_changes(
    sample: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PF_SEED", raising=False)
    monkeypatch.delenv("PF_UNDECLARED", raising=False)
    first = sample.run("repro")
    assert first.code == 0, first.text
    assert sample.read("runs.log") == "train\n"
    assert len(TABLE) >= 25
    failures = []
    for row in TABLE:
        (sample.root / "runs.log").unlink(missing_ok=True)
        if row.env is not None:
            name, value = row.env
            if value is None:
                monkeypatch.delenv(name)
            else:
                monkeypatch.setenv(name, value)
        row.apply(sample)
        status = sample.run("status").out
        if row.reason is None:
            if "Everything is up to date." not in status:
                failures.append(f"{row.what}: expected up to date, status says:\n{status}")
        elif row.reason not in status or "train  changed" not in status:
            failures.append(f"{row.what}: expected {row.reason!r}, status says:\n{status}")
        res = sample.run("repro")
        # a fingerprint seen before is restored from the run cache: that counts as a rerun
        ran = (sample.root / "runs.log").exists() or "restored from the cache" in res.out
        if res.code != 0 or ran != row.reruns:
            failures.append(f"{row.what}: expected {'a rerun' if row.reruns else 'no rerun'}, "
                            f"repro exited {res.code} and {'ran' if ran else 'did not run'}:\n"
                            f"{res.text}")
    assert not failures, "\n\n".join(failures)


def test_status_names_each_reason_once_and_notes_what_it_cannot_follow(
    sample: Project,
) -> None:
    assert sample.run("repro").code == 0
    # src/train.py is both a declared dep and detected code: one line, as code
    sample.write("src/train.py", SCRIPT.replace("import yaml\n", "import yaml\nimport importlib\n")
                 .replace("main()\n", "importlib.import_module(sys_name)\nmain()\n")
                 .replace("        fh.write(text)\n", "        fh.write(text)\n        pass\n"))
    sample.write("src/pkg/impl.py", "def base(:\n")
    out = sample.run("status").out
    assert "code modified: src/train.py" in out
    assert "dependency modified: src/train.py" not in out
    assert "code modified: src/pkg/impl.py" in out
    assert "note: dynamic import not followed: src/train.py:" in out
    assert "importlib.import_module(sys_name)" in out
    assert ("note: src/pkg/impl.py does not parse (line 1: invalid syntax): "
            "hashed by its bytes") in out


def test_the_lock_records_code_and_packages_without_absolute_paths(sample: Project) -> None:
    assert sample.run("repro").code == 0
    stage = sample.lock()["stages"]["train"]
    code = {e["path"]: e for e in stage["code"]}
    assert list(code) == ["conf/template.txt", "lib/tools.py", "src/mathutil.py",
                          "src/pkg/__init__.py", "src/pkg/consts.py", "src/pkg/helper.py",
                          "src/pkg/impl.py", "src/train.py", "<modules>"]
    assert code["<modules>"]["size"] == 6  # mathutil, pkg, pkg.impl, .helper, .consts, tools
    deps = {e["path"]: e["hash"] for e in stage["deps"]}
    assert deps["src/train.py"] == code["src/train.py"]["hash"]  # normalized in both
    packages = stage["env"]["packages"]
    assert packages["fakepkg"] == "1.0" and packages["fakedep"] == "2.0"
    assert "otherpkg" not in packages and "never" not in packages
    assert "PyYAML" in packages
    assert str(sample.root) not in sample.read("pipeline.lock")
    assert "/.venv/" not in sample.read("pipeline.lock")


def test_detection_off(project: Project) -> None:
    project.write("run.py", "import helper\nopen('o.txt', 'w').write(helper.X)\n")
    project.write("helper.py", "X = 'a'\n")
    project.spec({"s": {"cmd": f"{sys.executable} run.py", "outs": ["o.txt"],
                        "code": {"auto": False, "paths": ["run.py"]}}})
    assert project.run("repro").code == 0
    assert [e["path"] for e in project.lock()["stages"]["s"]["code"]] == ["run.py"]
    project.write("helper.py", "X = 'b'\n")
    assert "Everything is up to date." in project.run("status").out  # not code any more
    project.write("run.py", "import helper  # c\nopen('o.txt', 'w').write(helper.X)\n")
    assert "Everything is up to date." in project.run("status").out  # declared .py: normalized


def test_module_run_in_a_wdir(project: Project) -> None:
    project.write("svc/app/__init__.py", "")
    project.write("svc/app/__main__.py", "from .work import go\ngo()\n")
    project.write("svc/app/work.py", "def go():\n    open('o.txt', 'w').write('1')\n")
    project.spec({"s": {"cmd": f"{sys.executable} -m app", "wdir": "svc", "outs": ["o.txt"]}})
    assert project.run("repro").code == 0
    paths = [e["path"] for e in project.lock()["stages"]["s"]["code"]]
    assert paths == ["svc/app/__init__.py", "svc/app/__main__.py", "svc/app/work.py",
                     "<modules>"]
    project.write("svc/app/work.py", "def go():\n    open('o.txt', 'w').write('2')\n")
    assert "code modified: svc/app/work.py" in project.run("status").out


def test_lock_with_a_declared_script_reruns_only_on_logic(project: Project) -> None:
    """A pipeline written before detection (script listed in deps) keeps working."""
    project.write("gen.py", "open('o.txt', 'w').write('x')\n")
    project.spec({"s": {"cmd": "python3 gen.py", "deps": ["gen.py"], "outs": ["o.txt"]}})
    assert project.run("repro").code == 0
    project.write("gen.py", "# generated file\nopen('o.txt', 'w').write('x')\n")
    assert "Everything is up to date." in project.run("status").out
    spec = yaml.safe_load(project.read("pipeline.yaml"))
    assert spec["stages"]["s"]["deps"] == ["gen.py"]
