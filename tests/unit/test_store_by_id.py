"""The store and the remote answer by object id: callers never spell the layout."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeflow.content.hashing import hash_bytes
from pipeflow.errors import StorageError
from pipeflow.storage.links import Linker
from pipeflow.storage.remote import Remote
from pipeflow.storage.store import ObjectStore


@pytest.fixture
def store(tmp_path: Path) -> ObjectStore:
    return ObjectStore(tmp_path / "cache" / "objects", Linker(setting="copy"))


def test_iter_oids_lists_objects_sorted_and_skips_temporaries(store: ObjectStore) -> None:
    assert store.iter_oids() == []  # no folder yet
    oids = [store.add_bytes(data) for data in (b"a", b"b", b"c")]
    shard = store.path_of(oids[0]).parent
    (shard / f".{oids[0][2:]}.123-abc-0.pftmp").write_bytes(b"half")  # a killed writer's
    assert store.iter_oids() == sorted(oids)


def test_remove_forgets_an_object_and_tolerates_absence(store: ObjectStore) -> None:
    oid = store.add_bytes(b"gone soon")
    store.remove(oid)
    assert not store.has(oid) and store.iter_oids() == []
    store.remove(oid)  # another gc was first
    with pytest.raises(StorageError, match="not an object id"):
        store.remove("../../etc/passwd")


def test_add_fetched_stores_only_matching_bytes(store: ObjectStore) -> None:
    oid = hash_bytes(b"payload")
    seen: list[Path] = []

    def bad(tmp: Path) -> bool:
        seen.append(tmp)
        tmp.write_bytes(b"tampered")
        return False

    assert store.add_fetched(oid, bad) is False and not store.has(oid)
    assert not seen[0].exists()  # the rejected download is gone

    def good(tmp: Path) -> bool:
        tmp.write_bytes(b"payload")
        return True

    assert store.add_fetched(oid, good) is True
    assert store.read_bytes(oid) == b"payload"
    assert os.listdir(store.path.parent / "tmp") == []


def test_remote_object_round_trip(store: ObjectStore, tmp_path: Path) -> None:
    remote = Remote("r", str(tmp_path / "remote"))
    oid = store.add_bytes(b"shared bytes")
    assert not remote.has_object(oid) and remote.objects() == set()
    remote.upload_object(oid, store.path_of(oid))
    assert remote.has_object(oid) and remote.objects() == {oid}
    got = tmp_path / "got"
    assert remote.download_object(oid, got) and got.read_bytes() == b"shared bytes"
    remote.remove_object(oid)
    remote.remove_object(oid)  # gone already is fine
    assert remote.objects() == set()


def test_remote_download_reports_bytes_that_do_not_match(store: ObjectStore,
                                                         tmp_path: Path) -> None:
    remote = Remote("r", str(tmp_path / "remote"))
    oid = store.add_bytes(b"original")
    remote.upload_object(oid, store.path_of(oid))
    [placed] = [Path(d) / n for d, _s, names in os.walk(tmp_path / "remote") for n in names]
    placed.write_bytes(b"swapped")
    assert remote.download_object(oid, tmp_path / "got") is False


def test_survey_splits_objects_from_upload_leftovers(store: ObjectStore, tmp_path: Path) -> None:
    remote = Remote("r", str(tmp_path / "remote"))
    oid = store.add_bytes(b"kept")
    remote.upload_object(oid, store.path_of(oid))
    shard = tmp_path / "remote" / "objects" / oid[:2]
    (shard / f".{oid[2:]}.77.0a1b2c3d.tmp").write_bytes(b"half an upload")
    (shard / ("z" * 30)).write_bytes(b"not an object id")
    (tmp_path / "remote" / "runs" / "c").mkdir(parents=True)
    (tmp_path / "remote" / "runs" / "c" / ".r.json.77.0a1b2c3d.tmp").write_bytes(b"{")
    survey = remote.survey()
    assert set(survey.objects) == {oid} and survey.objects[oid].size == 4
    assert sorted(survey.temps) == [f"objects/{oid[:2]}/.{oid[2:]}.77.0a1b2c3d.tmp",
                                    "runs/c/.r.json.77.0a1b2c3d.tmp"]


def test_exchange_pushes_and_fetches_by_id(store: ObjectStore, tmp_path: Path) -> None:
    from pipeflow.storage.exchange import download_objects, fetch_objects, push_objects

    remote = Remote("r", str(tmp_path / "remote"))
    good, bad = store.add_bytes(b"good"), store.add_bytes(b"bad")
    push_objects(store, remote, [good, bad])
    [placed] = [Path(d) / n for d, _s, names in os.walk(tmp_path / "remote") for n in names
                if n == bad[2:]]
    placed.write_bytes(b"evil")
    absent = hash_bytes(b"never pushed")
    clone = ObjectStore(tmp_path / "clone" / "objects", Linker(setting="copy"))
    got = fetch_objects(clone, remote, [good, bad, absent], remote.objects())
    assert (got.stored, got.missing, got.rejected) == (1, (absent,), (bad,))
    assert clone.iter_oids() == [good]
    assert download_objects(clone, remote, [bad, absent, good]) == sorted([bad, absent])
