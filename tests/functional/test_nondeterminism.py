"""Everyday detection: a stage that runs again with a fingerprint recorded before and
writes other outputs is marked nondeterministic in its run record, ``status`` and
``lineage``; early cutoff is unchanged."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

import pipeflow
from tests.conftest import Project
from tests.functional.helpers import runs

CLOCK = ("echo clock >> runs.log && python -c \"import time; "
         "open('out.txt', 'w').write(open('in.txt').read() + str(time.time_ns()))\"")
LINE = "nondeterministic: outputs differed for the same inputs (runs {}, {}): {}"


def two_chains(p: Project) -> None:
    """clock (writes the time) -> after_clock; same (a copy) -> after_same."""
    p.write("in.txt", "x\n")
    p.spec({
        "clock": {"cmd": CLOCK, "deps": ["in.txt"], "outs": ["out.txt"]},
        "after_clock": {"cmd": "echo after_clock >> runs.log && cp out.txt after_clock.txt",
                        "deps": ["out.txt"], "outs": ["after_clock.txt"]},
        "same": {"cmd": "echo same >> runs.log && cp in.txt same.txt",
                 "deps": ["in.txt"], "outs": ["same.txt"]},
        "after_same": {"cmd": "echo after_same >> runs.log && cp same.txt after_same.txt",
                       "deps": ["same.txt"], "outs": ["after_same.txt"]},
    })


def record(p: Project, run_id: str) -> dict[str, Any]:
    found = list((p.root / ".pipeflow/cache/runs").glob(f"*/*-{run_id}.json"))
    assert len(found) == 1, run_id
    data = json.loads(found[0].read_text())
    assert isinstance(data, dict)
    return data


def run_of(p: Project, stage: str) -> str:
    return str(p.lock()["stages"][stage]["run"])


def test_a_forced_rerun_whose_outputs_differ_is_marked_in_its_record_status_and_lineage(
    project: Project,
) -> None:
    two_chains(project)
    assert project.run("repro").code == 0
    first_clock, first_same = run_of(project, "clock"), run_of(project, "same")
    res = project.run("repro", "--force")
    assert res.code == 0, res.text
    clock, same = run_of(project, "clock"), run_of(project, "same")
    assert (clock, same) != (first_clock, first_same)
    assert record(project, clock)["nondeterministic"] == {"runs": [first_clock],
                                                          "outputs": ["out.txt"]}
    assert "nondeterministic" not in record(project, same)
    # after_clock read new content: another fingerprint, nothing to compare with
    assert "nondeterministic" not in record(project, run_of(project, "after_clock"))

    line = LINE.format(first_clock[:12], clock[:12], "out.txt")
    status = project.run("status")
    assert status.code == 0, status.text
    assert line in status.out
    assert status.out.count("nondeterministic") == 1
    body = json.loads(project.run("status", "--json").out)
    marks = {s["name"]: s["nondeterministic"] for s in body["stages"]}
    assert marks == {"clock": {"runs": [first_clock, clock], "outputs": ["out.txt"]},
                     "after_clock": None, "same": None, "after_same": None}

    lineage = project.run("lineage", "after_clock.txt")
    assert lineage.code == 0, lineage.text
    assert line in lineage.out
    data = json.loads(project.run("lineage", "out.txt", "--format", "json").out)
    (run,) = [r for r in data["runs"] if r["stage"] == "clock"]
    assert run["nondeterministic"] == {"runs": [first_clock, clock], "outputs": ["out.txt"]}
    same_lineage = project.run("lineage", "same.txt")
    assert "nondeterministic" not in same_lineage.out

    stages = {s.name: s for s in pipeflow.Repo(project.root).status().stages}
    mark = stages["clock"].nondeterministic
    assert mark is not None and mark.runs == (first_clock, clock) and mark.outputs == ("out.txt",)
    assert stages["same"].nondeterministic is None


def test_early_cutoff_a_rerun_with_the_same_outputs_does_not_rerun_its_downstream(
    project: Project,
) -> None:
    two_chains(project)
    assert project.run("repro").code == 0
    runs(project)
    res = project.run("repro", "--force", "-s", "same", "clock")
    assert res.code == 0, res.text
    assert sorted(runs(project)) == ["clock", "same"]
    res = project.run("repro")
    assert res.code == 0, res.text
    assert runs(project) == ["after_clock"]  # after_same: its input came out the same
    assert "nondeterministic" not in record(project, run_of(project, "same"))
    assert "nondeterministic" in record(project, run_of(project, "clock"))


def test_a_rerun_after_the_run_cache_was_cleared_is_compared_with_the_earlier_run(
    project: Project,
) -> None:
    two_chains(project)
    assert project.run("repro", "clock").code == 0
    first = run_of(project, "clock")
    project.write("in.txt", "y\n")
    assert project.run("repro", "clock").code == 0
    assert "nondeterministic" not in record(project, run_of(project, "clock"))
    project.write("in.txt", "x\n")
    shutil.rmtree(project.root / ".pipeflow/cache/runcache")
    runs(project)
    res = project.run("repro", "clock")
    assert res.code == 0, res.text
    assert runs(project) == ["clock"]  # not restored: the run cache is gone
    again = run_of(project, "clock")
    assert record(project, again)["nondeterministic"] == {"runs": [first],
                                                          "outputs": ["out.txt"]}
    assert LINE.format(first[:12], again[:12], "out.txt") in project.run("status").out


@pytest.mark.parametrize("declared", [
    {"outs": ["out.txt"], "always_changed": True},
    {"outs": [{"out.txt": {"persist": True}}]},
    {"outs": ["out.txt"], "deterministic": False},
], ids=["always_changed", "persist", "deterministic-false"])
def test_a_stage_whose_outputs_are_expected_to_differ_is_not_marked(
    project: Project, declared: dict[str, Any],
) -> None:
    """always_changed: the stage reads what its fingerprint cannot see; persist: each
    run starts from the last one's output; deterministic: false says so already."""
    project.write("in.txt", "x\n")
    project.spec({"clock": {"cmd": CLOCK, "deps": ["in.txt"], **declared}})
    assert project.run("repro").code == 0
    assert project.run("repro", "--force").code == 0
    assert runs(project) == ["clock", "clock"]
    assert "nondeterministic" not in record(project, run_of(project, "clock"))
    assert "nondeterministic" not in project.run("status").out


