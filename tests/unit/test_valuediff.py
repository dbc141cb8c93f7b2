"""Metrics values of two versions of a file: which differ, by how much, within what."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.reproduce.compare import first_difference
from pipeflow.reproduce.valuediff import (
    UnreadableMetrics,
    diff_values,
    parse_metrics,
    relative,
    same_value,
    within,
)

keys = st.text("abcxyz01._ ", min_size=1, max_size=6)
scalars = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5),
                    st.floats(allow_nan=True, allow_infinity=True))
flat = st.dictionaries(keys, scalars, max_size=8)
numbers = st.dictionaries(keys, st.floats(min_value=-1e6, max_value=1e6).filter(
    lambda x: abs(x) > 1e-3), min_size=1, max_size=8)


@given(flat)
def test_identical_values_give_no_differences(values: dict[str, object]) -> None:
    assert diff_values(values, dict(values)) == ()
    assert within((), 0.0, recorded=values, produced=values)


@given(numbers, st.floats(min_value=1e-9, max_value=1e-2), st.data())
def test_values_that_move_less_than_the_tolerance_are_within(
        values: dict[str, float], tolerance: float, data: st.DataObject) -> None:
    moved = {k: v * (1 + data.draw(st.floats(-tolerance / 2, tolerance / 2)))
             for k, v in values.items()}
    diffs = diff_values(values, moved)
    assert {d.key for d in diffs} == {k for k in values if moved[k] != values[k]}
    assert within(diffs, tolerance, recorded=values, produced=moved)


@given(numbers, st.floats(min_value=1e-9, max_value=1e-2))
def test_a_value_beyond_the_tolerance_is_not_within(values: dict[str, float],
                                                    tolerance: float) -> None:
    key = sorted(values)[0]
    moved = {**values, key: values[key] * (1 + 3 * tolerance)}
    diffs = diff_values(values, moved)
    assert [d.key for d in diffs] == [key]
    assert diffs[0].relative == pytest.approx(3 * tolerance, rel=1e-6)
    assert not within(diffs, tolerance, recorded=values, produced=moved)


@given(flat, keys, scalars)
def test_a_key_added_or_removed_differs_and_is_never_within(
        values: dict[str, object], key: str, value: object) -> None:
    values.pop(key, None)
    added = {**values, key: value}
    for old, new in ((values, added), (added, values)):
        diffs = diff_values(old, new)
        assert [(d.key, d.recorded if old is added else d.produced) for d in diffs] == \
            [(key, value)]
        assert not within(diffs, 1e9, recorded=old, produced=new)


def test_equal_and_relative_edge_cases() -> None:
    assert same_value(math.nan, math.nan)
    assert same_value(1, 1.0)
    assert not same_value(True, 1) and not same_value(0, False)
    assert relative(0.912, 0.913) == pytest.approx(0.001 / 0.912)
    assert relative(0, 0.5) == 0.5  # a recorded 0: the absolute difference
    assert relative(math.nan, 1.0) is None and relative("a", 1) is None
    assert relative(True, 2) is None
    assert diff_values({"x": "a"}, {"x": "b"})[0].relative is None


def test_parse_nested_json_yaml_toml_csv_tsv() -> None:
    assert parse_metrics(b'{"a": [{"b": 1}, 2.5], "c": {"d": "x"}}', "m.json") == \
        {"a.0.b": 1, "a.1": 2.5, "c.d": "x"}
    assert parse_metrics(b"acc: 0.9\nper: {cat: 1}\n", "m.yaml") == {"acc": 0.9, "per.cat": 1}
    assert parse_metrics(b"[train]\nloss = 0.5\n", "m.toml") == {"train.loss": 0.5}
    assert parse_metrics(b"epoch,acc,name\n1,0.5,a\n2,0.75,b\n", "h.csv") == {
        "row 1 epoch": 1, "row 1 acc": 0.5, "row 1 name": "a",
        "row 2 epoch": 2, "row 2 acc": 0.75, "row 2 name": "b"}
    assert parse_metrics(b"k\tv\nx\t3\n", "h.tsv") == {"row 1 k": "x", "row 1 v": 3}
    assert parse_metrics(b'{"a": 1}', "metrics") == {"a": 1}  # no extension: JSON first
    assert parse_metrics(b"", "e.csv") == {}


@pytest.mark.parametrize(("data", "name"), [
    (b'{"a": ', "m.json"), (b"a: [1, \n", "m.yaml"), (b"= 3", "m.toml"),
    (b"\xff\xfe", "m.csv"), (b"[" * 5000, "m.json")])
def test_a_file_that_does_not_parse_is_said(data: bytes, name: str) -> None:
    with pytest.raises(UnreadableMetrics) as caught:
        parse_metrics(data, name)
    assert name in caught.value.message


@given(st.binary(max_size=40), st.binary(max_size=40), st.integers(1, 7))
def test_first_difference_streams_like_a_whole_comparison(a: bytes, b: bytes,
                                                          chunk: int) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        pa, pb = Path(tmp, "a"), Path(tmp, "b")
        pa.write_bytes(a)
        pb.write_bytes(b)
        expected = None if a == b else next(
            (i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
            min(len(a), len(b)))
        assert first_difference(pa, pb, chunk) == expected


def test_a_file_of_one_number_is_one_value() -> None:
    assert parse_metrics(b"0.93\n", "score.txt") == {"value": 0.93}
    assert parse_metrics(b"", "empty.yaml") == {}


@given(st.binary(max_size=200), st.sampled_from(
    ["m.json", "m.yaml", "m.yml", "m.toml", "m.csv", "m.tsv", "metrics"]))
def test_any_bytes_parse_or_are_unreadable(data: bytes, name: str) -> None:
    try:
        values = parse_metrics(data, name)
    except UnreadableMetrics as exc:
        assert name in exc.message
    else:
        assert all(isinstance(k, str) for k in values)
        assert diff_values(values, dict(values)) == ()
