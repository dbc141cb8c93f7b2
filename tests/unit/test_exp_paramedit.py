"""Setting values in params files (exp run's scratch workspace, exp apply's own files):
the values read back through pipeflow's reader with their types, and everything else
in the file — comments, order, layout — stays as it was."""

from __future__ import annotations

import datetime
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow import params
from pipeflow.errors import UsageError
from pipeflow.experiments import paramedit, tomledit, yamledit
from pipeflow.experiments.paramedit import ParamsEditError, json_indent, set_values


@pytest.fixture(autouse=True)
def _fresh_cache() -> None:
    params.clear_cache()


def _read(path: Path) -> dict[str, Any]:
    params.clear_cache()
    return params.read_params(path)


# -- YAML ------------------------------------------------------------------------------

COMMENTED = """\
# the model's params
train:
  C: 1.0      # regularization
  kernel: rbf # which kernel
  layers:
  - 16
  - 8
  # a comment between keys
  name: "baseline"
featurize: {k: 5, norm: true}   # flow style
seed: 42
"""


def test_yaml_keeps_comments_and_quotes_strings_that_read_as_other_types(tmp_path: Path
                                                                         ) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(COMMENTED)
    set_values(path, {"train.C": "10", "train.layers": [32, 16], "featurize.k": 7,
                      "seed": True, "train.name": "a,b"}, root=tmp_path)
    assert path.read_text() == """\
# the model's params
train:
  C: '10'      # regularization
  kernel: rbf # which kernel
  layers: [32, 16]
  # a comment between keys
  name: "a,b"
featurize: {k: 7, norm: true}   # flow style
seed: true
"""
    data = _read(path)
    assert data["train"]["C"] == "10"
    assert data["featurize"] == {"k": 7, "norm": True}


@pytest.mark.parametrize("value", [
    10, 0.1, 1e-5, -3, True, False, None, "10", "true", "null", "", "#x", "a: b", "x\ny",
    "1; touch x", "é", "[1, 2]", [], [1, "a,b", None], [[1, 2], [3]], float("inf"),
    datetime.date(2024, 1, 2), "2024-01-02", "0x10", "1e5", "~", "- a", "'q'", '"q"',
])
def test_yaml_value_reads_back_with_its_type(tmp_path: Path, value: Any) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("a:\n  b: 1  # keep\n  c: {d: 2}\n")
    set_values(path, {"a.b": value, "a.c.d": value})
    data = _read(path)
    assert params.diff({"b": data["a"]["b"], "d": data["a"]["c"]["d"]},
                       {"b": value, "d": value}) == []
    assert path.read_text().splitlines()[1].endswith("  # keep")


