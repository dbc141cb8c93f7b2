"""``cli/output``: what it does to text from data before a terminal, a Markdown
renderer or a spreadsheet sees it."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.cli import output
from pipeflow.cli.exp_show import md_cell

CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@settings(max_examples=500, deadline=None)
@given(st.text())
def test_printable_leaves_no_control_character_but_newline_and_tab(text: str) -> None:
    shown = output.printable(text)
    assert not CONTROLS.search(shown)
    shown.encode("utf-8")  # nor a lone surrogate
    assert output.printable(shown) == shown  # escaping twice changes nothing more


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Cc", "Cs"))) | st.just("a\tb\nc"))
def test_printable_leaves_plain_text_unchanged(text: str) -> None:
    assert output.printable(text) == text


def test_controls_are_escaped_and_pipeflows_own_style_kept() -> None:
    line = output.render_line(("esc\x1b]0;T\x07 ", output.styled("changed", fg="yellow")), {})
    assert line == "esc\\x1b]0;T\\x07 \x1b[33mchanged\x1b[0m"
    assert output.render_line(("\x9b31m red",), {"fg": "red"}) == "\x1b[31m\\x9b31m red\x1b[0m"


def test_json_escapes_c1_controls_as_json() -> None:
    assert output.json_escaped('{"a": "\x9b\x7f"}') == '{"a": "\\u009b\\u007f"}'


@pytest.mark.parametrize(("cell", "shown"), [
    ("=1+2", "'=1+2"), ("+1+2", "'+1+2"), ("-2+3", "'-2+3"), ("@SUM(A1)", "'@SUM(A1)"),
    ("\t=1", "'\t=1"), ("-0.5", "-0.5"), ("+1e3", "+1e3"), ("a=b", "a=b"), ("", ""),
    ("\x1b[2J", "\\x1b[2J"),
])
def test_csv_cell(cell: str, shown: str) -> None:
    assert output.csv_cell(cell) == shown


@pytest.mark.parametrize(("cell", "shown"), [
    ("a|b", "a\\|b"), ("a\\|b", "a\\\\\\|b"), ("<b>&", "&lt;b&gt;&amp;"),
    ("[x](https://e)", "\\[x\\](https://e)"), ("`x`", "\\`x\\`"), ("a\n\nb", "a b"),
    ("x" * 600, "x" * 499 + "…"),
])
def test_md_cell(cell: str, shown: str) -> None:
    assert md_cell(cell) == shown


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_an_md_cell_never_splits_its_row(text: str) -> None:
    """Its pipes each follow an odd number of backslashes (escaped), it has no line
    break and no ``<``."""
    cell = md_cell(text)
    assert "\n" not in cell and "<" not in cell
    assert re.fullmatch(r"(?:[^|\\]|\\.)*", cell, re.DOTALL)


def test_json_has_no_bare_infinity_or_nan(capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from pipeflow.cli.output import emit_json

    emit_json({"a": float("inf"), "b": [float("-inf"), float("nan")], "c": 1.5})
    text = capsys.readouterr().out
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"bare {c}")) == {
        "a": "inf", "b": ["-inf", "nan"], "c": 1.5}
