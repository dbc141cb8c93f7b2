"""The YAML emitter: exact layout, quoting rules, and round trips through PyYAML."""

from __future__ import annotations

import datetime
import math
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.files.yamlemit import dump, load

CLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
UTC = datetime.UTC
IST = datetime.timezone(datetime.timedelta(hours=5, minutes=30))
MINUS_0330 = datetime.timezone(-datetime.timedelta(hours=3, minutes=30))


def same(a: Any, b: Any) -> bool:
    """Equality where nan equals nan (and lists equal tuples, as YAML has no tuples)."""
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple):
        if not isinstance(b, list) or len(a) != len(b):
            return False
        return all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    if isinstance(a, datetime.datetime):
        return type(b) is datetime.datetime and a == b and a.utcoffset() == b.utcoffset()
    return type(a) is type(b) and a == b


def test_dates_and_datetimes_are_yaml_timestamps() -> None:
    value = {
        "day": datetime.date(2024, 1, 31),
        "naive": datetime.datetime(2001, 12, 14, 21, 59, 43, 100000),
        "aware": datetime.datetime(2001, 12, 14, 21, 59, tzinfo=IST),
    }
    assert dump(value) == (
        "day: 2024-01-31\nnaive: 2001-12-14T21:59:43.100000\naware: 2001-12-14T21:59:00+05:30\n"
    )
    assert same(value, yaml.load(dump(value), Loader=CLoader))


def test_offsets_with_seconds_cannot_be_written() -> None:
    odd = datetime.timezone(datetime.timedelta(seconds=30))
    with pytest.raises(TypeError, match="UTC offset"):
        dump(datetime.datetime(2001, 1, 1, tzinfo=odd))


def test_layout_of_a_nested_document() -> None:
    value = {
        "schema": 1,
        "name": "train@small",
        "cmd": ["python train.py", "echo done"],
        "deps": [{"path": "data/x.csv", "hash": "0a1b2c", "size": 3}, {"path": "y", "size": 0}],
        "empty_map": {},
        "empty_list": [],
        "nested": [[1, 2], [], {"a": {"b": None}}],
        "flags": {"on": True, "off": False},
    }
    assert dump(value) == (
        "schema: 1\n"
        "name: train@small\n"
        "cmd:\n"
        '  - "python train.py"\n'
        '  - "echo done"\n'
        "deps:\n"
        "  - path: data/x.csv\n"
        "    hash: 0a1b2c\n"
        "    size: 3\n"
        '  - path: "y"\n'
        "    size: 0\n"
        "empty_map: {}\n"
        "empty_list: []\n"
        "nested:\n"
        "  - - 1\n"
        "    - 2\n"
        "  - []\n"
        "  - a:\n"
        "      b: null\n"
        "flags:\n"
        '  "on": true\n'
        '  "off": false\n'
    )


def test_keys_keep_insertion_order() -> None:
    assert dump({"b": 1, "a": 2}) == "b: 1\na: 2\n"
    assert dump({"a": 2, "b": 1}) == "a: 2\nb: 1\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ({}, "{}\n"),
        ([], "[]\n"),
        ("plain", "plain\n"),
        (None, "null\n"),
        (1e-05, "1.0e-05\n"),
        (1e16, "1.0e+16\n"),
        (2.5, "2.5\n"),
        (-0.0, "-0.0\n"),
        (float("inf"), ".inf\n"),
        (float("-inf"), "-.inf\n"),
        (float("nan"), ".nan\n"),
        (10**30, "1000000000000000000000000000000\n"),
        ((1, 2), "- 1\n- 2\n"),
    ],
)
def test_top_level_values(value: Any, text: str) -> None:
    assert dump(value) == text
    assert same(value, yaml.load(text, Loader=CLoader))


