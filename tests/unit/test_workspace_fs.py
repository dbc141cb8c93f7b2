"""workspace_fs: writes never land outside the project through a symlinked folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeflow.files import workspace_fs
from pipeflow.files.workspace_fs import UnsafeWriteError, check_parents, check_place


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "outside").mkdir()
    proj = tmp_path / "proj"
    (proj / "real/deeper").mkdir(parents=True)
    (proj / ".git/hooks").mkdir(parents=True)
    os.symlink(tmp_path / "outside", proj / "out_abs")  # absolute, leaves the project
    os.symlink("../outside", proj / "out_rel")  # relative, leaves the project
    os.symlink("real", proj / "in_link")  # stays inside: allowed
    os.symlink(".git/hooks", proj / "hooks")  # inside, but into git's folder
    os.symlink("../../out_abs", proj / "real/deeper/up")  # a chain of links leading out
    return proj


@pytest.mark.parametrize("rel", ["a.txt", "real/x", "real/deeper/x", "in_link/x",
                                 "in_link/deeper/x", "new/folder/x", "real/new/x"])
def test_paths_that_stay_inside_pass(root: Path, rel: str) -> None:
    check_parents(root, rel)


@pytest.mark.parametrize(("rel", "link", "why"), [
    ("out_abs/x", "out_abs", "outside the project"),
    ("out_rel/sub/x", "out_rel", "outside the project"),
    ("real/deeper/up/x", "real/deeper/up", "outside the project"),
    ("hooks/pre-commit", "hooks", "inside .git/ or .pipeflow/"),
])
def test_a_folder_linking_out_is_refused_naming_the_link(root: Path, rel: str, link: str,
                                                         why: str) -> None:
    with pytest.raises(UnsafeWriteError) as exc:
        check_parents(root, rel)
    assert exc.value.link == link
    assert f"'{link}' is a symlink to" in exc.value.message and why in exc.value.message
    assert exc.value.exit_code == 2
    assert workspace_fs.parent_problem(root, rel) == exc.value.message


def test_the_target_itself_may_be_a_link(root: Path) -> None:
    # a link as the target is replaced or removed by the writers, never followed
    check_parents(root, "out_abs")


def test_a_place_below_another_folder_is_refused(root: Path, tmp_path: Path) -> None:
    check_place(root, root / "real" / "x")
    with pytest.raises(UnsafeWriteError):
        check_place(root, tmp_path / "outside" / "x")
    with pytest.raises(UnsafeWriteError):
        check_place(root, root / "out_abs" / "x")


def test_a_project_root_reached_through_a_link_works(tmp_path: Path, root: Path) -> None:
    os.symlink(root, tmp_path / "alias")
    check_parents(tmp_path / "alias", "real/x")
    with pytest.raises(UnsafeWriteError):
        check_parents(tmp_path / "alias", "out_abs/x")


def test_checkout_refuses_before_writing(root: Path, tmp_path: Path) -> None:
    from pipeflow.content.hashing import HashInfo
    from pipeflow.storage.links import Linker
    from pipeflow.storage.store import ObjectStore

    store = ObjectStore(tmp_path / "store")
    oid = store.add_bytes(b"data\n")
    with pytest.raises(UnsafeWriteError):
        store.checkout(HashInfo(oid, 5), root / "out_abs" / "x", linker=Linker(), root=root)
    assert os.listdir(tmp_path / "outside") == []
    store.checkout(HashInfo(oid, 5), root / "in_link" / "x", linker=Linker(), root=root)
    assert (root / "real/x").read_bytes() == b"data\n"


def test_gitignore_is_never_written_through_a_link(root: Path, tmp_path: Path) -> None:
    from pipeflow.git.gitignore import ensure_ignored

    with pytest.raises(UnsafeWriteError):
        ensure_ignored(root, ["out_abs/model.pkl"])
    assert not (tmp_path / "outside/.gitignore").exists()
    ensure_ignored(root, ["in_link/model.pkl"])
    assert (root / "real/.gitignore").read_text() == "/model.pkl\n"


def test_outputs_are_not_removed_through_a_link(root: Path, tmp_path: Path) -> None:
    from pipeflow.execution.runner import prepare_outputs
    from pipeflow.spec.model import Out, Stage

    (tmp_path / "outside/models").mkdir()
    (tmp_path / "outside/models/keep.bin").write_text("keep")
    (root / "real/old.txt").write_text("old")
    stage = Stage("s", ("true",), outs=(Out("in_link/old.txt"), Out("out_abs/models")))
    with pytest.raises(UnsafeWriteError):
        prepare_outputs(root, stage)
    assert (tmp_path / "outside/models/keep.bin").read_text() == "keep"
    assert (root / "real/old.txt").exists()  # all checked first: nothing removed
