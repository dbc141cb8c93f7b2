"""The environment component: platform always, the interpreter for python commands."""

from __future__ import annotations

import os
import platform
import stat
import sys
import time
from pathlib import Path

import pytest

from pipeflow.code.environment import EnvironmentProbe, platform_id, python_program
from pipeflow.keyvalue import MemoryStore


@pytest.mark.parametrize(
    ("cmd", "program"),
    [
        ("python x.py", "python"),
        ("python3 -m pkg.mod --flag", "python3"),
        ("FOO=1 python3 x.py", "python3"),
        ("FOO=1 BAR='a b' python x.py", "python"),
        ("env python x.py", "python"),
        ("env FOO=1 python3.12 x.py", "python3.12"),
        ("exec python x.py", "python"),
        ("time python3 train.py", "python3"),
        ("./run.py --fast", "python3"),
        ("scripts/run.py", "python3"),
        ("/usr/bin/python3.11 x", "/usr/bin/python3.11"),
        ("./venv/bin/python -m train", "./venv/bin/python"),
        ("pypy3 x.py", "pypy3"),
        ("python x.py && echo done", "python"),
        ("echo hi", None),
        ("", None),
        ("# python x.py", None),
        ("FOO=1", None),
        ("pythonista x.py", None),
        ("python-config --libs", None),
        ("cat x.py", None),
        ("python 'unterminated", None),
        ('echo "open', None),
        ("python x.py \\", None),
    ],
)
def test_python_program(cmd: str, program: str | None) -> None:
    assert python_program(cmd) == program


def test_platform_id() -> None:
    assert platform_id() == f"{sys.platform}-{platform.machine().lower()}"


def test_component_platform_only_for_other_commands() -> None:
    probe = EnvironmentProbe()
    assert probe.component(("echo hi", "cat x.py")) == {"platform": platform_id()}
    assert probe.component(()) == {"platform": platform_id()}


def test_component_minor_and_exact_for_the_running_interpreter() -> None:
    impl = platform.python_implementation().lower()
    major, minor, micro = sys.version_info[:3]
    cmd = f"{sys.executable} train.py"
    probe = EnvironmentProbe()
    assert probe.component((cmd,)) == {"platform": platform_id(),
                                       "python": f"{impl}-{major}.{minor}"}
    assert probe.component(("echo start", cmd), python_exact=True) == {
        "platform": platform_id(), "python": f"{impl}-{major}.{minor}.{micro}"
    }


def test_component_unknown_interpreter() -> None:
    got = EnvironmentProbe().component(("python9.99 x.py",))
    assert got == {"platform": platform_id(), "python": "unknown"}


@pytest.fixture
def fake_python(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A 'python3.77' on PATH that reports itself as pypy 3.77.5 (and counts its runs)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    exe = bin_dir / "python3.77"
    # it says it is itself (sys.executable, base prefix, /proc/self/exe): a genuine one
    exe.write_text(f'#!/bin/sh\necho run >> "{tmp_path}/runs"\necho pypy 3 77 5\n'
                   f"echo '[\"{exe}\", \"{tmp_path}\", \"{exe}\"]'\n")
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}")
    return tmp_path


def test_component_probes_another_interpreter(fake_python: Path) -> None:
    probe = EnvironmentProbe()
    assert probe.component(("python3.77 x.py",))["python"] == "pypy-3.77"
    assert probe.component(("python3.77 x.py",), python_exact=True)["python"] == "pypy-3.77.5"
    assert (fake_python / "runs").read_text() == "run\n"  # once per process


def test_versions_remembered_across_processes(fake_python: Path) -> None:
    store: dict[str, str] = {}
    first = EnvironmentProbe(MemoryStore(store))
    assert first.python_version("python3.77") == "pypy-3.77.5"
    [(key, value)] = store.items()
    real = os.path.realpath(fake_python / "bin" / "python3.77")
    assert key.startswith(f"python-2:{real}:") and value == "pypy-3.77.5"
    # a new process finds the answer kept and does not run the interpreter again
    second = EnvironmentProbe(MemoryStore(store))
    assert second.component(("python3.77 x.py",), python_exact=True)["python"] == "pypy-3.77.5"
    assert (fake_python / "runs").read_text() == "run\n"
    # the project's own copy answers when the machine cache has nothing
    from pipeflow.files.machinecache import machine_cache

    machine_cache().path.unlink()
    store[key] = "pypy-3.77.9"
    with_new_cache = EnvironmentProbe(MemoryStore(store))
    from pipeflow.files import machinecache

    machinecache._open.cache_clear()
    assert with_new_cache.python_version("python3.77") == "pypy-3.77.9"


def test_interpreter_that_fails_is_unknown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    exe = tmp_path / "python3.66"
    exe.write_text("#!/bin/sh\nexit 3\n")
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ.get('PATH', '')}")
    assert EnvironmentProbe().component(("python3.66 x.py",))["python"] == "unknown"


