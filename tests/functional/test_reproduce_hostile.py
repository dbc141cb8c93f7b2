"""``reproduce`` given what a hostile clone or remote could hand it: records naming
params files outside the project or pipeline.yaml itself, a committed link where the
scratch workspaces live, a version whose records are not here, a lying commit id, and
outputs whose every value differs. Nothing outside the scratch workspace is written,
no injected command runs, and nothing unproven is called reproduced (issue 15, review)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path
from typing import Any

from pipeflow.project.project import Project as Core
from pipeflow.records.records import RecordBody, iso
from tests.conftest import Project
from tests.functional.helpers import commit


def _copy_stage(p: Project) -> None:
    assert p.run("init").code == 0
    p.params({"k": 1})
    p.write("data.txt", "x\n")
    p.spec({"copy": {"cmd": "cp data.txt out.txt", "deps": ["data.txt"], "params": ["k"],
                     "outs": ["out.txt"]}})
    assert p.run("repro").code == 0
    commit(p, "v1")


def _forge(p: Project, change: dict[str, Any]) -> str:
    """Append to the clone's chain a copy of the stage's record, as another clone could
    push one: a new version of out.txt (hash 0...0) made with ``change`` applied to its
    components. Returns the new version's hash."""
    with Core(p.root) as repo:
        rid = repo.index.db.execute("SELECT id FROM runs WHERE kind = 'run'").fetchone()[0]
        data = repo.index.record(rid).body.to_json()
        for key in ("format", "chain", "seq", "prev"):
            data.pop(key, None)
        data["outputs"][0]["hash"] = "0" * 32
        data["started"] = data["ended"] = iso(time.time())
        data["components"].update(change.pop("components", {}))
        data.update(change)
        repo.index.add(repo.records.append(RecordBody.from_json(data)))
    return "0" * 32


def test_a_record_naming_pipeline_yaml_as_a_params_file_runs_nothing_injected(
        project: Project, tmp_path: Path) -> None:
    _copy_stage(project)
    flag = tmp_path / "injected"
    head = project.git("rev-parse", "HEAD").strip()
    _forge(project, {"git": {"commit": head, "dirty_paths": []}, "components": {"params": {
        "params.yaml": {"k": 1},
        "pipeline.yaml": {"stages.copy.cmd": f"touch {flag}; cp data.txt out.txt"}}}})
    before = {rel: project.read(rel) for rel in ("params.yaml", "pipeline.yaml")}

    res = project.run("reproduce", "out.txt@00000000", "--json")

    assert res.code == 1, res.text
    stage = json.loads(res.out)["stages"][0]
    assert stage["verdict"] == "cannot-reproduce"
    assert "pipeline.yaml" in stage["reason"] and "does not declare" in stage["reason"]
    assert not flag.exists()
    assert {rel: project.read(rel) for rel in before} == before
    assert project.git("status", "--porcelain") == ""


def test_a_record_naming_a_params_file_outside_the_project_is_never_used(
        project: Project, tmp_path: Path) -> None:
    import hashlib

    from pipeflow.records.records import canonical

    _copy_stage(project)
    outside = tmp_path / "outside.yaml"
    outside.write_text("k: 1\n")
    with Core(project.root) as repo:
        rid = repo.index.db.execute("SELECT id FROM runs WHERE kind = 'run'").fetchone()[0]
        data = repo.index.record(rid).body.to_json()
        runs = repo.records.runs
    # another clone's chain, pushed to the remote and fetched: well formed, its id right
    data.update(chain="e" * 16, seq=1, prev=None, started=iso(time.time()))
    data["outputs"][0]["hash"] = "0" * 32
    data["components"]["params"] = {"../params.yaml": {"k": 666}, str(outside): {"k": 666}}
    raw = canonical(data)
    (runs / ("e" * 16)).mkdir()
    (runs / ("e" * 16) / f"00000001-{hashlib.sha256(raw).hexdigest()}.json").write_bytes(raw)

    res = project.run("reproduce", "out.txt@00000000")

    assert res.code == 2, res.text  # the record is refused: no such version here
    assert "components.params" in res.err and "skipped" in res.err
    assert outside.read_text() == "k: 1\n"
    assert project.read("params.yaml") == "k: 1\n"
    assert project.git("status", "--porcelain") == ""


