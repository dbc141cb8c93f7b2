"""Kill -9 as a matrix: push, fetch, pull, gc, checkout of a 2,000-file folder and add
of a large file, each killed (SIGKILL to its process group) at named fault points
(``PIPEFLOW_FAULTS``, see pipeflow/faults.py) and after seeded random delays.

After every kill: ``verify`` is clean, ``pipeline.lock`` and ``tags.jsonl`` parse, the
same command run again completes with no manual step and leaves the expected
workspace, cache or remote, and no temporary file outlives that command plus a
``gc`` once it is older than gc's grace period (the test ages them by three days).

One project is built per module (two versions of the folder output, pushed, tagged)
and copied per case, so the whole matrix runs in about a minute.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from pipeflow.content.hashing import hash_file
from pipeflow.files.atomicfile import is_temp_name
from pipeflow.lock import lockfile
from pipeflow.storage.leftovers import TEMP_SUFFIX
from tests.conftest import GIT_ENV, Project

NFILES = 2000
BIG = 64 << 20
GEN = ("for d in 0 1 2 3 4 5 6 7 8 9; do mkdir -p out/d$d; done; i=0; "
       "while [ $i -lt 2000 ]; do echo \"${gen.salt} $i\" > out/d$((i % 10))/f$i.txt; "
       "i=$((i + 1)); done")
AGED = 3 * 24 * 3600  # older than any grace period gc gives a temporary file


def _ok(p: Project, *args: str) -> str:
    res = p.run(*args)
    assert res.code == 0, f"pipeflow {' '.join(args)}: {res.text}"
    return res.out


def _tree(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes()
            for p in folder.rglob("*") if p.is_file()}


def _objects(folder: Path) -> set[str]:
    """Object ids under ``objects/`` of a cache or a remote (temporary names excluded)."""
    found = set()
    for path in (folder / "objects").glob("*/*"):
        if len(path.parent.name) == 2 and len(path.name) == 30:
            found.add(path.parent.name + path.name)
    return found


def _names(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*")
            if p.is_file() and not _is_temp(p)}


def _is_temp(path: Path) -> bool:
    name = path.name
    return (is_temp_name(name) or name.endswith(TEMP_SUFFIX) or ".tmp-" in name
            or name.endswith(".pipeflow-private"))


def temp_files(*roots: Path) -> list[Path]:
    """Temporary files a killed command may leave: atomic-write temps (``.X.tmp``),
    store and link temps (``.X.pftmp``), downloads in ``.pipeflow/cache/tmp/`` and
    ``.pipeflow/tmp/``, remote upload temps (``X.tmp-HEX``), private copies."""
    found = []
    for root in roots:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs if d != ".git"]
            here = Path(folder)
            rel = here.relative_to(root).as_posix()
            in_tmp = rel.startswith((".pipeflow/cache/tmp", ".pipeflow/tmp"))
            found += [here / n for n in files if in_tmp or _is_temp(here / n)]
    return sorted(found)


@dataclass
class World:
    """The module's project: ``out/`` (2,000 files) at v1 then v2, pushed to ``store``,
    v2 tagged; ``big`` is 64 MiB of random bytes for ``add``."""

    base: Path
    store: Path
    big: Path
    out_v2: dict[str, bytes]
    lock_objects: set[str]
    all_objects: set[str]
    durations: dict[str, float] = field(default_factory=dict)


def _scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Memory when there is some: each case copies ~6,000 files, which on this machine's
    # ext4 costs seconds (3.4 s to copy, 5 s to delete) and on tmpfs a tenth of that.
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        return Path(tempfile.mkdtemp(prefix="pipeflow-kill-matrix-", dir=shm))
    return tmp_path_factory.mktemp("kill-matrix")


@pytest.fixture(scope="module")
def top(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    folder = _scratch(tmp_path_factory)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture
def case(top: Path, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A folder for one case (removed by the test when it passes, the rest with ``top``)."""
    for key, value in {**GIT_ENV, "NO_COLOR": "1"}.items():
        monkeypatch.setenv(key, value)
    return Path(tempfile.mkdtemp(prefix=request.node.name[:40].replace("/", "_"), dir=top))


