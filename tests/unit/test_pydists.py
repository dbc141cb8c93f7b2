"""Installed distributions for a stage's interpreter: read from metadata, cached by mtimes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeflow.code import siteindexes as pydists
from pipeflow.code.pydists import Distribution, SiteIndex, build_index, normalize
from pipeflow.code.pyinterp import is_this_interpreter
from pipeflow.code.siteindexes import SiteIndexes
from pipeflow.keyvalue import MemoryStore


def dist_info(site: Path, name: str, version: str, *, top: list[str] | None = None,
              requires: tuple[str, ...] | list[str] = (), record: list[str] | None = None,
              editable_url: str | None = None) -> Path:
    folder = site / f"{name.replace('-', '_')}-{version}.dist-info"
    folder.mkdir(parents=True)
    meta = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}",
            "Summary: a test", "  continued summary"]
    meta += [f"Requires-Dist: {r}" for r in requires]
    (folder / "METADATA").write_text("\n".join(meta) + "\n\nBody: not a header\n")
    if top is not None:
        (folder / "top_level.txt").write_text("".join(f"{t}\n" for t in top))
    if record is not None:
        (folder / "RECORD").write_text("".join(f"{r},sha256=x,1\n" for r in record))
    if editable_url is not None:
        (folder / "direct_url.json").write_text(json.dumps(
            {"url": editable_url, "dir_info": {"editable": True}}))
    return folder


def test_normalize() -> None:
    assert normalize("Scikit_Learn") == "scikit-learn"
    assert normalize("zope.interface") == "zope-interface"
    assert normalize("a--b__c") == "a-b-c"


def test_index_reads_names_versions_modules_and_requirements(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info(site, "Scikit-Learn", "1.5.2", top=["sklearn"],
              requires=["numpy>=1.24", "scipy (>=1.6) ; python_version >= '3.9'",
                        "pytest ; extra == 'tests'", "Joblib[extra]"])
    dist_info(site, "numpy", "2.0.0",
              record=["numpy/__init__.py", "numpy/core/x.so", "numpy-2.0.0.dist-info/RECORD",
                      "../../bin/f2py", "numpy.libs/libz.so", "__pycache__/x.pyc"])
    dist_info(site, "six", "1.16.0", record=["six.py", "six-1.16.0.dist-info/METADATA"])
    dist_info(site, "ext", "0.1", record=["_speedups.cpython-311-x86_64-linux-gnu.so"])
    index = build_index([str(site)])
    assert index.dists["scikit-learn"] == Distribution(
        "Scikit-Learn", "1.5.2", ("numpy", "scipy", "joblib")
    )
    assert index.provides["sklearn"] == ("scikit-learn",)
    assert index.provides["numpy"] == ("numpy",)
    assert "numpy.libs" not in index.provides  # not an importable name
    assert index.provides["six"] == ("six",)
    assert index.provides["_speedups"] == ("ext",)
    assert index.version("scikit_learn") == "1.5.2" and index.version("nope") is None


def test_egg_info_folders_and_files(tmp_path: Path) -> None:
    site = tmp_path / "site"
    egg = site / "old_pkg-1.0-py3.11.egg-info"
    egg.mkdir(parents=True)
    (egg / "PKG-INFO").write_text("Metadata-Version: 1.1\nName: old-pkg\nVersion: 1.0\n")
    (egg / "top_level.txt").write_text("oldpkg\n")
    (egg / "requires.txt").write_text("dep-a>=1\n\n[:python_version < '4']\ndep-b\n\n"
                                      "[docs]\nsphinx\n")
    (site / "single-2.0.egg-info").write_text("Name: single\nVersion: 2.0\n")
    index = build_index([str(site)])
    assert index.dists["old-pkg"].requires == ("dep-a", "dep-b")
    assert index.provides["oldpkg"] == ("old-pkg",)
    assert index.version("single") == "2.0"


def test_first_folder_on_the_path_wins(tmp_path: Path) -> None:
    dist_info(tmp_path / "a", "pkg", "2.0", top=["pkg"])
    dist_info(tmp_path / "b", "pkg", "1.0", top=["pkg"])
    index = build_index([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "none")])
    assert index.version("pkg") == "2.0" and index.provides["pkg"] == ("pkg",)


def test_broken_metadata_is_skipped(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "empty-1.0.dist-info").mkdir(parents=True)  # no METADATA
    noversion = site / "nov-1.0.dist-info"
    noversion.mkdir()
    (noversion / "METADATA").write_text("Name: nov\n")
    assert build_index([str(site)]).dists == {}


def test_closure(tmp_path: Path) -> None:
    site = tmp_path / "site"
    dist_info(site, "app-lib", "1.0", top=["applib"], requires=["mid", "absent"])
    dist_info(site, "mid", "2.0", top=["mid"], requires=["leaf", "pytest; extra == 'test'"])
    dist_info(site, "leaf", "3.0", top=["leaf"], requires=["mid"])  # a cycle is fine
    dist_info(site, "pytest", "8.0", top=["pytest"])
    dist_info(site, "unrelated", "9.9", top=["unrelated"])
    index = build_index([str(site)])
    assert index.closure(["applib"]) == {"app-lib": "1.0", "leaf": "3.0", "mid": "2.0"}
    assert index.closure(["leaf", "json"]) == {"leaf": "3.0", "mid": "2.0"}
    assert index.closure([]) == {}


def test_editable_installs(tmp_path: Path) -> None:
    project = tmp_path / "proj"
    site = tmp_path / "site"
    dist_info(site, "mine", "0.1", top=["mine"], requires=["dep"],
              editable_url=(project / "libs" / "mine").as_uri())
    dist_info(site, "theirs", "0.2", top=["theirs"],
              editable_url=(tmp_path / "other").as_uri())
    dist_info(site, "dep", "1.0", top=["dep"])
    location = str(project / "libs" / "mine" / "src" / "mine")
    (site / "__editable___mine_0_1_finder.py").write_text(
        f"import sys\nMAPPING: dict[str, str] = {{'mine': {location!r}}}\nNAMESPACES = {{}}\n")
    (site / "__editable___bad_finder.py").write_text("MAPPING = {")
    index = build_index([str(site)])
    assert index.editable == {"mine": str(project / "libs" / "mine" / "src" / "mine")}
    assert index.dists["mine"].location == str(project / "libs" / "mine")
    # from inside the project an editable install is code: left out, its needs are not
    assert index.closure(["mine", "theirs"], str(project)) == {"dep": "1.0", "theirs": "0.2"}
    assert index.closure(["mine"]) == {"dep": "1.0", "mine": "0.1"}


def test_project_paths(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    index = SiteIndex(
        paths=(str(root / "src"), str(root / ".venv/lib/python3.11/site-packages"),
               str(root / "conda/lib/python3.11"), "/usr/lib/python3.11", str(root)),
        prefixes=(str(root / "conda"),),
    )
    assert index.project_paths(str(root)) == [str(root / "src"), str(root)]


def test_index_json_round_trip(tmp_path: Path) -> None:
    dist_info(tmp_path / "s", "a", "1", top=["a"], requires=["b"],
              editable_url=(tmp_path / "x").as_uri())
    index = build_index([str(tmp_path / "s")], [sys.prefix])
    assert SiteIndex.from_json(index.to_json()) == index
    with pytest.raises(ValueError):
        SiteIndex.from_json(json.dumps({"format": 999}))


# which interpreter, which path ---------------------------------------------------------


def test_this_interpreter() -> None:
    assert is_this_interpreter(sys.executable)
    index = SiteIndexes().for_program(sys.executable)
    assert index is not None
    assert index.version("pyyaml") is not None  # a dependency of pipeflow itself
    assert "yaml" in index.provides


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A virtual environment (no pip, system packages visible) with one distribution."""
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages",
                    str(path)], check=True)
    return path


