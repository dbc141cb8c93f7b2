"""Planning: each stage's state and why, against hand-built locks in a real tmp project."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from pathlib import Path

import pytest

from pipeflow import params as params_module
from pipeflow.content.hashing import hash_file
from pipeflow.lock.lockfile import FileEntry, Lock, MetricEntry, StageLock, file_entry
from pipeflow.ops.init import init
from pipeflow.planning.graph import build_graph
from pipeflow.planning.plan import WORDS, Planner, StageState
from pipeflow.project.project import Project
from pipeflow.spec.model import Out, ParamRef, Pipeline, Stage


@dataclasses.dataclass
class Proj:
    root: Path
    pipeline: Pipeline

    def write(self, rel: str, text: str) -> None:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        params_module.clear_cache()  # a rewrite within one mtime tick must still be seen

    def with_stage(self, name: str, **changes: object) -> None:
        stages = dict(self.pipeline.stages)
        stages[name] = dataclasses.replace(stages[name], **changes)  # type: ignore[arg-type]
        self.pipeline = Pipeline(stages)

    def record(self, names: Iterable[str] | None = None, *, store: bool = True) -> Lock:
        """A lock as a successful run would leave it, built from the workspace as it is."""
        entries: dict[str, StageLock] = {}
        with Project(self.root) as repo:
            graph = build_graph(self.pipeline)
            planner = Planner(repo, graph, Lock())
            for name in names if names is not None else graph.order:
                stage = self.pipeline.stages[name]
                comps = planner.components(stage, {})
                outs: list[FileEntry] = []
                metrics: list[MetricEntry] = []
                for out in stage.outs:
                    full = self.root / out.path
                    info = repo.hasher.hash_path(out.path)
                    if store and out.cache:
                        if full.is_dir():
                            repo.store.add_tree(self.root, out.path, repo.hasher)
                        else:
                            repo.store.add_file(full, info.hash)
                    entry = file_entry(out.path, info, cache=out.cache)
                    if out.kind == "metric":
                        metrics.append(MetricEntry(**dataclasses.asdict(entry)))
                    else:
                        outs.append(entry)
                entries[name] = StageLock(
                    cmd=comps.cmd, fingerprint=comps.digest(), deps=comps.deps,
                    params=comps.params, code=comps.code, env=comps.env,
                    outs=tuple(outs), metrics=tuple(metrics),
                )
        return Lock(stages=entries)

    def states(
        self, lock: Lock, *, running: frozenset[str] = frozenset()
    ) -> dict[str, StageState]:
        with Project(self.root) as repo:
            graph = build_graph(self.pipeline)
            planner = Planner(repo, graph, lock, running=running)
            return planner.evaluate_all(list(graph.order))


def words(states: dict[str, StageState]) -> dict[str, str]:
    return {name: s.word for name, s in states.items()}


def reasons(state: StageState) -> list[str]:
    return [c.message for c in state.reasons]


@pytest.fixture
def proj(tmp_path: Path) -> Proj:
    root = tmp_path / "proj"
    root.mkdir()
    init(root, starter=False)
    stages = [
        Stage("prep", ("echo prep",), deps=("raw.csv",),
              params=(ParamRef("params.yaml", ("prep.n",)),), outs=(Out("data/clean.csv"),)),
        Stage("train", ("echo train",), deps=("data/clean.csv",),
              outs=(Out("model.pkl"), Out("metrics.json", kind="metric", cache=False))),
        Stage("report", ("echo report",), deps=("model.pkl",), outs=(Out("report.txt"),)),
    ]
    p = Proj(root, Pipeline({s.name: s for s in stages}))
    p.write("raw.csv", "a,b\n1,2\n")
    p.write("params.yaml", "prep:\n  n: 1\ntrain:\n  lr: 0.1\n")
    p.write("data/clean.csv", "clean\n")
    p.write("model.pkl", "model\n")
    p.write("metrics.json", '{"acc": 0.5}\n')
    p.write("report.txt", "report\n")
    return p


def test_words_are_the_documented_ones() -> None:
    assert WORDS == ("changed", "pending", "missing-output", "frozen", "running", "up-to-date")


def test_never_run_is_changed(proj: Proj) -> None:
    states = proj.states(Lock())
    assert words(states) == {"prep": "changed", "train": "changed", "report": "changed"}
    assert reasons(states["prep"]) == ["never run"]
    assert states["prep"].components is not None


def test_up_to_date(proj: Proj) -> None:
    states = proj.states(proj.record())
    assert words(states) == {"prep": "up-to-date", "train": "up-to-date",
                             "report": "up-to-date"}
    assert all(s.up_to_date and not s.reasons and not s.restorable for s in states.values())


def test_changed_param_makes_downstream_pending(proj: Proj) -> None:
    lock = proj.record()
    proj.write("params.yaml", "prep:\n  n: 22\ntrain:\n  lr: 0.1\n")
    states = proj.states(lock)
    assert words(states) == {"prep": "changed", "train": "pending", "report": "pending"}
    assert reasons(states["prep"]) == ["params.yaml: prep.n 1 -> 22"]
    assert reasons(states["train"]) == ["upstream 'prep' changed"]
    assert reasons(states["report"]) == ["upstream 'train' changed"]
    assert not states["train"].up_to_date


def test_unread_param_changes_nothing(proj: Proj) -> None:
    lock = proj.record()
    proj.write("params.yaml", "prep:\n  n: 1\ntrain:\n  lr: 0.25\n")
    assert set(words(proj.states(lock)).values()) == {"up-to-date"}


def test_changed_dep_and_cmd(proj: Proj) -> None:
    lock = proj.record()
    proj.write("raw.csv", "a,b\n1,2\n3,4\n")
    proj.with_stage("report", cmd=("echo report --long",))
    states = proj.states(lock)
    assert words(states) == {"prep": "changed", "train": "pending", "report": "changed"}
    [dep] = states["prep"].reasons
    assert (dep.kind, dep.subject) == ("dep", "raw.csv")
    assert dep.message.startswith("dependency modified: raw.csv (")
    # its own reasons first: a changed stage is 'changed' even with a changed upstream
    assert reasons(states["report"]) == [
        "command changed: 'echo report' -> 'echo report --long'"
    ]


def test_substitute_recorded_dep_for_a_non_up_to_date_upstream(proj: Proj) -> None:
    lock = proj.record()
    # prep will rerun (params) and its current output was edited by hand: train must
    # judge its dep by what the lock says prep produced, not by the stale file
    proj.write("params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.1\n")
    proj.write("data/clean.csv", "edited by hand\n")
    states = proj.states(lock)
    assert words(states)["train"] == "pending"
    assert reasons(states["train"]) == ["upstream 'prep' changed"]


def test_no_substitute_for_a_dep_the_lock_did_not_record(proj: Proj) -> None:
    lock = proj.record()
    proj.write("params.yaml", "prep:\n  n: 2\ntrain:\n  lr: 0.1\n")
    proj.write("data/extra.csv", "x\n")
    proj.with_stage("prep", outs=(Out("data/clean.csv"), Out("data/extra.csv")))
    proj.with_stage("train", deps=("data/clean.csv", "data/extra.csv"))
    states = proj.states(lock)
    assert words(states)["train"] == "changed"
    assert reasons(states["train"]) == ["dependency added: data/extra.csv"]


def test_missing_output_restorable_and_downstream_not_pending(proj: Proj) -> None:
    lock = proj.record()
    (proj.root / "data/clean.csv").unlink()
    states = proj.states(lock)
    # restoring prep's output brings back exactly what train read: train is up to date
    assert words(states) == {"prep": "missing-output", "train": "up-to-date",
                             "report": "up-to-date"}
    assert reasons(states["prep"]) == ["output missing: data/clean.csv"]
    assert states["prep"].restorable


def test_missing_output_not_in_cache_is_not_restorable(proj: Proj) -> None:
    lock = proj.record(store=False)
    (proj.root / "model.pkl").unlink()
    states = proj.states(lock)
    assert (states["train"].word, states["train"].restorable) == ("missing-output", False)
    # train must run again, and may write another model: report waits on it
    assert words(states)["report"] == "pending"
    assert reasons(states["report"]) == ["upstream 'train' changed"]


def test_missing_uncached_output_is_not_restorable(proj: Proj) -> None:
    lock = proj.record()
    (proj.root / "metrics.json").unlink()
    states = proj.states(lock)
    assert (states["train"].word, states["train"].restorable) == ("missing-output", False)
    assert reasons(states["train"]) == ["output missing: metrics.json"]
    assert words(states)["report"] == "pending"


def test_modified_output_is_changed_and_restorable(proj: Proj) -> None:
    lock = proj.record()
    proj.write("model.pkl", "tampered model\n")
    states = proj.states(lock)
    assert words(states)["train"] == "changed"
    assert reasons(states["train"]) == ["output modified in the workspace: model.pkl"]
    assert states["train"].restorable
    # report is judged by the model the lock says train made, not the tampered file
    assert words(states)["report"] == "pending"


def test_missing_and_modified_outputs_together_are_changed(proj: Proj) -> None:
    lock = proj.record()
    proj.write("model.pkl", "tampered\n")
    (proj.root / "metrics.json").unlink()
    state = proj.states(lock)["train"]
    assert state.word == "changed"
    assert sorted(reasons(state)) == ["output missing: metrics.json",
                                      "output modified in the workspace: model.pkl"]
    assert not state.restorable  # metrics.json is not cached


def test_persistent_output_may_differ(proj: Proj) -> None:
    proj.with_stage("report", outs=(Out("report.txt", persist=True),))
    lock = proj.record()
    proj.write("report.txt", "appended by the next run\n")
    assert proj.states(lock)["report"].word == "up-to-date"
    (proj.root / "report.txt").unlink()
    assert proj.states(lock)["report"].word == "missing-output"


def test_directory_output_missing_is_restorable(proj: Proj) -> None:
    proj.write("plots/a.png", "a")
    proj.write("plots/sub/b.png", "bb")
    proj.with_stage("report", outs=(Out("report.txt"), Out("plots")))
    lock = proj.record()
    import shutil

    shutil.rmtree(proj.root / "plots")
    state = proj.states(lock)["report"]
    assert (state.word, state.restorable) == ("missing-output", True)


def test_frozen(proj: Proj) -> None:
    lock = proj.record()
    proj.write("raw.csv", "new raw data\n")
    proj.with_stage("prep", frozen=True)
    states = proj.states(lock)
    assert words(states) == {"prep": "frozen", "train": "up-to-date", "report": "up-to-date"}
    assert states["prep"].up_to_date
    assert proj.states(Lock())["prep"].word == "frozen"  # even never run


def test_running(proj: Proj) -> None:
    lock = proj.record()
    states = proj.states(lock, running=frozenset({"train"}))
    assert words(states) == {"prep": "up-to-date", "train": "running", "report": "pending"}
    assert reasons(states["report"]) == ["upstream 'train' changed"]


def test_always_changed_and_force(proj: Proj) -> None:
    proj.with_stage("report", always_changed=True)
    lock = proj.record()
    states = proj.states(lock)
    assert words(states)["report"] == "changed"
    assert reasons(states["report"]) == ["always_changed is set"]
    with Project(proj.root) as repo:
        planner = Planner(repo, build_graph(proj.pipeline), lock)
        forced = planner.evaluate("prep", {}, force=True)
    assert (forced.word, reasons(forced)) == ("changed", ["forced with --force"])


def test_output_declared_later_is_an_outs_change(proj: Proj) -> None:
    lock = proj.record()
    proj.write("extra.txt", "x")
    proj.with_stage("report", outs=(Out("report.txt"), Out("extra.txt")))
    state = proj.states(lock)["report"]
    assert (state.word, reasons(state)) == ("changed", ["output added: extra.txt"])


def test_code_globs_are_components(proj: Proj) -> None:
    proj.write("src/a.py", "A = 1\n")
    proj.write("src/b.py", "B = 1\n")
    proj.with_stage("report", code=("src/*.py", "src/a.py", "missing.py"))
    with Project(proj.root) as repo:
        comps = Planner(repo, build_graph(proj.pipeline), Lock()).components(
            proj.pipeline.stages["report"], {}
        )
    assert [(c.path, bool(c.hash)) for c in comps.code] == [
        ("src/a.py", True), ("src/b.py", True), ("missing.py", False)
    ]
    lock = proj.record()
    proj.write("src/b.py", "B = 22\n")
    state = proj.states(lock)["report"]
    assert state.word == "changed"
    assert reasons(state)[0].startswith("code modified: src/b.py (")


def test_environment_component(proj: Proj) -> None:
    state = proj.states(Lock())["prep"]
    assert state.components is not None
    assert set(state.components.env) == {"platform"}  # not a python command


def test_relative_interpreter_resolved_in_the_stage_wdir(
    proj: Proj, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    exe = proj.root / "venv" / "bin" / "python"
    exe.parent.mkdir(parents=True)
    exe.write_text("#!/bin/sh\necho cpython 3 77 1\n")
    exe.chmod(0o755)
    (proj.root / "src").mkdir()
    proj.with_stage("report", cmd=("../venv/bin/python report.py",), wdir="src")
    monkeypatch.chdir(tmp_path)  # pipeflow started from outside the stage's folder
    # inside the project and not trusted: never run, its content counts instead
    state = proj.states(Lock())["report"]
    assert state.components is not None
    assert state.components.env["python"] == "unprobed"
    assert state.components.env["interpreter"] == hash_file(exe)
    from pipeflow.code.interptrust import trust_folder

    (proj.root / "venv" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a venv
    trust_folder(str(proj.root / "venv"))
    state = proj.states(Lock())["report"]
    assert state.components is not None
    assert state.components.env["python"] == "cpython-3.77"
