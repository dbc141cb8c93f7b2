"""Running one stage's commands, and preparing its outputs beforehand."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from pipeflow.execution.runner import TAIL_LINES, log_name, prepare_outputs, run_stage
from pipeflow.spec.model import Out, Stage


def mk(name: str = "s", *cmds: str, wdir: str = ".", outs: tuple[Out, ...] = ()) -> Stage:
    return Stage(name=name, cmd=cmds, wdir=wdir, outs=outs)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "proj").mkdir()
    return tmp_path / "proj"


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return tmp_path / "logs"


def test_commands_run_in_order_and_stop_at_first_failure(root: Path, logs: Path) -> None:
    stage = mk("s", "echo one", "echo two; exit 3", "echo never > never.txt")
    result = run_stage(root, stage, logs)
    assert (result.returncode, result.ok, result.failed_cmd) == (3, False, "echo two; exit 3")
    assert result.tail == ("one", "two")
    assert not (root / "never.txt").exists()
    assert result.started <= result.ended and result.duration >= 0


def test_success(root: Path, logs: Path) -> None:
    result = run_stage(root, mk("s", "echo a > a.txt", "cat a.txt"), logs)
    assert (result.returncode, result.ok, result.failed_cmd) == (0, True, None)
    assert result.tail == ("a",)


def test_runs_under_sh_in_wdir_with_stage_env(root: Path, logs: Path) -> None:
    (root / "sub" / "dir").mkdir(parents=True)
    result = run_stage(root, mk("train@a", "pwd", 'echo "$PIPEFLOW_STAGE"', "echo $((1+2))",
                                wdir="sub/dir"), logs)
    assert result.ok
    assert result.tail == (str((root / "sub" / "dir").resolve()), "train@a", "3")


def test_missing_wdir_fails_with_a_message(root: Path, logs: Path) -> None:
    result = run_stage(root, mk("s", "echo hi", wdir="nope"), logs)
    assert result.returncode == 127 and result.failed_cmd == "echo hi"
    assert "cannot start /bin/sh in" in result.tail[-1]


def test_tail_keeps_last_lines_and_log_keeps_all(root: Path, logs: Path) -> None:
    result = run_stage(root, mk("s", "for i in $(seq 1 50); do echo line $i; done; exit 1"),
                       logs)
    assert len(result.tail) == TAIL_LINES
    assert result.tail[0] == f"line {50 - TAIL_LINES + 1}" and result.tail[-1] == "line 50"
    assert result.log_path == logs / "s.log"
    lines = result.log_path.read_text().splitlines()
    assert lines == [f"line {i}" for i in range(1, 51)]


def test_stderr_and_odd_bytes_reach_the_log(root: Path, logs: Path) -> None:
    result = run_stage(root, mk("s", "echo out; echo err >&2; printf 'bad \\377 byte\\r\\n'"),
                       logs)
    assert result.tail == ("out", "err", "bad \ufffd byte")
    assert result.log_path.read_text().splitlines() == ["out", "err", "bad \ufffd byte"]


def test_log_file_name_and_rewrite(root: Path, logs: Path) -> None:
    assert log_name("train@a/b") == "train@a_b.log"
    run_stage(root, mk("x/y", "echo first run"), logs)
    result = run_stage(root, mk("x/y", "echo second run"), logs)
    assert result.log_path == logs / "x_y.log"
    assert result.log_path.read_text() == "second run\n"  # one log per stage, latest run


def test_sink_receives_every_line(root: Path, logs: Path) -> None:
    got: list[tuple[str, str]] = []
    run_stage(root, mk("st", "echo a; echo b", "printf 'no newline'"), logs,
              lambda name, line: got.append((name, line)))
    assert got == [("st", "a"), ("st", "b"), ("st", "no newline")]


def test_killed_by_signal(root: Path, logs: Path) -> None:
    result = run_stage(root, mk("s", "kill -9 $$"), logs)
    assert result.returncode == -9 and not result.ok


# prepare_outputs ------------------------------------------------------------------


def test_prepare_removes_outputs_and_makes_parents(root: Path) -> None:
    (root / "f.txt").write_text("old")
    (root / "d" / "sub").mkdir(parents=True)
    (root / "d" / "sub" / "x").write_text("old")
    target = root / "keep.txt"
    target.write_text("target of a link")
    (root / "link").symlink_to(target)
    stage = mk("s", "true", outs=(Out("f.txt"), Out("d"), Out("link"), Out("new/deep/o.bin"),
                                  Out("m.json", kind="metric", cache=False)))
    prepare_outputs(root, stage)
    assert not (root / "f.txt").exists() and not (root / "d").exists()
    assert not os.path.lexists(root / "link")
    assert target.read_text() == "target of a link"  # the link went, not what it points to
    assert (root / "new" / "deep").is_dir() and not (root / "new/deep/o.bin").exists()


def test_persist_output_becomes_a_private_writable_copy(root: Path, tmp_path: Path) -> None:
    # as checked out with cache.link: hardlink -- a read-only link to the cache object
    obj = tmp_path / "object"
    obj.write_text("v1\n")
    obj.chmod(0o444)
    out = root / "state.db"
    os.link(obj, out)
    assert os.stat(out).st_ino == os.stat(obj).st_ino
    prepare_outputs(root, mk("s", "true", outs=(Out("state.db", persist=True),)))
    st = os.stat(out)
    assert st.st_ino != os.stat(obj).st_ino and st.st_nlink == 1
    assert st.st_mode & stat.S_IWUSR
    assert out.read_text() == "v1\n"
    with open(out, "a") as f:  # the stage may now append
        f.write("v2\n")
    assert obj.read_text() == "v1\n"  # the cache object is untouched
    assert stat.S_IMODE(os.stat(obj).st_mode) == 0o444
    assert not [p for p in root.iterdir() if "pipeflow-private" in p.name]


def test_persist_directory_files_become_private(root: Path, tmp_path: Path) -> None:
    obj = tmp_path / "object"
    obj.write_text("shared\n")
    obj.chmod(0o444)
    (root / "ckpt" / "sub").mkdir(parents=True)
    os.link(obj, root / "ckpt" / "a")
    os.link(obj, root / "ckpt" / "sub" / "b")
    prepare_outputs(root, mk("s", "true", outs=(Out("ckpt", persist=True),)))
    for rel in ("ckpt/a", "ckpt/sub/b"):
        st = os.stat(root / rel)
        assert st.st_nlink == 1 and st.st_mode & stat.S_IWUSR
        assert (root / rel).read_text() == "shared\n"
    assert os.stat(obj).st_nlink == 1


def test_persist_output_keeps_its_exec_bit_and_missing_one_is_fine(root: Path) -> None:
    script = root / "tool.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o555)
    prepare_outputs(root, mk("s", "true", outs=(Out("tool.sh", persist=True),
                                                Out("later/p.bin", persist=True))))
    mode = stat.S_IMODE(os.stat(script).st_mode)
    assert mode & stat.S_IXUSR and mode & stat.S_IWUSR
    assert (root / "later").is_dir() and not (root / "later" / "p.bin").exists()


def test_persist_output_that_is_a_symlink_becomes_a_private_file(
    root: Path, tmp_path: Path
) -> None:
    target = tmp_path / "object"
    target.write_text("v1\n")
    (root / "p.txt").symlink_to(target)
    prepare_outputs(root, mk("s", "true", outs=(Out("p.txt", persist=True),)))
    assert not (root / "p.txt").is_symlink()
    assert (root / "p.txt").read_text() == "v1\n"
    (root / "p.txt").write_text("v2\n")
    assert target.read_text() == "v1\n"
