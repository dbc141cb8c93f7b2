"""``exp run`` with bad ``--set``/``--sweep``/``--name`` input: a clear error (exit 2)
naming the text or the sweep entry, and nothing run, recorded or changed (issue 13,
"Bad input")."""

from __future__ import annotations

import pytest

from pipeflow.lineage.experiments import experiments
from pipeflow.project.project import Project as Core
from tests.conftest import Project
from tests.functional.helpers import chain, commit


def _ready(p: Project) -> dict[str, bytes]:
    chain(p)
    assert p.run("repro").code == 0
    commit(p, "v1")
    (p.root / "runs.log").unlink()  # ignored by nothing: keep git status clean
    commit(p, "clean")
    return {rel: (p.root / rel).read_bytes()
            for rel in ("params.yaml", "pipeline.lock", "metrics.json")}


def _nothing_happened(p: Project, before: dict[str, bytes]) -> None:
    assert {rel: (p.root / rel).read_bytes() for rel in before} == before
    assert p.git("status", "--porcelain") == ""
    assert not (p.root / "runs.log").exists(), "a stage ran"
    with Core(p.root) as core:
        assert experiments(core) == []


@pytest.mark.parametrize(("args", "said"), [
    (["--set", "eval.k"], ["--set 'eval.k' has no '='", "PARAM=VALUE"]),
    (["--set", "eval.kk=1"], ["params.yaml has no key 'eval.kk'", "did you mean 'eval.k'"]),
    (["--set", "eval.k=[1,"], ["value '[1,' is not YAML", "quote"]),
    (["--set", "eval=1"], ["'eval' is a section of params.yaml", "eval.k"]),
    (["--set", "other.yaml:a=1"], ["other.yaml is not a params file of this pipeline",
                                     "the params files: params.yaml"]),
    (["--set", "eval.k=1", "--set", "params.yaml:eval.k=2"], ["already set by"]),
    (["--set", "eval.k=1,2", "--set", "train.lr=0.1,0.2", "--name", "k{eval.k}"],
     ["gives 'k1' to experiments 1 and 2", "placeholder"]),
    (["--set", "eval.k=1", "--name", "bad name"], ["invalid experiment name 'bad name'"]),
    (["--set", "eval.k=" + ",".join(map(str, range(40))),
      "--set", "train.lr=" + ",".join(map(str, range(40)))],
     ["1,600 experiments", "at most 1,000"]),
])
def test_bad_set_and_name(project: Project, args: list[str], said: list[str]) -> None:
    before = _ready(project)
    res = project.run("exp", "run", *args)
    assert res.code == 2, res.text
    for text in said:
        assert text in res.text
    _nothing_happened(project, before)


@pytest.mark.parametrize(("sweep", "said"), [
    ("- {eval.k: 2}\n- {eval.kk: 3}\n", "combination 2: eval.kk: params.yaml has no key"),
    ("grid: {eval.k: [1, 2]}\ngird: {}\n", "unknown entry 'gird'"),
    ("grid: {eval.k: [1, 2\n", "not YAML"),
    ("- !!python/object/apply:os.system ['touch pwned']\n", "not YAML"),
])
def test_bad_sweep_file(project: Project, sweep: str, said: str) -> None:
    before = _ready(project)
    path = project.root.parent / "sweep.yaml"  # outside the project: git status stays clean
    path.write_text(sweep)
    res = project.run("exp", "run", "--sweep", str(path))
    assert res.code == 2, res.text
    assert said in res.text and "sweep.yaml" in res.text
    _nothing_happened(project, before)
    assert not (project.root / "pwned").exists()


def test_values_keep_their_types_in_the_experiment(project: Project) -> None:
    _ready(project)
    res = project.run("exp", "run", "--set", "train.lr=1e-3", "--set", "eval.k='7'",
                      "--name", "typed")
    assert res.code == 0, res.text
    with Core(project.root) as core:
        [exp] = experiments(core)
    assert exp.overrides == {"params.yaml": {"eval.k": "7", "train.lr": 1e-3}}
    assert type(exp.overrides["params.yaml"]["train.lr"]) is float
