"""pipeflow against DVC (and Snakemake), side by side, in the same run on the same machine.

    python benchmarks/run.py [--quick] [--only W1,W2] [--repeat N] [--peers]

Workloads (benchmarks/workloads.py writes each one for every tool from one generator):
  W1 a linear chain of 100 shell one-liners (also 50 and 200): first repro, no-op
     status and repro, repro after editing the param of the middle stage
  W2 one stage writing 10,000 files of 1 KiB into a directory, one reading them:
     first repro, no-op status and repro, checkout after moving the directory away
     (copies, then hardlinks)
  W3 a stage depending on a 2 GiB file: stat-cached no-op status, and the cost of
     hashing it (status after touch minus no-op status) against `cat` of the file
  W4 start-up: --version, and status in an empty project
  W5 eight independent stages sleeping 1 s each, --jobs 1 and --jobs 2

Every project is built from scratch in its own temporary git repository. Tools run
alternately (the order rotates each repetition) and each line prints the medians of
pipeflow and DVC, their ratio, Snakemake's where the workload is expressible, and the
floor: the same work without any engine. DVC and Snakemake run from venvs of pinned
PyPI releases created once under ~/.cache/pipeflow-bench/ (PIPEFLOW_BENCH_HOME
overrides); pipeflow runs from this checkout. A full run rewrites the results part of
benchmarks/RESULTS.md and keeps what follows its analysis marker. ``--quick`` uses
small sizes, one repetition and pipeflow alone unless ``--peers``: a smoke test of
this code, which asserts nothing about time.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import workloads as wl  # benchmarks/ is not a package: imported from its folder

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "RESULTS.md"
ANALYSIS_MARKER = "<!-- analysis: everything below this line is kept by run.py -->"
DVC_VERSION = "3.67.1"
SNAKEMAKE_VERSION = "9.27.1"
WORKLOADS = ("W1", "W2", "W3", "W4", "W5")
PEERS = ("dvc", "snakemake")


class BenchError(RuntimeError):
    """A command under measurement failed: the benchmark is wrong, not slow."""


# --- sizes -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sizes:
    """Workload sizes and repetitions of one run."""

    chains: tuple[int, ...]  # W1 chain lengths; the middle one gets every measurement
    files: int  # W2
    big_bytes: int  # W3
    sleepers: int  # W5 stage count
    sleep: float  # W5 seconds per stage
    fast: int  # repetitions of fast measurements
    slow: int  # repetitions of slow ones

    @property
    def chain(self) -> int:
        """The W1 length measured in full (100 in a full run)."""
        return self.chains[len(self.chains) // 2]


def sizes(quick: bool, repeat: int | None, big_mib: int | None) -> Sizes:
    """Full-run sizes, or small ones for ``--quick``; ``repeat`` overrides both counts."""
    if quick:
        base = Sizes((5, 10, 20), 200, 16 << 20, 8, 0.1, 1, 1)
    else:
        base = Sizes((50, 100, 200), 10_000, 2 << 30, 8, 1.0, 5, 3)
    fast, slow = (repeat, repeat) if repeat else (base.fast, base.slow)
    big = big_mib << 20 if big_mib else base.big_bytes
    return Sizes(base.chains, base.files, big, base.sleepers, base.sleep, fast, slow)


# --- tools -------------------------------------------------------------------------------


def bench_home() -> Path:
    """Where the pinned venvs live, reused between runs."""
    env = os.environ.get("PIPEFLOW_BENCH_HOME")
    return Path(env) if env else Path.home() / ".cache" / "pipeflow-bench"


def ensure_venv(package: str, version: str, exe: str) -> Path:
    """The path of ``exe`` in a venv holding ``package==version``; created if missing."""
    venv = bench_home() / f"{package}-{version}"
    binary = venv / "bin" / exe
    marker = venv / ".installed"
    if binary.exists() and marker.exists():
        return binary
    make_venv(venv, [f"{package}=={version}"])
    return binary


def make_venv(venv: Path, requirements: list[str]) -> None:
    """(Re)create ``venv`` with ``requirements`` from PyPI; its ``.installed`` marker,
    written last, says it is complete."""
    print(f"creating {venv} with {', '.join(requirements)} (once)", file=sys.stderr,
          flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet",
                          *requirements], capture_output=True, text=True)
    if pip.returncode != 0:
        raise BenchError(f"pip install {' '.join(requirements)} failed:\n"
                         f"{pip.stderr[-3000:]}")
    (venv / ".installed").write_text("\n".join(requirements) + "\n")


def ensure_deps_venv() -> Path:
    """The python of a venv holding pipeflow's dependencies (from pyproject.toml), for
    running this checkout as DVC runs from its own venv: the interpreter's global
    site-packages may hold start-up hooks (.pth files: an editable install's finder, a
    CA injector) that no venv has: both tools start the same way."""
    import hashlib
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    digest = hashlib.sha256("\n".join(deps).encode()).hexdigest()[:12]
    venv = bench_home() / f"pipeflow-deps-{digest}"
    python = venv / "bin" / "python"
    marker = venv / ".installed"
    if python.exists() and marker.exists():
        return python
    make_venv(venv, deps)
    return python


def base_env() -> dict[str, str]:
    """The environment every tool runs in: ours, minus what would leak into a venv."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")}
    env.update(GIT_AUTHOR_NAME="bench", GIT_AUTHOR_EMAIL="bench@example.invalid",
               GIT_COMMITTER_NAME="bench", GIT_COMMITTER_EMAIL="bench@example.invalid")
    return env


