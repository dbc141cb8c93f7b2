"""The Python API: pipeflow.Repo and pipeflow.open return values and print nothing."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

import pipeflow
from pipeflow.errors import SpecError, StorageError, UsageError
from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs


def test_import_pipeflow_stays_cheap() -> None:
    code = ("import sys, pipeflow; print(sorted(m for m in sys.modules if m.startswith("
            "('pipeflow.', 'typer', 'click', 'networkx', 'yaml', 'jsonschema', 'xxhash'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"


def test_repo_repro_status_versions_lineage(project: Project,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    chain(project)
    repo = pipeflow.Repo(project.root)
    assert repo.root == project.root
    before = repo.status()
    assert not before.up_to_date
    assert [s.status for s in before.stages] == ["changed"] * 3  # never run
    result = repo.repro()
    assert result.ok and result.ran == ("prepare", "train", "evaluate")
    assert runs(project) == ["prepare", "train", "evaluate"]
    assert repo.status().up_to_date
    commit(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    changed = repo.status()
    assert "params.yaml: train.lr 0.05 -> 0.07" in changed.stages[1].reasons
    assert repo.repro("train").ran == ("train",)
    commit(project)
    versions = repo.versions("models/model.txt")
    assert [(v.label, v.current) for v in versions] == [("v1", False), ("v2", True)]
    assert dataclasses.is_dataclass(versions[0])
    assert repo.versions("nothing.txt") == []
    tree = repo.lineage("models/model.txt")
    assert tree.root.version == "v2"
    run = tree.producer_of(tree.root)
    assert run is not None and run.stage == "train"
    assert run.params == {"params.yaml": {"train.lr": 0.07, "train.epochs": 2}}
    old = repo.lineage("models/model.txt", "v1")
    old_run = old.producer_of(old.root)
    assert old_run is not None and old_run.params["params.yaml"]["train.lr"] == 0.05
    assert capsys.readouterr().out == ""  # nothing printed, stage output included


def test_repro_reports_a_failed_stage_and_raises_usage_errors(project: Project) -> None:
    project.spec({"bad": {"cmd": "echo oops && exit 3", "outs": ["x"]}})
    repo = pipeflow.Repo(project.root)
    result = repo.repro()
    assert not result.ok and result.failed[0].stage == "bad"
    assert "oops" in result.failed[0].log_tail
    with pytest.raises(UsageError):
        repo.repro("no-such-stage")
    with pytest.raises(UsageError):
        repo.repro(single_item=True, downstream=True)
    project.write("pipeline.yaml", "stages: [\n")
    with pytest.raises(SpecError):
        repo.status()


def test_open_reads_a_version_from_the_cache_verified(project: Project) -> None:
    chain(project)
    repo = pipeflow.Repo(project.root)
    repo.repro()
    commit(project)
    project.params({"prep": {"n": 2}, "train": {"lr": 0.07, "epochs": 2}, "eval": {"k": 1}})
    repo.repro()
    commit(project)
    model = project.root / "models/model.txt"
    with pipeflow.open(model, version="v1") as f:
        assert f.read() == b"lr=0.05\na\nb\nc\n"
    with pipeflow.open(str(model), mode="r") as f:
        assert f.read() == model.read_text()
    model.write_text("edited in the workspace\n")  # open reads the cache, not the workspace
    with pipeflow.open(model) as f:
        assert f.read().startswith(b"lr=0.07")
    with pytest.raises(UsageError, match="has no version 'v7'"):
        pipeflow.open(model, version="v7")
    with pytest.raises(UsageError):
        pipeflow.open(model, mode="wb")
    oid = repo.versions("models/model.txt")[0].hash
    obj = project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    obj.chmod(0o644)
    obj.write_bytes(b"lr=0.05\ntampered\n")
    with pytest.raises(StorageError, match="corrupt"):
        pipeflow.open(model, version="v1")
    assert not obj.exists()  # moved aside, never served


def test_open_a_file_inside_a_versioned_folder(project: Project) -> None:
    project.params({"n": 1})
    project.spec({"split": {
        "cmd": "mkdir -p parts && echo ${n} > parts/a.txt && echo b > parts/b.txt",
        "params": ["n"], "outs": ["parts"]}})
    repo = pipeflow.Repo(project.root)
    repo.repro()
    commit(project)
    project.params({"n": 2})
    repo.repro()
    commit(project)
    with pipeflow.open(project.root / "parts/a.txt", version="v1") as f:
        assert f.read() == b"1\n"
    with pipeflow.open(project.root / "parts/a.txt") as f:
        assert f.read() == b"2\n"
    with pytest.raises(UsageError, match="is a folder"):
        pipeflow.open(project.root / "parts", version="v1")
    with pytest.raises(UsageError, match=r"has no file 'c\.txt'"):
        pipeflow.open(project.root / "parts/c.txt", version="v2")


def test_words_in_results_are_plain_strings_listed_by_exported_enums(project: Project) -> None:
    chain(project)
    repo = pipeflow.Repo(project.root)
    assert repo.repro().ok
    status = repo.status().stages[0].status
    assert type(status) is str and status == pipeflow.StageWord.UP_TO_DATE
    run = next(iter(repo.lineage("models/model.txt").runs.values()))
    assert type(run.kind) is str and run.kind in set(pipeflow.RecordKind)
    assert all(type(o.kind) is str and o.kind in set(pipeflow.OutputKind) for o in run.outputs)
    assert {str(o) for o in pipeflow.Origin} == {"local", "remote", "unknown", "git"}
