"""Bad input: exit 2, a located message that says how to fix it, no traceback."""

from __future__ import annotations

import pytest

from tests.conftest import Project


def _err(p: Project, *args: str) -> str:
    res = p.run(*(args or ("status",)))
    assert res.code == 2, res.text
    assert "Traceback" not in res.text
    return res.err


def test_yaml_syntax_error_names_line(project: Project) -> None:
    project.write("pipeline.yaml", "stages:\n  a:\n    cmd: [echo\n")
    err = _err(project)
    assert "pipeline.yaml:" in err


def test_unknown_field_suggests(project: Project) -> None:
    project.write("pipeline.yaml", "stages:\n  a:\n    cmd: echo\n    otus: [x]\n")
    err = _err(project)
    assert "pipeline.yaml:4" in err
    assert "otus" in err and "outs" in err


def test_wrong_type(project: Project) -> None:
    project.write("pipeline.yaml", "stages:\n  a:\n    cmd: echo\n    deps: 3\n")
    err = _err(project)
    assert "pipeline.yaml:4" in err and "deps" in err


def test_missing_dependency(project: Project) -> None:
    project.spec({"a": {"cmd": "echo a >> runs.log; touch o", "deps": ["nope.csv"],
                        "outs": ["o"]},
                  "ok": {"cmd": "echo ok >> runs.log; touch k", "outs": ["k"]}})
    err = _err(project, "repro")
    assert "dependency 'nope.csv' of stage 'a' does not exist" in err
    assert not (project.root / "runs.log").exists()  # checked before anything runs
    # status explains instead of failing; unrelated stages still run
    st = project.run("status")
    assert st.code == 0
    assert "dependency missing: nope.csv (no stage writes it)" in st.out
    assert project.run("repro", "ok").code == 0
    assert project.read("runs.log") == "ok\n"


def test_two_stages_one_output(project: Project) -> None:
    project.spec({"a": {"cmd": "echo", "outs": ["o.txt"]}, "b": {"cmd": "echo", "outs": ["o.txt"]}})
    err = _err(project)
    assert "output 'o.txt' is written by 'a' and stage 'b'" in err


def test_overlapping_outputs(project: Project) -> None:
    project.spec({"a": {"cmd": "echo", "outs": ["d"]}, "b": {"cmd": "echo", "outs": ["d/x"]}})
    err = _err(project)
    assert "outputs overlap" in err and "'d/x'" in err


def test_cycle_prints_its_path(project: Project) -> None:
    project.spec({
        "a": {"cmd": "echo", "deps": ["c.txt"], "outs": ["a.txt"]},
        "b": {"cmd": "echo", "deps": ["a.txt"], "outs": ["b.txt"]},
        "c": {"cmd": "echo", "deps": ["b.txt"], "outs": ["c.txt"]},
    })
    err = _err(project)
    assert "cycle" in err
    assert "a -> b -> c -> a" in err or "b -> c -> a -> b" in err or "c -> a -> b -> c" in err


@pytest.mark.parametrize("out", ["../escape.txt", "/tmp/abs.txt"])
def test_output_outside_project(project: Project, out: str) -> None:
    project.spec({"a": {"cmd": "echo", "outs": [out]}})
    err = _err(project)
    assert out.lstrip("./") in err or out in err


def test_missing_params_key(project: Project) -> None:
    project.params({"train": {"lr": 1}})
    project.spec({"a": {"cmd": "echo", "params": ["train.lrr"], "outs": ["o"]}})
    err = _err(project)
    assert "train.lrr" in err and "params.yaml" in err


def test_undefined_variable(project: Project) -> None:
    project.params({"train": {"lr": 1}})
    project.spec({"a": {"cmd": "echo ${train.rate}", "outs": ["o"]}})
    err = _err(project)
    assert "train.rate" in err


def test_verbose_shows_traceback(project: Project) -> None:
    project.spec({"a": {"cmd": "echo", "deps": ["nope.csv"], "outs": ["o"]}})
    res = project.run("repro", "--verbose")
    assert res.code == 2
    assert "Traceback" in res.err


def test_no_project(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from tests.conftest import Project as P

    p = P(tmp_path)
    res = p.run("status")
    assert res.code == 2
    assert "no pipeflow project" in res.err
    assert "pipeflow init" in res.err
