"""Run records and the run cache."""

from __future__ import annotations

import hashlib
import json

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def _records(p: Project) -> list[dict]:  # type: ignore[type-arg]
    folder = p.root / ".pipeflow/cache/runs"
    out = []
    for path in sorted(folder.glob("*/*.json")):
        data = path.read_bytes()
        assert hashlib.sha256(data).hexdigest() == path.stem.split("-")[1]
        out.append(json.loads(data))
    return out


def test_every_run_writes_a_chained_record_named_by_the_lock(project: Project) -> None:
    chain(project)
    project.git("config", "user.email", "auditor@example.com")
    project.git("add", "-A")
    project.git("commit", "-qm", "start")
    assert project.run("repro").code == 0
    records = _records(project)
    assert [r["stage"] for r in records] == ["prepare", "train", "evaluate"]
    assert [r["seq"] for r in records] == [1, 2, 3]
    assert records[0]["prev"] is None
    first = records[0]
    assert first["kind"] == "run" and first["exit_status"] == 0
    assert first["git"]["commit"] == project.git("rev-parse", "HEAD").strip()
    assert first["user"] == "auditor@example.com"
    assert first["components"]["params"] == {"params.yaml": {"prep.n": 3}}
    assert first["outputs"][0]["path"] == "data/prepared.txt"
    assert first["pipeflow_version"]
    assert records[2]["metrics"] == {"metrics.json": {"k": 1, "lines": 4}}
    lock = project.lock()
    files = sorted((project.root / ".pipeflow/cache/runs").glob("*/*.json"))
    ids = [f.stem.split("-")[1] for f in files]
    assert records[1]["prev"] == ids[0]
    assert lock["stages"]["train"]["run"] == ids[1]


def test_failed_runs_are_recorded_too(project: Project) -> None:
    project.spec({"bad": {"cmd": "exit 4", "outs": ["x"]}})
    assert project.run("repro").code == 1
    (record,) = _records(project)
    assert record["exit_status"] == 4
    assert "outputs" not in record


def test_reverting_params_restores_from_the_run_cache(project: Project) -> None:
    chain(project)
    project.run("repro")
    first_model = project.read("models/model.txt")
    runs(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    project.run("repro")
    assert runs(project) == ["train", "evaluate"]
    assert project.read("models/model.txt") != first_model
    project.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    res = project.run("repro")
    assert res.code == 0, res.text
    assert runs(project) == []  # neither command ran
    assert "from the run cache" in res.out
    assert project.read("models/model.txt") == first_model
    assert project.run("status", "--check").code == 0
    kinds = [r["kind"] for r in _records(project)]
    assert kinds[-2:] == ["restore", "restore"]
    restore = _records(project)[-1]
    assert restore["source_run"]


def test_run_cache_is_skipped_for_uncacheable_stages(project: Project) -> None:
    project.write("in.txt", "a\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && cp in.txt o.txt", "deps": ["in.txt"],
                        "outs": [{"o.txt": {"persist": True}}]}})
    project.run("repro")
    project.write("in.txt", "b\n")
    project.run("repro")
    project.write("in.txt", "a\n")
    project.run("repro")
    assert runs(project) == ["s", "s", "s"]
