"""Lineage walks over hand-written run records: producers, folders, restores, damage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from pipeflow.lineage.diff import diff_lineages
from pipeflow.lineage.graph import Lineage, trace
from pipeflow.records.index import RunIndex
from pipeflow.records.records import RecordBody, RecordStore, RunRecord


def h(text: str) -> str:
    """A fake 32-hex content hash."""
    return (text.encode().hex() + "0" * 32)[:32]


class History:
    """Records written straight through RecordStore, indexed as they are written."""

    def __init__(self, tmp: Path) -> None:
        self.store = RecordStore(tmp / "cache", tmp / "chain")
        self.index = RunIndex(tmp / "index.db", self.store)
        self.clock = 0

    def _time(self) -> str:
        self.clock += 1
        return f"2024-01-01T00:00:{self.clock:02d}.000+00:00"

    def run(
        self, stage: str, deps: dict[str, str], outs: dict[str, str], *,
        params: dict[str, Any] | None = None, cmd: str = "", exit_status: int = 0,
        isdir: tuple[str, ...] = (), code: dict[str, str] | None = None,
    ) -> RunRecord:
        t = self._time()
        body = {
            "kind": "run", "stage": stage, "fingerprint": h(stage + t),
            "components": {
                "cmd": [cmd or f"make {stage}"],
                "deps": [{"path": p, "hash": oid, "size": 1} for p, oid in deps.items()],
                "params": {"params.yaml": params or {}},
                "code": [{"path": p, "hash": oid, "size": 1} for p, oid in (code or {}).items()],
                "env": {"platform": "linux-x86_64"}, "outs": list(outs),
            },
            "command": [cmd or f"make {stage}"], "exit_status": exit_status,
            "started": t, "ended": t, "duration": 0.5, "user": "ann@example.com",
            "host": "box", "pipeflow_version": "0.1.0",
            "git": {"commit": "c0ffee" * 6 + "abcd", "dirty_paths": ["params.yaml"]},
            "env_exact": {"platform": "linux-x86_64", "python": "cpython-3.11.7"},
            "outputs": [{"path": p, "hash": oid, "size": 1, "kind": "out",
                         **({"isdir": True, "nfiles": 2} if p in isdir else {})}
                        for p, oid in outs.items()] if exit_status == 0 else [],
            "metrics": {},
        }
        return self._append(body)

    def add(self, path: str, oid: str) -> RunRecord:
        t = self._time()
        return self._append({
            "kind": "add", "stage": "", "fingerprint": "", "exit_status": 0, "started": t,
            "ended": t, "duration": 0.0, "user": "ann@example.com", "host": "box",
            "git": {"commit": None, "dirty_paths": []},
            "outputs": [{"path": path, "hash": oid, "size": 3, "kind": "source"}]})

    def restore(self, source: RunRecord) -> RunRecord:
        t = self._time()
        return self._append({
            "kind": "restore", "stage": source.stage, "fingerprint": source.fingerprint,
            "components": source.to_json()["components"], "command": source.to_json()["command"],
            "exit_status": 0, "started": t, "ended": t, "duration": 0.0,
            "source_run": source.id, "outputs": source.to_json()["outputs"], "metrics": {}})

    def _append(self, body: dict[str, Any]) -> RunRecord:
        record = self.store.append(RecordBody.from_json(body))
        self.index.add(record)
        return record

    def tamper(self, record: RunRecord) -> None:
        path = self.store.runs / record.rel_path
        data = bytearray(path.read_bytes())
        data[data.index(b"make")] = ord("M")
        path.write_bytes(bytes(data))


@pytest.fixture
def hist(tmp_path: Path) -> History:
    return History(tmp_path)


def stages(lineage: Lineage) -> list[str]:
    return [r.stage or "add" for r in lineage.runs.values()]


def test_walks_from_output_to_source(hist: History) -> None:
    hist.add("raw.csv", h("raw"))
    prep = hist.run("prepare", {"raw.csv": h("raw")}, {"clean.csv": h("clean")},
                    params={"prep.n": 3})
    train = hist.run("train", {"clean.csv": h("clean"), "extra.txt": h("extra")},
                     {"model.pkl": h("model")}, params={"lr": 0.1},
                     code={"train.py": h("code")})
    lin = trace(hist.index, "model.pkl", h("model"))
    assert lin.target == f"model.pkl@{h('model')}"
    assert stages(lin) == ["train", "prepare", "add"]
    root = lin.root
    assert root.version == "v1" and root.status == "output" and root.producer == train.id
    run = lin.runs[train.id]
    assert run.params == {"params.yaml": {"lr": 0.1}}
    assert run.code[0].path == "train.py"
    assert run.env["python"] == "cpython-3.11.7"  # exact versions, not the fingerprint's
    assert run.git_commit and run.dirty_paths == ("params.yaml",)
    assert lin.artifacts[f"clean.csv@{h('clean')}"].producer == prep.id
    assert lin.artifacts[f"raw.csv@{h('raw')}"].status == "source"
    extra = lin.artifacts[f"extra.txt@{h('extra')}"]
    assert extra.status == "untracked" and extra.producer is None
    assert lin.problems == []


def test_current_version_follows_the_named_run_and_counts_others(hist: History) -> None:
    first = hist.run("train", {}, {"model.pkl": h("m")}, params={"seed": 1})
    second = hist.run("train", {}, {"model.pkl": h("m")}, params={"seed": 2})
    by_default = trace(hist.index, "model.pkl", h("m"))
    assert by_default.root.producer == first.id and by_default.root.runs == 2
    named = trace(hist.index, "model.pkl", h("m"), run_id=second.id)
    assert named.root.producer == second.id


def test_failed_runs_never_produce(hist: History) -> None:
    hist.run("train", {}, {"model.pkl": h("m")}, exit_status=1)
    lin = trace(hist.index, "model.pkl", h("m"))
    assert lin.root.status == "untracked"


def test_file_inside_an_output_folder_is_traced_to_the_folder_version(hist: History) -> None:
    old = hist.run("split", {}, {"data/parts": h("parts1")}, isdir=("data/parts",))
    new = hist.run("split", {}, {"data/parts": h("parts2")}, isdir=("data/parts",))
    hist.run("train", {"data/parts/a.csv": h("a1")}, {"model.pkl": h("m")})
    listings = {h("parts1"): {"a.csv": h("a1"), "b.csv": h("b")},
                h("parts2"): {"a.csv": h("a2"), "b.csv": h("b")}}
    lin = trace(hist.index, "model.pkl", h("m"), manifests=listings.get)
    art = lin.artifacts[f"data/parts/a.csv@{h('a1')}"]
    assert art.within is not None and art.within.hash == h("parts1")
    assert art.within.version == "v1" and art.producer == old.id
    assert new.id not in lin.runs
    # without the folder's contents it can only match by path, and says so
    blind = trace(hist.index, "model.pkl", h("m"))
    art = blind.artifacts[f"data/parts/a.csv@{h('a1')}"]
    assert art.within is not None and art.note and "matched by path only" in art.note


def test_restores_are_followed_to_the_run_they_restored(hist: History) -> None:
    hist.add("raw", h("raw"))
    original = hist.run("train", {"raw": h("raw")}, {"model.pkl": h("m")})
    restore = hist.restore(original)
    lin = trace(hist.index, "model.pkl", h("m"), run_id=restore.id)
    run = lin.runs[lin.root.producer or ""]
    assert run.id == original.id and run.restored_by == restore.id
    assert stages(lin) == ["train", "add"]


def test_a_damaged_record_is_marked_and_the_walk_goes_on(hist: History) -> None:
    hist.add("raw", h("raw"))
    prep = hist.run("prepare", {"raw": h("raw")}, {"clean": h("clean")}, params={"n": 3})
    hist.run("train", {"clean": h("clean")}, {"model": h("m")})
    hist.tamper(prep)
    lin = trace(hist.index, "model", h("m"))
    run = lin.runs[prep.id]
    assert run.problem and "does not match its hash" in run.problem
    assert run.params == {"params.yaml": {"n": 3}}  # as the index remembers it
    assert stages(lin) == ["train", "prepare", "add"]  # and on to the source
    assert len(lin.problems) == 1


def test_a_record_missing_from_the_clone_is_marked(hist: History) -> None:
    train = hist.run("train", {}, {"model": h("m")})
    (hist.store.runs / train.rel_path).unlink()
    fresh = RunIndex(hist.store.runs.parent / "fresh.db", hist.store)
    fresh.refresh()
    lin = trace(fresh, "model", h("m"), run_id=train.id)
    assert lin.runs[train.id].problem == f"run record {train.id[:12]} is missing from this clone"


def test_diff_names_a_param_changed_two_stages_upstream(hist: History) -> None:
    hist.add("raw", h("raw"))
    hist.run("prepare", {"raw": h("raw")}, {"clean": h("c1")}, params={"n": 3})
    hist.run("train", {"clean": h("c1")}, {"model": h("m1")}, params={"lr": 0.1})
    hist.run("evaluate", {"model": h("m1")}, {"score": h("s1")})
    hist.run("prepare", {"raw": h("raw")}, {"clean": h("c2")}, params={"n": 4})
    hist.run("train", {"clean": h("c2")}, {"model": h("m2")}, params={"lr": 0.1})
    hist.run("evaluate", {"model": h("m2")}, {"score": h("s2")}, cmd="make evaluate --v2")
    old = trace(hist.index, "score", h("s1"))
    new = trace(hist.index, "score", h("s2"))
    found = diff_lineages(old, new)
    assert found and (found.old_version, found.new_version) == ("v1", "v2")
    by_stage = {s.stage: s for s in found.stages}
    prep = [d.message for d in by_stage["prepare"].differences]
    assert prep == ["params params.yaml:n: 3 -> 4"]
    train = [d.message for d in by_stage["train"].differences]
    assert train == [f"data clean: v1 ({h('c1')[:8]}) -> v2 ({h('c2')[:8]})"]
    evaluate = {d.kind for d in by_stage["evaluate"].differences}
    assert evaluate == {"command", "data"}
    assert not diff_lineages(old, old)


def test_diff_reports_stages_present_on_one_side(hist: History) -> None:
    hist.run("train", {}, {"model": h("m1")})
    hist.run("prepare", {}, {"clean": h("c")})
    hist.run("train", {"clean": h("c")}, {"model": h("m2")})
    found = diff_lineages(trace(hist.index, "model", h("m1")),
                          trace(hist.index, "model", h("m2")))
    messages = [d.message for s in found.stages for d in s.differences]
    assert "stage 'prepare' is only in the new history" in messages


def test_shared_inputs_are_expanded_once(hist: History) -> None:
    hist.add("raw", h("raw"))
    hist.run("left", {"raw": h("raw")}, {"l": h("l")})
    hist.run("right", {"raw": h("raw")}, {"r": h("r")})
    hist.run("join", {"l": h("l"), "r": h("r")}, {"out": h("o")})
    lin = trace(hist.index, "out", h("o"))
    assert stages(lin) == ["join", "left", "add", "right"]
    assert len(lin.artifacts) == 4


def test_a_loop_of_records_does_not_hang(hist: History) -> None:
    # Not something pipeflow writes; a hand-edited history must still terminate.
    hist.run("a", {"y": h("y")}, {"x": h("x")})
    hist.run("b", {"x": h("x")}, {"y": h("y")})
    lin = trace(hist.index, "x", h("x"))
    assert stages(lin) == ["a", "b"]