def test_a_committed_link_where_scratch_workspaces_live_deletes_nothing(
        project: Project, tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    (victim / "keep").mkdir(parents=True)
    (victim / "keep" / "f").write_text("precious\n")
    _copy_stage(project)
    (project.root / ".pipeflow/tmp").mkdir(exist_ok=True)
    (project.root / ".pipeflow/tmp/reproduce").symlink_to(victim)

    res = project.run("reproduce", "out.txt@v1")

    assert res.code == 2, res.text
    assert ".pipeflow/tmp/reproduce is a symlink" in res.text
    assert (victim / "keep" / "f").read_text() == "precious\n"


def test_a_version_whose_records_are_not_here_is_not_called_reproduced(
        project: Project, tmp_path: Path) -> None:
    _copy_stage(project)
    clone = Project(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone.root)], check=True)

    res = clone.run("reproduce", "out.txt")

    assert res.code == 2, res.text
    assert "reproduced" not in res.out
    assert "pipeflow fetch" in res.text
    assert not list(clone.root.glob(".pipeflow/cache/runs/*/*.json"))  # nothing recorded


def test_a_recorded_commit_that_is_not_a_commit_id_is_never_given_to_git(
        project: Project) -> None:
    _copy_stage(project)
    project.write("data.txt", "changed\n")
    commit(project, "HEAD~1 would name v1's commit")
    oid = _forge(project, {"git": {"commit": "HEAD~1", "dirty_paths": []}})

    res = project.run("reproduce", f"out.txt@{oid[:8]}", "--json")

    body = json.loads(res.out)
    assert res.code == 1
    assert body["commit"] is None
    assert body["stages"][0]["verdict"] == "cannot-reproduce"


def test_a_csv_whose_every_cell_differs_keeps_the_record_small(project: Project) -> None:
    project.write("make.py", "import random\n"
                            "with open('table.csv', 'w') as f:\n"
                            "    f.write('a,b\\n')\n"
                            "    for i in range(3000):\n"
                            "        f.write(f'{random.random()},{random.random()}\\n')\n")
    project.write("data.txt", "x\n")
    project.spec({"make": {"cmd": "python make.py", "deps": ["data.txt", "make.py"],
                           "outs": ["table.csv"]}})
    commit(project, "code")
    assert project.run("repro").code == 0
    commit(project, "v1")

    res = project.run("reproduce", "table.csv@v1", "--json")

    assert res.code == 1
    (out,) = json.loads(res.out)["stages"][0]["outputs"]
    assert len(out["values"]) == 100
    assert "more values differ" in out["note"]
    assert project.run("verify").code == 0
    assert "differs on" in project.run("lineage", "table.csv@v1").out


def test_deterministic_false_without_metrics_proves_nothing(project: Project) -> None:
    project.write("data.txt", "x\n")
    project.spec({"noise": {"cmd": "head -c 64 /dev/urandom > model.bin",
                            "deps": ["data.txt"], "outs": ["model.bin"],
                            "deterministic": False}})
    commit(project, "code")
    assert project.run("repro").code == 0
    commit(project, "v1")

    res = project.run("reproduce", "model.bin@v1", "--json")

    assert res.code == 1, res.text
    assert json.loads(res.out)["stages"][0]["verdict"] == "differs"


def test_a_commit_making_the_project_folder_a_link_empties_nothing(tmp_path: Path) -> None:
    """The project is a subfolder of its repository; a fetched commit makes that
    subfolder a link to another folder; a record names the commit. The workspace's
    ``.pipeflow`` is never emptied through the link."""
    import os

    victim = tmp_path / "victim"
    (victim / ".pipeflow").mkdir(parents=True)
    (victim / ".pipeflow" / "keep").write_text("precious\n")
    repo = tmp_path / "repo"
    (repo / "proj").mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
           "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x"}

    def git(*args: str, stdin: str | None = None) -> str:
        return subprocess.run(["git", *args], cwd=repo, env=env, check=True, text=True,
                              input=stdin, capture_output=True).stdout.strip()

    git("init", "-q", "-b", "main")
    p = Project(repo / "proj")
    assert p.run("init").code == 0
    p.spec({"s": {"cmd": "echo hi > o.txt", "outs": ["o.txt"]}})
    p.write(".gitignore", "o.txt\n")
    git("add", "-A")
    git("commit", "-qm", "base")
    assert p.run("repro").code == 0
    git("add", "-A")
    git("commit", "-qm", "v1")
    link = git("hash-object", "-w", "--stdin", stdin=str(victim))
    tree = git("mktree", stdin=f"120000 blob {link}\tproj\n")
    evil = git("commit-tree", tree, "-p", "HEAD", "-m", "evil")
    oid = _forge(p, {"git": {"commit": evil, "dirty_paths": []}})

    res = p.run("reproduce", f"o.txt@{oid[:8]}")

    assert (victim / ".pipeflow" / "keep").read_text() == "precious\n"
    assert (repo / "proj" / ".pipeflow" / "config").exists()
    assert res.code == 1, res.text
    assert "is a link" in res.text
    assert git("worktree", "list").count("\n") == 0
