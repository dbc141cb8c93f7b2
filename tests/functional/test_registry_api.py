"""The registry through the Python API: Repo.models, promote, rollback, aliases, note
return values, raise the errors the commands print (issue 14, item 7)."""

from __future__ import annotations

import pytest

import pipeflow
from tests.conftest import Project
from tests.functional.helpers_registry import MODEL, PATH, labels, model_with_versions


def test_the_registry_through_the_api(project: Project, tmp_path: object,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    model_with_versions(project)
    v = labels(project)
    monkeypatch.chdir(project.root.parent)  # paths are the project root's, not the cwd's
    repo = pipeflow.Repo(project.root)
    moved = repo.promote(f"{MODEL}@v1", "production", note="first")
    assert isinstance(moved, pipeflow.AliasMove)
    assert (moved.alias, moved.model, moved.version.hash if moved.version else None,
            moved.previous) == ("production", MODEL, v["v1"], None)
    repo.promote(f"{PATH}@v2", "production")  # a path, relative to the project root
    back = repo.rollback("production", MODEL, note="v2 was worse")
    assert back.kind == "rollback" and back.version is not None
    assert back.version.hash == v["v1"] and back.previous == v["v2"]
    report = repo.aliases(MODEL)
    assert [(a.alias, a.hash) for a in report.aliases] == [("production", v["v1"])]
    assert [m.kind for m in report.history] == ["move", "move", "rollback"]
    assert report.history[-1].note == "v2 was worse"
    noted = repo.note(f"{MODEL}@v3", "the candidate")
    assert noted.note.text == "the candidate" and noted.version.hash == v["v3"]
    (model,) = repo.models()
    assert isinstance(model, pipeflow.Model)
    assert model.versions == 3 and model.latest is not None
    assert model.latest.hash == v["v3"] and [n.text for n in model.latest.notes] == [
        "the candidate"]
    assert model.aliases["production"].hash == v["v1"]
    with pytest.raises(pipeflow.UsageError, match="has no version 'v8'"):
        repo.promote(f"{MODEL}@v8", "production")
    with pytest.raises(pipeflow.UsageError, match="no earlier target"):
        repo.rollback("production")


def test_versions_and_lineage_take_a_model_name(project: Project) -> None:
    model_with_versions(project, (0.1, 0.2))
    repo = pipeflow.Repo(project.root)
    assert [v.label for v in repo.versions(MODEL)] == ["v1", "v2"]
    assert repo.lineage(MODEL, "v1").target == repo.lineage(PATH, "v1").target
