"""Speed of experiments (issue 13): a parallel sweep, the engine's own cost per
experiment, and a sweep rerun served by the run cache.

    python benchmarks/exp_sweep.py [--quick] [--repeat N] [--n N] [--keep]

E1 a 6-experiment sweep of examples/wine (``--set train.C=0.1,1,10 --set
   featurize.poly_degree=1,2``) with ``--jobs 1`` and ``--jobs 2``, each repetition in a
   fresh copy of the example (its baseline run and committed first), so that every
   stage the sweep changes really runs. Target: jobs 2 / jobs 1 <= 0.6.
E2 the engine's cost per experiment: a sweep of N values over a pipeline of three
   trivial stages (``echo``, ``cp``, a metric written by ``echo``), minus the same
   commands run bare (one ``/bin/sh -c`` each) in a loop, divided by N; also the
   slope between a 1-value and an N-value sweep (start-up excluded). Target: < 0.2 s.
   Then where the time goes: one in-process sweep with the steps of an experiment
   timed (scratch copy, overrides, repro's planning, stage commands, restores and
   commits, the summary record, scratch removal).
E3 the E1 sweep run again in the same project: every stage a run-cache hit.
   Target: < 2 s.

pipeflow runs from this checkout (``python -m pipeflow`` with the checkout first on
``PYTHONPATH``, bytecode compiled first) by the running interpreter, whose
environment must hold the example's dependencies (scikit-learn). Lines report
medians; the alternation of jobs 1 and jobs 2 rotates each repetition. ``--quick``
sweeps two experiments instead of six over the trivial pipeline (stages sleeping
0.2 s) instead of the example, with N = 3 and one repetition: a smoke test of this
code (tests/functional/test_benchmarks_smoke.py), which asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
WINE = ROOT / "examples" / "wine"
WINE_SWEEP = ("--set", "train.C=0.1,1,10", "--set", "featurize.poly_degree=1,2")
QUICK_SWEEP = ("--set", "p.v=1,2")


class BenchError(RuntimeError):
    """A command under measurement failed: the benchmark is wrong, not slow."""


def env() -> dict[str, str]:
    found = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONHOME")}
    found.pop("PYTHONDONTWRITEBYTECODE", None)  # as an installed package runs
    found.update(PYTHONPATH=str(ROOT), NO_COLOR="1",
                 PATH=f"{Path(sys.executable).parent}{os.pathsep}{found.get('PATH', '')}",
                 GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
                 GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
    return found


def run(cwd: Path, *argv: str) -> float:
    """Run ``argv`` in ``cwd``; its wall time. BenchError when it fails."""
    started = time.perf_counter()
    done = subprocess.run(argv, cwd=cwd, env=env(), capture_output=True, text=True,
                          check=False)
    took = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchError(f"{' '.join(argv)} in {cwd} exited {done.returncode}:\n"
                         f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
    return took


def pipeflow(cwd: Path, *args: str) -> float:
    return run(cwd, sys.executable, "-m", "pipeflow", *args)


def committed(project: Path) -> Path:
    """``project`` as a git repository with its baseline run committed."""
    run(project, "git", "init", "-q")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "init")
    pipeflow(project, "repro")
    run(project, "git", "add", "-A")
    run(project, "git", "commit", "-qm", "baseline")
    return project


def wine(where: Path) -> Path:
    shutil.copytree(WINE, where, ignore=shutil.ignore_patterns(".pipeflow", "__pycache__"))
    return committed(where)


TRIVIAL_STAGES = {
    "make": ("echo ${p.v} > a.txt", "deps: [in.txt]", "params: [p.v]", "outs: [a.txt]"),
    "copy": ("cp a.txt b.txt", "deps: [a.txt]", "outs: [b.txt]"),
    "score": ('echo "{\\"v\\": $(cat b.txt)}" > m.json', "deps: [b.txt]",
              "metrics: [m.json]"),
}


def trivial(where: Path, sleep: float = 0.0) -> Path:
    """Three stages of a few milliseconds each (plus ``sleep`` seconds: E1's quick
    stand-in for the example)."""
    where.mkdir(parents=True)
    (where / "in.txt").write_text("x\n")
    (where / "params.yaml").write_text("p:\n  v: 0\n")
    lines = ["stages:"]
    for name, (cmd, *rest) in TRIVIAL_STAGES.items():
        slow = f"sleep {sleep} && " if sleep else ""
        lines += [f"  {name}:", f"    cmd: {json.dumps(slow + cmd)}"] + [f"    {r}" for r in rest]
    (where / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    return committed(where)


def floor(where: Path, n: int) -> float:
    """E2's commands alone: for each of ``n`` values, each stage's command by one
    ``/bin/sh -c``, in a loop of a shell script."""
    where.mkdir(parents=True)
    (where / "in.txt").write_text("x\n")
    body = "\n".join(f"  sh -c {shellquote(cmd.replace('${p.v}', '$v'))}"
                     for cmd, *_ in TRIVIAL_STAGES.values())
    script = f"for v in $(seq 1 {n}); do\n  export v\n{body}\ndone\n"
    (where / "loop.sh").write_text(script)
    return run(where, "sh", "loop.sh")


def shellquote(text: str) -> str:
    import shlex

    return shlex.quote(text)


def values(n: int) -> str:
    return "p.v=" + ",".join(str(v) for v in range(1, n + 1))


def median(samples: list[float]) -> float:
    return statistics.median(samples)


# --- the measurements ---------------------------------------------------------------------


def sweep_work(quick: bool) -> tuple[list[str], list[list[str]]]:
    """E1's floor: the commands the sweep's stages run, once each — what runs before
    the experiments (the one new featurize), and each experiment's own."""
    if quick:
        one = [f"sleep 0.2 && {cmd.replace('${p.v}', '1')}"
               for cmd, *_ in TRIVIAL_STAGES.values()]
        return [], [one, one]
    return ["python src/featurize.py"], [["python src/train.py", "python src/evaluate.py"]
                                         for _ in range(6)]


