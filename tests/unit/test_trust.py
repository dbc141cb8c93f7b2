"""The run cache's trust boundary (pipeflow.lineage.trust): origin, chain, opt-in."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeflow.lineage.trust import TrustPolicy, remember_origins, trusted_remotes
from pipeflow.records.records import RecordBody, RecordStore, RunRecord, canonical
from pipeflow.state import StateDB


@pytest.fixture
def store(tmp_path: Path) -> RecordStore:
    return RecordStore(tmp_path / "cache", tmp_path / "chain")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    db = StateDB(tmp_path / "state.db")
    yield db
    db.close()


def _foreign(store: RecordStore, chain: str, seq: int, prev: str | None,
             **extra: object) -> RunRecord:
    """A record written as fetch would place one from another clone."""
    body = {"kind": "run", "stage": "train", "exit_status": 0, "chain": chain, "seq": seq,
            "prev": prev, **extra}
    data = canonical(body)
    rid = hashlib.sha256(data).hexdigest()
    path = store.runs / chain / f"{seq:08d}-{rid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return store.read_path(path)


def _chain(store: RecordStore, chain: str, n: int) -> list[RunRecord]:
    out: list[RunRecord] = []
    for seq in range(1, n + 1):
        out.append(_foreign(store, chain, seq, out[-1].id if out else None))
    return out


OTHER = "a" * 16


def test_own_records_are_trusted(store: RecordStore, state: StateDB) -> None:
    record = store.append(RecordBody.from_json({"kind": "run", "stage": "s", "exit_status": 0}))
    verdict = TrustPolicy(store, state, {"origin": False}).trusted(record)
    assert verdict and verdict.local and verdict.describe() == ""


def test_a_remote_record_needs_the_remote_trusted(store: RecordStore, state: StateDB) -> None:
    records = _chain(store, OTHER, 3)
    remember_origins(state, "origin", [r.rel_path for r in records])
    no = TrustPolicy(store, state, {"origin": False}).trusted(records[-1])
    assert not no and no.remote == "origin" and not no.vouched
    assert "came from remote 'origin', whose run cache this project does not trust" in no.reasons[0]
    assert "unsigned record from remote 'origin'" in no.describe()
    yes = TrustPolicy(store, state, {"origin": True}).trusted(records[-1])
    assert yes and yes.origin == "remote" and not yes.signed


def test_trust_is_per_remote(store: RecordStore, state: StateDB) -> None:
    (record,) = _chain(store, OTHER, 1)
    remember_origins(state, "b", [record.rel_path])
    assert not TrustPolicy(store, state, {"a": True, "b": False}).trusted(record)


def test_unknown_origin_needs_every_remote_trusted(store: RecordStore, state: StateDB) -> None:
    (record,) = _chain(store, OTHER, 1)
    assert not TrustPolicy(store, state, {"a": True, "b": False}).trusted(record)
    assert TrustPolicy(store, state, {"a": True, "b": True}).trusted(record)
    assert TrustPolicy(store, state, {}).trusted(record)  # a shared local cache
    assert TrustPolicy(store, state, {}).trusted(record).origin == "unknown"


@pytest.mark.parametrize("damage", ["gap", "fork", "link", "moved"])
def test_a_chain_that_does_not_hold_is_never_trusted(
        store: RecordStore, state: StateDB, damage: str) -> None:
    records = _chain(store, OTHER, 3)
    target = records[-1]
    if damage == "gap":
        (store.runs / records[0].rel_path).unlink()
    elif damage == "fork":
        _foreign(store, OTHER, 2, records[0].id, note="a second seq 2")
    elif damage == "link":
        target = _foreign(store, OTHER, 4, "f" * 64)
    else:
        target = _foreign(store, OTHER, 4, records[-1].id)
        moved = store.runs / ("b" * 16) / Path(target.rel_path).name
        moved.parent.mkdir(parents=True)
        (store.runs / target.rel_path).rename(moved)
        target = store.read_path(moved)
    verdict = TrustPolicy(store, state, {"origin": True}).trusted(target)
    assert not verdict and verdict.vouched and verdict.reasons


def test_chain_walks_are_remembered(store: RecordStore, state: StateDB) -> None:
    records = _chain(store, OTHER, 5)
    policy = TrustPolicy(store, state, {})
    assert policy.trusted(records[3])
    (store.runs / records[0].rel_path).unlink()  # checked already in this command
    assert policy.trusted(records[4])
    assert not TrustPolicy(store, state, {}).trusted(records[4])


def test_trusted_remotes_reads_true_only() -> None:
    config = {"remote": {"a": {"url": "x", "trust_run_cache": True},
                         "b": {"url": "y", "trust_run_cache": "true"}, "c": {"url": "z"}}}
    assert trusted_remotes(config) == {"a": True, "b": False, "c": False}