@pytest.mark.parametrize("text", [
    "a:\n  b:\n  - 1\n  - 2\nz: 0\n",      # a block list in its key's column
    "a:\n  b:\n    - 1\n    - 2\nz: 0\n",  # indented
    "a:\n  b:\nz: 0\n",                     # null, nothing written
    "a:\n  b: |\n    text\n    more\n\nz: 0\n",
    "a:\n  b: >-\n    folded\nz: 0\n",
    "a:\n  b: 'one\n    two'\nz: 0\n",       # a quoted scalar over two lines
    "a: {b: 1, c: 2}\nz: 0\n",
    "a:\n  b:\n    - x: 1\n    - x: 2\nz: 0\n",
])
def test_yaml_value_forms_are_replaced_on_the_key_line(tmp_path: Path, text: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    set_values(path, {"a.b": [3, 4]})
    assert _read(path)["a"]["b"] == [3, 4]
    assert _read(path)["z"] == 0
    assert "b: [3, 4]" in path.read_text()


@pytest.mark.parametrize("text", [
    "a:\n  b:  # the list\n  - 1\n  - 2\nz: 0\n",
    "a:\n  b:  # the list\n      - 1\nz: 0\n",
])
def test_yaml_value_after_a_comment_stays_on_its_own_line(tmp_path: Path, text: str
                                                          ) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    set_values(path, {"a.b": [3, 4]})
    assert _read(path) == {"a": {"b": [3, 4]}, "z": 0}
    assert "  b:  # the list\n" in path.read_text()


@pytest.mark.parametrize(("text", "problem"), [
    ("base: &b 1\na:\n  b: *b\n", "anchor or alias"),
    ("a:\n  b: &x 1\nc: *x\n", "anchor or alias"),
    ("base: &s {b: 1}\na: *s\n", "anchor or alias"),
    ("base: &s {b: 1}\na:\n  <<: *s\n", "merge key"),
    ("a:\n  b: !!str 1\n", "tag"),
])
def test_yaml_shared_or_tagged_values_are_refused_untouched(tmp_path: Path, text: str,
                                                            problem: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text(text)
    with pytest.raises(UsageError, match=problem):
        set_values(path, {"a.b": 2})
    assert path.read_text() == text


def test_an_edit_that_would_not_read_back_leaves_the_file_untouched(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("a: 1\nb: 2\n")
    monkeypatch.setattr(yamledit, "flow", lambda value, shown="", key="": "1\nc: 5")
    with pytest.raises(ParamsEditError, match="'c' would read 5"):
        set_values(path, {"a": 1})
    assert path.read_text() == "a: 1\nb: 2\n"


def test_a_symlinked_params_file_is_replaced_not_written_through(tmp_path: Path) -> None:
    target = tmp_path / "shared.yaml"
    target.write_text("a: 1\n")
    link = tmp_path / "params.yaml"
    link.symlink_to(target)
    set_values(link, {"a": 2}, root=tmp_path)
    assert target.read_text() == "a: 1\n"
    assert not link.is_symlink() and link.read_text() == "a: 2\n"


@pytest.mark.parametrize(("values", "message", "hint"), [
    ({"trian.C": 1}, "params.yaml has no key 'trian.C'", "did you mean 'train.C'"),
    ({"train": 1}, "'train' is a section", "leaf keys"),
])
def test_a_key_that_is_no_value_of_the_file(tmp_path: Path, values: dict[str, Any],
                                            message: str, hint: str) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  C: 1\n")
    with pytest.raises(UsageError) as info:
        set_values(path, values, root=tmp_path)
    assert message in info.value.message and hint in (info.value.hint or "")
    assert path.read_text() == "train:\n  C: 1\n"


# -- the property: any commented YAML file, any values ---------------------------------

_KEY = st.from_regex(r"[a-z][a-z0-9_]{0,5}", fullmatch=True).filter(
    lambda k: k.lower() not in {"y", "n", "yes", "no", "on", "off", "true", "false", "null"})
_SCALAR = (st.integers(-10**6, 10**6) | st.floats(allow_nan=False) | st.booleans()
           | st.none() | st.text(max_size=8)
           | st.sampled_from(["10", "0.1", "true", "null", "a,b", "#c", "a: b", "", "x\ny"]))
_VALUE = _SCALAR | st.lists(_SCALAR, max_size=3)
_TREE = st.recursive(
    st.dictionaries(_KEY, _VALUE, min_size=1, max_size=4),
    lambda inner: st.dictionaries(_KEY, _VALUE | inner, min_size=1, max_size=4),
    max_leaves=12)


@dataclass
class _Leaf:
    key: str
    first: int  # the lines its value spans in the original text
    last: int


def _scalar_text(value: Any) -> str:
    style = '"' if isinstance(value, str) else None
    return str(yaml.safe_dump(value, default_flow_style=True, default_style=style,
                              width=1 << 30)).removesuffix("\n...\n").rstrip("\n")


def _write(tree: dict[str, Any], lines: list[str], leaves: list[_Leaf], block: bool,
           indent: str = "", prefix: str = "") -> None:
    """Block-style YAML with a comment after every value and between keys; lists as
    block sequences when ``block``, else in flow style."""
    for n, (key, value) in enumerate(tree.items()):
        dotted = f"{prefix}{key}"
        if n % 2:
            lines.append(f"{indent}# about {dotted}")
        if isinstance(value, dict) and value:
            lines.append(f"{indent}{key}:   # section {dotted}")
            _write(value, lines, leaves, block, indent + "  ", dotted + ".")
        elif isinstance(value, list) and value and block:
            first = len(lines)
            lines.append(f"{indent}{key}:")
            lines.extend(f"{indent}- {_scalar_text(v)}" for v in value)
            leaves.append(_Leaf(dotted, first, len(lines) - 1))
        else:
            text = "[" + ", ".join(map(_scalar_text, value)) + "]" if isinstance(
                value, list) else _scalar_text(value)
            leaves.append(_Leaf(dotted, len(lines), len(lines)))
            lines.append(f"{indent}{key}: {text}  # about {dotted}")


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(tree=_TREE, block=st.booleans(), data=st.data())
def test_set_values_round_trips_and_leaves_every_other_line_identical(
        tmp_path: Path, tree: dict[str, Any], block: bool, data: st.DataObject) -> None:
    lines: list[str] = ["# params"]
    leaves: list[_Leaf] = []
    _write(tree, lines, leaves, block)
    original = "\n".join(lines) + "\n"
    path = tmp_path / "params.yaml"
    path.write_text(original)
    chosen = data.draw(st.lists(st.sampled_from(leaves), min_size=1, max_size=4,
                                unique_by=lambda leaf: leaf.key))
    values = {leaf.key: data.draw(_VALUE) for leaf in chosen}

    set_values(path, values)

    expected = paramedit.with_values(_read_text(original), values)
    assert params.diff(params.flatten(_read(path)), params.flatten(expected)) == []
    edited = {leaf.first: leaf for leaf in chosen}
    new_lines = path.read_text().split("\n")
    i = j = 0
    while i < len(lines):
        leaf = edited.get(i)
        if leaf is None:
            assert new_lines[j] == lines[i]
            i += 1
        else:  # the value's lines became one line, still the key's, with its comment
            key_part = lines[i].split(":")[0]
            assert new_lines[j].startswith(key_part + ": ")
            if "  # about" in lines[i]:
                assert new_lines[j].endswith(lines[i][lines[i].index("  # about"):])
            i = leaf.last + 1
        j += 1


def _read_text(text: str) -> dict[str, Any]:
    return params.parse_params(text.encode(), ".yaml", "params.yaml")


# -- JSON ------------------------------------------------------------------------------

@pytest.mark.parametrize("indent", [None, 2, 4, "\t"])
def test_json_keeps_key_order_and_indentation(tmp_path: Path, indent: Any) -> None:
    data = {"z": 1, "a": {"y": [1, 2], "b": "é"}, "m": None}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n")
    set_values(path, {"a.y": "10", "z": 0.5})
    data["z"] = 0.5
    data["a"]["y"] = "10"  # type: ignore[index]
    assert path.read_text() == json.dumps(data, indent=indent, ensure_ascii=False) + "\n"


def test_json_indent_detection() -> None:
    assert json_indent('{"a": 1}') is None
    assert json_indent('{\n   "a": 1\n}') == 3
    assert json_indent('{\n\t"a": 1\n}') == "\t"


def test_json_refuses_a_value_json_cannot_hold(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text('{"a": 1}')
    with pytest.raises(UsageError, match="JSON"):
        set_values(path, {"a": datetime.date(2024, 1, 1)})
    assert path.read_text() == '{"a": 1}'


# -- TOML ------------------------------------------------------------------------------

TOML = """\
# top
seed = 1 # the seed
[train]
C = 0.5   # the C
name = "a#b" # has a hash
layers = [
  16, # first
  8,
]
"quoted key" = 'x'
[other]
x.y = 1
inline = {a = 1}
[[runs]]
n = 1
"""


def test_toml_edits_the_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    set_values(path, {"seed": True, "train.C": 10, "train.name": 'q"s',
                      "train.layers": [1, 2], "train.quoted key": 1e-5})
    assert path.read_text() == TOML.replace("seed = 1 #", "seed = true #").replace(
        "C = 0.5 ", "C = 10 ").replace('"a#b"', '"q\\"s"').replace(
        "[\n  16, # first\n  8,\n]", "[1, 2]").replace("= 'x'", "= 1e-05")
    assert _read(path)["train"]["quoted key"] == 1e-5


@pytest.mark.parametrize(("key", "problem"), [
    ("other.x.y", "dotted key"), ("other.inline.a", "inline table"),
])
def test_toml_forms_not_edited_are_refused(tmp_path: Path, key: str, problem: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    with pytest.raises(UsageError, match=problem):
        set_values(path, {key: 2})
    assert path.read_text() == TOML


@pytest.mark.parametrize("value", [
    0, -7, 0.1, 1e300, float("inf"), float("nan"), True, "", "x\ny\t\x7f\"\\", "é",
    [1, [2, "3"]], datetime.date(2024, 1, 2),
])
def test_toml_values_read_back(value: Any) -> None:
    text = tomledit.set_values("[a]\nb = 1\n", {"a.b": value}, "p.toml")
    got = params.parse_params(text.encode(), ".toml", "p.toml")["a"]["b"]
    if isinstance(value, float) and math.isnan(value):
        assert math.isnan(got)
    else:
        assert got == value and type(got) is type(value)


def test_toml_cannot_hold_null() -> None:
    with pytest.raises(UsageError, match="null"):
        tomledit.set_values("a = 1\n", {"a": None}, "p.toml")


_TOML_VALUE = (st.integers(-2**63, 2**63 - 1) | st.floats() | st.booleans()
               | st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
               | st.lists(st.integers(-9, 9) | st.text(max_size=3), max_size=3))


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(value=_TOML_VALUE, other=st.sampled_from(["seed", "train.C", "train.name"]))
def test_toml_edits_round_trip_and_leave_other_lines(tmp_path: Path, value: Any,
                                                    other: str) -> None:
    path = tmp_path / "p.toml"
    path.write_text(TOML)
    set_values(path, {other: value})
    got = params.flatten(_read(path))
    want = params.flatten(paramedit.with_values(_read_text_toml(TOML), {other: value}))
    assert params.diff(got, want) == []
    changed = [a for a, b in zip(TOML.split("\n"), path.read_text().split("\n"),
                                 strict=False) if a != b]
    assert len(changed) <= 1 and TOML.count("\n") == path.read_text().count("\n")


def _read_text_toml(text: str) -> dict[str, Any]:
    return params.parse_params(text.encode(), ".toml", "p.toml")
