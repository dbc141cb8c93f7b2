"""execution.placing: a task's outputs come from the remote verified, and land in the
workspace all or nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeflow.content.hashing import hash_file
from pipeflow.errors import PipeflowError, StorageError
from pipeflow.execution.placing import place_outputs
from pipeflow.execution.task import TaskOutput
from pipeflow.project.project import Project as CoreProject
from pipeflow.storage.exchange import upload_missing
from pipeflow.storage.remote import Remote
from tests.conftest import Project


def _on_remote(remote: Remote, folder: Path, **files: str) -> dict[str, TaskOutput]:
    made = {}
    sources = {}
    for name, text in files.items():
        path = folder / name
        path.write_text(text)
        oid = hash_file(path)
        sources[oid] = path
        made[name] = TaskOutput(name, oid, len(text))
    upload_missing(remote, sources)
    return made


@pytest.fixture
def remote(tmp_path: Path) -> Remote:
    return Remote("r", str(tmp_path / "store"))


def test_a_failing_checkout_leaves_nothing_placed(project: Project, tmp_path: Path,
                                                  remote: Remote) -> None:
    assert project.run("init").code == 0
    made = _on_remote(remote, tmp_path, good="good\n", bad="bad\n")
    project.write("x", "a file where a folder is needed\n")
    outputs = [made["good"], TaskOutput("x/bad.txt", made["bad"].oid, 4)]
    with CoreProject(project.root) as repo, pytest.raises(OSError):
        place_outputs(repo, remote, ["good", "x/bad.txt"], outputs)
    assert not (project.root / "good").exists()  # placed, then rolled back
    assert project.read("x") == "a file where a folder is needed\n"


def test_outputs_other_than_the_declared_ones_are_refused(project: Project, tmp_path: Path,
                                                          remote: Remote) -> None:
    assert project.run("init").code == 0
    made = _on_remote(remote, tmp_path, good="good\n")
    with CoreProject(project.root) as repo, pytest.raises(PipeflowError, match="returned outputs"):
        place_outputs(repo, remote, ["good", "other"], [made["good"]])
    assert not (project.root / "good").exists()


def test_a_corrupt_object_is_never_placed(project: Project, tmp_path: Path,
                                          remote: Remote) -> None:
    assert project.run("init").code == 0
    made = _on_remote(remote, tmp_path, good="good\n")
    stored = next(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    stored.write_text("evil\n")
    with CoreProject(project.root) as repo, pytest.raises(StorageError, match="did not match"):
        place_outputs(repo, remote, ["good"], [made["good"]])
    assert not (project.root / "good").exists()
