"""Cost of code awareness on a no-op ``status`` (issue 4: code and environment).

    python benchmarks/code_status.py [--modules 500] [--repeat 7]

Builds a git project whose one stage runs ``python src/main.py``; ``main.py`` imports
``--modules`` project modules (packages of 50 modules, each package's ``__init__``
importing its modules, each module importing a sibling and the standard library).
After one ``repro`` (which fills the stat cache and the analysis cache), it reports
medians of repeated runs of:

- ``pipeflow status`` (a new process each time, as a user runs it) on that project;
  on the same project with detection off and the same files listed by hand in
  ``code:`` (same hashing, same lock size: the cost of detection alone); and with
  detection off and no code at all (the floor);
- in this process, with a fresh Project each time (no memo, warm state database): the
  ``status`` operation in the three projects (no interpreter start-up, so less
  noise), and the stage's components (detection, normalized hashes, environment)
  vs. plain ``os.stat`` of the same files.

It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

PIPEFLOW = [sys.executable, "-m", "pipeflow"]
PER_PACKAGE = 50


def build(root: Path, modules: int, mode: str) -> list[str]:
    """The project; returns the root-relative paths of its code files."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    files = ["src/main.py"]
    packages = []
    for i in range(0, modules, PER_PACKAGE):
        pkg = f"pkg{i // PER_PACKAGE:02d}"
        packages.append(pkg)
        names = [f"m{j:03d}" for j in range(min(PER_PACKAGE, modules - i) - 1)]
        init = "".join(f"from . import {n}\n" for n in names)
        (root / "src" / pkg).mkdir(parents=True)
        (root / "src" / pkg / "__init__.py").write_text(f'"""Package {pkg}."""\n{init}')
        files.append(f"src/{pkg}/__init__.py")
        for j, name in enumerate(names):
            sibling = names[j - 1] if j else None
            body = [f'"""Module {pkg}.{name}."""', "import json", "import os"]
            if sibling:
                body.append(f"from .{sibling} import value as _prev")
            body += ["", "", "def value() -> int:", f"    return {j} + len(os.sep)", ""]
            (root / "src" / pkg / f"{name}.py").write_text("\n".join(body))
            files.append(f"src/{pkg}/{name}.py")
    main = "".join(f"import {p}\n" for p in packages) + 'open("out.txt", "w").write("ok")\n'
    (root / "src" / "main.py").write_text(main)
    stage: dict[str, object] = {"cmd": "python src/main.py", "outs": ["out.txt"]}
    if mode == "declared":
        stage["code"] = {"auto": False, "paths": files}
    elif mode == "none":
        stage["code"] = {"auto": False, "paths": []}
    (root / "pipeline.yaml").write_text(yaml.safe_dump({"stages": {"run": stage}}))
    return files


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def status_op(root: Path, repeat: int) -> float:
    """Median (seconds) of the ``status`` operation in this process, a fresh Project each
    time: a CLI run without interpreter start-up and imports."""
    from pipeflow.ops.status import status
    from pipeflow.project.project import Project

    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        with Project(root) as repo:
            report = status(repo)
        times.append(time.perf_counter() - start)
        assert report.up_to_date
    return statistics.median(times)


def in_process(root: Path, files: list[str], repeat: int) -> tuple[float, float, float]:
    """Medians (seconds) of the stage's components with a fresh Project, of the same
    files' hashes through the stat cache (a fresh Project too), and of plain stats."""
    from pipeflow.ops.project import current_lock, load_project
    from pipeflow.planning.graph import build_graph
    from pipeflow.planning.plan import Planner
    from pipeflow.project.project import Project

    comps, hashes, stats = [], [], []
    for _ in range(repeat):
        with Project(root) as repo:
            project = load_project(repo)
            planner = Planner(repo, build_graph(project.graph.pipeline), current_lock(repo))
            stage = project.graph.pipeline.stages["run"]
            start = time.perf_counter()
            planner.components(stage, {})
            comps.append(time.perf_counter() - start)
        with Project(root) as repo:
            start = time.perf_counter()
            for rel in files:
                repo.hasher.hash_path(rel)
            hashes.append(time.perf_counter() - start)
        start = time.perf_counter()
        for rel in files:
            os.stat(root / rel)
        stats.append(time.perf_counter() - start)
    return statistics.median(comps), statistics.median(hashes), statistics.median(stats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--modules", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pf-codebench-"))
    try:
        modes = ("auto", "declared", "none")
        files: list[str] = []
        first = 0.0
        for mode in modes:
            files = build(tmp / mode, args.modules, mode)
            took = timed([*PIPEFLOW, "repro"], tmp / mode)
            first = took if mode == "auto" else first
        # interleaved, so that a busy machine slows every mode alike
        samples: dict[str, list[float]] = {mode: [] for mode in modes}
        for _ in range(args.repeat):
            for mode in modes:
                samples[mode].append(timed([*PIPEFLOW, "status"], tmp / mode))
        status = {mode: statistics.median(values) for mode, values in samples.items()}
        comps, hashes, stats = in_process(tmp / "auto", files, args.repeat)
        op = {mode: status_op(tmp / mode, args.repeat) for mode in modes}
        rows = [
            ("first repro (parses everything)", first),
            ("no-op status, detection on", status["auto"]),
            ("no-op status, same files listed in code:", status["declared"]),
            ("no-op status, no code at all", status["none"]),
            ("  detection alone (on - listed)", status["auto"] - status["declared"]),
            ("in-process status op, detection on", op["auto"]),
            ("in-process status op, same files listed", op["declared"]),
            ("in-process status op, no code at all", op["none"]),
            ("in-process: the stage's components", comps),
            ("in-process: their hashes via the stat cache", hashes),
            ("in-process: os.stat of the same files", stats),
        ]
        print(f"{len(files)} code files ({args.modules} modules + the script), "
              f"medians of {args.repeat} runs")
        for label, seconds in rows:
            print(f"  {label:<44}{seconds * 1000:8.1f} ms")
    finally:
        shutil.rmtree(tmp)


if __name__ == "__main__":
    main()
