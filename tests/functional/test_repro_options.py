"""``repro``'s options: checked in one place, so the CLI and the Python API refuse the
same things with the same UsageError, before any stage runs; engines come from the
executor registry."""

from __future__ import annotations

import dataclasses

import pytest

import pipeflow
from pipeflow.errors import UsageError
from pipeflow.execution import executor as registry
from pipeflow.execution.executor import ExecutorContext
from pipeflow.execution.local import LocalExecutor
from pipeflow.ops.repro import ReproOptions
from tests.conftest import Project
from tests.functional.helpers import chain, runs

REFUSED = [
    # (CLI arguments, API keywords, what the message says)
    (["--single-item", "--downstream"], {"single_item": True, "downstream": True},
     "--single-item and --downstream cannot be combined"),
    (["--executor", "ray"], {"executor": "ray"}, "unknown executor 'ray'"),
    (["--scheduler", "tcp://127.0.0.1:9"], {"scheduler": "tcp://127.0.0.1:9"},
     "--scheduler is not an option of executor 'local'"),
    (["--wait", "-1"], {"wait": -1.0}, "--wait"),
]


@pytest.mark.parametrize(("args", "keywords", "message"), REFUSED)
def test_the_cli_and_the_api_refuse_the_same_options_before_anything_runs(
        project: Project, args: list[str], keywords: dict[str, object], message: str) -> None:
    chain(project)
    res = project.run("repro", *args)
    assert res.code == 2 and message in res.err, res.text
    with pytest.raises(UsageError) as raised:
        pipeflow.Repo(project.root).repro(**keywords)  # type: ignore[arg-type]
    if args[0] != "--wait":  # typer checks --wait's minimum itself, in its words
        assert message in raised.value.message and message in res.err
    assert runs(project) == [] and not (project.root / "pipeline.lock").exists()


def test_unknown_executor_names_the_registered_ones(project: Project) -> None:
    chain(project)
    res = project.run("repro", "--executor", "ray")
    assert f"use one of: {', '.join(registry.names())}" in res.err
    assert "local|dask" in project.run("repro", "--help").out.replace("\n", "")


def test_options_are_keyword_only_and_checked_when_made() -> None:
    with pytest.raises(TypeError):
        ReproOptions(("a",), True)  # type: ignore[call-arg]
    with pytest.raises(UsageError, match="--jobs must be 0"):
        ReproOptions(jobs=-1)
    options = ReproOptions(targets=["a"], executor="dask",  # type: ignore[arg-type]
                           executor_options={"scheduler": "tcp://h:1"})
    assert options.targets == ("a",)
    with pytest.raises(TypeError):
        options.executor_options["scheduler"] = "x"  # type: ignore[index]
    with pytest.raises(UsageError, match="--single-item and --downstream"):
        dataclasses.replace(options, single_item=True, downstream=True)


def test_the_api_takes_every_cli_option(project: Project) -> None:
    chain(project)
    repo = pipeflow.Repo(project.root)
    dry = repo.repro("train", dry=True)
    assert [s.name for s in dry.planned] == ["prepare", "train"] and runs(project) == []
    assert all(s.status != "up-to-date" for s in dry.planned)
    done = repo.repro("train", executor="local", jobs=2, keep_going=True, wait=1.0)
    assert done.ok and done.ran == ("prepare", "train")
    assert repo.repro("evaluate", single_item=True, force=True).ran == ("evaluate",)
    assert repo.repro("prepare", downstream=True, force=True).ran == (
        "prepare", "train", "evaluate")


def test_a_registered_engine_runs_repro(project: Project,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ExecutorContext] = []

    def factory(context: ExecutorContext) -> LocalExecutor:
        made.append(context)
        repo = context.repo
        return LocalExecutor(repo.root, repo.logs_dir, sink=context.sink,
                             token=context.token, cancel=context.cancel)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register("here", factory, options=("slots",))
    chain(project)
    res = project.run("repro", "--executor", "here")
    assert res.code == 0, res.text
    assert len(made) == 1 and dict(made[0].options) == {}
    assert runs(project) == ["prepare", "train", "evaluate"]
    done = pipeflow.Repo(project.root).repro(executor="here", force=True,
                                             executor_options={"slots": "2"})
    assert done.ok and dict(made[1].options) == {"slots": "2"}
    with pytest.raises(UsageError, match="--scheduler is not an option of executor 'here'"):
        pipeflow.Repo(project.root).repro(executor="here", scheduler="tcp://h:1")


def test_engine_options_come_from_the_command_line(project: Project,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    made: list[ExecutorContext] = []

    def factory(context: ExecutorContext) -> LocalExecutor:
        made.append(context)
        return LocalExecutor(context.repo.root, context.repo.logs_dir, token=context.token,
                             cancel=context.cancel)

    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register("slurmish", factory, options=("partition", "account"))
    chain(project)
    res = project.run("repro", "--executor", "slurmish", "-O", "partition=gpu",
                      "--executor-option", "account=ml=team")
    assert res.code == 0, res.text
    assert dict(made[0].options) == {"partition": "gpu", "account": "ml=team"}
    bad = project.run("repro", "--executor", "slurmish", "-O", "partition")
    assert bad.code == 2 and "'partition' needs a name, '=' and a value" in bad.err
    other = project.run("repro", "--executor", "slurmish", "-O", "qos=high")
    assert other.code == 2 and "--executor-option qos is not an option" in other.err
    assert len(made) == 1  # neither refused run made an executor


def test_an_engine_that_cannot_be_loaded_is_named(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    registry.register("broken", "no_such_engine_module:create")
    chain(project)
    res = project.run("repro", "--executor", "broken")
    assert res.code == 2, res.text
    assert "executor 'broken' cannot be loaded from no_such_engine_module:create" in res.err
    assert "internal error" not in res.err and runs(project) == []