class Tool:
    """How one engine is set up in a project and asked to do each thing."""

    name = ""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv

    def env(self, project: Path) -> dict[str, str]:
        """Environment for a command in ``project``."""
        return base_env()

    def init(self, project: Path) -> None:
        """Make the fresh git repository ``project`` a project of this tool."""

    def repro(self, jobs: int = 1) -> list[str]:
        """Arguments of a (first or no-op) run."""
        return ["repro"] if jobs == 1 else ["repro", "--jobs", str(jobs)]

    def status(self) -> list[str]:
        """Arguments of a status check."""
        return ["status"]

    def checkout(self) -> list[str]:
        """Arguments restoring outputs from the cache."""
        return ["checkout"]

    def use_hardlinks(self, project: Path) -> None:
        """Switch ``project`` to hardlinks from the cache and relink its outputs."""
        raise NotImplementedError


class Pipeflow(Tool):
    """pipeflow from this checkout, whatever is installed."""

    name = "pipeflow"

    def env(self, project: Path) -> dict[str, str]:
        env = base_env()
        env["PYTHONPATH"] = str(ROOT)
        # Bytecode is cached as an installed package has it (pip compiles on install,
        # as it did DVC's): PYTHONDONTWRITEBYTECODE would make every run recompile
        # each module edited since its .pyc was last written.
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        return env

    def compile(self) -> None:
        """Bring the checkout's bytecode up to date before anything is timed."""
        subprocess.run([self.argv[0], "-m", "compileall", "-q", str(ROOT / "pipeflow")],
                       env=self.env(ROOT), check=True, stdout=subprocess.DEVNULL)

    def init(self, project: Path) -> None:
        call(self, project, "init")

    def use_hardlinks(self, project: Path) -> None:
        (project / ".pipeflow" / "config.local").write_text("cache:\n  link: hardlink\n")
        call(self, project, "checkout")


class Dvc(Tool):
    """DVC from its pinned venv, with analytics, update checks and autostage off and
    its site cache (state, locks) beside the project rather than in /var/tmp/dvc."""

    name = "dvc"

    def env(self, project: Path) -> dict[str, str]:
        env = base_env()
        side = project.parent / f"{project.name}.dvc-home"
        env.update(DVC_NO_ANALYTICS="1", DVC_SITE_CACHE_DIR=str(side / "site"),
                   DVC_GLOBAL_CONFIG_DIR=str(side / "global"),
                   DVC_SYSTEM_CONFIG_DIR=str(side / "system"))
        return env

    def init(self, project: Path) -> None:
        call(self, project, "init", "-q")
        # One write instead of three `dvc config` calls (0.5 s each): same file.
        (project / ".dvc" / "config").write_text(
            "[core]\n    analytics = false\n    autostage = false\n"
            "    check_update = false\n")

    def use_hardlinks(self, project: Path) -> None:
        call(self, project, "config", "cache.type", "hardlink")
        call(self, project, "checkout", "--relink")


class Snakemake(Tool):
    """Snakemake from its pinned venv; `status` is a dry run."""

    name = "snakemake"

    def env(self, project: Path) -> dict[str, str]:
        env = base_env()
        env["XDG_CACHE_HOME"] = str(project.parent / f"{project.name}.xdg-cache")
        return env

    def repro(self, jobs: int = 1) -> list[str]:
        return ["--cores", str(jobs)]

    def status(self) -> list[str]:
        return ["--dry-run"]

    def checkout(self) -> list[str]:
        raise NotImplementedError("Snakemake keeps no cache to check out from")


