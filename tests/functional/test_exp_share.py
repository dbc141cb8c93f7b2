"""Experiments are shared with the team (issue 13, item 6): Alice runs one and pushes;
Bob fetches, sees it, and applies it in his clone without a stage running — the
outputs come from the folder remote, the stages from the run cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from pipeflow.lineage.experiments import experiments
from pipeflow.project.project import Project as Proj
from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs

MODEL = "models/model.txt"


def _team(alice: Project, tmp_path: Path, *, trust: bool = True) -> Project:
    """Alice publishes v1 to a bare git origin and a folder remote; Bob clones it.
    ``trust``: the project trusts the remote's run cache (committed config)."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    assert alice.run("init").code == 0
    chain(alice)
    alice.write(".gitignore", "runs.log\n")
    assert alice.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    if trust:
        assert alice.run("remote", "modify", "origin", "trust_run_cache", "true").code == 0
    assert alice.run("repro").code == 0
    commit(alice, "v1")
    alice.git("remote", "add", "origin", str(origin))
    alice.git("push", "-q", "-u", "origin", "main")
    assert alice.run("push").code == 0
    bob = Project(tmp_path / "bob")
    subprocess.run(["git", "clone", "-q", str(origin), str(bob.root)], check=True)
    assert bob.run("pull").code == 0
    runs(bob)
    return bob


def _objects(p: Project) -> set[str]:
    return {f.parent.name + f.name for f in (p.root / ".pipeflow/cache/objects").glob("*/*")}


def test_a_pushed_experiment_applies_in_a_fetching_clone_without_running(
        project: Project, tmp_path: Path) -> None:
    alice = project
    bob = _team(alice, tmp_path)
    res = alice.run("exp", "run", "--set", "train.lr=0.5", "--name", "high")
    assert res.code == 0, res.text
    assert alice.run("push").code == 0  # every local object and record
    with Proj(alice.root) as repo:
        (high,) = experiments(repo)
    model = next(o.hash for o in high.outputs if o.path == MODEL)
    assert model not in _objects(bob)

    assert bob.run("fetch").code == 0
    with Proj(bob.root) as repo:
        assert [e.name for e in experiments(repo)] == ["high"]  # a colleague's, listed
    res = bob.run("exp", "apply", "high", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["ran"] == [] and body["restored"] == ["train", "evaluate"], body
    assert body["remote"] == "origin" and body["fetched"] >= 1 and model in _objects(bob)
    assert runs(bob) == []  # no stage ran in Bob's clone
    assert bob.read(MODEL).startswith("lr=0.5")
    st = bob.run("status", "--json")
    assert st.code == 0 and json.loads(st.out)["up_to_date"] is True, st.text
    assert bob.run("repro").code == 0
    assert runs(bob) == []
    # Bob's lock names Alice's runs: the same results, not a rerun
    alice_stages = {s.stage: s.run for s in high.stages}
    assert bob.lock()["stages"]["train"]["run"] == alice_stages["train"]

    # a removal travels too
    assert alice.run("exp", "remove", "high").code == 0
    assert alice.run("push").code == 0
    assert bob.run("fetch").code == 0
    with Proj(bob.root) as repo:
        assert experiments(repo) == []
    assert bob.run("exp", "apply", "high").code == 2


def test_an_untrusted_remote_s_experiment_runs_and_says_why(project: Project,
                                                           tmp_path: Path) -> None:
    alice = project
    bob = _team(alice, tmp_path, trust=False)
    assert alice.run("exp", "run", "--set", "train.lr=0.5", "--name", "high").code == 0
    assert alice.run("push").code == 0
    assert bob.run("fetch").code == 0
    res = bob.run("exp", "apply", "high")
    assert res.code == 0, res.text
    assert "ran train, evaluate instead of restoring" in res.err
    assert "pipeflow remote modify origin trust_run_cache true" in res.err
    assert runs(bob) == ["train", "evaluate"]
    assert bob.read(MODEL).startswith("lr=0.5")
