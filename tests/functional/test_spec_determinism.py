"""``deterministic: false`` / ``tolerance`` only tell ``reproduce`` how to compare: they
never reach a fingerprint, the lock or a record, and a bad one is a located spec error."""

from __future__ import annotations

import yaml

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def _mark(p: Project, **fields: object) -> None:
    spec = yaml.safe_load(p.read("pipeline.yaml"))
    spec["stages"]["train"].update(fields)
    p.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))


def test_declaring_a_stage_nondeterministic_reruns_nothing(project: Project) -> None:
    chain(project)
    assert project.run("repro").code == 0
    runs(project)
    lock = project.read("pipeline.lock")
    _mark(project, deterministic=False, tolerance=1e-4)
    status = project.run("status")
    assert status.code == 0 and "up to date" in status.out, status.text
    res = project.run("repro")
    assert res.code == 0 and runs(project) == [] and "up to date" in res.out
    assert project.read("pipeline.lock") == lock
    assert "deterministic" not in lock and "tolerance" not in lock


def test_a_tolerance_without_deterministic_false_is_refused(project: Project) -> None:
    chain(project)
    _mark(project, tolerance=0.01)
    res = project.run("status")
    assert res.code == 2 and "Traceback" not in res.text
    line = next(n for n, text in enumerate(project.read("pipeline.yaml").splitlines(), 1)
                if "tolerance" in text)
    assert f"pipeline.yaml:{line}" in res.err
    assert "stage 'train'" in res.err and "deterministic: false" in res.err


def test_a_negative_tolerance_is_refused(project: Project) -> None:
    chain(project)
    _mark(project, deterministic=False, tolerance=-0.5)
    res = project.run("repro")
    assert res.code == 2 and "'tolerance' of stage 'train' must be a number >= 0" in res.err
    assert runs(project) == []