@pytest.fixture(scope="module")
def world(top: Path) -> World:
    old = {k: os.environ.get(k) for k in (*GIT_ENV, "NO_COLOR", "PIPEFLOW_MACHINE_CACHE")}
    os.environ.update(GIT_ENV, NO_COLOR="1", PIPEFLOW_MACHINE_CACHE=str(top / "machine.db"))
    try:
        p = Project(top / "proj")
        p.root.mkdir()
        subprocess.run(["git", "init", "-q", "-b", "main", str(p.root)], check=True)
        p.write("seed.txt", "a dependency, so that runs have run-cache pointers\n")
        p.spec({"gen": {"cmd": GEN, "deps": ["seed.txt"], "params": ["gen.salt"],
                        "outs": ["out"]}})
        store = top / "store"
        _ok(p, "remote", "add", "origin", str(store))
        for salt in (1, 2):  # committed, so that v1 and v2 are labels in every clone
            p.params({"gen": {"salt": salt}})
            _ok(p, "repro")
            p.git("add", "-A")
            p.git("commit", "-qm", f"out/ with salt {salt}")
        _ok(p, "tag", "out@v2", "production")
        _ok(p, "push")
        _ok(p, "verify")
        assert (p.root / ".pipeflow/tags.jsonl").is_file()
        p.git("add", "-A")
        p.git("commit", "-qm", "out/ v2 tagged")
        big = top / "big.bin"
        with open(big, "wb") as fh:
            fh.write(os.urandom(BIG))
        cache = p.root / ".pipeflow/cache"
        for obj in (cache / "objects").glob("*/*"):  # made long ago: past gc's grace period
            os.utime(obj, (time.time() - AGED, time.time() - AGED))
        lock_hash = p.lock()["stages"]["gen"]["outs"][0]["hash"]
        lock_objects = _objects_of_folder(p, lock_hash)
        assert len(lock_objects) == NFILES + 1
        world = World(p.root, store, big, _tree(p.root / "out"), lock_objects,
                      _objects(cache))
        assert len(world.all_objects) == 2 * NFILES + 2
        assert _objects(store) == world.all_objects
        assert len(_names(store / "runcache")) == 2
        return world
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def _objects_of_folder(p: Project, oid: str) -> set[str]:
    from pipeflow.project.project import Project as CoreProject

    with CoreProject(p.root) as repo:
        return {oid} | {e.hash for e in repo.store.manifest(oid).entries}


# the commands, each with how its case is made and what "done" means ------------------


@dataclass(frozen=True)
class Command:
    name: str
    args: tuple[str, ...]
    prepare: Callable[[World, Path], Project]
    check: Callable[[World, Project], None]
    remote: bool = False
    """The case has its own remote (``case/store``), which the command writes."""
    clone: bool = False
    """The case is a fresh clone: its lock names records it has not fetched yet."""
    cleanup: tuple[str, ...] = ("gc", "--workspace")
    """The gc that must remove what temporary files the command left."""


def _copy(world: World, case: Path) -> Project:
    objects = world.base / ".pipeflow/cache/objects"

    def copy(src: str, dst: str) -> None:
        # objects are immutable (replaced by rename, never written in place): share them
        if Path(src).is_relative_to(objects):
            os.link(src, dst)
        else:
            shutil.copy2(src, dst)

    shutil.copytree(world.base, case / "proj", symlinks=True, copy_function=copy)
    return Project(case / "proj")


def _clone(world: World, case: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(world.base), str(case / "proj")], check=True,
                   env={**os.environ, **GIT_ENV})
    return Project(case / "proj")


def _prepare_push(world: World, case: Path) -> Project:
    p = _copy(world, case)
    _ok(p, "remote", "add", "origin", str(case / "store"), "--force")
    return p


def _check_push(world: World, p: Project) -> None:
    store, cache = p.root.parent / "store", p.root / ".pipeflow/cache"
    assert _objects(store) == world.all_objects
    assert _names(store / "runs") == _names(cache / "runs")
    assert _names(store / "runcache") == _names(cache / "runcache")
    for path in (store / "runcache").rglob("*"):
        if path.is_file() and not _is_temp(path):
            assert path.read_bytes() == (cache / "runcache" / path.relative_to(
                store / "runcache")).read_bytes(), path