def call(tool: Tool, project: Path, *args: str) -> float:
    """Run ``tool args`` in ``project``; its wall time in seconds. Output goes to a log
    file (cheaper than a pipe and kept for the error message)."""
    return run_timed([*tool.argv, *args], project, tool.env(project))


def run_timed(argv: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    """Wall time of one command; raises BenchError (with its output) if it fails."""
    log = cwd.parent / f"{cwd.name}.last.log"
    with open(log, "wb") as out:
        start = time.perf_counter()
        code = subprocess.run(argv, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT,
                              stdin=subprocess.DEVNULL).returncode
        elapsed = time.perf_counter() - start
    if code != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise BenchError(f"`{' '.join(argv)}` in {cwd} exited {code}:\n{tail}")
    return elapsed


def shell_timed(commands: Iterable[str], cwd: Path, jobs: int = 1) -> float:
    """The floor: ``commands`` each under /bin/sh -c, ``jobs`` at a time, no engine."""
    def one(cmd: str) -> None:
        subprocess.run(["/bin/sh", "-c", cmd], cwd=cwd, check=True, stdin=subprocess.DEVNULL)

    cmds = list(commands)
    start = time.perf_counter()
    if jobs == 1:
        for cmd in cmds:
            one(cmd)
    else:
        with ThreadPoolExecutor(jobs) as pool:
            list(pool.map(one, cmds))
    return time.perf_counter() - start


# --- results -------------------------------------------------------------------------------


@dataclass
class Row:
    """One measurement: medians per tool (and ``floor``), and its target if any."""

    workload: str
    what: str
    values: dict[str, float]
    unit: str = "s"
    target: str = ""
    met: bool | None = None
    samples: int = 0

    def ratio(self) -> float | None:
        """pipeflow / DVC, when both were measured."""
        pf, dvc = self.values.get("pipeflow"), self.values.get("dvc")
        return pf / dvc if pf is not None and dvc else None


def fmt(value: float | None, unit: str = "s") -> str:
    """A value for humans: 3 significant-ish digits."""
    if value is None:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"


def fmt_ratio(value: float | None) -> str:
    """A ratio with two significant digits at least."""
    if value is None:
        return "-"
    return f"{value:.3f}" if value < 1 else f"{value:.2f}"


def verdict(row: Row) -> str:
    """``met`` / ``MISSED`` / ``n/a`` (a peer did not run, or --quick: not judged)."""
    if not row.target:
        return ""
    return {True: "met", False: "MISSED", None: "n/a"}[row.met]


@dataclass
class Context:
    """One benchmark run: tools, sizes, the scratch folder and the rows so far."""

    tools: dict[str, Tool]
    sizes: Sizes
    tmp: Path
    judge: bool = True  # False (--quick): sizes too small for the targets to mean anything
    rows: list[Row] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)  # 1-min load average at each row
    counter: int = 0
    probe: float = 0.0  # seconds to create 5,000 files of 1 KiB in tmp (creation_probe)

    @property
    def work(self) -> Path:
        """A folder inside the run's folder for commands that need no project (their
        logs land beside it, so still inside the run's folder)."""
        path = self.tmp / "work"
        path.mkdir(exist_ok=True)
        return path

    @property
    def pipeflow(self) -> Tool:
        """pipeflow, always present."""
        return self.tools["pipeflow"]

    def project(self, workload: wl.Workload, tool: str) -> Path:
        """A fresh git repository holding ``workload`` for ``tool`` (or ``floor``)."""
        self.counter += 1
        root = self.tmp / f"{workload.name}-{tool}-{self.counter}"
        root.mkdir()
        subprocess.run(["git", "init", "-q", str(root)], check=True, env=base_env())
        if tool in self.tools:
            self.tools[tool].init(root)
        wl.write(workload, root, tool)
        return root

    def scratch(self, name: str, parent: Path | None = None) -> Path:
        """A fresh path (not created) in ``parent`` (default: the run's folder)."""
        self.counter += 1
        return (parent or self.tmp) / f"{name}-{self.counter}"

    def add(self, row: Row) -> Row:
        """Record ``row`` and print it at once."""
        if not self.judge:
            row.met = None
        self.rows.append(row)
        self.loads.append(os.getloadavg()[0])
        print(line(row), flush=True)
        return row


