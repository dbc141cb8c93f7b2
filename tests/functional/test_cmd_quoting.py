"""A ``${...}`` value reaches a stage's command as the value, never as shell syntax."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.functional.helpers import runs

FIXTURE = Path(__file__).parent / "fixtures" / "unquoted_lock"

# writes its arguments as JSON: what the command received, word by word
SHOW = "import json, sys\nopen('args.json', 'w').write(json.dumps(sys.argv[1:]))\n"

HOSTILE = [
    "1; touch pwned",
    "two words",
    "it's \"quoted\"",
    "$(touch pwned)",
    "`touch pwned`",
    "line one\nline two; touch pwned",
    "$HOME * ~ \\ ! #x",
    "",
]


def received(p: Project, cmd: str, value: object) -> list[str]:
    p.params({"train": {"C": value}})
    p.write("show.py", SHOW)
    p.spec({"show": {"cmd": cmd, "deps": ["show.py"], "params": ["train.C"],
                     "outs": ["args.json"]}})
    result = p.run("repro")
    assert result.code == 0, result.text
    assert not (p.root / "pwned").exists()
    args = json.loads(p.read("args.json"))
    assert isinstance(args, list)
    return args


def test_a_value_with_a_semicolon_is_one_argument(project: Project) -> None:
    assert received(project, "python show.py ${train.C}", "1; touch pwned") == ["1; touch pwned"]
    # what the lock and status show is the command as it ran
    assert project.lock()["stages"]["show"]["cmd"] == "python show.py '1; touch pwned'"


@pytest.mark.parametrize("value", HOSTILE)
def test_hostile_values_reach_the_command_as_they_are(project: Project, value: str) -> None:
    cmd = "python show.py ${train.C} \"in ${train.C} dq\" 'in ${train.C} sq' x${train.C}y"
    assert received(project, cmd, value) == [
        value, f"in {value} dq", f"in {value} sq", f"x{value}y"]


def test_a_set_value_of_an_experiment_is_one_argument(project: Project) -> None:
    received(project, "python show.py ${train.C}", 1)
    project.git("add", "-A")
    project.git("commit", "-qm", "baseline")
    res = project.run("exp", "run", "--set", "train.C=1; touch pwned", "--name", "inj")
    assert res.code == 0, res.text
    assert project.run("exp", "apply", "inj").code == 0
    assert json.loads(project.read("args.json")) == ["1; touch pwned"]
    assert not (project.root / "pwned").exists()
    assert project.lock()["stages"]["show"]["cmd"] == "python show.py '1; touch pwned'"


def test_values_inside_a_substitution_in_double_quotes(project: Project) -> None:
    cmd = 'python show.py "$(printf %s ${train.C})"'
    value = "a b; touch pwned `x` $(y)"
    assert received(project, cmd, value) == [value]


def test_plain_values_and_scalars_are_written_as_before(project: Project) -> None:
    cmd = "python show.py ${train.C} --lr=${train.C}"
    for value, shown in [(0.1, "0.1"), (-3, "-3"), ("data/x.csv", "data/x.csv"),
                         (True, "true"), (None, "null")]:
        assert received(project, cmd, value) == [shown, f"--lr={shown}"]
        assert project.lock()["stages"]["show"]["cmd"] == f"python show.py {shown} --lr={shown}"


def test_a_value_that_cannot_be_quoted_where_it_stands_is_a_spec_error(
        project: Project) -> None:
    project.params({"msg": "a b; touch pwned"})
    project.spec({"t": {"cmd": "echo `echo ${msg}` > out.txt", "outs": ["out.txt"]}})
    result = project.run("repro")
    assert result.code == 2
    assert "'${msg}'" in result.text and "backquotes" in result.text
    assert "$(...)" in result.text  # the fix
    assert not (project.root / "out.txt").exists() and not (project.root / "pwned").exists()
    # the same reference with a plain value is allowed, as it was
    project.params({"msg": "hello"})
    assert project.run("repro").code == 0
    assert project.read("out.txt") == "hello\n"


def test_a_value_that_would_end_a_here_document_is_refused(project: Project) -> None:
    project.params({"line": "EOF"})
    project.spec({"t": {"cmd": "cat > out.txt <<EOF\n${line}\nEOF\necho touch pwned\n",
                        "outs": ["out.txt"]}})
    result = project.run("repro")
    assert result.code == 2
    assert "ends the here-document" in result.text
    assert not (project.root / "out.txt").exists()


def test_a_lock_written_before_quoting_is_still_up_to_date(project: Project) -> None:
    """The fixture's lock was written by pipeflow before values were quoted (ffb8105):
    plain values in every kind of spot (bare, quotes, $(...), backquotes, $((...)),
    a shell ${...}, a comment, a here-document) give the same commands, so nothing reruns."""
    shutil.copytree(FIXTURE, project.root, dirs_exist_ok=True)
    old = yaml.safe_load((FIXTURE / "pipeline.lock").read_text())
    platforms = {s["env"]["platform"] for s in old["stages"].values()}
    status = project.run("status", "--json")
    assert status.code == 0, status.text
    result = project.run("repro")
    assert result.code == 0, result.text
    new = project.lock()
    assert {n: s["cmd"] for n, s in new["stages"].items()} == {
        n: s["cmd"] for n, s in old["stages"].items()}
    if platforms != {s["env"]["platform"] for s in new["stages"].values()}:
        pytest.skip("the fixture's lock was written on another platform")
    assert runs(project) == []
    assert new == old
