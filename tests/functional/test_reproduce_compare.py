"""compare_output through a real project's cache: two versions of a stage's outputs,
the recorded one (cached by a first repro) against the one a later run produced."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from pipeflow.content.hashing import hash_file
from pipeflow.project.project import Project as CoreProject
from pipeflow.records.runrecord import OutputKind, OutputRef
from pipeflow.reproduce.compare import NOT_BYTES, NOT_CACHED, compare_output
from tests.conftest import Project

GEN = """\
import json, os, yaml
noise = yaml.safe_load(open("params.yaml"))["noise"]
json.dump({"accuracy": 0.912 + noise, "per": [{"f1": 0.5}], "n": 10}, open("metrics.json", "w"))
blob = bytearray(3 * 1024 * 1024)
if noise:
    blob[2_500_000] = 1
open("model.bin", "wb").write(bytes(blob))
os.makedirs("report", exist_ok=True)
json.dump({"f1": 0.7 * (1 + noise)}, open("report/scores.json", "w"))
open("report/blob.bin", "wb").write(b"x" if noise else b"y")
open("report/same.txt", "w").write("same")
"""


def _outs(p: Project) -> dict[str, OutputRef]:
    stage = p.lock()["stages"]["make"]
    return {e["path"]: OutputRef(e["path"], e["hash"], e.get("size"), bool(e.get("isdir")),
                                 e.get("nfiles"), OutputKind(kind))
            for kind, entries in (("out", stage["outs"]), ("metric", stage["metrics"]))
            for e in entries}


@pytest.fixture
def versions(project: Project) -> tuple[Project, dict[str, OutputRef], dict[str, OutputRef]]:
    """``make`` run at noise 0 (recorded) then at noise 1e-9 (produced, in the
    workspace): both versions in the cache."""
    project.write("gen.py", GEN)
    project.params({"noise": 0})
    project.spec({"make": {"cmd": "python gen.py", "deps": ["gen.py"], "params": ["noise"],
                           "outs": ["model.bin", "report"], "metrics": ["metrics.json"]}})
    assert project.run("repro").code == 0
    recorded = _outs(project)
    project.params({"noise": 1e-9})
    assert project.run("repro").code == 0
    return project, recorded, _outs(project)


def _compare(p: Project, recorded: OutputRef, produced: OutputRef | None, **kw: Any) -> Any:
    with CoreProject(p.root) as repo:
        return compare_output(repo, recorded, produced, workspace=p.root, **kw)


def test_metrics_values_are_listed_with_their_relative_difference(versions: Any) -> None:
    p, old, new = versions
    diff = _compare(p, old["metrics.json"], new["metrics.json"])
    assert not diff.same and diff.within_tolerance is None
    assert [(v.key, v.recorded) for v in diff.values] == [("accuracy", 0.912)]
    assert diff.values[0].produced == pytest.approx(0.912 + 1e-9)
    assert diff.values[0].relative == pytest.approx(1e-9 / 0.912)
    assert _compare(p, old["metrics.json"], new["metrics.json"],
                    tolerance=1e-6).within_tolerance is True
    assert _compare(p, old["metrics.json"], new["metrics.json"],
                    tolerance=1e-12).within_tolerance is False


def test_other_files_give_sizes_and_the_first_differing_byte(versions: Any) -> None:
    p, old, new = versions
    diff = _compare(p, old["model.bin"], new["model.bin"])
    assert (diff.first_byte, diff.recorded_size, diff.produced_size) == \
        (2_500_000, 3 << 20, 3 << 20)
    assert diff.values == () and diff.note is None
    loose = _compare(p, old["model.bin"], new["model.bin"], tolerance=1e-6)
    assert (loose.first_byte, loose.within_tolerance, loose.note) == (None, None, NOT_BYTES)


def test_a_folder_lists_its_differing_files_and_its_one_metrics_file(versions: Any) -> None:
    p, old, new = versions
    diff = _compare(p, old["report"], new["report"])
    assert diff.files == ("blob.bin", "scores.json")
    assert [(v.key, v.file, v.recorded) for v in diff.values] == [("f1", "scores.json", 0.7)]
    assert _compare(p, old["report"], new["report"], tolerance=1e-6).within_tolerance
    assert not _compare(p, old["report"], new["report"], tolerance=1e-12).within_tolerance


def test_a_produced_folder_not_in_the_cache_is_hashed_in_the_workspace(
        versions: Any) -> None:
    p, old, _new = versions
    (p.root / "report" / "extra.txt").write_text("new")
    produced = OutputRef("report", "0" * 32, None, True, 4)
    diff = _compare(p, old["report"], produced, tolerance=1e-6)
    assert diff.files == ("blob.bin", "extra.txt", "scores.json")
    assert diff.within_tolerance is False  # a file was added


def test_same_hash_and_a_missing_output(versions: Any) -> None:
    p, old, _new = versions
    same = _compare(p, old["model.bin"], old["model.bin"])
    assert same.same and same.values == () and same.first_byte is None
    gone = _compare(p, old["model.bin"], None, tolerance=1e-6)
    assert (gone.same, gone.produced, gone.within_tolerance) == (False, None, False)
    assert gone.note == "the stage did not write it"


def test_a_recorded_version_gone_from_the_cache(versions: Any) -> None:
    p, old, new = versions
    with CoreProject(p.root) as repo:
        for path in ("model.bin", "metrics.json"):
            repo.store.remove(old[path].hash)
    diff = _compare(p, old["model.bin"], new["model.bin"])
    assert (diff.first_byte, diff.note, diff.produced_size) == (None, NOT_CACHED, 3 << 20)
    kept = {"accuracy": 0.912, "n": 10, "per.0.f1": 0.5}  # what the record keeps
    diff = _compare(p, old["metrics.json"], new["metrics.json"], recorded_metrics=kept)
    assert [v.key for v in diff.values] == ["accuracy"] and diff.note is None
    diff = _compare(p, old["metrics.json"], new["metrics.json"], tolerance=1e-6)
    assert (diff.note, diff.within_tolerance) == (NOT_CACHED, False)


def test_a_metrics_file_that_no_longer_parses_is_said_and_compared_by_bytes(
        versions: Any) -> None:
    p, old, _new = versions
    path = p.root / "metrics.json"
    path.write_text('{"accuracy": 0.9')
    produced = OutputRef("metrics.json", hash_file(path), path.stat().st_size,
                         kind=OutputKind.METRIC)
    diff = _compare(p, old["metrics.json"], produced, tolerance=1e-6)
    assert "metrics.json" in diff.note and "not valid JSON" in diff.note
    assert diff.first_byte == len('{"accuracy": 0.9')  # the produced file ends there
    assert diff.within_tolerance is False and diff.values == ()


def test_a_large_file_is_streamed_not_read_whole(versions: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A file bigger than memory would allow is compared chunk by chunk: no read asks
    for more than a chunk."""
    p, old, new = versions
    import pipeflow.reproduce.compare as compare

    real_open, sizes = open, []

    class Spy:
        def __init__(self, f: Any) -> None:
            self.f = f

        def __enter__(self) -> Spy:
            return self

        def __exit__(self, *exc: object) -> None:
            self.f.close()

        def read(self, n: int = -1) -> bytes:
            sizes.append(n)
            return bytes(self.f.read(n))

    monkeypatch.setattr(compare, "open", lambda *a, **k: Spy(real_open(*a, **k)),
                        raising=False)
    diff = _compare(p, old["model.bin"], new["model.bin"])
    assert diff.first_byte == 2_500_000
    assert os.path.getsize(p.root / "model.bin") > compare.CHUNK
    assert len(sizes) == 6 and all(0 < n <= compare.CHUNK for n in sizes)  # 3 each