def test_an_uncached_output_and_a_metric_count_and_the_index_rebuilt_keeps_the_mark(
    project: Project,
) -> None:
    project.write("in.txt", "x\n")
    project.spec({"clock": {
        "cmd": CLOCK + " && python -c \"import time, json; json.dump({'t': time.time_ns()}, "
                       "open('m.json', 'w'))\"",
        "deps": ["in.txt"], "outs": [{"out.txt": {"cache": False}}], "metrics": ["m.json"]}})
    assert project.run("repro").code == 0
    first = run_of(project, "clock")
    assert project.run("repro", "--force").code == 0
    again = run_of(project, "clock")
    assert record(project, again)["nondeterministic"] == {"runs": [first],
                                                          "outputs": ["m.json", "out.txt"]}
    for leftover in (project.root / ".pipeflow/state").glob("index.db*"):
        leftover.unlink()  # the index is a cache: rebuilt from the records, marks too
    assert LINE.format(first[:12], again[:12], "m.json, out.txt") in project.run("status").out


def test_a_stage_declared_noisy_since_its_mark_is_not_shown_by_status(project: Project) -> None:
    project.write("data.txt", "x\n")
    clock = {"cmd": "python -c \"import time; print(time.time_ns())\" > out.txt",
             "deps": ["data.txt"], "outs": ["out.txt"]}
    project.spec({"clock": clock})
    assert project.run("repro").code == 0
    assert project.run("repro", "--force").code == 0
    assert "nondeterministic" in project.run("status").out

    project.spec({"clock": {**clock, "deterministic": False}})

    res = project.run("status")
    assert res.code == 0, res.text
    assert "nondeterministic" not in res.out
