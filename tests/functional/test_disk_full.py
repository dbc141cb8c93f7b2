"""A full disk: a clear error (exit 1) naming the path, no traceback, nothing damaged.

Everywhere through a fault point that raises ENOSPC where the write happens
(``PIPEFLOW_FAULTS=NAME:enospc``); where mounting is allowed (root), also on a real,
tiny tmpfs filled to the last byte.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, Project


def _pipeline(p: Project) -> None:
    p.write("data/raw.txt", "a\nb\n")
    p.spec({"copy": {"cmd": "cp data/raw.txt out.txt", "deps": ["data/raw.txt"],
                     "outs": ["out.txt"]}})
    assert p.run("repro").code == 0
    assert p.run("add", "data/raw.txt").code == 0


def _snapshot(p: Project) -> dict[str, bytes]:
    """pipeline.lock and every cache file, by path."""
    cache = p.root / ".pipeflow/cache"
    files = {f.relative_to(p.root).as_posix(): f.read_bytes()
             for f in cache.rglob("*") if f.is_file()}
    files["pipeline.lock"] = (p.root / "pipeline.lock").read_bytes()
    return files


def _cli(p: Project, *args: str, faults: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=p.root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": faults})


def _clear_disk_full(res: subprocess.CompletedProcess[str], path: str) -> None:
    assert res.returncode == 1, res.stderr
    assert "the disk is full" in res.stderr and path in res.stderr, res.stderr
    assert "free space" in res.stderr and "df -h" in res.stderr
    assert "Traceback" not in res.stderr and "internal error" not in res.stderr


def _healthy(p: Project) -> None:
    """The lock file is free, the state database is where it was, everything verifies."""
    assert list((p.root / ".pipeflow/state").glob("state.db.bad-*")) == []
    res = p.run("repro")
    assert res.code == 0, res.text
    assert p.run("verify").code == 0
    assert p.run("status", "--check").code == 0


COMMANDS = [("repro",), ("checkout",), ("add", "data/raw.txt")]


@pytest.mark.parametrize("args", COMMANDS, ids=lambda a: a[0])
def test_full_disk_at_the_repository_lock(project: Project, args: tuple[str, ...]) -> None:
    _pipeline(project)
    before = _snapshot(project)
    res = _cli(project, *args, faults="repolock.write:enospc")
    _clear_disk_full(res, ".pipeflow/lock")
    assert _snapshot(project) == before
    _healthy(project)


@pytest.mark.parametrize("args", [*COMMANDS, ("status",)], ids=lambda a: a[0])
def test_full_disk_opening_the_state_database_keeps_it(project: Project,
                                                       args: tuple[str, ...]) -> None:
    _pipeline(project)
    state = project.root / ".pipeflow/state/state.db"
    before = _snapshot(project)
    res = _cli(project, *args, faults="state.open:enospc")
    _clear_disk_full(res, "state.db")
    assert state.exists()  # not moved aside as if it were corrupt
    assert _snapshot(project) == before
    _healthy(project)


@pytest.fixture
def tiny_disk(tmp_path: Path) -> Iterator[Path]:
    """A 3 MiB tmpfs (root only: skipped where mounting is not permitted)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount)],
                         capture_output=True, text=True)
    if res.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {res.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> None:
    """Write until the file system has no block left."""
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


def test_a_really_full_disk(tiny_disk: Path) -> None:
    root = tiny_disk / "proj"
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    p = Project(root)
    _pipeline(p)
    p.write("data/raw.txt", "a\nb\nc\n")  # repro has something to do
    before = _snapshot(p)
    _fill(tiny_disk)
    for args in [*COMMANDS, ("status",)]:
        res = _cli(p, *args)
        assert res.returncode == 1, (args, res.stderr)
        assert "the disk is full" in res.stderr and str(root) in res.stderr, res.stderr
        assert "Traceback" not in res.stderr and "internal error" not in res.stderr
    assert _snapshot(p) == before
    for f in tiny_disk.iterdir():
        if f.name != "proj":
            f.unlink()
    _healthy(p)