def test_a_metrics_file_too_large_to_parse_is_compared_by_bytes(
        versions: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    p, old, new = versions
    import pipeflow.reproduce.compare as compare

    monkeypatch.setattr(compare, "max_metrics_bytes", lambda: 10)
    diff = _compare(p, old["metrics.json"], new["metrics.json"], tolerance=1e-6)
    assert diff.values == () and diff.first_byte == len('{"accuracy": 0.912')
    assert "compared by bytes" in diff.note and diff.within_tolerance is False


def test_the_same_values_written_differently_are_said(versions: Any) -> None:
    p, old, _new = versions
    path = p.root / "metrics.json"
    path.write_text('{"n": 10, "per": [{"f1": 0.5}],\n "accuracy": 0.912}')
    produced = OutputRef("metrics.json", hash_file(path), path.stat().st_size,
                         kind=OutputKind.METRIC)
    diff = _compare(p, old["metrics.json"], produced, tolerance=0.0)
    assert (diff.values, diff.within_tolerance) == ((), True)
    assert diff.note is not None and "formatting or key order" in diff.note


def test_a_folder_whose_files_are_the_same_says_so(versions: Any, tmp_path: Path) -> None:
    p, old, _new = versions
    with CoreProject(p.root) as repo:
        for entry in repo.store.manifest(old["report"].hash).entries:
            target = tmp_path / "report" / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(repo.store.path_of(entry.hash).read_bytes())
            target.chmod(0o755)
        produced = OutputRef("report", "0" * 32, None, True, 3)
        diff = compare_output(repo, old["report"], produced, workspace=tmp_path,
                              tolerance=1e-6)
    assert (diff.files, diff.values, diff.within_tolerance) == ((), (), True)
    assert diff.note == "the same files: only an executable bit differs"
