"""Team safety of remotes: Ctrl-C stops transfers at once and leaves nothing half
written, damaged run-cache files from a clone are skipped with a warning, concurrent
`remote` edits all land, and a bug under a remote call is an internal error."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import chain, runs

N_FILES = 120
SLOW = "remote.upload:sleep=0.5,remote.download:sleep=0.5"
STOPS_WITHIN = 3.0
"""Seconds from SIGINT to exit: what is in flight ends (one 0.5 s transfer) and the
interpreter exits, with room for a loaded CI machine; draining the queue, as the old
code did, takes 120 x 0.5 s / 8 threads = 7.5 s."""


def _many_files(project: Project, tmp_path: Path) -> Path:
    """A project whose source data is N_FILES small files, and a folder remote."""
    project.run("init")
    for i in range(N_FILES):
        project.write(f"data/part-{i:03d}.txt", f"row {i}\n")
    assert project.run("add", "data").code == 0
    store = tmp_path / "store"
    assert project.run("remote", "add", "origin", str(store)).code == 0
    return store


def _files(folder: Path) -> list[Path]:
    return [Path(d) / n for d, _s, names in os.walk(folder) for n in names]


def _interrupt_when(project: Project, args: list[str], started: Path) -> tuple[int, float]:
    """Run pipeflow ARGS with slow transfers, send SIGINT once a file appears under
    ``started`` (the transfer is under way); returns (exit status, seconds to exit)."""
    before = len(_files(started))
    proc = subprocess.Popen([sys.executable, "-m", "pipeflow", *args], cwd=project.root,
                            env={**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": SLOW},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 60
    while len(_files(started)) <= before and proc.poll() is None:
        assert time.monotonic() < deadline, "the transfer never started"
        time.sleep(0.02)
    assert proc.poll() is None, proc.communicate()
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=30)
    return proc.returncode, time.monotonic() - sent


def _objects_verify(objects: Path) -> int:
    """Every file under an objects folder is a whole object (its bytes hash to its name)."""
    from pipeflow.content.hashing import hash_file

    found = _files(objects)
    for path in found:
        assert hash_file(path) == path.parent.name + path.name, path
    return len(found)


def _no_temp_names(folder: Path) -> None:
    leftovers = [p for p in _files(folder) if p.name.startswith(".") or ".tmp" in p.name]
    assert not leftovers, leftovers


def test_ctrl_c_stops_push_at_once_and_leaves_no_partial_file(
        project: Project, tmp_path: Path) -> None:
    store = _many_files(project, tmp_path)
    code, seconds = _interrupt_when(project, ["push"], store)
    assert code == 130
    assert seconds < STOPS_WITHIN, f"push took {seconds:.2f} s to stop"
    _no_temp_names(store)
    sent = _objects_verify(store / "objects")
    assert sent < N_FILES  # it stopped early: the queue was not drained
    res = project.cli("push", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["objects"] == N_FILES + 1 - sent  # the files + manifest
    assert _objects_verify(store / "objects") == N_FILES + 1


def test_ctrl_c_stops_fetch_at_once_and_leaves_no_partial_file(
        project: Project, tmp_path: Path) -> None:
    _many_files(project, tmp_path)
    assert project.run("push").code == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "data")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    cache = clone / ".pipeflow" / "cache"
    (cache / "objects").mkdir(parents=True)
    code, seconds = _interrupt_when(other, ["fetch"], cache / "objects")
    assert code == 130
    assert seconds < STOPS_WITHIN, f"fetch took {seconds:.2f} s to stop"
    _no_temp_names(cache / "runcache")
    _no_temp_names(cache / "runs")
    assert _files(cache / "tmp") == []
    assert _objects_verify(cache / "objects") < N_FILES + 1
    res = other.cli("pull")
    assert res.code == 0, res.text
    assert _objects_verify(cache / "objects") == N_FILES + 1
    assert other.read("data/part-007.txt") == "row 7\n"
    assert other.run("verify").code == 0


def _two_versions(project: Project, tmp_path: Path) -> tuple[Project, dict[str, str]]:
    """prep.n=3 then prep.n=2 run and pushed; a clone of the n=2 commit; returns it
    and the fingerprints of the n=3 runs."""
    chain(project)
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert project.run("repro").code == 0
    first = {name: stage["fingerprint"] for name, stage in project.lock()["stages"].items()}
    project.params({"prep": {"n": 2}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    runs(project)
    project.git("add", "-A")
    project.git("commit", "-qm", "n=2")
    clone = tmp_path / "clone"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    return Project(clone), first


def _pointer(project: Project, fingerprint: str) -> Path:
    return project.root / ".pipeflow/cache/runcache" / fingerprint[:2] / fingerprint


def test_a_truncated_pointer_in_a_clone_is_fetched_again(
        project: Project, tmp_path: Path) -> None:
    other, first = _two_versions(project, tmp_path)
    good = _pointer(project, first["train"]).read_bytes()
    mine = _pointer(other, first["train"])
    mine.parent.mkdir(parents=True)
    mine.write_bytes(good[:20])  # what an interrupted fetch used to leave
    res = other.run("fetch")
    assert res.code == 0, res.text
    assert mine.read_bytes() == good


def test_damaged_pointer_and_record_warn_and_the_stages_run(
        project: Project, tmp_path: Path) -> None:
    """prep.n back to 3 in the clone: prepare's pointer is garbled (not UTF-8), train's
    record is truncated; both stages run, with a warning each, and outputs are right."""
    other, first = _two_versions(project, tmp_path)
    assert other.run("pull").code == 0
    other.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    garbled = _pointer(other, first["prepare"])
    garbled.write_bytes(b"\xff\xfe\x00garbage")
    checked = other.run("verify", "--json")  # verify names it (repro skips it)
    assert checked.code == 1
    assert [(p["kind"], p["subject"]) for p in json.loads(checked.out)["problems"]] == [
        ("damaged-pointer", garbled.relative_to(other.root / ".pipeflow/cache/runcache")
         .as_posix())]
    rel = _pointer(other, first["train"]).read_text().strip()
    record = other.root / ".pipeflow/cache/runs" / rel
    record.write_bytes(record.read_bytes()[:30])
    res = other.run("repro")
    assert res.code == 0, res.text
    assert f"{garbled} is damaged" in res.err
    assert f"run record {record.name} does not match its hash" in res.err
    assert runs(other)[:2] == ["prepare", "train"]
    assert other.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_garbled_pointer_on_the_remote_is_skipped_with_a_warning(
        project: Project, tmp_path: Path) -> None:
    other, first = _two_versions(project, tmp_path)
    pointer = _pointer(project, first["train"])
    on_remote = tmp_path / "store" / "runcache" / pointer.parent.name / pointer.name
    on_remote.write_bytes(b"\x00\xff not a record path")
    res = other.run("fetch")
    assert res.code == 0, res.text
    assert "is damaged" in res.err and pointer.name in res.err
    assert not (other.root / pointer.relative_to(project.root)).exists()


def test_concurrent_remote_adds_all_land(project: Project) -> None:
    project.run("init")
    env = {**os.environ, **GIT_ENV, "PIPEFLOW_FAULTS": "config.edit:sleep=0.2"}
    procs = [subprocess.Popen([sys.executable, "-m", "pipeflow", "remote", "add", f"r{i}",
                               f"/srv/store{i}"], cwd=project.root, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(10)]
    results = [(p.wait(timeout=120), p.communicate()[1]) for p in procs]
    assert [code for code, _err in results] == [0] * 10, results
    listed = json.loads(project.run("remote", "list", "--json").out)["remotes"]
    assert sorted(r["name"] for r in listed) == sorted(f"r{i}" for i in range(10))
    assert sum(r["default"] for r in listed) == 1


def test_a_bug_under_a_remote_call_is_an_internal_error(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A TypeError (here: a backend that rejects an option) is pipeflow's bug or a
    bad option, not 'the remote failed': exit 3, traceback with --verbose."""
    from fsspec.implementations.local import LocalFileSystem

    _many_files(project, tmp_path)

    def rejects(self: object, *args: object, **kwargs: object) -> None:
        raise TypeError("makedirs() got an unexpected keyword argument 'some_bad_option'")

    monkeypatch.setattr(LocalFileSystem, "makedirs", rejects)
    res = project.run("push", "--verbose")
    assert res.code == 3, res.text
    assert "internal error: TypeError" in res.err and "Traceback" in res.err