def e1_floor(project: Path, quick: bool, jobs: int) -> float:
    """The sweep's commands alone in copies of the run ``project``: one chain of them
    (jobs 1), or the experiments dealt to two copies running side by side (jobs 2).
    Its jobs2/jobs1 is what this machine, as loaded as it is, allows the sweep."""
    first, exps = sweep_work(quick)
    chains = [exps[k::jobs] for k in range(jobs)]
    scripts = []
    for k, chain in enumerate(chains):
        folder = project.parent / f"{project.name}-floor{jobs}-{k}"
        if not folder.exists():
            shutil.copytree(project, folder, symlinks=True)
        cmds = (first if k == 0 else []) + [c for exp in chain for c in exp]
        (folder / "floor.sh").write_text("set -e\n" + "\n".join(cmds) + "\n")
        scripts.append(folder)
    started = time.perf_counter()
    procs = [subprocess.Popen(["sh", "floor.sh"], cwd=f, env=env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for f in scripts]
    for proc in procs:
        _, err = proc.communicate()
        if proc.returncode != 0:
            raise BenchError(f"E1 floor failed: {err.decode(errors='replace')[-2000:]}")
    return time.perf_counter() - started


def e1_e3(base: Path, repeat: int, quick: bool) -> dict[str, list[float]]:
    """E1 (jobs 1, jobs 2; a fresh project each; and the floor) and E3 (a rerun in
    the jobs-2 one)."""
    make: Callable[[Path], Path] = (lambda p: trivial(p, 0.2)) if quick else wine
    sweep = QUICK_SWEEP if quick else WINE_SWEEP
    samples: dict[str, list[float]] = {"j1": [], "j2": [], "rerun": [], "floor1": [],
                                       "floor2": []}
    for i in range(repeat):
        for jobs in ((1, 2) if i % 2 == 0 else (2, 1)):
            project = make(base / f"e1-{i}-j{jobs}")
            samples[f"floor{jobs}"].append(e1_floor(project, quick, jobs))
            samples[f"j{jobs}"].append(pipeflow(project, "exp", "run", *sweep,
                                                "--jobs", str(jobs)))
            if jobs == 2:
                samples["rerun"].append(pipeflow(project, "exp", "run", *sweep,
                                                 "--jobs", "2"))
    return samples


def e2(base: Path, repeat: int, n: int) -> dict[str, list[float]]:
    samples: dict[str, list[float]] = {"one": [], "n": [], "floor": []}
    for i in range(repeat):
        samples["n"].append(pipeflow(trivial(base / f"e2-{i}-n"), "exp", "run", "--set",
                                     values(n)))
        samples["one"].append(pipeflow(trivial(base / f"e2-{i}-1"), "exp", "run", "--set",
                                       values(1)))
        samples["floor"].append(floor(base / f"e2-{i}-floor", n))
    return samples


def e4_dvc(base: Path, repeat: int, jobs: int = 2) -> list[float]:
    """DVC's way to the E1 sweep: ``dvc exp run --queue -S ... -S ...`` (a grid of six),
    then ``dvc exp run --run-all -j 2`` (workers run them in temporary folders, and it
    waits for them), each repetition in a fresh copy of the example with its baseline
    ``dvc repro`` committed. DVC from the pinned venv and settings of run.py."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import run as suite  # benchmarks/run.py: the pinned DVC venv and its settings

    dvc = suite.Dvc([str(suite.ensure_venv("dvc", suite.DVC_VERSION, "dvc"))])
    samples = []
    for i in range(repeat):
        project = base / f"e4-{i}"
        shutil.copytree(WINE, project, ignore=shutil.ignore_patterns(".pipeflow",
                                                                      "__pycache__"))
        (project / "pipeline.yaml").rename(project / "dvc.yaml")
        run(project, "git", "init", "-q")
        dvc.init(project)
        # the stages' `python` is the one with the example's dependencies; the queue's
        # workers start `dvc` by name
        path = f"{env()['PATH']}{os.pathsep}{Path(dvc.argv[0]).parent}"
        denv = {**dvc.env(project), "PATH": path}

        def call(*args: str, project: Path = project, denv: dict[str, str] = denv) -> float:
            started = time.perf_counter()
            done = subprocess.run([*dvc.argv, *args], cwd=project, env=denv, text=True,
                                  capture_output=True, timeout=900, check=False)
            if done.returncode != 0:
                raise BenchError(f"dvc {' '.join(args)} exited {done.returncode}:\n"
                                 f"{(done.stdout + done.stderr)[-3000:]}")
            return time.perf_counter() - started

        call("repro")
        run(project, "git", "add", "-A")
        run(project, "git", "commit", "-qm", "baseline")
        took = call("exp", "run", "--queue", "-S", "train.C=0.1,1,10", "-S",
                    "featurize.poly_degree=1,2")
        took += call("exp", "run", "--run-all", "-j", str(jobs))
        shown = subprocess.run([*dvc.argv, "exp", "show", "--json"], cwd=project, env=denv,
                               capture_output=True, text=True, check=False).stdout
        if shown.count('"state": "success"') < 6:
            raise BenchError(f"dvc ran fewer than 6 experiments:\n{shown[-3000:]}")
        samples.append(took)
    return samples


# --- where the time goes ------------------------------------------------------------------


class Steps:
    """Wall time spent in named functions, summed over every thread."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {}
        self.calls: dict[str, int] = {}
        self.order: list[str] = []
        self.lock = threading.Lock()

    def wrap(self, owner: Any, attr: str, label: str) -> None:
        inner = getattr(owner, attr)
        self.order.append(label)

        def timed(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return inner(*args, **kwargs)
            finally:
                with self.lock:
                    self.totals[label] = self.totals.get(label, 0.0) + (
                        time.perf_counter() - started)
                    self.calls[label] = self.calls.get(label, 0) + 1

        setattr(owner, attr, timed)


@contextlib.contextmanager
def chdir(folder: Path) -> Iterator[None]:
    old = Path.cwd()
    os.chdir(folder)
    try:
        yield
    finally:
        os.chdir(old)


def breakdown(project: Path, n: int) -> tuple[float, Steps]:
    """One in-process sweep of ``n`` values (jobs 1) with its steps timed."""
    sys.path.insert(0, str(ROOT))
    from pipeflow.execution import history, local
    from pipeflow.experiments import run as exprun
    from pipeflow.experiments import summary
    from pipeflow.ops import project as opsproject
    from pipeflow.ops import repro
    from pipeflow.project.project import Project

    steps = Steps()
    for owner, attr, label in (
            (exprun, "make_scratch", "scratch copy (make_scratch)"),
            (exprun, "remove_scratch", "scratch removal (own thread)"),
            (exprun, "write_overrides", "overrides written"),
            (repro, "repro", "repro (all of it)"),
            (repro, "init", "  repro: init of the scratch .pipeflow"),
            (repro, "recover", "  repro: recover"),
            (repro, "_plan", "  repro: planning (spec, graph, deps, lock)"),
            (repro, "_execute", "  repro: scheduling, stages, lock"),
            (local, "run_stage", "    stage commands"),
            (history.History, "cached_run", "    run-cache lookups"),
            (history.History, "record_run", "    run records"),
            (history.History, "record_restore", "    restore records"),
            (repro, "render_lock", "    lock rendered"),
            (opsproject, "current_lock", "summary: scratch lock read"),
            (summary, "build", "summary: built"),
            (summary, "write", "summary: record written"),
            (exprun, "_plan", "sweep: names planned (once)"),
            (exprun, "_check_engine", "sweep: engine checked (once)"),
            (exprun, "_not_copied", "sweep: outputs listed (once)")):
        steps.wrap(owner, attr, label)
    with Project(project) as home, chdir(project):
        started = time.perf_counter()
        report = exprun.exp_run(home, exprun.ExpOptions(sets=(values(n),), jobs=1))
        took = time.perf_counter() - started
    if not report.ok:
        raise BenchError(f"the in-process sweep failed: {report}")
    return took, steps


# --- report -------------------------------------------------------------------------------


def line(code: str, what: str, value: float, extra: str = "") -> None:
    print(f"{code} {what}: {value:.3f} s{('  ' + extra) if extra else ''}", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--repeat", type=int, default=0)
    parser.add_argument("--n", type=int, default=0, help="E2's sweep size (default 20)")
    parser.add_argument("--keep", action="store_true", help="keep the projects")
    parser.add_argument("--dvc", action="store_true",
                        help="also time DVC's queue on the E1 sweep (E4)")
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 3)
    n = args.n or (3 if args.quick else 20)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "pipeflow")],
                   env=env(), check=True, stdout=subprocess.DEVNULL)
    base = Path(tempfile.mkdtemp(prefix="pipeflow-exp-bench-"))
    if args.keep:
        print(f"projects in {base}", flush=True)
    try:
        sweep = e1_e3(base, repeat, args.quick)
        j1, j2, rerun = median(sweep["j1"]), median(sweep["j2"]), median(sweep["rerun"])
        what = "2-experiment trivial sweep" if args.quick else "wine 6-experiment sweep"
        line("E1", f"{what}, --jobs 1", j1)
        line("E1", f"{what}, --jobs 2", j2, f"jobs2/jobs1 {j2 / j1:.2f} (target <= 0.6)")
        f1, f2 = median(sweep["floor1"]), median(sweep["floor2"])
        line("E1", "floor: the sweep's commands alone, one at a time", f1)
        line("E1", "floor: the sweep's commands alone, two at a time", f2,
             f"floor2/floor1 {f2 / f1:.2f} (what the machine allows)")
        line("E3", f"{what} rerun, all run-cache hits (--jobs 2)", rerun,
             "(target < 2 s)")
        if args.dvc:
            dvc = median(e4_dvc(base, repeat))
            line("E4", "wine 6-experiment sweep, DVC exp run --queue + --run-all -j 2", dvc,
                 f"pipeflow --jobs 2 / DVC {j2 / dvc:.2f}")
        cost = e2(base, repeat, n)
        total, one, bare = median(cost["n"]), median(cost["one"]), median(cost["floor"])
        line("E2", f"{n}-value sweep of 3 trivial stages", total)
        line("E2", "1-value sweep", one)
        line("E2", f"the commands alone, {n} x 3 sh -c", bare)
        line("E2", "engine cost per experiment, (sweep - commands) / N", (total - bare) / n,
             "(target < 0.2 s)")
        line("E2", "engine cost per experiment, slope (start-up excluded)",
             (total - one) / (n - 1) - bare / n)
        took, steps = breakdown(trivial(base / "profile"), n)
        print(f"E2 where the time goes: one in-process {n}-value sweep, {took:.3f} s "
              f"({took / n * 1000:.0f} ms an experiment); per experiment:", flush=True)
        for label in steps.order:
            if label in steps.totals:
                print(f"   {label:<48} {steps.totals[label] / n * 1000:7.1f} ms  "
                      f"({steps.calls[label]} calls)")
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if not args.keep:
            shutil.rmtree(base, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
