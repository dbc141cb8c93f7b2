"""Each branch of the error tree (pipeflow.errors) exits with its code through the CLI."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import pipeflow
from pipeflow.files import atomicfile
from tests.conftest import Project
from tests.functional.helpers import chain


def test_a_lock_that_cannot_be_written_is_an_io_failure_exit_1(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    chain(project)
    real = atomicfile.write_text

    def refuse_the_lock(path: Path, text: str, **kw: object) -> None:
        if Path(path).name == "pipeline.lock":
            raise PermissionError(errno.EACCES, "Permission denied", str(path))
        real(path, text, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(atomicfile, "write_text", refuse_the_lock)
    result = project.run("repro")
    assert result.code == 1, result.text  # was 2, as if the input were wrong
    assert "cannot write" in result.err and "pipeline.lock" in result.err
    assert "internal error" not in result.err


def test_a_repository_lock_that_cannot_be_made_is_an_io_failure_exit_1(
        project: Project) -> None:
    chain(project)
    assert project.run("init").code == 0
    (project.root / ".pipeflow" / "lock").mkdir()  # a folder where the lock file goes
    result = project.run("repro")
    assert result.code == 1, result.text  # was 3, "internal error", as if it were a bug
    assert "cannot take the repository lock" in result.err
    assert "internal error" not in result.err
    with pytest.raises(pipeflow.RepoLockError):
        pipeflow.Repo(project.root).repro()


def test_a_bad_config_is_a_config_error_exit_2(project: Project) -> None:
    chain(project)
    assert project.run("init").code == 0
    project.write(".pipeflow/config", "cache:\n  link: softlink\n")
    result = project.run("status")
    assert result.code == 2, result.text
    assert ".pipeflow/config" in result.err and "cache.link" in result.err
    with pytest.raises(pipeflow.ConfigError) as caught:
        pipeflow.Repo(project.root).status()
    assert not isinstance(caught.value, pipeflow.SpecError)  # config is not the spec
    assert caught.value.location is not None
    assert caught.value.location.file.endswith(".pipeflow/config")


def test_a_committed_remote_that_names_a_local_path_is_a_config_error(
        project: Project) -> None:
    chain(project)
    assert project.run("init").code == 0
    project.write(".pipeflow/config",
                  "remote:\n  up:\n    url: memory://x\ncore:\n  remote: up\n")
    result = project.run("push")
    assert result.code == 2, result.text
    from pipeflow.ops.remotes import open_remote
    from pipeflow.project.project import Project as CoreProject

    with CoreProject(project.root) as repo, pytest.raises(pipeflow.ConfigError, match="memory"):
        open_remote(repo, None)


def test_the_api_returns_only_types_pipeflow_exports(project: Project) -> None:
    chain(project)
    repo = pipeflow.Repo(project.root)
    assert isinstance(repo.repro(), pipeflow.ReproResult)
    status = repo.status()
    assert isinstance(status, pipeflow.Status)
    assert all(isinstance(s, pipeflow.StageStatus) for s in status.stages)
    [version] = repo.versions("models/model.txt")
    assert isinstance(version, pipeflow.Version)
    tree = repo.lineage("models/model.txt")
    assert isinstance(tree, pipeflow.Lineage)
    assert isinstance(tree.root, pipeflow.LineageArtifact)
    run = tree.producer_of(tree.root)
    assert isinstance(run, pipeflow.LineageRun)
    assert all(isinstance(o, pipeflow.RunOutput) for o in run.outputs)
    assert all(isinstance(c, pipeflow.CodeFile) for c in run.code)
    assert run.trust is None or isinstance(run.trust, pipeflow.Trust)
    with pytest.raises(pipeflow.UsageError, match="no recorded versions"):
        pipeflow.open(project.root / "data/raw.txt", version="v1")
