"""The journal: finished stages of the unfinished run, folded over the lock."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pipeflow.execution import journal
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock
from pipeflow.state import StateDB


def entry(cmd: str, digit: str = "a") -> StageLock:
    return StageLock(cmd=(cmd,), fingerprint=digit * 32,
                     outs=(FileEntry(f"{cmd}.out", digit * 32, 3),),
                     params={"params.yaml": {"lr": 0.5}})


@pytest.fixture
def state(tmp_path: Path) -> Iterator[StateDB]:
    with StateDB(tmp_path / "state.db") as db:
        yield db


def test_append_and_read_back(state: StateDB) -> None:
    assert journal.entries(state) == {}
    journal.append(state, "train", entry("train"))
    assert journal.entries(state) == {"train": entry("train")}


def test_later_row_wins(state: StateDB) -> None:
    journal.append(state, "train", entry("train", "a"))
    journal.append(state, "prep", entry("prep", "b"))
    journal.append(state, "train", entry("train", "c"))
    assert journal.entries(state) == {"train": entry("train", "c"), "prep": entry("prep", "b")}


def test_unreadable_rows_are_dropped(state: StateDB) -> None:
    journal.append(state, "a", entry("a"))
    state.journal_append("b", "{not json")
    state.journal_append("c", '{"cmd": "x"}')  # no fingerprint
    state.journal_append("d", "[1, 2]")
    state.journal_append("e", '{"cmd": "x", "fingerprint": "short"}')
    journal.append(state, "f", entry("f"))
    assert journal.entries(state) == {"a": entry("a"), "f": entry("f")}


def test_fold_rows_over_the_lock_sorted_by_name() -> None:
    source = FileEntry("raw.csv", "e" * 32, 9)
    lock = Lock(stages={"z": entry("z", "1"), "train": entry("train", "1")},
                sources={"raw.csv": source})
    folded = journal.fold(lock, {"train": entry("train", "2"), "b": entry("b", "2")})
    assert list(folded.stages) == ["b", "train", "z"]
    assert folded.stages["train"] == entry("train", "2")  # the journal wins over the lock
    assert folded.stages["z"] == entry("z", "1")
    assert folded.sources == {"raw.csv": source}
    assert journal.fold(lock, {}) == Lock(stages=dict(sorted(lock.stages.items())),
                                          sources=lock.sources)


def test_fold_keep_drops_stages_no_longer_in_the_pipeline() -> None:
    lock = Lock(stages={"old": entry("old"), "train": entry("train")})
    folded = journal.fold(lock, {"new": entry("new"), "gone": entry("gone")},
                          keep=iter(["train", "new", "unknown"]))
    assert list(folded.stages) == ["new", "train"]
    assert journal.fold(lock, {}, keep=[]).stages == {}


def test_round_trip_through_the_database(state: StateDB) -> None:
    lock = Lock(stages={"train": entry("train", "1")})
    journal.append(state, "train", entry("train", "2"))
    folded = journal.fold(lock, journal.entries(state))
    assert folded.stages["train"].fingerprint == "2" * 32
    state.journal_clear()
    assert journal.fold(lock, journal.entries(state)) == lock
