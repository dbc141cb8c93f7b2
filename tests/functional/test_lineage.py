"""``pipeflow lineage``: the tree, its formats, diffs between versions, damaged records."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import jsonschema

from tests.conftest import Project
from tests.functional.helpers import commit

SCHEMA = json.loads((Path(__file__).parents[2] / "docs/lineage.schema.json").read_text())

TRAIN_PY = """\
import sys
lr = float(sys.argv[1])
rows = open("data/prepared/rows.txt").read()
open("model.txt", "w").write(f"lr={lr}\\n" + rows)
"""


def ml_project(p: Project) -> None:
    """source data -> prepare (a folder) -> train (python) -> evaluate (metrics)."""
    p.git("config", "user.email", "auditor@example.com")
    p.params({"prep": {"n": 3}, "train": {"lr": 0.05}})
    p.write("data/raw.txt", "a\nb\nc\nd\n")
    p.write("train.py", TRAIN_PY)
    p.spec({
        "prepare": {
            "cmd": "mkdir -p data/prepared && head -n ${prep.n} data/raw.txt "
                   "> data/prepared/rows.txt",
            "deps": ["data/raw.txt"], "params": ["prep.n"], "outs": ["data/prepared"],
        },
        "train": {
            "cmd": "python train.py ${train.lr}", "deps": ["data/prepared/rows.txt"],
            "params": ["train.lr"], "outs": ["model.txt"],
        },
        "evaluate": {
            "cmd": "echo \"{\\\"lines\\\": $(wc -l < model.txt)}\" > metrics.json",
            "deps": ["model.txt"], "metrics": ["metrics.json"],
        },
    })
    assert p.run("add", "data/raw.txt").code == 0
    p.git("add", "-A")
    p.git("commit", "-qm", "pipeline")
    res = p.run("repro")
    assert res.code == 0, res.text
    commit(p, "results")  # vN labels number committed versions


def set_params(p: Project, n: int = 3, lr: float = 0.05) -> None:
    p.params({"prep": {"n": n}, "train": {"lr": lr}})


def test_lineage_tree_shows_every_run_down_to_the_source(project: Project) -> None:
    ml_project(project)
    commit = project.git("rev-parse", "HEAD~1").strip()  # the runs' commit
    res = project.run("lineage", "metrics.json")
    assert res.code == 0, res.text
    out = res.out
    lines = out.splitlines()
    assert lines[0].startswith("metrics.json  v1 (")
    for stage in ("evaluate", "train", "prepare"):
        assert f"── {stage} · run " in out
    assert "command  python train.py 0.05" in out
    assert "params   params.yaml: train.lr=0.05" in out
    assert "params   params.yaml: prep.n=3" in out
    assert "code     train.py (" in out
    assert "env      platform=" in out and "python=cpython-3." in out
    assert f"git      {commit[:12]}" in out
    assert "by       auditor@example.com (unverified) on " in out
    assert "data/prepared/rows.txt" in out and "in data/prepared v1" in out
    assert "data/raw.txt  v1 (" in out
    assert "source data, added by auditor@example.com (unverified)" in out
    assert "UNTRACKED" not in out
    # a file inside an output folder: traced to the run that made the folder
    sub = project.run("lineage", "data/prepared/rows.txt")
    assert sub.code == 0 and "── prepare · run" in sub.out and "── train" not in sub.out


def test_json_output_validates_against_the_documented_schema(project: Project) -> None:
    ml_project(project)
    res = project.run("lineage", "metrics.json", "--format", "json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    jsonschema.Draft202012Validator(SCHEMA).validate(body)
    runs = {r["stage"] or "add": r for r in body["runs"]}
    assert set(runs) == {"evaluate", "train", "prepare", "add"}
    assert runs["train"]["params"] == {"params.yaml": {"train.lr": 0.05}}
    assert runs["train"]["user"] == "auditor@example.com"
    assert runs["train"]["git"]["commit"] == project.git("rev-parse", "HEAD~1").strip()
    lock_run = project.lock()["stages"]["evaluate"]["run"]
    assert body["artifacts"][0]["producer"] == lock_run
    assert json.loads(project.run("lineage", "metrics.json", "--json").out) == body


def test_dot_mermaid_and_openlineage_formats(project: Project) -> None:
    ml_project(project)
    dot = project.run("lineage", "model.txt", "--format", "dot")
    assert dot.code == 0 and dot.out.startswith("digraph lineage {")
    assert dot.out.count(" -> ") == 5  # model, folder file, raw from runs; 2 inputs
    mermaid = project.run("lineage", "model.txt", "--format", "mermaid").out
    assert mermaid.startswith("flowchart BT") and mermaid.count(" --> ") == 5
    res = project.run("lineage", "metrics.json", "--format", "openlineage")
    events = [json.loads(line) for line in res.out.splitlines()]
    assert [e["job"]["name"] for e in events] == ["prepare", "train", "evaluate"]
    for e in events:
        assert e["eventType"] == "COMPLETE" and e["job"]["namespace"] == "pipeflow"
        assert uuid.UUID(e["run"]["runId"]) and e["producer"] and e["schemaURL"]
        assert {"pipeflow_params", "pipeflow_metrics", "pipeflow_fingerprint"} <= set(
            e["run"]["facets"])
        for facet in e["run"]["facets"].values():
            assert facet["_producer"] and facet["_schemaURL"]
    evaluate = events[2]
    assert evaluate["inputs"][0] == {**evaluate["inputs"][0], "namespace": "file",
                                     "name": "model.txt"}
    assert evaluate["run"]["facets"]["pipeflow_metrics"]["metrics"] == {
        "metrics.json": {"lines": 4}}
    assert evaluate["outputs"][0]["facets"]["pipeflow_version"]["label"] == "v1"
    bad = project.run("lineage", "model.txt", "--format", "svg")
    assert bad.code == 2 and "unknown format" in bad.err


def test_diff_shows_a_param_changed_two_stages_upstream(project: Project) -> None:
    ml_project(project)
    set_params(project, n=2)
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("lineage", "metrics.json@v1", "--diff", "v2")
    assert res.code == 0, res.text
    assert "metrics.json: v1 (" in res.out
    prepare = res.out.split("  prepare  (run ", 1)[1]
    assert "params params.yaml:prep.n: 3 -> 2" in prepare
    assert "data model.txt: v1 (" in res.out  # evaluate read another model
    assert "train.lr" not in res.out  # what did not change is not listed
    body = json.loads(project.run("lineage", "metrics.json@v1", "--diff", "v2", "--json").out)
    changes = [d for s in body["stages"] for d in s["differences"]]
    assert {"kind": "params", "subject": "params.yaml:prep.n", "old": 3, "new": 2} in [
        {k: d[k] for k in ("kind", "subject", "old", "new")} for d in changes]
    same = project.run("lineage", "metrics.json@v2", "--diff", "v2")
    assert same.code == 0 and "nothing differs" in same.out


def test_unknown_version_and_unknown_path(project: Project) -> None:
    ml_project(project)
    res = project.run("lineage", "model.txt@v9")
    assert res.code == 2
    assert "has no version 'v9'" in res.err and "v1 (" in res.err
    none = project.run("lineage", "nothing.txt")
    assert none.code == 2 and "'nothing.txt' has no recorded history" in none.err
    assert project.run("lineage", "model.txt", "--diff", "v7").code == 2


def test_a_damaged_record_is_marked_and_the_walk_goes_on(project: Project) -> None:
    ml_project(project)
    prepare_run = project.lock()["stages"]["prepare"]["run"]
    (record,) = (project.root / ".pipeflow/cache/runs").glob(f"*/*-{prepare_run}.json")
    data = bytearray(record.read_bytes())
    data[data.index(b"head -n 3")] = ord("H")  # one byte
    record.chmod(0o644)
    record.write_bytes(bytes(data))
    res = project.run("lineage", "metrics.json")
    assert res.code == 0, res.text
    assert "PROBLEM  run record" in res.out and "does not match its hash" in res.out
    assert "── prepare · run" in res.out
    assert "data/raw.txt  v1 (" in res.out  # and on past it to the source
    assert "1 problem(s) met on the way" in res.out
    # a fresh index cannot read the record at all: still no crash, and it says why
    (project.root / ".pipeflow/state/index.db").unlink()
    res = project.run("lineage", "metrics.json", "--format", "json")
    assert res.code == 0 and "damaged record(s)" in res.err
    body = json.loads(res.out)
    assert body["problems"]
    jsonschema.Draft202012Validator(SCHEMA).validate(body)


def test_lineage_of_a_restored_version_is_that_of_the_original_run(project: Project) -> None:
    ml_project(project)
    first = project.lock()["stages"]["train"]["run"]
    set_params(project, lr=0.07)
    project.run("repro")
    set_params(project, lr=0.05)
    res = project.run("repro")
    assert "from the run cache" in res.out
    body = json.loads(project.run("lineage", "model.txt", "--json").out)
    assert body["artifacts"][0]["producer"] == first
    assert body["artifacts"][0]["version"] == "v1"


def test_code_from_git_is_named_by_commit(project: Project) -> None:
    project.write("step.py", "open('out.txt', 'w').write('x')\n")
    project.write("extra.py", "X = 1\n")
    project.spec({"s": {"cmd": "python step.py", "deps": ["extra.py"], "outs": ["out.txt"]}})
    project.git("add", "-A")
    project.git("commit", "-qm", "code")
    commit = project.git("rev-parse", "HEAD").strip()
    project.write("extra.py", "X = 2\n")  # modified (tracked) when the run starts
    assert project.run("repro").code == 0
    text = project.run("lineage", "out.txt").out
    assert "step.py" in text and f"in git at {commit[:12]}" in text
    assert "modified in the workspace when the run started" in text
    assert "UNTRACKED INPUT" not in text
