"""pipeflow.files.projectfile: the reader of the project's own files refuses links where it
must, never opens a device, never blocks, never reads past the limit."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from pipeflow.errors import SpecError
from pipeflow.files import projectfile


def test_a_regular_file_is_read_and_a_missing_one_is_none(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_bytes(b"x: 1\n")
    assert projectfile.read(tmp_path / "a.yaml", "config") == b"x: 1\n"
    assert projectfile.read(tmp_path / "nope.yaml", "config") is None
    assert projectfile.read_text(tmp_path / "a.yaml", "config") == "x: 1\n"


def test_a_file_pipeflow_rewrites_is_never_read_through_a_link(tmp_path: Path) -> None:
    (tmp_path / "real").write_text("inside\n")
    os.symlink("real", tmp_path / "link")
    with pytest.raises(SpecError, match=r"link: is a symlink .*nothing was read") as err:
        projectfile.read(tmp_path / "link", "rules", name="link")
    assert err.value.hint is not None and "rm link" in err.value.hint


def test_a_read_only_file_may_link_inside_the_project_but_not_out(tmp_path: Path) -> None:
    root = tmp_path / "proj"
    root.mkdir()
    (root / "real.yaml").write_text("a: 1\n")
    (tmp_path / "secret").write_text("s3cr3t\n")
    os.symlink("real.yaml", root / "in.yaml")
    os.symlink("../secret", root / "out.yaml")
    assert projectfile.read(root / "in.yaml", "params", inside=root) == b"a: 1\n"
    with pytest.raises(SpecError, match="leading outside the project"):
        projectfile.read(root / "out.yaml", "params", inside=root)


@pytest.mark.parametrize("target", ["/dev/zero", "/dev/stdin", "/proc/self/environ"])
def test_devices_and_kernel_files_are_never_opened(tmp_path: Path, target: str) -> None:
    os.symlink(target, tmp_path / "f")
    for inside in (None, tmp_path, Path("/")):
        with pytest.raises(SpecError, match="never reads /dev, /proc or /sys"):
            projectfile.read(tmp_path / "f", "lock", name="f", inside=inside)


def test_a_named_pipe_is_refused_without_blocking(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    started = time.monotonic()
    with pytest.raises(SpecError, match="a named pipe, not a regular file"):
        projectfile.read(tmp_path / "fifo", "rules", inside=tmp_path)
    assert time.monotonic() - started < 5


def test_a_folder_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    with pytest.raises(SpecError, match="a folder, not a regular file"):
        projectfile.read(tmp_path / "d", "rules")


def test_past_the_limit_is_refused_before_reading(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    big = tmp_path / "big"
    with open(big, "wb") as f:
        f.truncate(5 * 1024 * 1024)  # sparse: 5 MB that cost nothing to make
    with pytest.raises(SpecError, match="more than a rules file may hold"):
        projectfile.read(big, "rules")
    monkeypatch.setenv("PIPEFLOW_MAX_RULES_MB", "8")
    assert len(projectfile.read(big, "rules") or b"") == 5 * 1024 * 1024


def test_a_python_version_file_linked_to_a_kernel_file_is_not_read(tmp_path: Path) -> None:
    from pipeflow.code.pyinterp import _versions_in

    (tmp_path / "ok").write_text("3.11.7\n")
    os.symlink("/proc/self/environ", tmp_path / "bad")  # a regular file to fstat
    assert _versions_in(str(tmp_path / "ok")) == ["3.11.7"]
    assert _versions_in(str(tmp_path / "bad")) is None


def test_a_project_in_dev_shm_is_read_like_any_other() -> None:
    """/dev/shm is a tmpfs of ordinary files (the kill matrix runs its projects there):
    only devices and kernel views are refused."""
    import os
    import tempfile

    from pipeflow.files import projectfile
    from pipeflow.files.safepath import is_special

    if not os.path.isdir("/dev/shm"):
        pytest.skip("no /dev/shm here")
    assert is_special("/dev/zero") and is_special("/proc/self/environ")
    assert not is_special("/dev/shm/p/.gitattributes")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as folder:
        path = Path(folder) / ".gitattributes"
        path.write_text("x merge=union\n")
        assert projectfile.read_text(path, "rules") == "x merge=union\n"