def test_relative_interpreter_is_found_from_the_stage_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `venv/bin/python x.py` runs the project's venv wherever pipeflow itself was started
    stage_dir = tmp_path / "proj"
    exe = stage_dir / "venv" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho cpython 3 77 2\n")
    exe.chmod(0o755)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    probe = EnvironmentProbe()
    got = probe.component(("venv/bin/python x.py",), python_exact=True, cwd=stage_dir)
    assert got["python"] == "cpython-3.77.2"
    assert probe.component(("./venv/bin/python x.py",), cwd=stage_dir)["python"] == "cpython-3.77"
    # from another folder the same words name another (here: no) interpreter
    assert probe.component(("venv/bin/python x.py",), cwd=elsewhere)["python"] == "unknown"


def test_declared_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PF_TEST_A", "1")
    monkeypatch.delenv("PF_TEST_B", raising=False)
    got = EnvironmentProbe().component(("echo",), variables=("PF_TEST_B", "PF_TEST_A"))
    assert got == {"platform": platform_id(), "vars": {"PF_TEST_A": "1", "PF_TEST_B": None}}


def _genuine(folder: Path, name: str, version: str, *, reports: str | None = None) -> Path:
    """A fake interpreter that reports ``version`` and that it is itself (or
    ``reports``: a launcher running another interpreter); counts its runs."""
    exe = folder / name
    exe.parent.mkdir(parents=True, exist_ok=True)
    words = version.replace("-", " ").replace(".", " ")
    ran = reports or exe
    exe.write_text(f'#!/bin/sh\necho run >> "{folder}/runs"\necho {words}\n'
                   f"echo '[\"{exe}\", \"{folder}\", \"{ran}\"]'\n")
    exe.chmod(0o755)
    return exe


