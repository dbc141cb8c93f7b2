"""Source data (`pipeflow add`) shared through git and a folder remote by two clones.

Alice and Bob clone one bare git origin and share one folder remote. The lock moves
through git; the data moves through `pipeflow push`/`pull`. When the two get out of
step, a clone must never record its stale data as a new version, and a fresh clone's
`repro --pull` must get the source data too.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.conftest import Project
from tests.functional.helpers import runs

SPEC = {
    "prepare": {
        "cmd": "echo prepare >> runs.log && sort data/raw.csv > clean.csv",
        "deps": ["data/raw.csv"],
        "outs": ["clean.csv"],
    },
    "count": {
        "cmd": "echo count >> runs.log && wc -l < clean.csv > count.txt",
        "deps": ["clean.csv"],
        "outs": ["count.txt"],
    },
}


def _clone(origin: Path, folder: Path, email: str) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(folder)], check=True,
                   capture_output=True)
    p = Project(folder)
    p.git("config", "user.email", email)
    return p


def _team(tmp_path: Path) -> tuple[Project, Project]:
    """Alice publishes v1 of data/raw.csv and its pipeline (git and remote); Bob
    clones and pulls: both clones are up to date."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    alice = _clone(origin, tmp_path / "alice", "alice@example.com")
    alice.spec(SPEC)
    alice.write("data/raw.csv", "b\na\n")
    assert alice.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert alice.run("add", "data/raw.csv").code == 0
    assert alice.run("repro").code == 0
    assert alice.run("push").code == 0
    runs(alice)
    alice.git("add", "-A")
    alice.git("commit", "-qm", "pipeline and v1 of the data")
    alice.git("push", "-q", "origin", "main")
    bob = _clone(origin, tmp_path / "bob", "bob@example.com")
    res = bob.run("pull")
    assert res.code == 0, res.text
    assert bob.read("data/raw.csv") == "b\na\n"
    return alice, bob


def _alice_adds_v2_to_git_only(alice: Project) -> str:
    """A new version added and committed, pushed to git but not to the remote."""
    alice.write("data/raw.csv", "c\nb\na\n")
    assert alice.run("add", "data/raw.csv").code == 0
    alice.git("commit", "-qam", "v2 of the data")
    alice.git("push", "-q", "origin", "main")
    return str(alice.lock()["sources"]["data/raw.csv"]["hash"])


def _records(p: Project) -> list[Path]:
    return sorted((p.root / ".pipeflow/cache/runs").rglob("*.json"))