@pytest.mark.parametrize(
    "text",
    [
        "yes",
        "No",
        "ON",
        "off",
        "y",
        "N",
        "true",
        "False",
        "null",
        "NULL",
        "~",
        "",
        " ",
        "1",
        "-1",
        "+1",
        "0777",
        "0o17",
        "0x1F",
        "0b101",
        "1_000",
        "1.5",
        "1e5",
        "1E+5",
        ".5",
        "5.",
        "1:20",
        "2001-12-14",
        "2001-1-2",
        ".inf",
        "-.inf",
        ".nan",
        "-",
        "--- x",
        "...",
        "@x",
        "!tag",
        "&a",
        "*a",
        "%x",
        "`x",
        "|",
        ">",
        "a: b",
        "a #b",
        "#c",
        "a\tb",
        "[x]",
        "{x}",
        "x,y",
        "?",
        "<<",
        "=",
        "'q'",
        '"q"',
        "ends ",
        " starts",
        "new\nline",
        "cr\r",
        "nel\x85",
        "ls\u2028",
        "bom\ufeff",
        "nul\x00",
        "del\x7f",
        "c1\x9f",
        "back\\slash",
        "00",
        "0_0",
    ],
)
def test_strings_that_must_not_be_plain_are_quoted(text: str) -> None:
    emitted = dump(text)
    assert emitted.startswith('"'), emitted
    assert yaml.load(emitted, Loader=CLoader) == text
    assert yaml.load(emitted, Loader=yaml.SafeLoader) == text


@pytest.mark.parametrize(
    "text",
    [
        "abc",
        "data/raw.csv",
        "/abs/path",
        "_private",
        "train@small",
        "a+b",
        "a-b",
        "v1.2.3",
        "1.2.3",
        "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
        "1234abcd",
        "Yes_no",
        "nan",
        "inf",
        "x1e5",
        "2001x",
    ],
)
def test_safe_strings_are_plain_and_read_back_as_strings(text: str) -> None:
    emitted = dump(text)
    assert emitted == text + "\n"
    assert yaml.load(emitted, Loader=CLoader) == text


def test_escapes_are_json_style() -> None:
    assert dump('a"b\\c\n\t\x01\u2028\udc80') == '"a\\"b\\\\c\\n\\t\\u0001\\u2028\\udc80"\n'


def test_printable_unicode_is_written_literally() -> None:
    # Quoted (plain scalars are ASCII-only), but not escaped.
    assert dump({"café": "naïve ☃ 😀"}) == '"café": "naïve ☃ 😀"\n'


def test_long_keys_use_the_explicit_form() -> None:
    key = "k" * 2000
    value = {key: {"a": 1}, "short": [1], "x" * 1500: 2}
    assert load(dump(value)) == value
    assert yaml.load(dump(value), Loader=CLoader) == value


def test_lone_surrogates_round_trip_through_load() -> None:
    value = {"data/\udcff\udc80.bin": "\ud800x"}
    text = dump(value)
    text.encode("utf-8")  # the text itself holds no surrogate
    assert load(text) == value


@pytest.mark.parametrize(
    "bad", [{1, 2}, b"bytes", object(), {(1, 2): 3}, {"a": [1j]}, datetime.time(12, 0)]
)
def test_unsupported_types_raise_type_error(bad: Any) -> None:
    with pytest.raises(TypeError):
        dump(bad)


scalars = (
    st.text()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.booleans()
    | st.none()
    | st.dates()
    | st.datetimes()
    | st.datetimes(timezones=st.sampled_from([UTC, IST, MINUS_0330]))
)
values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=400)
@given(values)
def test_round_trip_through_libyaml(value: Any) -> None:
    text = dump(value)
    assert same(value, yaml.load(text, Loader=CLoader))


@settings(max_examples=200)
@given(values)
def test_round_trip_through_the_pure_python_loader(value: Any) -> None:
    assert same(value, yaml.load(dump(value), Loader=yaml.SafeLoader))


any_text = st.text(st.characters(exclude_categories=()))
values_with_surrogates = st.recursive(
    any_text | st.integers() | st.floats() | st.none(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(any_text, children, max_size=4)
    ),
    max_leaves=20,
)


@settings(max_examples=300)
@given(values_with_surrogates)
def test_round_trip_of_any_code_point_through_load(value: Any) -> None:
    text = dump(value)
    text.encode("utf-8")
    assert same(value, load(text))


@given(st.dictionaries(st.text(), scalars, max_size=6))
def test_dump_is_deterministic(value: dict[str, Any]) -> None:
    assert dump(value) == dump(dict(value))


@settings(max_examples=500)
@given(st.text(alphabet="0123456789eE.+-_xXoObB:/@aAnNyYtTfF~", min_size=1, max_size=10))
def test_number_and_word_like_strings_stay_strings(text: str) -> None:
    assert yaml.load(dump(text), Loader=CLoader) == text
