"""The typed run record (pipeflow.records.records): its JSON is the on-disk format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.records.records import (
    OutputKind,
    OutputRef,
    RecordBody,
    RecordError,
    RecordKind,
    canonical,
)

# Records as pipeflow wrote them before the typed model, byte for byte: pipeflow add
# of a file and of a folder, repro -k with a folder output, a metric and a failing
# stage, then a run-cache restore.
WRITTEN_BEFORE = [line for line in (Path(__file__).parent / "data" / "records_format1.jsonl")
                  .read_text(encoding="utf-8").split("\n") if line]


@pytest.mark.parametrize("line", WRITTEN_BEFORE)
def test_a_record_written_before_round_trips_byte_for_byte(line: str) -> None:
    body = RecordBody.from_json(json.loads(line))
    assert canonical(body.to_json()) == line.encode()
    assert RecordBody.from_json(body.to_json()) == body


def test_a_record_reads_as_typed_values() -> None:
    run = RecordBody.from_json(json.loads(WRITTEN_BEFORE[2]))
    assert run.kind is RecordKind.RUN and run.exit_status == 0
    assert [(o.path, o.kind, o.isdir, o.nfiles) for o in run.outputs or ()] == [
        ("out", OutputKind.OUT, True, 1), ("m.json", OutputKind.METRIC, False, None)]
    assert run.components is not None and run.components.deps[0].path == "data/raw.txt"
    assert run.metrics == {"m.json": {"acc": 0.5}}
    failed = RecordBody.from_json(json.loads(WRITTEN_BEFORE[3]))
    assert failed.outputs is None and failed.metrics is None and failed.error


def test_fields_a_newer_pipeflow_wrote_are_kept() -> None:
    data = {**json.loads(WRITTEN_BEFORE[2]), "signature": {"key": "k1"}}
    assert RecordBody.from_json(data).to_json() == data


def test_an_output_without_kind_is_an_out_and_uncached_is_written() -> None:
    ref = OutputRef.from_json({"path": "a", "hash": "h", "size": 1})
    assert ref.kind is OutputKind.OUT and ref.cache
    off = OutputRef("a", "h", 1, cache=False)
    assert off.to_json() == {"path": "a", "hash": "h", "size": 1, "kind": "out",
                             "cache": False}


@pytest.mark.parametrize("data", [
    [], "run", {"kind": "build"}, {"outputs": [{"path": "a", "hash": "h", "kind": "x"}]},
    {"outputs": [{"path": "a", "hash": "h", "cache": "no"}]},
    {"components": {"deps": [{"path": "a", "hash": "h", "isdir": 1}]}},
    {"error": 5}, {"outputs": [{"path": "../x", "hash": "h"}]},
])
def test_a_body_of_the_wrong_shape_is_refused(data: Any) -> None:
    with pytest.raises(RecordError, match="run record"):
        RecordBody.from_json(data)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20)
FIELDS = ["kind", "stage", "fingerprint", "exit_status", "duration", "git", "command",
          "components", "env_exact", "outputs", "metrics", "error", "seq", "prev", "chain"]
near_records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=4).map(
    lambda over: {**json.loads(WRITTEN_BEFORE[2]), **over})


@settings(max_examples=500, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_values, near_records))
def test_from_json_raises_only_its_own_error(data: Any) -> None:
    try:
        body = RecordBody.from_json(data)
    except RecordError:
        return
    # what it accepts, it writes back as it reads it
    assert RecordBody.from_json(body.to_json()) == body
