"""What run records hold reaches the reader's terminal, a CI's Markdown comment and a
spreadsheet as data, never as control: records come from a shared remote anyone with
write access fills (experiments appended for real: ``helpers_exp``)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from tests.conftest import Project
from tests.functional.helpers import chain, commit
from tests.functional.helpers_exp import record_experiment

NAME = "esc\x1b]0;TITLE\x07\x1b[2J"
"""Retitles an xterm and clears the screen, when printed raw."""
RED = "\x1b[31mRED"
CSI = "\x9bc1"  # a one-byte (C1) control sequence introducer
HTML = "<img src=x onerror=alert(1)>"
MD = "a|b\nc `code` [click](https://evil.example) \\|d"
FORMULAS = {"f.eq": '=HYPERLINK("https://evil.example","x")', "f.plus": "+1+2",
            "f.minus": "-2+3", "f.at": "@SUM(A1)", "f.neg": "-0.5"}
CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


@pytest.fixture
def hostile(project: Project) -> Project:
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    record_experiment(project, NAME, metrics={"note": RED},
                      extra_params={"other.yaml": {"csi": CSI, "html": HTML, "md": MD,
                                                   **FORMULAS}})
    return project


def no_controls(res_text: str) -> None:
    assert not CONTROLS.search(res_text), repr(CONTROLS.findall(res_text))


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--md"], ["--csv"], ["--all"]])
def test_exp_show_never_prints_a_control_character(hostile: Project, fmt: list[str]) -> None:
    res = hostile.cli("exp", "show", *fmt)
    assert res.code == 0, res.text
    no_controls(res.out.replace("\r\n", "\n").replace("\t", ""))  # CSV's own line ends
    no_controls(res.err)
    if fmt == ["--json"]:  # JSON escapes them, and keeps the value whole
        names = [row["name"] for row in json.loads(res.out)["rows"]]
        assert NAME in names
        assert '"note": "\\u001b[31mRED"' in res.out and "\\u009bc1" in res.out
    elif fmt == ["--md"]:  # escaped, then its backslashes escaped for Markdown
        assert "esc\\\\x1b\\]0;TITLE\\\\x07\\\\x1b\\[2J" in res.out
    else:
        assert "esc\\x1b]0;TITLE\\x07\\x1b[2J"[:20] in res.out  # cut to 24 in text


@pytest.mark.parametrize("fmt", [[], ["--json"], ["--md"]])
def test_exp_diff_never_prints_a_control_character(hostile: Project, fmt: list[str]) -> None:
    res = hostile.cli("exp", "diff", NAME, "--all", *fmt)
    assert res.code == 0, res.text
    no_controls(res.out)
    no_controls(res.err)


def md_cells(line: str) -> list[str]:
    """A GFM table row's cells: split at the pipes no backslash escapes."""
    assert line.startswith("| ") and line.endswith(" |"), line
    return re.split(r"(?<!\\)((?:\\\\)*)\|", line[2:-2])[::2]


@pytest.mark.parametrize("command", [["exp", "show", "--all"], ["exp", "diff", NAME, "--all"]])
def test_markdown_keeps_its_columns_and_holds_no_markup(hostile: Project,
                                                        command: list[str]) -> None:
    res = hostile.run(*command, "--md")
    assert res.code == 0, res.text
    lines = res.out.splitlines()
    columns = lines[1].count("|") - 1
    assert all(len(md_cells(line)) == columns for line in [lines[0], *lines[2:]]), res.out
    assert "<img" not in res.out and "&lt;img src=x onerror=alert(1)&gt;" in res.out
    assert "](" not in res.out.replace("\\](", "")  # no link: its brackets escaped
    assert "\\[click\\]" in res.out and "\\`code\\`" in res.out
    assert "a\\|b c" in res.out  # the newline a space, the pipe escaped
    assert "\\\\\\|d" in res.out  # a backslash before a pipe cannot unescape it


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(hostile: Project) -> None:
    res = hostile.run("exp", "show", "--csv", "--all")
    assert res.code == 0, res.text
    head, *rows = list(csv.reader(io.StringIO(res.out)))
    row = dict(zip(head, rows[-1], strict=True))
    assert row["other.yaml:f.eq"] == "'" + FORMULAS["f.eq"]
    assert row["other.yaml:f.plus"] == "'+1+2"
    assert row["other.yaml:f.minus"] == "'-2+3"
    assert row["other.yaml:f.at"] == "'@SUM(A1)"
    assert row["other.yaml:f.neg"] == "-0.5"  # a plain number stays one
    assert row["name"] == "esc\\x1b]0;TITLE\\x07\\x1b[2J"
    assert row["other.yaml:md"] == MD  # a newline inside a quoted cell is data


def test_metrics_show_escapes_what_a_metrics_file_holds(project: Project) -> None:
    project.write("src.json", json.dumps({"note": RED, "acc": 0.5}))
    project.spec({"report": {"cmd": "cp src.json metrics.json", "deps": ["src.json"],
                             "metrics": ["metrics.json"]}})
    assert project.run("repro").code == 0
    for args in ([], ["--json"], ["--all-versions"]):
        res = project.cli("metrics", "show", *args)
        assert res.code == 0, res.text
        no_controls(res.out)
        assert ("\\u001b[31mRED" if args == ["--json"] else "\\x1b[31mRED") in res.out


def test_json_of_a_huge_value_is_whole(hostile: Project) -> None:
    """A 5,000,000-character value: redact took quadratic time (minutes) on it."""
    huge = "A" * 5_000_000
    record_experiment(hostile, "huge", extra_params={"other.yaml": {"blob": huge}})
    res = hostile.run("exp", "show", "--json", "--all")
    assert res.code == 0, res.text
    assert json.loads(res.out)["rows"][-1]["params"]["other.yaml:blob"] == huge
    text = hostile.run("exp", "show", "--all").out
    assert len(text) < 10_000 and "A" * 23 + "…" in text