def _check_fetch(world: World, p: Project) -> None:
    cache = p.root / ".pipeflow/cache"
    assert world.lock_objects <= _objects(cache)
    base = world.base / ".pipeflow/cache"
    assert _names(cache / "runs") == _names(base / "runs")
    for rel in _names(base / "runcache"):
        assert (cache / "runcache" / rel).read_bytes() == (base / "runcache" / rel).read_bytes()


def _check_workspace(world: World, p: Project) -> None:
    assert _tree(p.root / "out") == world.out_v2
    assert p.run("status", "--check").code == 0, p.run("status").text


def _check_pull(world: World, p: Project) -> None:
    _check_fetch(world, p)
    _check_workspace(world, p)


def _prepare_gc(world: World, case: Path) -> Project:
    return _copy(world, case)


def _check_gc(world: World, p: Project) -> None:
    assert _objects(p.root / ".pipeflow/cache") == world.lock_objects
    _check_workspace(world, p)


def _prepare_checkout(world: World, case: Path) -> Project:
    p = _copy(world, case)
    shutil.rmtree(p.root / "out")
    return p


def _prepare_hardlink_checkout(world: World, case: Path) -> Project:
    p = _prepare_checkout(world, case)
    p.write(".pipeflow/config.local", "cache:\n  link: hardlink\n")  # the link threads
    return p


def _check_hardlinked(world: World, p: Project) -> None:
    _check_workspace(world, p)
    assert (p.root / "out/d0/f0.txt").stat().st_nlink > 1  # linked, not copied


def _prepare_add(world: World, case: Path) -> Project:
    p = _copy(world, case)
    (p.root / "data").mkdir()
    shutil.copyfile(world.big, p.root / "data/big.bin")
    return p


def _check_add(world: World, p: Project) -> None:
    oid = hash_file(world.big)
    entry = p.lock()["sources"]["data/big.bin"]
    assert entry["hash"] == oid
    assert oid in _objects(p.root / ".pipeflow/cache")
    assert hash_file(p.root / "data/big.bin") == oid
    assert hash_file(p.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]) == oid


GC = ("gc", "--workspace", "--keep-days", "0")
COMMANDS = {c.name: c for c in [
    Command("push", ("push",), _prepare_push, _check_push, remote=True,
            cleanup=("gc", "--workspace", "--remote", "origin", "--yes")),
    Command("fetch", ("fetch",), _clone, _check_fetch, clone=True),
    Command("pull", ("pull",), _clone, _check_pull, clone=True),
    Command("gc", GC, _prepare_gc, _check_gc, cleanup=GC),
    Command("checkout", ("checkout",), _prepare_checkout, _check_workspace),
    Command("checkout-hardlink", ("checkout",), _prepare_hardlink_checkout,
            _check_hardlinked),
    Command("add", ("add", "data/big.bin"), _prepare_add, _check_add),
]}

# Named points. A push sends 4,002 objects, 2 records and 2 pointers (remote.upload
# passes); a fresh clone's fetch gets 2 records (passes 1-2 of remote.download), 2
# pointers (3-4), the folder's manifest (5), then its 2,000 files; big.bin is 64 chunks.
NAMED = [
    ("push", "push.listed"), ("push", "remote.upload@1"), ("push", "remote.upload@2000"),
    ("push", "remote.upload@4005"),
    ("fetch", "remote.download@2"), ("fetch", "remote.download@3"),
    ("fetch", "remote.download@5"), ("fetch", "remote.download@1500"),
    ("pull", "remote.download@700"), ("pull", "checkout.file@1000"),
    ("gc", "gc.delete@1"), ("gc", "gc.delete@1200"),
    ("checkout", "checkout.stage"), ("checkout", "checkout.file@1"),
    ("checkout", "checkout.file@1999"), ("checkout", "checkout.render"),
    ("checkout-hardlink", "checkout.link@1000"),
    ("add", "add.chunk@1"), ("add", "add.chunk@40"), ("add", "add.stored"),
    ("add", "add.recorded"), ("add", "add.locked"),
]
# two seeds per command by default; PIPEFLOW_KILL_SEEDS=N runs N (a longer soak)
SEEDS = range(1, 1 + int(os.environ.get("PIPEFLOW_KILL_SEEDS", "2")))
RANDOM = [(name, seed) for name in COMMANDS for seed in SEEDS]


