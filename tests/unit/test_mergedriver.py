"""The merge driver on files as git hands them over, and its definition in git config."""

from __future__ import annotations

import subprocess
from pathlib import Path

from pipeflow.lock import lockconflict, mergedriver
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock, dumps, loads
from pipeflow.lock.lockmerge import MergedLock

H = "0123456789abcdef" * 2


def stage(fp: str) -> StageLock:
    return StageLock(cmd=("python train.py",), fingerprint=fp * 32,
                     outs=(FileEntry("model.pkl", H, 10),))


def files(tmp_path: Path, base: str, ours: str, theirs: str) -> tuple[Path, Path, Path]:
    paths = tuple(tmp_path / f".merge_file_{n}" for n in ("O", "A", "B"))
    for path, text in zip(paths, (base, ours, theirs), strict=True):
        path.write_text(text)
    return paths  # type: ignore[return-value]


BASE = Lock(stages={"a": stage("1"), "b": stage("2")})


def test_clean_merge_is_written_to_ours(tmp_path: Path) -> None:
    o, a, b = files(tmp_path, dumps(BASE), dumps(Lock(stages={**BASE.stages, "a": stage("3")})),
                    dumps(Lock(stages={**BASE.stages, "b": stage("4")})))
    result = mergedriver.run_driver(o, a, b, "pipeline.lock")
    assert result.exit_code == 0 and result.fallback is None
    assert loads(a.read_text()) == Lock(stages={"a": stage("3"), "b": stage("4")})
    assert sorted(p.name for p in tmp_path.iterdir()) == [".merge_file_A", ".merge_file_B",
                                                          ".merge_file_O"]  # no temp left


def test_conflict_leaves_markers_and_exit_1(tmp_path: Path) -> None:
    o, a, b = files(tmp_path, dumps(BASE), dumps(Lock(stages={**BASE.stages, "a": stage("3")})),
                    dumps(Lock(stages={**BASE.stages, "a": stage("4")})))
    result = mergedriver.run_driver(o, a, b, "pipeline.lock")
    assert result.exit_code == 1 and result.merged is not None
    assert list(result.merged.stage_conflicts) == ["a"]
    assert lockconflict.parse(a.read_text()) == result.merged


def test_a_side_pipeflow_cannot_read_falls_back_to_git_text_merge(tmp_path: Path) -> None:
    broken = dumps(Lock(stages={**BASE.stages, "a": stage("3")})).replace("schema: 1", "schema: [")
    theirs = dumps(Lock(stages={**BASE.stages, "b": stage("4")}))
    o, a, b = files(tmp_path, dumps(BASE), broken, theirs)
    result = mergedriver.run_driver(o, a, b, "pipeline.lock")
    assert result.exit_code == 1 and result.fallback and "ours" in result.fallback
    text = a.read_text()
    assert "schema: [" in text and "4" * 32 in text  # neither side is lost


def test_a_conflicted_virtual_base_is_read_for_what_it_agrees_on(tmp_path: Path) -> None:
    base = lockconflict.render(MergedLock(Lock(stages={"b": stage("2")}),
                                          {"a": (stage("5"), stage("6"))}))
    o, a, b = files(tmp_path, base, dumps(Lock(stages={"a": stage("3"), "b": stage("2")})),
                    dumps(Lock(stages={"a": stage("3"), "b": stage("4")})))
    result = mergedriver.run_driver(o, a, b, "pipeline.lock")
    assert result.exit_code == 0
    assert loads(a.read_text()).stages == {"a": stage("3"), "b": stage("4")}


def test_driver_command_quotes_the_interpreter() -> None:
    command = mergedriver.driver_command("/opt/my venv/bin/python")
    assert command.startswith("if [ -x '/opt/my venv/bin/python' ]; then '/opt/my venv")
    assert command.endswith("else pipeflow merge-driver run %O %A %B %P; fi")


def test_ensure_defines_once_and_only_in_git(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    assert mergedriver.ensure(plain) is False
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    sub = repo / "project"
    sub.mkdir()
    assert mergedriver.ensure(sub) is True  # a project in a subfolder of the repository
    assert mergedriver.ensure(sub) is False
    config = (repo / ".git/config").read_text()
    assert '[merge "pipeflow"]' in config and "merge-driver run" in config


def test_ensure_reads_a_linked_worktrees_shared_config(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "commit", "-q", "--allow-empty", "-m", "x"],
                   check=True, env={"GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@x",
                                    "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@x",
                                    "HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    subprocess.run(["git", "-C", str(repo), "worktree", "add", "-q", str(tmp_path / "wt")],
                   check=True)
    assert mergedriver.ensure(tmp_path / "wt") is True
    assert mergedriver.ensure(repo) is False  # one config for both


def test_both_branches_created_the_lock(tmp_path: Path) -> None:
    # add/add: git hands over an empty base
    o, a, b = files(tmp_path, "", dumps(Lock(stages={"a": stage("3")})),
                    dumps(Lock(stages={"b": stage("4")})))
    result = mergedriver.run_driver(o, a, b, "pipeline.lock")
    assert result.exit_code == 0
    assert loads(a.read_text()).stages == {"a": stage("3"), "b": stage("4")}
