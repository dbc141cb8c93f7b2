"""Pieces of gc: durations as typed, file times as fsspec backends report them."""

from __future__ import annotations

import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.duration import describe, parse_duration
from pipeflow.storage.remote import UPLOAD_TEMP, modified


@pytest.mark.parametrize(("text", "seconds"), [
    ("0", 0), ("0s", 0), ("45s", 45), ("30m", 1800), ("2h", 7200), ("1h30m", 5400),
    ("1d", 86400), ("2w", 1209600), ("1.5h", 5400), (" 2H ", 7200)])
def test_durations_parse(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "2 hours", "h", "-1h", "2h-", "soon"])
def test_bad_durations_say_what_is_accepted(text: str) -> None:
    with pytest.raises(ValueError, match=r"e\.g\. 30m, 2h"):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**7))
def test_describe_reads_back(seconds: int) -> None:
    assert parse_duration(describe(seconds)) == seconds


WHEN = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.UTC)


@pytest.mark.parametrize("info", [
    {"mtime": WHEN.timestamp(), "created": 0.0},             # local
    {"LastModified": WHEN},                                 # s3
    {"last_modified": WHEN.replace(tzinfo=None)},           # azure (naive UTC)
    {"updated": "2026-05-01T12:00:00.000Z"},                # gcs
    {"created": WHEN.timestamp()},                          # memory
])
def test_backends_report_a_files_time_under_their_own_key(info: dict[str, object]) -> None:
    assert modified(info) == WHEN.timestamp()


def test_no_time_reported_is_unknown() -> None:
    assert modified({"size": 3, "type": "file"}) is None
    assert modified({"updated": "yesterday"}) is None


def test_upload_temporaries_are_recognised() -> None:
    assert UPLOAD_TEMP.search("ab/cdef0123.tmp-0a1b2c3d")
    assert UPLOAD_TEMP.search("ab/.cdef0123.4242.0a1b2c3d.tmp")
    assert not UPLOAD_TEMP.search("ab/cdef0123")
    assert not UPLOAD_TEMP.search("chain/00000001-ab.json")
