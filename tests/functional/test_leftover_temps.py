"""Temporary files a killed writer leaves: the next writer removes a dead writer's
(pid gone, silent for a few minutes) where it writes; ``gc`` removes every one older
than the grace period, inside folder outputs and beside outputs no lock names yet; a
live writer's temporary file is never removed.

Writers are killed for real (``PIPEFLOW_FAULTS=POINT:kill``) at the moment their
temporary file exists; ages are set with ``os.utime`` (the rules compare mtimes).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from pipeflow.storage.leftovers import STALE_AGE
from tests.conftest import GIT_ENV, Project

BIG = 3 * 1024 * 1024  # three 1 MiB chunks: add.chunk:kill@2 fires with a temp half written


def _big_pipeline(p: Project, outs: str = "data/big.bin") -> None:
    """One stage writing 3 MiB of deterministic bytes; copies, never links (so a
    checkout copies chunk by chunk through a temporary name)."""
    folder = outs.rsplit("/", 1)[0]
    target = outs if not outs.endswith("/") else f"{outs}sub/big.bin"
    p.spec({"make": {
        "cmd": f"mkdir -p {target.rsplit('/', 1)[0]} && "
               f"yes abcdefgh | head -c {BIG} > {target}",
        "outs": [outs.rstrip("/")]}})
    assert p.run("init").code == 0
    p.write(".pipeflow/config.local", "cache:\n  link: copy\n")
    res = p.run("repro")
    assert res.code == 0, res.text
    assert (p.root / folder).is_dir()


def _killed(p: Project, rule: str, *args: str) -> None:
    proc = subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=p.root,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": rule})
    assert proc.returncode == -signal.SIGKILL, f"{rule} never fired: {proc.stderr}"


def _temps(folder: Path, pattern: str = ".*.pftmp") -> list[Path]:
    return sorted(folder.rglob(pattern))


def _age(path: Path, seconds: float) -> None:
    when = time.time() - seconds
    os.utime(path, (when, when))


def test_killed_checkout_temp_is_removed_by_the_next_checkout(project: Project) -> None:
    p = project
    _big_pipeline(p)
    p.write("data/big.bin", "edited by hand\n")
    _killed(p, "add.chunk:kill@2", "checkout", "data/big.bin")
    [temp] = _temps(p.root / "data")
    assert temp.stat().st_size > 0  # up to the whole file, per kill
    _age(temp, STALE_AGE + 60)  # dead and silent for a while, well within the grace
    young = temp.with_name(temp.name.replace(".pftmp", "9.pftmp"))  # same dead pid
    young.write_bytes(b"just written")
    assert p.run("status").code == 0
    assert temp.exists()  # readers delete nothing
    res = p.run("checkout", "data/big.bin")
    assert res.code == 0, res.text
    assert not temp.exists()
    assert young.exists()  # too fresh to tell from a writer in another pid namespace
    assert p.run("status", "--check").code == 0


def test_killed_commit_temp_in_the_store_is_removed_by_the_next_repro(
        project: Project) -> None:
    p = project
    _big_pipeline(p)
    p.spec({"make": {"cmd": f"mkdir -p data && yes ijklmnop | head -c {BIG} > data/big.bin",
                     "outs": ["data/big.bin"]}})
    objects = p.root / ".pipeflow/cache/objects"
    _killed(p, "add.chunk:kill@2", "repro")  # ran the stage, died storing its output
    [temp] = _temps(objects)
    _age(temp, STALE_AGE + 60)
    res = p.run("repro")
    assert res.code == 0, res.text
    assert _temps(objects) == []
    assert p.run("verify").code == 0


def test_killed_stage_run_temp_beside_its_output_goes_when_the_stage_reruns(
        project: Project) -> None:
    p = project
    _big_pipeline(p)
    temp = p.root / "data/.big.bin.999999-0a1b2c-0.pftmp"  # no such pid: a dead writer
    temp.write_bytes(b"x" * 1000)
    _age(temp, STALE_AGE + 60)
    p.write("data/big.bin", "edited by hand\n")
    res = p.run("repro", "--force")
    assert res.code == 0, res.text
    assert not temp.exists()


def test_killed_download_temp_is_removed_by_the_next_writer(project: Project,
                                                            tmp_path: Path) -> None:
    p = project
    _big_pipeline(p)
    assert p.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert p.run("push").code == 0
    for obj in (p.root / ".pipeflow/cache/objects").glob("*/*"):
        obj.chmod(0o644)
        obj.unlink()
    _killed(p, "remote.download:kill", "fetch")
    downloads = p.root / ".pipeflow/cache/tmp"
    [temp] = list(downloads.iterdir())
    _age(temp, STALE_AGE + 60)
    res = p.run("repro")  # nothing to run: the sweep is all it writes
    assert res.code == 0, res.text
    assert list(downloads.iterdir()) == []


@pytest.mark.parametrize("place", ["inside a folder output", "beside an output no lock names"])
def test_gc_removes_old_temps_inside_folder_outputs_and_beside_declared_outputs(
        project: Project, place: str) -> None:
    p = project
    if place == "inside a folder output":
        _big_pipeline(p, outs="out/")
        p.write("out/sub/big.bin", "edited by hand\n")
        _killed(p, "add.chunk:kill@2", "checkout", "out")
        [temp] = _temps(p.root / "out")
        assert temp.parent == p.root / "out/sub"
    else:
        _big_pipeline(p)
        p.spec({"make": {"cmd": "echo", "outs": ["data/big.bin"]},
                "later": {"cmd": "echo > models/m.txt", "outs": ["models/m.txt"]}})
        temp = p.root / "models/.m.txt.999999-0a1b2c-0.pftmp"  # a run killed mid-commit
        p.write("models/.m.txt.999999-0a1b2c-0.pftmp", "half")
    _age(temp, 3 * 3600)
    res = p.run("gc", "--workspace")
    assert res.code == 0, res.text
    assert not temp.exists()


def test_gc_deletes_nothing_outside_the_project_through_a_crafted_lock(
        project: Project, tmp_path: Path) -> None:
    p = project
    _big_pipeline(p)
    outside = tmp_path / "outside"
    outside.mkdir()
    canary = outside / ".x.123-ab-0.pftmp"
    canary.write_text("not pipeflow's")
    _age(canary, 3 * 3600)
    (p.root / "link").symlink_to(outside)
    lock = p.read("pipeline.lock")
    p.write("pipeline.lock", lock.replace("path: data/big.bin", "path: link/big.bin"))
    p.spec({"make": {"cmd": "echo", "outs": ["link/big.bin"]}})
    p.run("gc", "--workspace")
    assert canary.exists()


def test_a_live_writers_temp_survives_a_concurrent_repro_and_gc(project: Project,
                                                                tmp_path: Path) -> None:
    p = project
    _big_pipeline(p)
    assert p.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert p.run("push").code == 0
    for obj in (p.root / ".pipeflow/cache/objects").glob("*/*"):
        obj.chmod(0o644)
        obj.unlink()
    flag = tmp_path / "paused"
    writer = subprocess.Popen(
        [sys.executable, "-m", "pipeflow", "fetch"], cwd=p.root, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env={**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": f"remote.download:pause={flag}"})
    try:
        deadline = time.monotonic() + 60
        while not flag.exists():  # the fault point creates it once the temp is open
            assert writer.poll() is None and time.monotonic() < deadline, "never paused"
            time.sleep(0.02)
        downloads = p.root / ".pipeflow/cache/tmp"
        [temp] = list(downloads.iterdir())
        _age(temp, STALE_AGE + 60)  # silent for long: only its live pid protects it
        assert p.run("repro").code == 0
        res = p.run("gc", "--workspace")
        assert res.code == 0, res.text
        assert temp.exists()
    finally:
        flag.unlink(missing_ok=True)
        _out, err = writer.communicate(timeout=60)
    assert writer.returncode == 0, err
    assert p.run("checkout").code == 0
    assert p.run("verify").code == 0
