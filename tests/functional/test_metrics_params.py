"""``metrics show|diff`` and ``params diff``: values from locks, compared across git."""

from __future__ import annotations

import json
import shutil

from tests.conftest import Project
from tests.functional.helpers import chain


def committed_chain(p: Project) -> None:
    chain(p)
    assert p.run("repro").code == 0
    p.git("add", "-A")
    p.git("commit", "-qm", "first run")


def set_params(p: Project, n: int = 3, lr: float = 0.05, k: int = 1) -> None:
    p.params({"prep": {"n": n}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": k}})


def test_metrics_show_reads_the_lock(project: Project) -> None:
    committed_chain(project)
    res = project.run("metrics", "show")
    assert res.code == 0, res.text
    assert res.out.splitlines()[0].split() == ["path", "metric", "value", "stage"]
    assert "metrics.json  k       1      evaluate" in res.out
    body = json.loads(project.run("metrics", "show", "--json").out)
    assert body["schema"] == 1
    assert body["metrics"][0]["values"] == {"k": 1, "lines": 4}
    assert body["metrics"][0]["stage"] == "evaluate"


def test_metrics_show_all_versions(project: Project) -> None:
    committed_chain(project)
    set_params(project, k=5)
    assert project.run("repro").code == 0
    body = json.loads(project.run("metrics", "show", "--all-versions", "--json").out)
    rows = [(m["version"], m["values"]["k"], m["current"]) for m in body["metrics"]]
    local = f"local:{body['metrics'][1]['hash'][:8]}"
    assert rows == [("v1", 1, False), (local, 5, True)]  # not committed yet
    project.git("commit", "-qam", "k=5")
    text = project.run("metrics", "show", "--all-versions").out
    assert "*  metrics.json  v2" in text


def test_metrics_diff_against_a_git_revision_needs_no_cache(project: Project) -> None:
    committed_chain(project)
    set_params(project, n=2, k=3)
    assert project.run("repro").code == 0
    # the comparison reads pipeline.lock at HEAD through git: no pull, no cache
    shutil.rmtree(project.root / ".pipeflow/cache")
    res = project.run("metrics", "diff")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0].split() == ["path", "metric", "HEAD", "workspace", "change"]
    assert lines[1].split() == ["metrics.json", "k", "1", "3", "+2"]
    assert lines[2].split() == ["metrics.json", "lines", "4", "3", "-1"]
    body = json.loads(project.run("metrics", "diff", "HEAD", "--json").out)
    assert body["rev"] == "HEAD" and body["lock_at_rev"] is True
    assert {c["key"]: (c["old"], c["new"], c["delta"]) for c in body["changes"]} == {
        "k": (1, 3, 2.0), "lines": (4, 3, -1.0)}
    project.git("add", "-A")
    project.git("commit", "-qm", "second")
    assert "no metrics changed since HEAD" in project.run("metrics", "diff").out
    older = json.loads(project.run("metrics", "diff", "HEAD~1", "--json").out)
    assert len(older["changes"]) == 2
    everything = json.loads(project.run("metrics", "diff", "--all", "--json").out)
    assert len(everything["changes"]) == 2 and all(
        c["old"] == c["new"] for c in everything["changes"])


def test_metrics_diff_bad_revision_and_revision_without_a_lock(project: Project) -> None:
    project.write("README", "x\n")
    project.git("add", "README")
    project.git("commit", "-qm", "before pipeflow")
    committed_chain(project)
    bad = project.run("metrics", "diff", "no-such-branch")
    assert bad.code == 2 and "'no-such-branch' is not a git revision" in bad.err
    res = project.run("metrics", "diff", "HEAD~1")
    assert res.code == 0 and "has no pipeline.lock" in res.err
    assert "metrics.json  k" in res.out


def test_params_diff_compares_the_lock_at_rev_with_the_params_files(project: Project) -> None:
    committed_chain(project)
    assert "no params changed since HEAD" in project.run("params", "diff").out
    set_params(project, lr=0.07)  # edited, not yet run
    res = project.run("params", "diff")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    assert lines[0].split() == ["param", "HEAD", "workspace", "stages"]
    assert lines[1].split() == ["params.yaml:train.lr", "0.05", "0.07", "train"]
    assert len(lines) == 2
    body = json.loads(project.run("params", "diff", "--json").out)
    assert body["changes"] == [{"file": "params.yaml", "key": "train.lr", "old": 0.05,
                                "new": 0.07, "stages": ["train"]}]
    full = json.loads(project.run("params", "diff", "--all", "--json").out)
    assert {c["key"] for c in full["changes"]} == {"prep.n", "train.lr", "train.epochs",
                                                   "eval.k"}
    assert project.run("params", "diff", "nope").code == 2