def line(row: Row) -> str:
    """The printed form of a row."""
    v = row.values
    parts = [f"{row.workload} {row.what:<34}", f"pipeflow {fmt(v.get('pipeflow'), row.unit)}",
             f"dvc {fmt(v.get('dvc'), row.unit)}",
             f"pipeflow/dvc {fmt_ratio(row.ratio()) if row.unit == 's' else '-'}"]
    if "snakemake" in v:
        parts.append(f"snakemake {fmt(v['snakemake'], row.unit)}")
    parts.append(f"floor {fmt(v.get('floor'), row.unit)}")
    if row.target:
        parts.append(f"target {row.target}: {verdict(row)}")
    return " | ".join(parts)


Runner = Callable[[], float]


def alternate(reps: int, runners: dict[str, Runner]) -> dict[str, list[float]]:
    """Run each runner ``reps`` times, rotating their order every repetition so that
    a slow drift of the machine spreads over all of them.

    Before each run, untimed, the machine writes back what earlier runs left in
    memory (``os.sync``): pipeflow syncs before it writes its lock, and ``syncfs``
    writes back the whole file system's dirty pages, so without this it paid for the
    20,000 files the DVC run before it had left unwritten (DVC does not sync), and a
    tool's figure depended on who ran before it."""
    names = list(runners)
    out: dict[str, list[float]] = {n: [] for n in names}
    for rep in range(reps):
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            os.sync()
            out[name].append(runners[name]())
    return out


def medians(samples: dict[str, list[float]]) -> dict[str, float]:
    """Median per key."""
    return {k: statistics.median(v) for k, v in samples.items() if v}


def row_vs_dvc(ctx: Context, workload: str, what: str, samples: dict[str, list[float]],
               limit: float | None = None, below_snakemake: bool = False) -> Row:
    """A row whose target (if ``limit``) is pipeflow/DVC <= ``limit`` (and, if asked,
    pipeflow below Snakemake)."""
    row = Row(workload, what, medians(samples), samples=len(next(iter(samples.values()))))
    if limit is not None:
        row.target = f"pipeflow/dvc <= {limit:.2f}"
        ratio = row.ratio()
        row.met = None if ratio is None else ratio <= limit
    if below_snakemake:
        row.target += " and < snakemake"
        smk = row.values.get("snakemake")
        if row.met is not None and smk is not None:
            row.met = row.met and row.values["pipeflow"] < smk
    return ctx.add(row)


def row_vs_floor(ctx: Context, workload: str, what: str, samples: dict[str, list[float]],
                 limit: float, floor_name: str) -> Row:
    """A row whose target is pipeflow <= ``limit`` x the floor."""
    row = Row(workload, what, medians(samples), samples=len(next(iter(samples.values()))))
    row.target = f"pipeflow <= {limit:g}x {floor_name}"
    row.met = row.values["pipeflow"] <= limit * row.values["floor"]
    return ctx.add(row)


# --- W1: linear chain ---------------------------------------------------------------------


def first_repro_runners(ctx: Context, workload: wl.Workload, keep: dict[str, Path],
                        jobs: int = 1) -> dict[str, Runner]:
    """Fresh project + first repro, for each tool and the floor; the last project of
    each is kept in ``keep`` for the measurements that follow."""
    def tool_run(name: str) -> Runner:
        def run() -> float:
            project = ctx.project(workload, name)
            keep[name] = project
            tool = ctx.tools[name]
            return call(tool, project, *tool.repro(jobs))
        return run

    def floor() -> float:
        project = ctx.project(workload, "floor")
        keep["floor"] = project
        return shell_timed(workload.commands(), project, jobs)

    runners = {name: tool_run(name) for name in ctx.tools
               if name != "snakemake" or workload.snakemake}
    runners["floor"] = floor
    return runners


def noop_runners(ctx: Context, projects: dict[str, Path], what: str,
                 names: Iterable[str] | None = None) -> dict[str, Runner]:
    """No-op ``status`` or ``repro`` in each tool's kept project."""
    def runner(name: str) -> Runner:
        tool = ctx.tools[name]
        args = tool.status() if what == "status" else tool.repro()
        return lambda: call(tool, projects[name], *args)

    chosen = names if names is not None else [n for n in ctx.tools if n in projects]
    return {name: runner(name) for name in chosen}