def test_repro_stops_when_the_lock_moved_without_its_data(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    v2 = _alice_adds_v2_to_git_only(alice)
    bob.git("pull", "-q")
    lock_before = bob.read("pipeline.lock")
    records_before = _records(bob)

    res = bob.run("repro")
    assert res.code == 1, res.text
    assert "data/raw.csv" in res.err and v2[:8] in res.err
    assert "pipeflow pull" in res.err and "pipeflow add data/raw.csv" in res.err
    assert "new version" not in res.out
    assert bob.read("pipeline.lock") == lock_before
    assert _records(bob) == records_before
    assert runs(bob) == []
    assert bob.read("data/raw.csv") == "b\na\n"
    assert bob.run("repro", "--dry").code == 1  # a dry run says the same, runs nothing

    # once Alice pushes the data, Bob's pull brings it and repro runs on it
    assert alice.run("push").code == 0
    res = bob.run("pull")
    assert res.code == 0, res.text
    assert bob.read("data/raw.csv") == "c\nb\na\n"
    res = bob.run("repro")
    assert res.code == 0, res.text
    assert runs(bob) == ["prepare", "count"]
    assert bob.lock()["sources"]["data/raw.csv"]["hash"] == v2
    assert bob.read("count.txt").strip() == "3"


def test_status_says_the_locked_version_is_not_here(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    v2 = _alice_adds_v2_to_git_only(alice)
    bob.git("pull", "-q")
    res = bob.run("status")
    assert res.code == 0
    assert "source data 'data/raw.csv'" in res.err and v2[:8] in res.err
    assert "pipeflow pull data/raw.csv" in res.err and "pipeflow push" in res.err
    assert "records the new version" not in res.err
    assert "source data not here: data/raw.csv" in res.out
    assert bob.run("status", "--check").code == 1  # repro would stop: not up to date


def test_status_names_who_recorded_the_missing_version(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    _alice_adds_v2_to_git_only(alice)
    # a partial push: the stages' outputs and every run record, not the new data
    assert alice.run("push", "prepare").code == 0
    bob.git("pull", "-q")
    assert bob.run("fetch").code == 0  # records arrive; the object does not
    res = bob.run("status")
    assert "recorded by alice@example.com" in res.err
    assert "ask alice@example.com to `pipeflow push`" in res.err
    body = json.loads(bob.run("status", "--json").out)
    source = body["sources"][0]
    assert source["path"] == "data/raw.csv" and source["state"] == "not-in-cache"
    assert source["recorded_by"] == "alice@example.com" and len(source["run"]) == 64
    # --pull cannot help either: the remote lacks it, and the error says whom to ask
    res = bob.run("repro", "--pull")
    assert res.code == 1, res.text
    assert "remote 'origin' lacks it too" in res.err
    assert "ask alice@example.com" in res.err
    assert runs(bob) == []


def test_an_edit_of_source_data_is_still_recorded(tmp_path: Path) -> None:
    """The locked version is in the cache: a different workspace file is the user's
    edit, recorded as a new version as before."""
    _alice, bob = _team(tmp_path)
    bob.write("data/raw.csv", "z\nb\na\n")
    res = bob.run("status")
    assert "changed since it was added" in res.err
    res = bob.run("repro")
    assert res.code == 0, res.text
    assert "new version of data/raw.csv recorded" in res.out
    assert runs(bob) == ["prepare", "count"]


def test_an_absent_source_missing_from_the_cache_says_pull(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    _alice_adds_v2_to_git_only(alice)
    bob.git("pull", "-q")
    (bob.root / "data/raw.csv").unlink()
    res = bob.run("status")
    assert "pipeflow pull data/raw.csv" in res.err and "checkout" not in res.err
    res = bob.run("repro")
    assert res.code == 1, res.text
    assert "pipeflow pull" in res.err and "does not exist" not in res.err
    res = bob.run("checkout", "data/raw.csv")
    assert res.code == 1 and "pipeflow pull" in res.err and "recompute" not in res.err


def test_fresh_clone_repro_pull_gets_source_data_and_runs_nothing(tmp_path: Path) -> None:
    alice, _bob = _team(tmp_path)
    ci = _clone(tmp_path / "origin.git", tmp_path / "ci", "ci@example.com")
    res = ci.cli("repro", "--pull")
    assert res.code == 0, res.text
    assert runs(ci) == []
    assert ci.read("data/raw.csv") == "b\na\n"
    assert ci.read("count.txt") == alice.read("count.txt")
    assert ci.run("status", "--check").code == 0


def test_fresh_clone_status_says_pull_not_checkout(tmp_path: Path) -> None:
    _team(tmp_path)
    ci = _clone(tmp_path / "origin.git", tmp_path / "ci", "ci@example.com")
    res = ci.run("status")
    assert "pipeflow pull data/raw.csv" in res.err and "checkout data/raw.csv" not in res.err
    res = ci.run("pull", "data/raw.csv")  # the command status suggests works
    assert res.code == 0, res.text
    assert ci.read("data/raw.csv") == "b\na\n"


def test_status_says_checkout_when_the_object_is_here(tmp_path: Path) -> None:
    _alice, bob = _team(tmp_path)
    (bob.root / "data/raw.csv").unlink()
    res = bob.run("status")
    assert "pipeflow checkout data/raw.csv" in res.err and "pull" not in res.err
    assert bob.run("checkout", "data/raw.csv").code == 0
    assert bob.read("data/raw.csv") == "b\na\n"


def test_a_run_that_does_not_read_the_missing_source_leaves_it_alone(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    _alice_adds_v2_to_git_only(alice)
    bob.git("pull", "-q")
    lock_before = bob.read("pipeline.lock")
    res = bob.run("repro", "count", "--single-item")
    assert res.code == 0, res.text
    assert "left as it is" in res.out and "pipeflow pull data/raw.csv" in res.out
    assert bob.read("pipeline.lock") == lock_before


def test_add_records_the_workspace_data_on_purpose(tmp_path: Path) -> None:
    """The second way out of the error: the workspace's data becomes the locked one."""
    alice, bob = _team(tmp_path)
    _alice_adds_v2_to_git_only(alice)
    bob.git("pull", "-q")
    assert bob.run("repro").code == 1
    assert bob.run("add", "data/raw.csv").code == 0
    assert bob.run("status", "--check").code == 0
    res = bob.run("repro")
    assert res.code == 0 and "up to date" in res.out
    assert runs(bob) == []


def test_a_folder_source_travels_and_is_guarded_the_same_way(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    alice.write("data/imgs/a.txt", "1\n")
    alice.write("data/imgs/b.txt", "2\n")
    alice.spec({**SPEC, "list": {"cmd": "echo list >> runs.log && ls data/imgs > list.txt",
                                 "deps": ["data/imgs"], "outs": ["list.txt"]}})
    assert alice.run("add", "data/imgs").code == 0
    assert alice.run("repro").code == 0 and alice.run("push").code == 0
    runs(alice)
    alice.git("add", "-A")
    alice.git("commit", "-qm", "images")
    alice.git("push", "-q", "origin", "main")
    ci = _clone(tmp_path / "origin.git", tmp_path / "ci", "ci@example.com")
    res = ci.run("repro", "--pull")
    assert res.code == 0, res.text
    assert runs(ci) == [] and ci.read("data/imgs/b.txt") == "2\n"
    # a new file in the folder, pushed to git only: Bob's older folder is not recorded
    bob.git("pull", "-q")
    assert bob.run("pull").code == 0
    alice.write("data/imgs/c.txt", "3\n")
    assert alice.run("add", "data/imgs").code == 0
    alice.git("commit", "-qam", "one more image")
    alice.git("push", "-q", "origin", "main")
    bob.git("pull", "-q")
    res = bob.run("repro", "list")
    assert res.code == 1 and "data/imgs" in res.err, res.text
    assert "pipeflow pull data/imgs" in bob.run("status").err


def test_repro_pull_does_not_record_an_edit_over_a_version_it_just_fetched(
        tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    v2 = _alice_adds_v2_to_git_only(alice)
    assert alice.run("push").code == 0
    bob.write("data/raw.csv", "mine\n")  # Bob's own edit, while the lock moves in git
    bob.git("pull", "-q")
    lock_before = bob.read("pipeline.lock")
    res = bob.run("repro", "--pull")
    assert res.code == 1, res.text
    assert "changed both here and in pipeline.lock" in res.err and v2[:8] in res.err
    assert "pipeflow checkout data/raw.csv" in res.err and "pipeflow add data/raw.csv" in res.err
    assert bob.read("pipeline.lock") == lock_before and bob.read("data/raw.csv") == "mine\n"
    assert runs(bob) == []
    # a stale copy (a version this clone knows) is simply replaced by the locked one
    bob.write("data/raw.csv", "b\na\n")
    res = bob.run("repro", "--pull")
    assert res.code == 0, res.text
    assert "restored the locked version of data/raw.csv" in res.out
    assert bob.read("data/raw.csv") == "c\nb\na\n" and runs(bob) == ["prepare", "count"]
