"""Gitignore lines for cached outputs, checked against real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pipeflow.git.gitignore import ensure_ignored, pattern_for, tracked_by_git


def git(root: Path, *args: str, stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["git", *args], cwd=root, input=stdin, capture_output=True,
                          check=False, timeout=30)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q")
    return root


def ignored(root: Path, paths: list[str]) -> set[str]:
    """The paths git itself considers ignored (whether or not they exist)."""
    proc = git(root, "check-ignore", "--no-index", "-z", "--stdin",
               stdin="\0".join(paths).encode())
    assert proc.returncode in (0, 1), proc.stderr
    return {p for p in proc.stdout.decode().split("\0") if p}


SPECIAL = [
    "a*b", "q?", "[br]", "#hash", "!bang", " lead", "trail ", "two  ", "back\\slash",
    "end\\", "mid#x!y", "*", "!", "#", "a b", "tab\t", "été.csv", "\\#",
]
# what a pattern that is too loose (or mis-escaped) would also match
DECOYS = [
    "aXb", "ab", "qq", "q", "b", "r", "br", "hash", "bang", "lead", "trail", "two",
    "two ", "backslash", "back", "slash", "end", "midx", "a", "!#", "\\", "tab", "ete.csv",
]


@pytest.mark.parametrize("name", SPECIAL)
def test_pattern_matches_exactly_that_name(repo: Path, name: str) -> None:
    for n in {name, *DECOYS}:
        (repo / n).write_text("x")
    ensure_ignored(repo, [name])
    assert ignored(repo, sorted({name, *DECOYS})) == {name}


def test_all_special_names_in_one_file(repo: Path) -> None:
    (repo / "sub").mkdir()
    ensure_ignored(repo, [f"sub/{n}" for n in SPECIAL])
    got = ignored(repo, [f"sub/{n}" for n in SPECIAL + DECOYS])
    assert got == {f"sub/{n}" for n in SPECIAL}


def test_pattern_is_anchored_to_its_folder(repo: Path) -> None:
    ensure_ignored(repo, ["data/model.pkl", "top.csv"])
    assert (repo / "data/.gitignore").read_text() == "/model.pkl\n"
    assert (repo / ".gitignore").read_text() == "/top.csv\n"
    assert ignored(repo, ["data/model.pkl", "top.csv", "model.pkl", "data/x/model.pkl",
                          "other/top.csv", "data/top.csv"]) == {"data/model.pkl", "top.csv"}


def test_directory_output_and_its_content_are_ignored(repo: Path) -> None:
    (repo / "models/run").mkdir(parents=True)
    ensure_ignored(repo, ["models"])
    assert ignored(repo, ["models", "models/run/m.pkl", "models2"]) == {
        "models", "models/run/m.pkl"
    }


def test_pattern_for() -> None:
    assert pattern_for("model.pkl") == "/model.pkl"
    assert pattern_for("a*b") == "/a\\*b"
    assert pattern_for("#x") == "/\\#x"
    assert pattern_for("x ") == "/x\\ "


def test_no_duplicate_lines(repo: Path) -> None:
    assert ensure_ignored(repo, ["a", "b", "a"]) == [repo / ".gitignore"]
    assert ensure_ignored(repo, ["b", "a"]) == []  # nothing to change
    assert ensure_ignored(repo, ["c", "a"]) == [repo / ".gitignore"]
    assert (repo / ".gitignore").read_text() == "/a\n/b\n/c\n"


def test_preserves_existing_content(repo: Path) -> None:
    existing = "# mine\n*.log\n\n!keep.log\n/a\n"
    (repo / ".gitignore").write_text(existing)
    ensure_ignored(repo, ["a", "model.pkl"])
    assert (repo / ".gitignore").read_text() == existing + "/model.pkl\n"


def test_adds_missing_trailing_newline(repo: Path) -> None:
    (repo / ".gitignore").write_text("*.log")
    ensure_ignored(repo, ["m.pkl"])
    assert (repo / ".gitignore").read_text() == "*.log\n/m.pkl\n"
    assert ignored(repo, ["x.log", "m.pkl"]) == {"x.log", "m.pkl"}


def test_creates_folders_and_leaves_no_temp_file(repo: Path) -> None:
    changed = ensure_ignored(repo, ["a/b/c.bin", "a/d.bin"])
    assert sorted(changed) == [repo / "a/.gitignore", repo / "a/b/.gitignore"]
    assert sorted(p.name for p in (repo / "a").iterdir()) == [".gitignore", "b"]
    assert [p.name for p in (repo / "a/b").iterdir()] == [".gitignore"]


def test_tracked_by_git(repo: Path) -> None:
    for rel in ("data/raw.csv", "models/m.pkl", "models/sub/x", "model.pkl", "a*b", "untracked",
                "ab", ":magic", "x[1]"):
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        (repo / rel).write_text("x")
    git(repo, "add", "--", "data/raw.csv", "models", "model.pkl", "ab", "./:magic", "x[1]")
    got = tracked_by_git(repo, ["data/raw.csv", "models", "model", "untracked", "a*b", "data",
                                ":magic", "x[1]"])
    # 'models' holds tracked files; 'a*b' is not a glob for us, ':magic' not pathspec magic
    assert got == ["data/raw.csv", "models", "data", ":magic", "x[1]"]
    assert tracked_by_git(repo, []) == []


def test_tracked_by_git_outside_a_work_tree(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "m.pkl").write_text("x")
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))  # never look above
    assert tracked_by_git(plain, ["m.pkl"]) == []