def bench_w1(ctx: Context) -> None:
    """W1: first repro at each length; no-op status/repro and a param edit at 100."""
    firsts: dict[int, Row] = {}
    s = ctx.sizes
    for n in s.chains:
        workload = wl.chain(n)
        projects: dict[str, Path] = {}
        samples = alternate(s.slow, first_repro_runners(ctx, workload, projects))
        main = n == s.chain
        firsts[n] = row_vs_dvc(ctx, "W1", f"{n} stages: first repro", samples,
                               0.10 if main else None, below_snakemake=main)
        if n != s.chain:
            continue
        for what in ("status", "repro"):
            samples = alternate(s.fast, noop_runners(ctx, projects, what))
            row_vs_dvc(ctx, "W1", f"{n} stages: no-op {what}", samples, 0.20)
        bench_w1_edit(ctx, workload, projects)
    if len(s.chains) > 1:
        lo, hi = s.chain, s.chains[-1]
        values = {k: firsts[hi].values[k] / firsts[lo].values[k] for k in firsts[hi].values}
        row = Row("W1", f"first repro {hi} / {lo} stages", values, unit="x",
                  target="pipeflow <= 2.10x", met=values["pipeflow"] <= 2.1,
                  samples=firsts[hi].samples)
        ctx.add(row)