def test_a_genuine_interpreter_is_asked_once_per_machine(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from pipeflow.files.machinecache import machine_cache

    monkeypatch.setenv("PIPEFLOW_MACHINE_CACHE", str(tmp_path / "machine.db"))
    _genuine(tmp_path / "bin", "python3.77", "pypy-3.77.5")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    one: dict[str, str] = {}
    assert EnvironmentProbe(MemoryStore(one)).python_version("python3.77") == "pypy-3.77.5"
    other: dict[str, str] = {}  # another project: an empty state database
    assert EnvironmentProbe(MemoryStore(other)).python_version("python3.77") == (
        "pypy-3.77.5")
    assert (tmp_path / "bin" / "runs").read_text() == "run\n"  # asked once for both
    assert one  # the project that asked keeps its own copy too
    assert machine_cache().path == tmp_path / "machine.db"


def test_a_launcher_binary_is_asked_again_in_every_project(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # mise-style shims: one launcher for every project, each choosing its own Python
    monkeypatch.setenv("PIPEFLOW_MACHINE_CACHE", str(tmp_path / "machine.db"))
    _genuine(tmp_path / "bin", "python", "cpython-3.12.1", reports="/opt/py/3.12.1/bin/python")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}")
    assert EnvironmentProbe(MemoryStore({})).python_version("python") == "cpython-3.12.1"
    assert EnvironmentProbe(MemoryStore({})).python_version("python") == "cpython-3.12.1"
    assert (tmp_path / "bin" / "runs").read_text() == "run\nrun\n"


def test_stages_in_folders_with_their_own_pyenv_version_get_their_own_python(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root, _ = _pyenv(tmp_path, ())
    for v in ("3.11.7", "3.12.1"):
        _genuine(root / "versions" / v / "bin", "python", f"cpython-{v}")
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.delenv("PYENV_VERSION", raising=False)
    monkeypatch.delenv("PYENV_DIR", raising=False)
    monkeypatch.setenv("PATH", f"{root / 'shims'}{os.pathsep}{os.environ.get('PATH', '')}")
    proj = tmp_path / "proj"
    (proj / "sub").mkdir(parents=True)
    (proj / ".python-version").write_text("3.11.7\n")
    (proj / "sub" / ".python-version").write_text("3.12.1\n")
    probe = EnvironmentProbe()
    assert probe.python_version("python", proj / "sub") == "cpython-3.12.1"
    assert probe.python_version("python", proj) == "cpython-3.11.7"
    # pyenv exports PYENV_DIR (where pipeflow was started) to what its shims run:
    # the nearest .python-version above it wins over the stage's folder
    monkeypatch.setenv("PYENV_DIR", str(proj))
    assert EnvironmentProbe().python_version("python", proj / "sub") == "cpython-3.11.7"


def test_a_user_site_folder_made_later_is_seen(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    from pipeflow.code.pyinterp import user_site_stamp

    monkeypatch.setenv("PYTHONUSERBASE", str(tmp_path / "user"))
    before = user_site_stamp()
    (tmp_path / "user" / "lib" / "python3.99").mkdir(parents=True)
    middle = user_site_stamp()
    time.sleep(0.01)
    (tmp_path / "user" / "lib" / "python3.99" / "site-packages").mkdir()
    assert len({repr(before), repr(middle), repr(user_site_stamp())}) == 3


def test_a_launcher_is_asked_isolated_outside_the_stage_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A launcher (mise-style: it would pick a Python by the folder's files, which a
    # clone controls) is asked from /, with -I and without PYTHON* variables; its
    # answer, which may change with what it reads, is never remembered.
    monkeypatch.setenv("PIPEFLOW_MACHINE_CACHE", str(tmp_path / "machine.db"))
    monkeypatch.setenv("PYTHONSTARTUP", "/x/startup.py")
    exe = tmp_path / "bin" / "pyl"
    exe.parent.mkdir()
    exe.write_text(f'#!/bin/sh\necho "$(pwd) $1 ${{PYTHONSTARTUP:-none}}" >> "{tmp_path}/runs"\n'
                   'if [ -e .use-old ]; then echo cpython 3 9 1; else echo cpython 3 12 1; fi\n'
                   'echo \'["/opt/py/bin/python", "/opt/py", "/opt/py/bin/python3.12"]\'\n')
    exe.chmod(0o755)
    monkeypatch.setenv("PATH", f"{exe.parent}{os.pathsep}{os.environ.get('PATH', '')}")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / ".use-old").write_text("")
    store: dict[str, str] = {}
    probe = EnvironmentProbe(MemoryStore(store))
    assert probe.python_version("pyl", tmp_path / "old") == "cpython-3.12.1"
    assert (tmp_path / "runs").read_text() == "/ -I none\n"
    assert store == {}  # nothing kept for another process
    assert EnvironmentProbe(MemoryStore(store)).python_version(
        "pyl", tmp_path) == "cpython-3.12.1"
    assert (tmp_path / "runs").read_text().count("\n") == 2


def test_machine_cache_that_cannot_be_written_is_a_no_op(tmp_path: Path) -> None:
    from pipeflow.files.machinecache import MachineCache

    blocker = tmp_path / "file"
    blocker.write_text("x")
    cache = MachineCache(blocker / "sub" / "machine.db")  # parent is a file
    cache.put("k", "v")
    assert cache.get("k") is None
    ok = MachineCache(tmp_path / "m" / "machine.db")
    ok.put("k", "v")
    assert ok.get("k") == "v" and MachineCache(ok.path).get("k") == "v"


def _pyenv(tmp_path: Path, versions: tuple[str, ...]) -> tuple[Path, str]:
    root = tmp_path / "pyenv"
    shim = root / "shims" / "python"
    shim.parent.mkdir(parents=True)
    shim.write_text("#!/bin/sh\nexec pyenv exec python \"$@\"\n")
    shim.chmod(0o755)
    for v in versions:
        exe = root / "versions" / v / "bin" / "python"
        exe.parent.mkdir(parents=True)
        exe.write_bytes(b"\x7fELF fake")
        exe.chmod(0o755)
    return root, str(shim)


@pytest.mark.parametrize(("setup", "expected"), [
    ({"env": "3.11.7"}, "3.11.7"),
    ({"local": "3.12.1\n"}, "3.12.1"),
    ({"local": "# pinned\n3.12.1\n", "global": "3.11.7"}, "3.12.1"),
    ({"global": "3.11.7\n"}, "3.11.7"),
    ({"env": "3.11.7:3.12.1"}, None),  # several: not plain to see
    ({"global": "system"}, None),
    ({"env": "3.9.0"}, None),  # not installed
    ({"env": "3.11"}, None),  # a prefix pyenv would expand
    ({"pyenv_dir": "{local}"}, "3.12.1"),  # searched from PYENV_DIR first
    ({"pyenv_dir": "{elsewhere}", "local": "3.12.1\n"}, "3.12.1"),  # then from the stage
    ({}, None),  # no version file at all: pyenv runs the system python
])
def test_pyenv_shims_resolve_to_the_interpreter_they_would_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, setup: dict[str, str], expected: str | None
) -> None:
    from pipeflow.code.pyinterp import resolve_launcher

    root, shim = _pyenv(tmp_path, ("3.11.7", "3.12.1"))
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.delenv("PYENV_VERSION", raising=False)
    monkeypatch.delenv("PYENV_DIR", raising=False)
    if "env" in setup:
        monkeypatch.setenv("PYENV_VERSION", setup["env"])
    project = tmp_path / "work" / "proj" / "sub"
    project.mkdir(parents=True)
    if "pyenv_dir" in setup:
        other = tmp_path / "other"
        (other / "deep").mkdir(parents=True)
        (other / ".python-version").write_text("3.12.1\n")
        elsewhere = tmp_path / "nowhere"
        elsewhere.mkdir()
        monkeypatch.setenv("PYENV_DIR", setup["pyenv_dir"].format(
            local=other / "deep", elsewhere=elsewhere))
    if "local" in setup:
        (tmp_path / "work" / "proj" / ".python-version").write_text(setup["local"])
    if "global" in setup:
        (root / "version").write_text(setup["global"])
    got = resolve_launcher(shim, str(project))
    want = shim if expected is None else str(root / "versions" / expected / "bin" / "python")
    assert got == want
    assert resolve_launcher("/usr/bin/python3", str(project)) == "/usr/bin/python3"
