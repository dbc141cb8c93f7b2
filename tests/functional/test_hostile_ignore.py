"""Issue 11 review: a committed ``.pipeflowignore`` cannot stall or crash ``status``.

Its patterns are data from whoever committed them. One line of stars made every
match of a long name backtrack exponentially (``status`` ran for hours); a line the
old matcher could not compile was an internal error.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import commit
from tests.functional.test_hostile_reads import clone

STARS = "*a" * 16 + "*c"  # the reviewer's line: 4 stars took 9 s per name, 16 hours
LONG = "a" * 200
MATCHED = "a" * 20 + "c"  # a name the line does match: it must stay ignored


def crafted(project: Project, tmp_path: Path, ignore: str) -> Project:
    project.write("src/make.py", "open('out.txt', 'w').write('x')\n")
    project.write(f"src/{LONG}", "long\n")
    project.write(f"src/{MATCHED}", "ignored\n")
    project.spec({"make": {"cmd": "python3 src/make.py", "deps": ["src"], "outs": ["out.txt"]}})
    project.write(".pipeflowignore", "*.tmp\n")
    assert project.run("repro").code == 0
    project.write(".pipeflowignore", ignore)
    commit(project, "a crafted .pipeflowignore")
    return clone(project, tmp_path)


def test_a_pattern_of_stars_does_not_stall_status(project: Project, tmp_path: Path) -> None:
    victim = crafted(project, tmp_path, f"{STARS}\n")
    start = time.monotonic()
    first = victim.cli("status", timeout=60)
    took = time.monotonic() - start
    assert first.code == 0 and "Traceback" not in first.text, first.text
    assert took < 20, f"status took {took:.1f} s"
    assert "make" in first.out  # the line ignores src/aaa...c: the folder's hash moved
    assert victim.run("repro").code == 0
    # the matching still means what it says: the matched name is ignored, the long one
    # is hashed
    (victim.root / "src" / MATCHED).write_text("changed, but ignored\n")
    assert "make" not in victim.run("status").out
    (victim.root / "src" / LONG).write_text("changed\n")
    assert "make" in victim.run("status").out


@pytest.mark.parametrize(("line", "says"), [
    ("[z-a]", "the bracket expression '[z-a]' is not valid"),
    ("trailing\\", "lone '\\'"),
])
def test_a_line_that_is_no_pattern_is_a_located_error(
    project: Project, tmp_path: Path, line: str, says: str
) -> None:
    victim = crafted(project, tmp_path, f"*.tmp\n{line}\n")
    for args in (("status",), ("status", "--json")):
        result = victim.cli(*args)
        assert result.code == 2, result.text
        assert f".pipeflowignore:2: pattern {line!r}: " in result.err and says in result.err
        assert "Traceback" not in result.text and "internal error" not in result.text