def bench_w1_edit(ctx: Context, workload: wl.Workload, projects: dict[str, Path]) -> None:
    """Edit the param of the middle stage, then repro (half the chain reruns)."""
    n = len(workload.stages)
    # "stage 50" of 100 counted from 1 is s049: it and the 50 after it rerun (51)
    edited = max(n // 2 - 1, 0)
    key = f"s{edited:03d}"
    counter = iter(range(10_000, 1_000_000))
    params: dict[str, dict[str, object]] = {}

    def edit(name: str) -> dict[str, object]:
        values = dict(params.get(name, workload.params))
        values[key] = next(counter)
        params[name] = values
        wl.write_params(projects[name], values)
        return values

    def check(name: str, values: dict[str, object]) -> None:
        # the edited value must have travelled down to the last output
        last = (projects[name] / workload.stages[-1].outs[0]).read_text().split()
        if str(values[key]) not in last:
            raise BenchError(f"{name}: editing {key} did not rerun the chain's end")

    def tool_run(name: str) -> Runner:
        def run() -> float:
            values = edit(name)
            tool = ctx.tools[name]
            elapsed = call(tool, projects[name], *tool.repro())
            check(name, values)
            return elapsed
        return run

    def floor() -> float:
        values = edit("floor")
        elapsed = shell_timed(workload.commands(values)[edited:], projects["floor"])
        check("floor", values)
        return elapsed

    runners = {name: tool_run(name) for name in ctx.tools}
    runners["floor"] = floor
    samples = alternate(ctx.sizes.slow, runners)
    row_vs_dvc(ctx, "W1", f"{n} stages: edit {key}, repro ({n - edited})", samples, 0.10)


# --- W2: many small files -------------------------------------------------------------------


def bench_w2(ctx: Context) -> None:
    """W2: 10,000 files of 1 KiB in a directory output, and a stage reading them."""
    s = ctx.sizes
    workload = wl.many_files(s.files)
    projects: dict[str, Path] = {}
    label = f"{s.files} files"
    samples = alternate(s.slow, first_repro_runners(ctx, workload, projects))
    row_vs_dvc(ctx, "W2", f"{label}: first repro", samples, 0.25)
    for what in ("status", "repro"):
        samples = alternate(s.fast, noop_runners(ctx, projects, what))
        row_vs_dvc(ctx, "W2", f"{label}: no-op {what}", samples, 0.20)

    cached: list[str] = [n for n in ("pipeflow", "dvc") if n in ctx.tools]
    trash = ctx.scratch("moved-away")
    trash.mkdir()

    def checkout(name: str) -> Runner:
        def run() -> float:
            project = projects[name]
            # Moved, not deleted: on ext4, deleting many files slows every file created
            # in the next minute or so, which would drown the figure.
            (project / "data").rename(ctx.scratch(name, trash))
            elapsed = call(ctx.tools[name], project, *ctx.tools[name].checkout())
            if len(os.listdir(project / "data")) != s.files:
                raise BenchError(f"{name} checkout did not restore {project / 'data'}")
            return elapsed
        return run

    for mode, cp, limit in (("copies", ["cp", "-r"], 3.0), ("hardlinks", ["cp", "-al"], 2.0)):
        if mode == "hardlinks":
            for name in cached:
                ctx.tools[name].use_hardlinks(projects[name])

        def floor(cp: list[str] = cp) -> float:
            return run_timed([*cp, "data", str(ctx.scratch("cp", trash))], projects["floor"])

        runners = {name: checkout(name) for name in cached}
        runners["floor"] = floor
        samples = alternate(s.fast, runners)
        row_vs_floor(ctx, "W2", f"{label}: checkout, {mode}", samples, limit, " ".join(cp))


# --- W3: hashing a big file -------------------------------------------------------------------


def bench_w3(ctx: Context) -> None:
    """W3: the cost of hashing a big dependency, and the stat-cached no-op status."""
    s = ctx.sizes
    workload = wl.big_dep(s.big_bytes)
    names: list[str] = [n for n in ("pipeflow", "dvc") if n in ctx.tools]
    projects = {name: ctx.project(workload, name) for name in names}
    for name, project in projects.items():
        call(ctx.tools[name], project, "repro")
        run_timed(["sh", "-c", "cat big.bin > /dev/null"], project)  # warm the page cache
    big = projects["pipeflow"] / "big.bin"
    # A stat-cache entry recorded within 2 s of the file's mtime is not trusted yet
    # (racy); wait so that the no-op status measures the trusted path.
    time.sleep(2.5)
    size = f"{s.big_bytes / (1 << 30):g} GiB" if s.big_bytes >= 1 << 30 \
        else f"{s.big_bytes >> 20} MiB"
    # The hash figure is a difference of two medians: seven runs each (five and three
    # gave 0.83x-1.37x `cat` for the same code across full runs).
    reps = max(s.fast, s.slow) + 2
    noop = alternate(reps, noop_runners(ctx, projects, "status", names))
    noop_row = row_vs_dvc(ctx, "W3", f"{size} dep: no-op status", noop)

    def touched(name: str) -> Runner:
        def run() -> float:
            os.utime(projects[name] / "big.bin")
            return call(ctx.tools[name], projects[name], *ctx.tools[name].status())
        return run

    runners = {name: touched(name) for name in names}
    runners["floor"] = lambda: run_timed(["sh", "-c", f"cat {big} > /dev/null"], ctx.work)
    samples = alternate(reps, runners)
    after = medians(samples)
    ctx.add(Row("W3", f"{size} dep: status after touch",
                {k: v for k, v in after.items() if k != "floor"}, samples=reps))
    hashing = {k: after[k] - noop_row.values[k] for k in names}
    hashing["floor"] = after["floor"]
    row = Row("W3", f"{size} dep: hash (touch - no-op)", hashing, samples=reps,
              target="pipeflow <= 1.25x cat (warm)",
              met=hashing["pipeflow"] <= 1.25 * hashing["floor"])
    ctx.add(row)


# --- W4: start-up -------------------------------------------------------------------------------


def bench_w4(ctx: Context) -> None:
    """W4: ``--version``, and ``status`` in an empty project."""
    s = ctx.sizes
    python_start = [ctx.tools["pipeflow"].argv[0], "-c", "pass"]  # same interpreter

    def version(name: str) -> Runner:
        tool = ctx.tools[name]
        return lambda: run_timed([*tool.argv, "--version"], ctx.work, tool.env(ctx.work))

    runners = {name: version(name) for name in ctx.tools}
    runners["floor"] = lambda: run_timed(python_start, ctx.work)
    row_vs_dvc(ctx, "W4", "--version", alternate(s.fast, runners), 1.0)

    names: list[str] = [n for n in ("pipeflow", "dvc") if n in ctx.tools]
    projects = {name: ctx.project(wl.empty(), name) for name in names}
    runners = noop_runners(ctx, projects, "status", names)
    runners["floor"] = lambda: run_timed(python_start, ctx.work)
    row_vs_dvc(ctx, "W4", "empty project: status", alternate(s.fast, runners))


# --- W5: independent stages ------------------------------------------------------------------


def bench_w5(ctx: Context) -> None:
    """W5: independent sleeping stages, one at a time and two at a time."""
    s = ctx.sizes
    workload = wl.sleepers(s.sleepers, s.sleep)
    label = f"{s.sleepers} x sleep {s.sleep:g}"
    dvc_samples: list[float] = []
    for jobs in (1, 2):
        runners = first_repro_runners(ctx, workload, {}, jobs)
        if jobs == 2:
            runners.pop("dvc", None)  # DVC runs stages one by one: reuse its figure
        samples = alternate(s.slow, runners)
        if jobs == 1 and "dvc" in samples:
            dvc_samples = samples["dvc"]
        elif dvc_samples:
            samples["dvc"] = dvc_samples
        row_vs_dvc(ctx, "W5", f"{label}: --jobs {jobs}", samples)


BENCHES: dict[str, Callable[[Context], None]] = {
    "W1": bench_w1, "W2": bench_w2, "W3": bench_w3, "W4": bench_w4, "W5": bench_w5,
}


# --- RESULTS.md ----------------------------------------------------------------------------------


def machine() -> dict[str, str]:
    """What the figures depend on: cores, CPU, memory, kernel, Python, file system."""
    cpu = "?"
    try:
        for text in Path("/proc/cpuinfo").read_text().splitlines():
            if text.startswith("model name"):
                cpu = text.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = "?"
    try:
        kib = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kib / (1 << 20):.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    fs = "?"
    with contextlib.suppress(OSError):  # findmnt tells ext4 apart; `stat -f` cannot
        fs = subprocess.run(["findmnt", "-n", "-o", "FSTYPE", "-T", tempfile.gettempdir()],
                            capture_output=True, text=True).stdout.strip() or "?"
    return {"cores": str(os.cpu_count()), "cpu": cpu, "memory": mem,
            "kernel": platform.release(), "python": platform.python_version(),
            "tmp file system": fs}


def git_head() -> str:
    """The checkout's commit, with ``+dirty`` when it has local changes."""
    head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                          capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return head + ("+dirty" if dirty else "")


def creation_probe(folder: Path, count: int = 5000) -> float:
    """Seconds to create ``count`` files of 1 KiB in a new subfolder of ``folder``.

    How fast a folder takes new files varies tenfold on these machines (a folder whose
    part of the disk saw heavy churn, such as a /tmp after many test runs, can be that
    much slower than another folder of the same file system), and W2 creates 20,000:
    the probe shows the conditions next to the figures. Choose the folder with TMPDIR.
    """
    where = Path(tempfile.mkdtemp(prefix="probe-", dir=folder))
    data = b"x" * 1024
    t0 = time.perf_counter()
    for i in range(count):
        fd = os.open(where / f"{i}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)
    return time.perf_counter() - t0


def results_md(ctx: Context, command: str, started: datetime.datetime, seconds: float,
               load0: float) -> str:
    """The generated part of RESULTS.md."""
    m = machine()
    out = [
        "# Benchmark results: pipeflow vs DVC (and Snakemake)",
        "",
        "Generated by `benchmarks/run.py`; see benchmarks/README.md for what each "
        "workload does and how it is measured. Medians; ratios are pipeflow/DVC; the "
        "floor is the same work without any engine.",
        "",
        f"- date: {started:%Y-%m-%d %H:%M} UTC (run took {seconds / 60:.0f} min)",
        f"- command: `{command}`",
        f"- machine: {m['cores']} cores ({m['cpu']}), {m['memory']} RAM, Linux "
        f"{m['kernel']}, temp on {m['tmp file system']}",
        f"- Python {m['python']}; pipeflow {git_head()} (this checkout); "
        f"DVC {DVC_VERSION}; Snakemake {SNAKEMAKE_VERSION} (pinned venvs from PyPI)",
        f"- repetitions: {ctx.sizes.fast} for fast measurements, {ctx.sizes.slow} for "
        f"slow ones, {max(ctx.sizes.fast, ctx.sizes.slow) + 2} for W3's two `status` "
        "measurements (their difference is the hash figure); 1-min load average "
        f"{load0:.2f} at start, between "
        f"{min(ctx.loads, default=0):.2f} and {max(ctx.loads, default=0):.2f} after each "
        "measurement (other engineers' test suites shared the machine: expect noise)",
        f"- projects in {ctx.tmp.parent} (TMPDIR); creating 5,000 files of 1 KiB there "
        f"took {ctx.probe:.2f} s at start (about 0.15 s in a healthy folder of these "
        "machines; see benchmarks/README.md)",
        "",
        "| | measurement | pipeflow | DVC | pipeflow/DVC | Snakemake | floor | target | |",
        "|---|---|---:|---:|---:|---:|---:|---|---|",
    ]
    for row in ctx.rows:
        v = row.values
        ratio = fmt_ratio(row.ratio()) if row.unit == "s" else "-"
        out.append(
            f"| {row.workload} | {row.what} | {fmt(v.get('pipeflow'), row.unit)} | "
            f"{fmt(v.get('dvc'), row.unit)} | {ratio} | {fmt(v.get('snakemake'), row.unit)} | "
            f"{fmt(v.get('floor'), row.unit)} | {row.target} | {verdict(row)} |")
    out += [
        "",
        "Floors: W1 the commands alone, one `/bin/sh -c` each; W2 first repro the two "
        "commands alone, checkout `cp -r` / `cp -al` of the directory; W3 `cat` of the "
        "warm file; W4 `python -c pass`; W5 the sleeps, one or two at a time. "
        "Snakemake's `status` is `snakemake --dry-run`; for W5 `--jobs 2` the DVC column "
        "repeats its one-at-a-time figure (DVC has no parallel repro).",
        "",
    ]
    return "\n".join(out)


def write_results(text: str) -> None:
    """Replace the generated part of RESULTS.md, keeping the hand-written analysis."""
    kept = ANALYSIS_MARKER + "\n"
    if RESULTS.exists():
        old = RESULTS.read_text()
        if ANALYSIS_MARKER in old:
            kept = old[old.index(ANALYSIS_MARKER):]
    RESULTS.write_text(text + "\n" + kept)


# --- main --------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    ap.add_argument("--quick", action="store_true",
                    help="small sizes, one repetition, pipeflow only unless --peers")
    ap.add_argument("--only", default="", help="comma-separated workloads, e.g. W1,W3")
    ap.add_argument("--repeat", type=int, default=None,
                    help="repetitions of every measurement (default: 5 fast, 3 slow; W3's "
                         "two status measurements take two more)")
    ap.add_argument("--peers", action="store_true",
                    help="with --quick: also run DVC and Snakemake (always on otherwise)")
    ap.add_argument("--big-mib", type=int, default=None,
                    help="W3 file size in MiB (default 2048; 16 with --quick)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary projects")
    args = ap.parse_args(argv)
    only = [w.strip().upper() for w in args.only.split(",") if w.strip()]
    unknown = [w for w in only if w not in WORKLOADS]
    if unknown:
        ap.error(f"unknown workload(s) {', '.join(unknown)}; choose from {', '.join(WORKLOADS)}")
    args.only = only or list(WORKLOADS)
    if args.repeat is not None and args.repeat < 1:
        ap.error("--repeat must be at least 1")
    return args


def make_tools(peers: bool, own_venv: bool) -> dict[str, Tool]:
    """pipeflow from this checkout (run by a venv of its dependencies with
    ``own_venv``, else by this interpreter), plus the pinned peers when asked for."""
    python = str(ensure_deps_venv()) if own_venv else sys.executable
    ours = Pipeflow([python, "-m", "pipeflow"])
    ours.compile()
    tools: dict[str, Tool] = {"pipeflow": ours}
    if peers:
        tools["dvc"] = Dvc([str(ensure_venv("dvc", DVC_VERSION, "dvc"))])
        tools["snakemake"] = Snakemake(
            [str(ensure_venv("snakemake", SNAKEMAKE_VERSION, "snakemake"))])
    return tools


def _force_rmtree(path: Path) -> None:
    def retry(func: Callable[..., object], p: str, _exc: object) -> None:
        # read-only cache folders (hardlink mode) must be made writable to be emptied
        os.chmod(os.path.dirname(p), 0o755)
        os.chmod(p, 0o755)
        func(p)

    shutil.rmtree(path, onerror=retry)


def main(argv: list[str] | None = None) -> int:
    """Run the chosen workloads; print a line per measurement; maybe write RESULTS.md."""
    args = parse_args(argv)
    peers = args.peers or not args.quick
    tools = make_tools(peers, own_venv=not args.quick)
    s = sizes(args.quick, args.repeat, args.big_mib)
    tmp = Path(tempfile.mkdtemp(prefix="pipeflow-bench-"))
    ctx = Context(tools, s, tmp, judge=not args.quick)
    ctx.probe = creation_probe(tmp)
    started = datetime.datetime.now(datetime.UTC)
    load0 = os.getloadavg()[0]
    t0 = time.perf_counter()
    print(f"# pipeflow vs {', '.join(n for n in tools if n != 'pipeflow') or '(no peers)'}; "
          f"repetitions {s.fast} fast / {s.slow} slow; projects in {tmp}", flush=True)
    print(f"# creating 5,000 files of 1 KiB there: {ctx.probe:.2f} s", flush=True)
    try:
        for name in args.only:
            BENCHES[name](ctx)
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    finally:
        if args.keep:
            print(f"projects kept in {tmp}", file=sys.stderr)
        else:
            # Deleted only now: deleting many files slows the file creations that follow.
            _force_rmtree(tmp)
    elapsed = time.perf_counter() - t0
    full = not args.quick and list(args.only) == list(WORKLOADS)
    if full:
        command = "python benchmarks/run.py" + (f" --repeat {args.repeat}" if args.repeat
                                                else "")
        if args.big_mib:
            command += f" --big-mib {args.big_mib}"
        write_results(results_md(ctx, command, started, elapsed, load0))
        print(f"wrote {RESULTS.relative_to(ROOT)}")
    missed = [r for r in ctx.rows if r.met is False]
    print(f"# {len(ctx.rows)} measurements in {elapsed:.0f} s; "
          f"targets missed: {len(missed)}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
