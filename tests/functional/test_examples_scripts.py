"""The example projects, run without the engine: each stage's command by hand, in spec order.

What pipeflow will rely on, checked here so that a broken example never hides behind
an engine bug: the spec order is a dependency order, every dep exists when its stage
starts, a stage writes its declared outputs and nothing else, a second run gives
byte-identical outputs (even under another hash seed), and metrics parse as JSON.
"""

from __future__ import annotations

import ast
import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
SCHEMA_LINE = "# yaml-language-server: $schema=../../pipeline.schema.json"
SPEC_FIELDS = {"cmd", "deps", "params", "outs", "metrics"}
EXPECTED_METRICS = {
    "minimal": {"metrics/summary.json": {"count", "sum", "mean", "rms"}},
    "wine": {"metrics/scores.json": {"accuracy", "f1_macro"}},
}
REQUIRES = {"wine": "sklearn"}

Stages = dict[str, dict[str, Any]]
Snapshot = dict[str, bytes]


def load_stages(project: Path) -> Stages:
    """Return the stages of a project's pipeline.yaml, in file order."""
    spec = yaml.safe_load((project / "pipeline.yaml").read_text(encoding="utf-8"))
    stages: Stages = spec["stages"]
    return stages


def outputs_of(stage: dict[str, Any]) -> list[str]:
    """Everything a stage declares it writes (a path, or a one-key mapping from the
    path to its options, as ``model:`` needs)."""
    return [out if isinstance(out, str) else next(iter(out))
            for out in [*stage.get("outs", []), *stage.get("metrics", [])]]


def is_under(path: str, roots: list[str]) -> bool:
    """Whether POSIX `path` is one of `roots` or inside one of them."""
    return any(path == root or path.startswith(root.rstrip("/") + "/") for root in roots)


