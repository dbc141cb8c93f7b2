"""A poisoned run cache on a shared remote (issue 11, item 5).

Anyone with write access to the remote folder can plant a run record, a run-cache
pointer and an object there. Alice (honest) publishes through a bare git origin and a
folder remote; Mallory, who can read git and write the remote folder but not git,
plants a forged ``train`` result for the fingerprint of Alice's next commit; CI (a
fresh clone) runs ``pipeflow repro --pull``. By default the stage must run and the
output must be the honest one; records from the remote are shown as unsigned.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
from pathlib import Path
from typing import Any

from pipeflow.content.hashing import hash_bytes
from pipeflow.records.records import canonical
from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs

MODEL = "models/model.txt"
FORGED = "lr=0.07\nFORGED BY MALLORY\n"
HONEST = "lr=0.07\na\nb\nc\n"


def _set_lr(p: Project, lr: float) -> None:
    p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})


def _clone(origin: Path, where: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True)
    return Project(where)


def _publish(alice: Project, tmp_path: Path, *, trust: bool = False) -> tuple[Path, Path]:
    """Alice runs v1 (lr 0.05), pushes git and the remote, then commits lr 0.07 without
    running it (CI will). Returns (bare git origin, remote folder)."""
    origin = tmp_path / "origin.git"
    store = tmp_path / "store"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    assert alice.run("init").code == 0
    chain(alice)
    assert alice.run("remote", "add", "origin", str(store)).code == 0
    if trust:
        assert alice.run("remote", "modify", "origin", "trust_run_cache", "true").code == 0
    assert alice.run("repro").code == 0
    commit(alice, "v1")
    alice.git("remote", "add", "origin", str(origin))
    alice.git("push", "-q", "-u", "origin", "main")
    assert alice.run("push").code == 0
    runs(alice)
    _set_lr(alice, 0.07)
    commit(alice, "lr 0.07: CI runs it")
    alice.git("push", "-q")
    return origin, store


def _train_body(mallory: Project) -> dict[str, Any]:
    """The body of a real ``train`` run at lr 0.07, made in Mallory's own clone: it has
    the fingerprint CI will compute."""
    assert mallory.run("repro", "train").code == 0, "mallory's honest run"
    found = []
    for path in (mallory.root / ".pipeflow/cache/runs").glob("*/*.json"):
        body = json.loads(path.read_bytes())
        if body["stage"] == "train" and body["kind"] == "run":
            found.append(body)
    (body,) = found
    return dict(body)


def _plant(store: Path, body: dict[str, Any], *, chain_id: str, seq: int,
           prev: str | None) -> str:
    """Write a forged model, a record naming it and a run-cache pointer straight into
    the remote folder; returns the record's id."""
    data = FORGED.encode()
    oid = hash_bytes(data)
    obj = store / "objects" / oid[:2] / oid[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    forged = {**body, "chain": chain_id, "seq": seq, "prev": prev,
              "user": "alice@example.com", "host": "alice-laptop",
              "outputs": [{"path": MODEL, "hash": oid, "size": len(data), "kind": "out"}]}
    raw = canonical(forged)
    rid = hashlib.sha256(raw).hexdigest()
    rec = store / "runs" / chain_id / f"{seq:08d}-{rid}.json"
    rec.parent.mkdir(parents=True, exist_ok=True)
    rec.write_bytes(raw)
    fp = str(body["fingerprint"])
    pointer = store / "runcache" / fp[:2] / fp
    pointer.parent.mkdir(parents=True, exist_ok=True)
    pointer.write_bytes(f"{chain_id}/{seq:08d}-{rid}.json\n".encode())
    return rid


def _attack(project: Project, tmp_path: Path, *, trust: bool = False
            ) -> tuple[Project, Path, str]:
    origin, store = _publish(project, tmp_path, trust=trust)
    mallory = _clone(origin, tmp_path / "mallory")
    rid = _plant(store, _train_body(mallory), chain_id="0badc0de0badc0de", seq=1, prev=None)
    ci = _clone(origin, tmp_path / "ci")
    return ci, store, rid


def test_repro_pull_runs_the_stage_instead_of_a_planted_entry(
        project: Project, tmp_path: Path) -> None:
    ci, _store, rid = _attack(project, tmp_path)
    res = ci.run("repro", "--pull")
    assert res.code == 0, res.text
    assert "train" in runs(ci), "the stage ran"
    assert ci.read(MODEL) == HONEST
    assert "trust_run_cache" in res.err and "origin" in res.err
    assert res.err.count("trust_run_cache") == 1  # said once
    assert "Traceback" not in res.text
    assert rid not in json.dumps(ci.lock())


def test_repro_pull_json_says_the_stage_ran(project: Project, tmp_path: Path) -> None:
    ci, _store, _rid = _attack(project, tmp_path)
    res = ci.run("repro", "--pull", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert "train" in body["ran"] and "train" not in body["restored"]
    assert ci.read(MODEL) == HONEST


def test_a_planted_record_cannot_claim_the_victims_own_chain(
        project: Project, tmp_path: Path) -> None:
    """Bob's chain id is public on the remote; Mallory extends it there with a record
    linked to his head. Even with the remote's run cache trusted, it is not his."""
    origin, store = _publish(project, tmp_path, trust=True)
    bob = _clone(origin, tmp_path / "bob")
    _set_lr(bob, 0.06)
    assert bob.run("repro", "--pull").code == 0
    assert bob.run("push").code == 0
    bob.git("checkout", "-q", "--", "params.yaml")
    own = (bob.root / ".pipeflow/chain").read_text().strip()
    head = max((bob.root / ".pipeflow/cache/runs" / own).glob("*.json"))
    seq, prev = int(head.name[:8]), head.name[9:73]
    mallory = _clone(origin, tmp_path / "mallory")
    rid = _plant(store, _train_body(mallory), chain_id=own, seq=seq + 1, prev=prev)
    runs(bob)
    res = bob.run("repro", "--pull")
    assert res.code == 0, res.text
    assert "train" in runs(bob)
    assert bob.read(MODEL) == HONEST
    assert not list((bob.root / ".pipeflow/cache/runs" / own).glob(f"*-{rid}.json"))
    assert own in res.err and "not fetched" in res.err
    assert bob.run("verify").code == 0


def test_trusting_the_remote_is_an_explicit_opt_in(project: Project, tmp_path: Path) -> None:
    """With ``remote.origin.trust_run_cache`` committed, the remote's entries are used
    (the documented trade-off), and lineage still marks the record as unsigned."""
    ci, _store, rid = _attack(project, tmp_path, trust=True)
    res = ci.run("repro", "--pull")
    assert res.code == 0, res.text
    assert "train" not in runs(ci) and ci.read(MODEL) == FORGED
    text = ci.run("lineage", MODEL)
    assert text.code == 0, text.text
    assert "unsigned" in text.out and "0badc0de0badc0de" in text.out
    body = json.loads(ci.run("lineage", MODEL, "--json").out)
    (trust,) = [r["trust"] for r in body["runs"] if r["stage"] == "train"]
    assert trust["signed"] is False and trust["remote"] == "origin"
    assert trust["record"].startswith("0badc0de0badc0de/") and rid in trust["record"]
    for fmt in ("dot", "mermaid"):
        assert "unsigned" in ci.run("lineage", MODEL, "--format", fmt).out
    events = [json.loads(line) for line in
              ci.run("lineage", MODEL, "--format", "openlineage").out.splitlines()]
    (facet,) = [e["run"]["facets"]["pipeflow_fingerprint"] for e in events
                if e["job"]["name"] == "train"]
    assert facet["trust"]["signed"] is False


def test_verify_names_unsigned_records_from_new_chains(project: Project, tmp_path: Path) -> None:
    ci, _store, _rid = _attack(project, tmp_path)
    assert ci.run("fetch").code == 0
    res = ci.run("verify")
    assert res.code == 0, res.text
    assert "everything verified" not in res.out
    assert "unsigned" in res.out and "0badc0de0badc0de" in res.out and "new chain" in res.out
    body = json.loads(ci.run("verify", "--json").out)
    chains = {c["chain"]: c for c in body["unsigned"]}
    assert chains["0badc0de0badc0de"]["records"] == 1
    assert chains["0badc0de0badc0de"]["origin"] == "origin"
    # once seen, a chain is no longer new; its records stay unsigned
    again = json.loads(ci.run("verify", "--json").out)
    assert not any(c["new"] for c in again["unsigned"])
    assert "everything verified" not in ci.run("verify").out


def test_lineage_marks_a_record_from_the_remote(project: Project, tmp_path: Path) -> None:
    origin, _store = _publish(project, tmp_path)
    bob = _clone(origin, tmp_path / "bob")
    bob.git("checkout", "-q", "HEAD~1")  # v1, which Alice ran
    assert bob.run("pull").code == 0
    res = bob.run("lineage", MODEL)
    assert res.code == 0, res.text
    assert "unsigned" in res.out and "origin" in res.out
    mine = project.run("lineage", MODEL)
    assert "unsigned" not in mine.out  # Alice's own record, in her clone
    listed = bob.run("versions", MODEL)
    assert listed.code == 0 and "(unsigned, from remote 'origin')" in listed.out
    body = json.loads(bob.run("versions", MODEL, "--json").out)
    assert body["versions"][0]["first_run_trust"] == "unsigned, from remote 'origin'"
    assert "unsigned" not in project.run("versions", MODEL).out


def test_a_trusted_remote_entry_whose_chain_does_not_hold_is_not_used(
        project: Project, tmp_path: Path) -> None:
    """Trusting a remote's run cache trusts its writers, not any file: a record whose
    chain has no first record (or a broken link) does not verify against its chain."""
    origin, store = _publish(project, tmp_path, trust=True)
    mallory = _clone(origin, tmp_path / "mallory")
    _plant(store, _train_body(mallory), chain_id="0badc0de0badc0de", seq=2, prev="0" * 64)
    ci = _clone(origin, tmp_path / "ci")
    res = ci.run("repro", "--pull")
    assert res.code == 0, res.text
    assert "train" in runs(ci) and ci.read(MODEL) == HONEST
    assert "0badc0de0badc0de" in res.err and "seq 1" in res.err
    assert "trust_run_cache true" not in res.err  # trusting more would not help


def test_trust_run_cache_takes_true_or_false_only(project: Project, tmp_path: Path) -> None:
    assert project.run("init").code == 0
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    res = project.run("remote", "modify", "origin", "trust_run_cache", "yes")
    assert res.code == 2 and "trust_run_cache must be true or false" in res.err
    assert "trust_run_cache:" not in project.read(".pipeflow/config")
    assert project.run("remote", "modify", "origin", "trust_run_cache", "true").code == 0
    assert "trust_run_cache: true" in project.read(".pipeflow/config")


def _two_clones_one_cache_folder(tmp_path: Path, *, remote: bool) -> tuple[Project, Project]:
    """Alice commits the chain; two clones of it on this machine share one cache folder
    (``cache.dir`` in each one's config.local); the first has run everything."""
    alice = Project(tmp_path / "alice")
    alice.root.mkdir()
    alice.git("init", "-q", "-b", "main")
    assert alice.run("init").code == 0
    chain(alice)
    if remote:
        assert alice.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    commit(alice, "chain")
    shared = tmp_path / "shared-cache"
    clones = []
    for name in ("first", "second"):
        clone = _clone(alice.root, tmp_path / name)
        clone.write(".pipeflow/config.local", f"cache:\n  dir: {shared}\n")
        clones.append(clone)
    assert clones[0].run("repro").code == 0
    return clones[0], clones[1]


def test_a_shared_cache_folder_with_a_remote_says_why_and_names_the_remote(
        project: Project, tmp_path: Path) -> None:
    _first, second = _two_clones_one_cache_folder(tmp_path, remote=True)
    res = second.run("repro")
    assert res.code == 0, res.text
    assert "train" in runs(second), "ran: the other clone's records are of unknown origin"
    assert "shared cache folder" in res.err and "unknown origin" in res.err, res.err
    assert "`pipeflow remote modify origin trust_run_cache true`" in res.err
    assert "NAME" not in res.err and "trust the run cache of every remote" not in res.err
    assert res.err.count("trust_run_cache true") == 1


def test_a_shared_cache_folder_without_a_remote_restores(project: Project,
                                                         tmp_path: Path) -> None:
    _first, second = _two_clones_one_cache_folder(tmp_path, remote=False)
    res = second.run("repro", "--json")
    assert res.code == 0, res.text
    assert set(json.loads(res.out)["restored"]) == {"prepare", "train", "evaluate"}
