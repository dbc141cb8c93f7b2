"""`pull` and `fetch` when the remote lacks data the lock names.

Alice commits and `git push`es but forgets (all or part of) `pipeflow push`; Bob runs
`git pull && pipeflow pull`. Bob's pull must say which data the remote lacks (path,
hash prefix, who recorded it when the run record came), ask for a `pipeflow push`
(never another `pipeflow pull`), restore everything else and exit 1.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.conftest import Project
from tests.functional.test_team_sources import _alice_adds_v2_to_git_only, _team


def _says_the_remote_lacks(res_err: str, path: str, oid: str) -> None:
    assert "remote 'origin' lacks" in res_err, res_err
    assert path in res_err and oid[:8] in res_err
    assert "`pipeflow push`" in res_err
    assert "pipeflow pull" not in res_err  # the user has just run it


def _alice_repros_v2(alice: Project, *push: str) -> dict[str, str]:
    """v2 of the data, its outputs recomputed; only ``push`` targets go to the remote
    (with every run record); all of it goes to git."""
    alice.write("data/raw.csv", "c\nb\na\n")
    assert alice.run("add", "data/raw.csv").code == 0
    assert alice.run("repro").code == 0
    assert alice.run("push", *push).code == 0
    alice.git("add", "-A")
    alice.git("commit", "-qm", "v2 of the data, recomputed")
    alice.git("push", "-q", "origin", "main")
    lock = alice.lock()
    return {"data/raw.csv": lock["sources"]["data/raw.csv"]["hash"],
            "count.txt": lock["stages"]["count"]["outs"][0]["hash"]}


def test_pull_says_the_remote_lacks_a_source_nobody_pushed(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    v2 = _alice_adds_v2_to_git_only(alice)  # no `pipeflow push` at all
    bob.git("pull", "-q")
    (bob.root / "count.txt").unlink()  # something pull can restore

    res = bob.run("pull")
    assert res.code == 1, res.text
    _says_the_remote_lacks(res.err, "data/raw.csv", v2)
    assert "git log pipeline.lock" in res.err  # no run record: where to find who
    assert "fetched 0 object(s)" in res.out  # the summary comes before the error
    assert bob.read("count.txt").strip() == "2"  # everything else is restored
    assert bob.read("data/raw.csv") == "b\na\n"  # the stale copy stays, untouched


def test_pull_names_who_recorded_the_source_the_remote_lacks(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    want = _alice_repros_v2(alice, "prepare", "count")  # outputs and records, not the data
    bob.git("pull", "-q")

    res = bob.run("pull")
    assert res.code == 1, res.text
    _says_the_remote_lacks(res.err, "data/raw.csv", want["data/raw.csv"])
    assert "recorded by alice@example.com, run " in res.err
    assert "ask alice@example.com to run `pipeflow push`" in res.err
    assert "fetched 2 object(s)" in res.out
    assert bob.read("clean.csv") == "a\nb\nc\n" and bob.read("count.txt").strip() == "3"

    res = bob.run("fetch", "--json")  # fetch says it too, and its JSON names the path
    assert res.code == 0, res.text
    (item,) = json.loads(res.out)["lacking"]
    assert item["path"] == "data/raw.csv" and item["hash"] == want["data/raw.csv"]
    assert item["stage"] is None and item["recorded_by"] == "alice@example.com"
    res = bob.run("fetch")
    _says_the_remote_lacks(res.err, "data/raw.csv", want["data/raw.csv"])


def test_pull_says_the_remote_lacks_a_stage_output(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    want = _alice_repros_v2(alice, "data/raw.csv", "prepare")  # not count's output
    bob.git("pull", "-q")

    res = bob.run("pull", "--json")
    assert res.code == 1, res.text
    _says_the_remote_lacks(res.err, "count.txt", want["count.txt"])
    assert "stage 'count'" in res.err and "`pipeflow repro count`" in res.err
    (item,) = json.loads(res.out)["lacking"]
    assert item["path"] == "count.txt" and item["stage"] == "count"
    assert bob.read("data/raw.csv") == "c\nb\na\n" and bob.read("clean.csv") == "a\nb\nc\n"
    res = bob.run("repro", "count")  # the way out the message names
    assert res.code == 0, res.text
    assert bob.read("count.txt").strip() == "3"


def test_checkout_after_fetch_names_the_version_and_who_to_ask(tmp_path: Path) -> None:
    alice, bob = _team(tmp_path)
    want = _alice_repros_v2(alice, "prepare", "count")
    bob.git("pull", "-q")
    assert bob.run("fetch").code == 0  # the records come, the data does not
    (bob.root / "data/raw.csv").unlink()

    res = bob.run("checkout")
    assert res.code == 1, res.text
    assert "data/raw.csv" in res.err and want["data/raw.csv"][:8] in res.err
    assert "ask alice@example.com to run `pipeflow push`" in res.err
    assert bob.read("count.txt").strip() == "3"  # the rest is restored


def test_the_recompute_hint_waits_for_lacking_source_data(tmp_path: Path) -> None:
    """Source data and a stage output both lacking: the stage reads that data, so
    `repro` recomputes it only once the data is here, and the hint says so."""
    alice, bob = _team(tmp_path)
    want = _alice_repros_v2(alice, "prepare")  # clean.csv only: not the data, not count
    bob.git("pull", "-q")
    res = bob.run("pull")
    assert res.code == 1, res.text
    _says_the_remote_lacks(res.err, "data/raw.csv", want["data/raw.csv"])
    _says_the_remote_lacks(res.err, "count.txt", want["count.txt"])
    assert "`pipeflow repro count` recomputes the stage outputs once the source data is here" \
        in res.err