def _site(venv: Path) -> Path:
    [site] = (venv / "lib").glob("python*/site-packages")
    return site


def test_a_venv_is_another_interpreter(venv: Path, tmp_path: Path) -> None:
    python = venv / "bin" / "python"
    assert not is_this_interpreter(str(python))  # same binary, another environment
    dist_info(_site(venv), "venvonly", "1.0", top=["venvonly"])
    os.utime(_site(venv), ns=(0, 0))  # old enough to be remembered
    store: dict[str, str] = {}
    index = SiteIndexes(MemoryStore(store)).for_program(str(python))
    assert index is not None and index.version("venvonly") == "1.0"
    assert str(_site(venv)) in index.paths
    assert index.version("pyyaml") is not None  # --system-site-packages
    assert SiteIndexes().for_program(sys.executable).version("venvonly") is None  # type: ignore[union-attr]
    assert {k.split(":")[0] for k in store} == {"pypath", "pydists"}


def test_remembered_across_processes_until_a_folder_changes(
    venv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    python = str(venv / "bin" / "python")
    site = _site(venv)
    for old in site.glob("cached-*.dist-info"):
        shutil.rmtree(old)
    dist_info(site, "cached", "1.0", top=["cached"])
    os.utime(site, ns=(0, 0))
    store: dict[str, str] = {}
    assert SiteIndexes(MemoryStore(store)).for_program(python).version(  # type: ignore[union-attr]
        "cached") == "1.0"

    def no_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("the interpreter was run again")

    monkeypatch.setattr(pydists.subprocess, "run", no_run)
    monkeypatch.setattr(pydists, "build_index", no_run)
    again = SiteIndexes(MemoryStore(store)).for_program(python)
    assert again is not None and again.version("cached") == "1.0"
    monkeypatch.undo()
    # an upgrade renames the dist-info folder: the site folder's mtime moves
    (site / "cached-1.0.dist-info").rename(site / "cached-1.1.dist-info")
    meta = site / "cached-1.1.dist-info" / "METADATA"
    meta.write_text(meta.read_text().replace("1.0", "1.1"))
    fresh = SiteIndexes(MemoryStore(store)).for_program(python)
    assert fresh is not None and fresh.version("cached") == "1.1"


def test_recently_changed_folders_are_not_remembered(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    dist_info(site, "young", "1.0", top=["young"])
    monkeypatch.setenv("PYTHONPATH", str(site))
    store: dict[str, str] = {}
    venvless = SiteIndexes(MemoryStore(store))
    # a fresh interpreter process sees PYTHONPATH; the folder was changed just now
    python3 = os.path.realpath(sys.executable)
    index = venvless._index(python3, [str(site)], sys.prefix, sys.base_prefix)
    assert index.version("young") == "1.0"
    assert not any(k.startswith("pydists:") for k in store)
    os.utime(site, ns=(time.time_ns() - 10**10,) * 2)
    venvless._index(python3, [str(site)], sys.prefix, sys.base_prefix)
    assert any(k.startswith("pydists:") for k in store)


def test_no_interpreter_or_not_python(tmp_path: Path) -> None:
    fake = tmp_path / "python3.99"
    fake.write_text("#!/bin/sh\necho not json\n")
    fake.chmod(0o755)
    indexes = SiteIndexes()
    assert indexes.for_program(str(fake)) is None
    assert indexes.for_program("python0.0-none") is None
    fails = tmp_path / "python3.98"
    fails.write_text("#!/bin/sh\nexit 3\n")
    fails.chmod(0o755)
    assert indexes.for_program(str(fails)) is None


def test_relative_interpreter_from_the_stage_folder(venv: Path, tmp_path: Path) -> None:
    stage_dir = venv.parent
    index = SiteIndexes().for_program("env/bin/python", stage_dir)
    assert index is not None and str(_site(venv)) in index.paths
    assert SiteIndexes().for_program("env/bin/python", tmp_path) is None


def test_genuine_interpreter_or_launcher(tmp_path: Path) -> None:
    from pipeflow.code.pyinterp import is_genuine

    real = str(tmp_path / "py" / "bin" / "python3.12")
    # /proc answers where it exists: a launcher that kept its own argv[0] is caught
    assert is_genuine(real, [real, str(tmp_path / "py"), real])
    assert not is_genuine("/opt/launcher", ["/opt/launcher", "/usr", "/usr/bin/python3.12"])
    # without /proc: sys.executable must be the file, and lie under its base prefix
    assert is_genuine(real, [real, str(tmp_path / "py"), ""])
    assert not is_genuine("/opt/launcher", ["/opt/launcher", "/usr", ""])
    assert not is_genuine(real, "junk") and not is_genuine(real, [real])