def _start(p: Project, args: tuple[str, ...], faults: str = "") -> subprocess.Popen[bytes]:
    env = {**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": faults}
    return subprocess.Popen([sys.executable, "-m", "pipeflow", *args], cwd=p.root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)


def _duration(world: World, command: Command, case: Path) -> float:
    """How long the command takes uninterrupted (measured once, in a case of its own)."""
    if command.name not in world.durations:
        p = command.prepare(world, case / "timing")
        started = time.monotonic()
        proc = _start(p, command.args)
        _, err = proc.communicate(timeout=120)
        world.durations[command.name] = time.monotonic() - started
        assert proc.returncode == 0, err.decode()
        command.check(world, p)
    return world.durations[command.name]


def _problems(p: Project, command: Command | None = None) -> list[dict[str, str]]:
    if command is not None and not command.clone:
        return []  # a copy of the verified module project: nothing to report
    res = p.run("verify", "--json")
    assert res.code in (0, 1), res.text
    problems: list[dict[str, str]] = json.loads(res.out)["problems"]
    return problems


def _after_the_kill(world: World, command: Command, p: Project,
                    before: list[dict[str, str]]) -> None:
    # A fresh clone lacks the records its lock names until fetch brings them, and
    # verify says so before the kill already: the kill may add no problem of its own,
    # and once the command has completed verify must be clean.
    after = _problems(p)
    assert [q for q in after if q not in before] == [], f"verify after the kill: {after}"
    if (p.root / "pipeline.lock").exists():
        lockfile.loads(p.read("pipeline.lock"), "pipeline.lock")  # raises if torn
        assert isinstance(yaml.safe_load(p.read("pipeline.lock")), dict)
    tags = p.root / ".pipeflow/tags.jsonl"
    if tags.exists():
        for line in tags.read_text().splitlines():
            assert isinstance(json.loads(line), dict)
    _ok(p, *command.args)  # the same command again: no manual step
    command.check(world, p)
    if command.clone:
        assert _problems(p) == []
    store = p.root.parent / "store"
    roots = [p.root, store] if command.remote else [p.root]
    for path in temp_files(*roots):
        os.utime(path, (time.time() - AGED, time.time() - AGED))
    _ok(p, *command.cleanup)
    left = temp_files(*roots)
    assert left == [], f"temporary files neither the command nor gc cleaned: {left}"
    command.check(world, p)


@pytest.mark.parametrize(("name", "point"), NAMED, ids=[f"{n}:{pt}" for n, pt in NAMED])
def test_killed_at_a_named_point(world: World, case: Path, name: str, point: str) -> None:
    command = COMMANDS[name]
    p = command.prepare(world, case)
    before = _problems(p, command)
    rule = f"{point}:kill" if "@" not in point else point.replace("@", ":kill@")
    proc = _start(p, command.args, rule)
    try:
        _, err = proc.communicate(timeout=120)
    finally:
        _kill_group(proc)
    assert proc.returncode == -signal.SIGKILL, f"{point} was never reached: {err.decode()}"
    _after_the_kill(world, command, p, before)
    shutil.rmtree(case)


@pytest.mark.parametrize(("name", "seed"), RANDOM, ids=[f"{n}:random{s}" for n, s in RANDOM])
def test_killed_after_a_random_delay(world: World, case: Path, name: str,
                                     seed: int) -> None:
    command = COMMANDS[name]
    fraction = random.Random(f"{name}-{seed}").uniform(0.3, 0.95)
    delay = fraction * _duration(world, command, case)
    p = command.prepare(world, case)
    before = _problems(p, command)
    proc = _start(p, command.args)
    time.sleep(delay)  # the point of the test: a kill at an arbitrary moment
    _kill_group(proc)
    proc.communicate(timeout=120)
    assert proc.returncode in (0, -signal.SIGKILL)
    _after_the_kill(world, command, p, before)
    shutil.rmtree(case)
