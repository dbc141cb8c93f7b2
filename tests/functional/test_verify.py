"""``pipeflow verify``: corrupt objects, rewritten records, gaps, forks, lock links."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from pipeflow.records.records import canonical
from tests.conftest import Project
from tests.functional.helpers import chain, commit


def records(p: Project) -> list[Path]:
    return sorted((p.root / ".pipeflow/cache/runs").glob("*/*.json"))


def ran(p: Project) -> None:
    chain(p)
    assert p.run("repro").code == 0


def test_a_clean_history_verifies(project: Project) -> None:
    ran(project)
    res = project.run("verify")
    assert res.code == 0, res.text
    assert "checked" in res.out and "3 run record(s) in 1 chain(s)" in res.out
    assert "everything verified" in res.out
    body = json.loads(project.run("verify", "--json").out)
    assert body["ok"] is True and body["problems"] == []
    assert body["checked"]["records"] == 3 and body["checked"]["lock_runs"] == 3
    assert body["checked"]["objects"] >= 3


def test_one_byte_changed_in_a_record_is_detected(project: Project) -> None:
    ran(project)
    target = records(project)[1]
    data = bytearray(target.read_bytes())
    data[data.index(b'"train"') + 1] = ord("T")
    target.chmod(0o644)
    target.write_bytes(bytes(data))
    res = project.run("verify")
    assert res.code == 1
    assert f"{target.name} does not match its hash" in res.out
    assert "[rewritten-record]" in res.out
    assert "stage 'train' names run record" in res.out  # the lock's link is damaged too
    assert "verify found 2 problem(s)" in res.err
    body = json.loads(project.run("verify", "--json").out)
    assert {p["kind"] for p in body["problems"]} == {"rewritten-record", "damaged-record"}


def test_a_corrupt_object_is_reported_and_moved_aside(project: Project) -> None:
    ran(project)
    oid = project.lock()["stages"]["train"]["outs"][0]["hash"]
    obj = project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"not the model\n")
    res = project.run("verify")
    assert res.code == 1
    assert f"object {oid} does not match its hash" in res.out
    assert not obj.exists()
    assert list((project.root / ".pipeflow/cache/corrupt").iterdir())
    # once moved aside it is missing, not corrupt: a note, and the next repro heals it
    again = project.run("verify")
    assert again.code == 0 and "not in the cache: models/model.txt" in again.out


def test_a_removed_record_leaves_a_gap_and_a_dangling_lock_entry(project: Project) -> None:
    ran(project)
    middle = records(project)[1]
    middle.unlink()
    res = project.run("verify")
    assert res.code == 1
    assert "has no record with seq 2 (of 1..3): records were removed" in res.out
    assert "stage 'train' names run record" in res.out and "not in this clone" in res.out
    assert "which is missing" in res.out  # record 3's predecessor


def test_a_fork_in_a_chain_is_reported(project: Project) -> None:
    ran(project)
    first = records(project)[0]
    body = json.loads(first.read_bytes())
    body.update(seq=2, prev=first.stem.split("-")[1], stage="intruder")
    data = canonical(body)
    name = f"00000002-{hashlib.sha256(data).hexdigest()}.json"
    (first.parent / name).write_bytes(data)
    res = project.run("verify")
    assert res.code == 1
    assert "2 records with seq 2" in res.out
    assert "forks after" in res.out


def test_a_rewritten_tag_history_is_reported(project: Project) -> None:
    ran(project)
    commit(project)
    for lr in (0.07,):
        project.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})
        project.run("repro")
        commit(project)
    assert project.run("tag", "models/model.txt@v1", "production").code == 0
    assert project.run("tag", "models/model.txt@v2", "production").code == 0
    log = project.root / ".pipeflow/tags.jsonl"
    lines = log.read_text().splitlines()
    log.write_text(lines[1] + "\n")  # drop the first move
    res = project.run("verify")
    assert res.code == 1 and "[tags]" in res.out and "tags.jsonl:1: " in res.out
    assert "a line was removed" in res.out
