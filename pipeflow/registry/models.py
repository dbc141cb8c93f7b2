"""Declared models (``outs: - PATH: {model: NAME}``) and ``MODEL_OR_PATH@VERSION``.

A model is an output the spec names; its versions are that path's versions and its
aliases that path's tags, so every command that takes ``PATH@VERSION`` takes
``MODEL@VERSION`` too, and ``tag`` and ``promote`` are one mechanism.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from pipeflow.errors import UsageError
from pipeflow.lineage.pathspec import split_spec
from pipeflow.project.project import Project


@dataclass(frozen=True)
class DeclaredModel:
    name: str
    path: str
    stage: str
    desc: str | None = None


def declared(repo: Project) -> dict[str, DeclaredModel]:
    """Every model the pipeline declares, by name (spec order)."""
    from pipeflow.ops.project import load_project

    pipeline = load_project(repo).graph.pipeline
    return {out.model: DeclaredModel(out.model, out.path, stage.name, out.desc)
            for stage in pipeline.stages.values() for out in stage.outs
            if out.model is not None}


def model_of_path(models: dict[str, DeclaredModel], path: str) -> DeclaredModel | None:
    return next((m for m in models.values() if m.path == path), None)


def name_of(models: dict[str, DeclaredModel], path: str) -> str | None:
    """The name of the model whose output ``path`` is, if one is."""
    model = model_of_path(models, path)
    return model.name if model else None


@dataclass(frozen=True)
class Target:
    """What ``MODEL_OR_PATH[@VERSION]`` names."""

    path: str
    version: str | None
    model: DeclaredModel | None


def resolve_target(repo: Project, text: str, models: dict[str, DeclaredModel] | None = None,
                   *, declared_paths: set[str] | None = None) -> Target:
    """``wine-classifier@production`` or ``models/model.pkl@v3`` (or either without a
    version). A model name wins over a path of the same spelling only when no such
    file or output exists."""
    models = declared(repo) if models is None else models
    head, sep, version = text.rpartition("@")
    name = head if sep else text
    if name in models and not (repo.root / name).exists():
        model = models[name]
        return Target(model.path, version if sep else None, model)
    paths = (declared_paths or set()) | {m.path for m in models.values()}
    path, version_text = split_spec(repo, text, paths)
    found = model_of_path(models, path)
    if found is None and not (repo.root / path).exists() and path not in paths:
        close = difflib.get_close_matches(name, list(models), n=1)
        hint = (f"did you mean '{close[0]}'?" if close else
                f"declared models: {', '.join(models)}" if models else
                "declare one in pipeline.yaml: `outs: - models/model.pkl: {model: NAME}`")
        raise UsageError(f"'{name}' is neither a declared model nor a path of the project",
                         hint=hint)
    return Target(path, version_text, found)


def require_model(repo: Project, name: str,
                  models: dict[str, DeclaredModel] | None = None) -> DeclaredModel:
    """The declared model ``name`` (or the model whose path ``name`` is)."""
    models = declared(repo) if models is None else models
    if name in models:
        return models[name]
    target = resolve_target(repo, name, models)
    if target.model is None:
        hint = (f"declared models: {', '.join(models)}" if models
                else "declare one in pipeline.yaml: `outs: - PATH: {model: NAME}`")
        raise UsageError(f"'{target.path}' is not a declared model", hint=hint)
    return target.model


def expand_model(repo: Project, text: str) -> str:
    """``MODEL[@VERSION]`` as ``/abs/path[@VERSION]`` when MODEL is a declared model
    and not a path; anything else as it is. Commands that take ``PATH@VERSION``
    (checkout, lineage, versions) call it, so they take ``MODEL@VERSION`` too. The
    pipeline is loaded only for an argument that can be a model name (no ``/``, not
    an existing path)."""
    import os

    from pipeflow.errors import PipeflowError

    head, sep, version = text.rpartition("@")
    name = head if sep else text
    if not name or "/" in name or os.sep in name or os.path.lexists(text) \
            or os.path.lexists(name):
        return text
    try:
        model = declared(repo).get(name)
    except PipeflowError:
        return text  # no pipeline, or a broken one: the command itself says so
    if model is None:
        return text
    return str(repo.root / model.path) + (sep + version if sep else "")
