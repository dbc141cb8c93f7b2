"""The one rule for paths read from a clone's or a remote's files."""

from __future__ import annotations

import posixpath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.files import safepath
from pipeflow.files.safepath import UnsafePathError


@pytest.mark.parametrize("path", [
    "data/raw.csv", "models/model.pkl", "a", "dir/.gitignore", "x/.github/y", "é/ü.txt",
])
def test_plain_project_paths_pass(path: str) -> None:
    assert safepath.check(path, where="pipeline.lock: sources") == path


@pytest.mark.parametrize("path, why", [
    ("../escaped.txt", "'..'"), ("/etc/passwd", "absolute"), (".git/hooks", ".git/"),
    ("data/.git/config", ".git/"), (".pipeflow/config", ".pipeflow/"), ("a/./b", "'.'"),
    ("a//b", "empty"), ("a/", "empty"), ("", "empty"), ("a\0b", "NUL"), ("a\nb", "control"),
    (".GIT/hooks/pre-commit", ".git/ on some"), ("a/.Pipeflow/config", ".pipeflow/ on some"),
    (".git./config", ".git/ on some"), ("x" * 256, "segment"), ("a/" * 2100 + "b", "4096"), (5, "not a string"), (None, "string"),
])
def test_unsafe_paths_are_refused_naming_the_entry(path: object, why: str) -> None:
    with pytest.raises(UnsafePathError) as err:
        safepath.check(path, where="pipeline.lock: sources")
    assert why in str(err.value)
    assert str(err.value).startswith("pipeline.lock: sources: path ")


@given(st.text(max_size=300))
def test_whatever_passes_stays_inside_the_project(path: str) -> None:
    if safepath.problem(path) is None:
        joined = posixpath.normpath(posixpath.join("/project", path))
        assert joined.startswith("/project/")
        assert joined == f"/project/{path}"
        assert not any(safepath.is_reserved(seg) for seg in path.split("/"))
        assert not {".git", ".pipeflow"} & {seg.lower() for seg in path.split("/")}
