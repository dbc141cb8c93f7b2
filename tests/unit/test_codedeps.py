"""Finding the code a stage runs: Python runs in a command, imports resolved in the project."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeflow.code.codedeps import CodeDetector, CodeScan, describe_map_change
from pipeflow.code.codehash import SourceCache, analyze
from pipeflow.code.pycommand import Invocation, invocations
from pipeflow.content.hasher import Hasher
from pipeflow.keyvalue import MemoryStore


@pytest.mark.parametrize(
    ("cmd", "expected"),
    [
        ("python train.py --lr 1", [("python", "", "script", "train.py")]),
        ("python3 -u -B src/x.py", [("python3", "", "script", "src/x.py")]),
        ("python -W ignore -X dev x.py", [("python", "", "script", "x.py")]),
        ("python -Wignore x.py", [("python", "", "script", "x.py")]),
        ("python -m pkg.mod --flag", [("python", "", "module", "pkg.mod")]),
        ("python -mpkg.mod", [("python", "", "module", "pkg.mod")]),
        ("python -um pkg", [("python", "", "module", "pkg")]),
        ("python -c 'import a'", [("python", "", "inline", "import a")]),
        ("python -- x.py", [("python", "", "script", "x.py")]),
        ("python --version", [("python", "", "other", "")]),
        ("python - < in.py", [("python", "", "other", "")]),
        ("python", [("python", "", "other", "")]),
        ("FOO=1 env BAR=2 time python3.12 x.py", [("python3.12", "", "script", "x.py")]),
        ("./venv/bin/python x.py > out.txt 2>&1", [("./venv/bin/python", "", "script", "x.py")]),
        ("./run.py --fast", [("python3", "", "script", "./run.py")]),
        ("cd src && python x.py", [("python", "src", "script", "x.py")]),
        ("cd a; cd ../b && python x.py", [("python", "b", "script", "x.py")]),
        ("python a.py && python -m b | python c.py",
         [("python", "", "script", "a.py"), ("python", "", "module", "b"),
          ("python", "", "script", "c.py")]),
        ("echo start # python hidden.py\npython shown.py",
         [("python", "", "script", "shown.py")]),
        ("(python a.py)", [("python", "", "script", "a.py")]),
        ("echo python x.py", []),
        ("pythonista x.py", []),
        ("python-config --libs", []),
        ("python 'unterminated", []),
        ("", []),
    ],
)
def test_invocations(cmd: str, expected: list[tuple[str, str, str, str]]) -> None:
    got = [(i.program, i.cwd, i.kind, i.target) for i in invocations(cmd)]
    assert got == expected


def test_invocations_wdir_and_pythonpath() -> None:
    [inv] = invocations("PYTHONPATH=lib:../shared python x.py", "svc")
    assert inv == Invocation("python", "svc", "script", "x.py", ("lib", "../shared"))
    assert invocations("cd .. && python x.py", "svc")[0].cwd == ""


# scanning a project ----------------------------------------------------------------


class Tree:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.store: dict[str, str] = {}

    def write(self, rel: str, text: str = "") -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    def detector(self, *, remember: bool = False) -> CodeDetector:
        hasher = Hasher(self.root, None)
        sources = SourceCache(self.root, hasher.hash_path)
        if remember:
            return CodeDetector(self.root, sources, MemoryStore(self.store))
        return CodeDetector(self.root, sources)

    def scan(self, *cmds: str, wdir: str = "", **kw: object) -> CodeScan:
        return self.detector().scan(cmds, wdir, **kw)  # type: ignore[arg-type]


@pytest.fixture
def tree(tmp_path: Path) -> Tree:
    root = tmp_path / "proj"
    root.mkdir()
    return Tree(root)


def test_script_and_its_transitive_project_imports(tree: Tree) -> None:
    tree.write("src/train.py", "import json\nimport numpy\nimport util\nfrom pkg import helper\n")
    tree.write("src/util.py", "from os import path\nimport tools\n")
    tree.write("src/pkg/__init__.py", "from .impl import base\n")
    tree.write("src/pkg/impl.py", "")
    tree.write("src/pkg/helper.py", "from . import consts\nfrom ..util import x\n")
    tree.write("src/pkg/consts.py", "")
    tree.write("tools.py", "import yaml\n")  # found from the project root
    tree.write("src/unused.py", "import nothing_else\n")
    scan = tree.scan("python src/train.py")
    assert scan.files == ("src/pkg/__init__.py", "src/pkg/consts.py", "src/pkg/helper.py",
                          "src/pkg/impl.py", "src/train.py", "src/util.py", "tools.py")
    assert dict(scan.modules) == {
        "util": "src/util.py", "pkg": "src/pkg/__init__.py", "pkg.impl": "src/pkg/impl.py",
        "pkg.helper": "src/pkg/helper.py", "pkg.consts": "src/pkg/consts.py",
        "tools": "tools.py",
    }
    assert scan.external == ("numpy", "yaml")  # json, os: standard library
    assert set(scan.hashes) == set(scan.files)
    assert scan.hashes["src/util.py"] == analyze("from os import path\nimport tools\n").hash
    assert scan.ran_python and scan.notes == ()


def test_src_layout_and_wdir(tree: Tree) -> None:
    tree.write("svc/run.py", "import core.engine\nimport local\n")
    tree.write("svc/local.py", "")
    tree.write("src/core/__init__.py", "")
    tree.write("src/core/engine.py", "from .parts import wheel\n")
    tree.write("src/core/parts/__init__.py", "")
    tree.write("src/core/parts/wheel.py", "")
    scan = tree.scan("python run.py", wdir="svc")
    assert scan.files == ("src/core/__init__.py", "src/core/engine.py",
                          "src/core/parts/__init__.py", "src/core/parts/wheel.py",
                          "svc/local.py", "svc/run.py")


def test_module_run_with_dash_m(tree: Tree) -> None:
    tree.write("app/__init__.py", "")
    tree.write("app/__main__.py", "from .cli import main\n")
    tree.write("app/cli.py", "from . import cfg\n")
    tree.write("app/cfg.py", "")
    scan = tree.scan("python -m app")
    assert scan.files == ("app/__init__.py", "app/__main__.py", "app/cfg.py", "app/cli.py")
    scan = tree.scan("python -m app.cli")
    assert scan.files == ("app/__init__.py", "app/cfg.py", "app/cli.py")
    assert tree.scan("python -m pytest -q").external == ("pytest",)


def test_inline_code(tree: Tree) -> None:
    tree.write("helpers.py", "")
    scan = tree.scan("python -c 'import helpers, requests'")
    assert scan.files == ("helpers.py",) and scan.external == ("requests",)


def test_namespace_packages_and_star_imports(tree: Tree) -> None:
    tree.write("run.py", "import ns.sub\nfrom lib import *\n")
    tree.write("ns/sub.py", "")  # no __init__.py: a namespace package
    tree.write("lib/__init__.py", "__all__ = ['alpha', 'CONST']\nCONST = 1\n")
    tree.write("lib/alpha.py", "")
    tree.write("lib/beta.py", "")
    scan = tree.scan("python run.py")
    assert scan.files == ("lib/__init__.py", "lib/alpha.py", "ns/sub.py", "run.py")
    assert "ns" in scan.external  # unless a distribution provides it, nothing counts


def test_from_package_import_name_that_is_not_a_module(tree: Tree) -> None:
    tree.write("run.py", "from pkg import VALUE, mod\n")
    tree.write("pkg/__init__.py", "VALUE = 1\n")
    tree.write("pkg/mod.py", "")
    assert tree.scan("python run.py").files == ("pkg/__init__.py", "pkg/mod.py", "run.py")


def test_project_module_shadows_an_installed_one(tree: Tree) -> None:
    tree.write("src/run.py", "import yaml\n")
    before = tree.scan("python src/run.py")
    assert before.external == ("yaml",) and before.modules == {}
    tree.write("src/yaml.py", "")
    after = tree.scan("python src/run.py")
    assert after.external == () and dict(after.modules) == {"yaml": "src/yaml.py"}
    assert after.map_hash() != before.map_hash()


def test_map_changes_when_only_the_resolution_moves(tree: Tree) -> None:
    # both files stay code either way; only which one `import helpers` means changes
    tree.write("scripts/run.py", "import helpers\nimport lib.helpers\n")
    tree.write("lib/__init__.py", "")
    tree.write("lib/helpers.py", "")
    tree.write("helpers.py", "")
    first = tree.scan("python scripts/run.py")
    tree.write("scripts/helpers.py", "")
    second = tree.scan("python scripts/run.py")
    assert first.modules["helpers"] == "helpers.py"
    assert second.modules["helpers"] == "scripts/helpers.py"
    assert first.map_hash() != second.map_hash()


def test_notes_for_dynamic_imports_and_broken_files(tree: Tree) -> None:
    tree.write("run.py", "import importlib\nimport plugins\nimportlib.import_module(name)\n")
    tree.write("plugins.py", "def broken(:\n")
    scan = tree.scan("python run.py")
    assert scan.notes == (
        "dynamic import not followed: run.py:3 importlib.import_module(name)",
        "plugins.py does not parse (line 1: invalid syntax): hashed by its bytes",
    )
    assert "plugins.py" in scan.files


def test_literal_dynamic_imports_are_followed(tree: Tree) -> None:
    tree.write("run.py", "import importlib\nimportlib.import_module('plugins.csv')\n")
    tree.write("plugins/__init__.py", "")
    tree.write("plugins/csv.py", "")
    assert tree.scan("python run.py").files == ("plugins/__init__.py", "plugins/csv.py",
                                                 "run.py")


def test_missing_unresolvable_and_outside_scripts(tree: Tree, tmp_path: Path) -> None:
    missing = tree.scan("python nowhere.py")
    assert missing.files == ("nowhere.py",) and missing.hashes == {}
    var = tree.scan("python $SCRIPT")
    assert var.files == () and var.notes == ("cannot tell which script `$SCRIPT` runs: "
                                             "not followed",)
    (tmp_path / "outside.py").write_text("import x\n")
    assert tree.scan(f"python {tmp_path / 'outside.py'}").files == ()
    assert tree.scan("python ../outside.py").files == ()
    assert tree.scan("echo hi") == CodeScan()


def test_script_folder_runs_its_main(tree: Tree) -> None:
    tree.write("tool/__main__.py", "import helper\n")
    tree.write("tool/helper.py", "")
    assert tree.scan("python tool").files == ("tool/__main__.py", "tool/helper.py")


def test_interpreter_path_entries_and_editable_installs(tree: Tree, tmp_path: Path) -> None:
    tree.write("run.py", "import shared\nimport mine\nimport theirs\n")
    tree.write("libs/shared.py", "")
    tree.write("packages/mine/src/mine/__init__.py", "")
    (tmp_path / "theirs").mkdir()
    (tmp_path / "theirs" / "__init__.py").write_text("")
    root = str(tree.root)
    scan = tree.scan(
        "python run.py",
        paths=[os.path.join(root, "libs"), str(tmp_path / "elsewhere")],
        editable={"mine": os.path.join(root, "packages/mine/src/mine"),
                  "theirs": str(tmp_path / "theirs")},
    )
    assert scan.files == ("libs/shared.py", "packages/mine/src/mine/__init__.py", "run.py")
    assert scan.external == ("theirs",)  # installed from outside the project: environment


def test_pythonpath_in_the_command(tree: Tree) -> None:
    tree.write("run.py", "import tools\n")
    tree.write("lib/tools.py", "")
    assert tree.scan("python run.py").files == ("run.py",)
    assert tree.scan("PYTHONPATH=lib python run.py").files == ("lib/tools.py", "run.py")


def test_several_commands_add_up(tree: Tree) -> None:
    tree.write("a.py", "import x\n")
    tree.write("b/run.py", "import y\n")
    tree.write("b/y.py", "")
    scan = tree.scan("python a.py", "cd b && python run.py")
    assert scan.files == ("a.py", "b/run.py", "b/y.py") and scan.external == ("x",)


def test_scan_results_are_remembered_and_checked(tree: Tree) -> None:
    tree.write("src/run.py", "import util\nimport yaml\n")
    tree.write("src/util.py", "X = 1\n")
    first = tree.detector(remember=True)
    scan = first.scan(["python src/run.py"])
    assert first.walked == 1 and len(tree.store) == 1
    again = tree.detector(remember=True)
    assert again.scan(["python src/run.py"]) == scan and again.walked == 0
    # outputs and data beside the code cannot change an import: still trusted
    tree.write("src/out.csv", "1\n")
    tree.write("src/my-data/part.txt", "x")
    tree.write("metrics.json", "{}")
    unaffected = tree.detector(remember=True)
    assert unaffected.scan(["python src/run.py"]) == scan and unaffected.walked == 0
    # a new file in a folder the scan listed: walk again, the answer changes
    tree.write("src/yaml.py", "")
    third = tree.detector(remember=True)
    assert "src/yaml.py" in third.scan(["python src/run.py"]).files and third.walked == 1
    # a changed module: walk again
    tree.write("src/util.py", "import extra\nX = 2\n")
    fourth = tree.detector(remember=True)
    assert fourth.scan(["python src/run.py"]).external == ("extra",) and fourth.walked == 1
    # a damaged entry is walked again, not trusted
    for key in tree.store:
        tree.store[key] = "{"
    fifth = tree.detector(remember=True)
    assert fifth.scan(["python src/run.py"]).external == ("extra",) and fifth.walked == 1


def test_describe_map_change() -> None:
    assert describe_map_change({}, {"yaml": "src/yaml.py"}) == (
        "import resolution changed: yaml -> src/yaml.py"
    )
    assert describe_map_change({"h": "a/h.py", "g": "g.py"}, {"h": "b/h.py"}) == (
        "import resolution changed: g: g.py -> not in the project; h: a/h.py -> b/h.py"
    )
    many = describe_map_change({}, {f"m{i}": f"m{i}.py" for i in range(8)})
    assert many.endswith("; and 3 more")
    assert "not known" in describe_map_change(None, {})
    assert "recorded (2 project modules)" in describe_map_change(None, {"a": "a.py",
                                                                       "b": "b.py"},
                                                                 recorded=False)
    assert "no longer recorded" in describe_map_change({}, None)