def snapshot(root: Path) -> Snapshot:
    """Bytes of every file under `root`, by POSIX relative path (the examples are small)."""
    return {
        path.relative_to(root).as_posix(): path.read_bytes()
        for path in sorted(root.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


def remove(path: Path) -> None:
    """Delete a file or directory if present, as pipeflow does before a stage runs."""
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def copy_example(name: str, tmp_path: Path) -> Path:
    """Copy an example into `tmp_path`, skipping the optional ones whose imports are missing."""
    if name in REQUIRES:
        pytest.importorskip(REQUIRES[name])
    project = tmp_path / name
    shutil.copytree(EXAMPLES / name, project, ignore=shutil.ignore_patterns("__pycache__"))
    return project


def run_pipeline(project: Path, hash_seed: str) -> Snapshot:
    """Run every stage's command in spec order; return the bytes of all declared outputs."""
    env = {
        **os.environ,
        # Stage commands say `python`: make that the interpreter running the tests.
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONHASHSEED": hash_seed,
    }
    declared: list[str] = []
    for name, stage in load_stages(project).items():
        outputs = outputs_of(stage)
        declared += outputs
        for out in outputs:
            remove(project / out)
        missing = [dep for dep in stage.get("deps", []) if not (project / dep).exists()]
        assert not missing, f"stage {name}: deps missing when it starts: {missing}"

        before = snapshot(project)
        commands = [stage["cmd"]] if isinstance(stage["cmd"], str) else stage["cmd"]
        for command in commands:
            done = subprocess.run(
                ["/bin/sh", "-c", command],
                cwd=project,
                env=env,
                capture_output=True,
                text=True,
                timeout=120,
                check=False,
            )
            assert done.returncode == 0, f"stage {name}: {command!r} failed:\n{done.stderr}"
        after = snapshot(project)

        touched = {p for p in before.keys() | after.keys() if before.get(p) != after.get(p)}
        undeclared = sorted(p for p in touched if not is_under(p, outputs))
        assert not undeclared, f"stage {name} wrote files it does not declare: {undeclared}"
        for out in outputs:
            path = project / out
            assert path.is_file() or (path.is_dir() and any(path.iterdir())), (
                f"stage {name} did not write {out}"
            )
    return {path: data for path, data in snapshot(project).items() if is_under(path, declared)}


def lookup(params: dict[str, Any], dotted: str) -> Any:
    """The value of a dotted key in a parsed params file; KeyError when absent."""
    value: Any = params
    for part in dotted.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize("example", sorted(EXPECTED_METRICS))
def test_spec_is_the_documented_subset_in_dependency_order(example: str) -> None:
    project = EXAMPLES / example
    first_line = (project / "pipeline.yaml").read_text(encoding="utf-8").splitlines()[0]
    assert first_line == SCHEMA_LINE
    params = yaml.safe_load((project / "params.yaml").read_text(encoding="utf-8"))
    stages = load_stages(project)
    producer = {out: name for name, stage in stages.items() for out in outputs_of(stage)}

    seen: list[str] = []
    for name, stage in stages.items():
        assert set(stage) <= SPEC_FIELDS, f"{name}: fields beyond the subset"
        assert outputs_of(stage), f"{name} declares no output"
        for key in stage.get("params", []):
            lookup(params, key)  # raises KeyError naming the missing key
        for dep in stage.get("deps", []):
            upstream = [producer[out] for out in producer if is_under(dep, [out])]
            if upstream:
                assert upstream[0] in seen, f"{name} reads {dep} before {upstream[0]} writes it"
            else:
                assert (project / dep).exists(), f"{name}: {dep} is neither source nor output"
        seen.append(name)


@dataclass(frozen=True)
class TwoRuns:
    """An example copied into two temporary folders and run from scratch in each."""

    name: str
    first: Snapshot
    second: Snapshot


@pytest.fixture(scope="module", params=sorted(EXPECTED_METRICS))
def two_runs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> TwoRuns:
    """Each example, run twice (once per module: the wine stages take about a second each)."""
    name: str = request.param
    # Two folders at different depths and two hash seeds: an output that depends on
    # where the project lives or on set order shows up as a difference. The runs go in
    # parallel (threads wait on subprocesses) to halve the wall time of the wine stages.
    projects = [
        copy_example(name, tmp_path_factory.mktemp(name)),
        copy_example(name, tmp_path_factory.mktemp(name) / "elsewhere"),
    ]
    with ThreadPoolExecutor(max_workers=2) as pool:
        first, second = pool.map(run_pipeline, projects, ["1", "2"])
    return TwoRuns(name, first, second)


def test_second_run_gives_byte_identical_outputs(two_runs: TwoRuns) -> None:
    assert two_runs.first.keys() == two_runs.second.keys()
    differing = sorted(p for p in two_runs.first if two_runs.first[p] != two_runs.second[p])
    assert not differing, f"outputs differ between two runs with the same params: {differing}"


def test_metrics_parse_as_json_with_the_expected_keys(two_runs: TwoRuns) -> None:
    for path, keys in EXPECTED_METRICS[two_runs.name].items():
        metrics = json.loads(two_runs.first[path])
        assert set(metrics) == keys
        assert all(isinstance(value, int | float) for value in metrics.values())


@pytest.mark.parametrize("two_runs", ["wine"], indirect=True)
def test_wine_scores_are_plausible(two_runs: TwoRuns) -> None:
    outputs = two_runs.first
    scores = json.loads(outputs["metrics/scores.json"])
    assert 0.8 <= scores["accuracy"] <= 1.0
    assert 0.8 <= scores["f1_macro"] <= 1.0
    confusion = outputs["plots/confusion.csv"].decode().splitlines()
    test_rows = outputs["data/prepared/test.csv"].decode().splitlines()[1:]
    assert confusion[0] == "actual,predicted,count"
    assert sum(int(line.split(",")[2]) for line in confusion[1:]) == len(test_rows)
    raw_rows = outputs["data/raw.csv"].decode().splitlines()[1:]
    train_rows = outputs["data/prepared/train.csv"].decode().splitlines()[1:]
    assert len(raw_rows) == 178 == len(train_rows) + len(test_rows)


def test_minimal_params_each_change_their_stage_outputs(tmp_path: Path) -> None:
    project = copy_example("minimal", tmp_path)
    params_file = project / "params.yaml"
    original = params_file.read_text(encoding="utf-8")
    baseline = run_pipeline(project, hash_seed="0")

    for name, stage in load_stages(project).items():
        for key in stage.get("params", []):
            field = key.rsplit(".", 1)[1]
            value = lookup(yaml.safe_load(original), key)
            # The params file is hand-written: edit its one line, as a user would.
            line = f"  {field}: {value}\n"
            assert original.count(line) == 1, f"cannot find the one line of {key}"
            params_file.write_text(original.replace(line, f"  {field}: {value + 1}\n"))
            changed = run_pipeline(project, hash_seed="0")
            mine = [p for p in changed if is_under(p, outputs_of(stage))]
            assert any(changed[p] != baseline[p] for p in mine), (
                f"editing {key} did not change the outputs of {name}"
            )
    params_file.write_text(original, encoding="utf-8")


def test_minimal_imports_only_the_standard_library() -> None:
    src = EXAMPLES / "minimal" / "src"
    local = {path.stem for path in src.glob("*.py")}
    for path in src.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top in sys.stdlib_module_names or top in local, f"{path.name}: {name}"
