"""Speed of history queries (issue 3): ``lineage`` 20 stages deep among 1,000 recorded
runs, and ``versions`` of a path with 1,000 versions. Target: <= 0.5 s each.

    python benchmarks/history_speed.py [--depth 20] [--rounds 50] [--versions 1000]
                                       [--repeat 7] [--keep]

The history is written programmatically (no commands run), straight through
RecordStore and RunIndex as ``repro`` would: ``--rounds`` rounds of a ``--depth``-stage
chain (stage k reads stage k-1's output; every round changes stage 0's param, so every
output gets a new version: depth x rounds runs), on top of one ``pipeflow add`` source;
plus one stage run ``--versions`` times, each run giving its output a new content.

Measured (medians): in-process ``lineage`` (resolve + walk + text render) of the last
stage's output, current and at an old version; ``lineage --format json``; in-process
``versions``; and the same commands end to end through the console script (start-up
included). It prints figures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeflow.lock import lockfile  # noqa: E402
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock  # noqa: E402
from pipeflow.records.index import RunIndex  # noqa: E402
from pipeflow.records.records import RecordStore, RunRecord  # noqa: E402
from pipeflow.records.runrecord import RecordBody  # noqa: E402


def fake_hash(*parts: object) -> str:
    import hashlib

    return hashlib.blake2b(repr(parts).encode(), digest_size=16).hexdigest()


class Writer:
    """Appends records the way lineage/history.py does, with a fake clock."""

    def __init__(self, root: Path) -> None:
        dot = root / ".pipeflow"
        (dot / "state").mkdir(parents=True)
        self.records = RecordStore(dot / "cache", dot / "chain")
        self.index = RunIndex(dot / "state" / "index.db", self.records)
        self.clock = 1_700_000_000.0

    def stamp(self) -> str:
        import datetime

        self.clock += 1.5
        return datetime.datetime.fromtimestamp(self.clock, datetime.UTC).isoformat(
            timespec="milliseconds")

    def append(self, body: dict[str, Any]) -> RunRecord:
        record = self.records.append(RecordBody.from_json(body))
        self.index.add(record)
        return record

    def run(self, stage: str, deps: list[tuple[str, str]], out: tuple[str, str],
            params: dict[str, Any]) -> RunRecord:
        started = self.stamp()
        comps = {"cmd": [f"python {stage}.py"],
                 "deps": [{"path": p, "hash": h, "size": 100} for p, h in deps],
                 "params": {"params.yaml": params},
                 "code": [{"path": f"{stage}.py", "hash": fake_hash(stage), "size": 10}],
                 "env": {"platform": "linux-x86_64", "python": "cpython-3.11"},
                 "outs": [f"{out[0]}|out"]}
        return self.append({
            "kind": "run", "stage": stage, "fingerprint": fake_hash(stage, deps, params),
            "components": comps, "command": comps["cmd"], "exit_status": 0,
            "started": started, "ended": self.stamp(), "duration": 1.5,
            "user": "bench@example.com", "host": "bench", "pipeflow_version": "0.1.0",
            "git": {"commit": fake_hash("commit") + "00000000", "dirty_paths": []},
            "env_exact": {"platform": "linux-x86_64", "python": "cpython-3.11.7"},
            "outputs": [{"path": out[0], "hash": out[1], "size": 100, "kind": "out"}],
            "metrics": {},
        })


def build(root: Path, depth: int, rounds: int, versions: int) -> tuple[str, str]:
    """Write the history; returns (deep output path, many-versions path)."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "pipeline.yaml").write_text("stages: {}\n")
    w = Writer(root)
    raw = fake_hash("raw")
    now = w.stamp()
    w.append({"kind": "add", "stage": "", "fingerprint": "", "exit_status": 0,
              "started": now, "ended": now, "duration": 0.0, "user": "bench@example.com",
              "host": "bench", "git": {"commit": None, "dirty_paths": []},
              "outputs": [{"path": "data/raw.csv", "hash": raw, "size": 100,
                           "kind": "source"}]})
    stages: dict[str, StageLock] = {}
    for r in range(rounds):
        prev = ("data/raw.csv", raw)
        for k in range(depth):
            name = f"s{k:02d}"
            out = (f"out/{name}.txt", fake_hash(name, r))
            params = {f"{name}.x": r if k == 0 else 1}
            record = w.run(name, [prev], out, params)
            if r == rounds - 1:
                stages[name] = StageLock(
                    cmd=(f"python {name}.py",), fingerprint=record.fingerprint,
                    deps=(FileEntry(prev[0], prev[1], 100),), params={"params.yaml": params},
                    outs=(FileEntry(out[0], out[1], 100),), run=record.id)
            prev = out
    for v in range(versions):
        out = ("models/tuned.pkl", fake_hash("tuned", v))
        record = w.run("tune", [("data/raw.csv", raw)], out, {"tune.seed": v})
        stages["tune"] = StageLock(cmd=("python tune.py",), fingerprint=record.fingerprint,
                                   outs=(FileEntry(out[0], out[1], 100),), run=record.id)
    lockfile.write(root / "pipeline.lock", Lock(
        stages=stages, sources={"data/raw.csv": FileEntry("data/raw.csv", raw, 100)}))
    w.index.close()
    return f"out/s{depth - 1:02d}.txt", "models/tuned.pkl"


def median_of(fn: Callable[[], object], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def in_process(root: Path, *args: str) -> Callable[[], None]:
    """The CLI in this process (no interpreter start-up), output discarded."""
    from pipeflow.cli.app import run

    def call() -> None:
        old = os.getcwd()
        os.chdir(root)
        try:
            with contextlib.redirect_stdout(io.StringIO()) as out:
                code = run(list(args))
        finally:
            os.chdir(old)
        if code != 0:
            raise SystemExit(f"pipeflow {' '.join(args)} failed ({code}): {out.getvalue()}")

    return call


def end_to_end(root: Path, *args: str) -> Callable[[], None]:
    """The console script in a fresh interpreter. Bytecode is cached (in a folder of
    our own) as an installed package has it, even if PYTHONDONTWRITEBYTECODE is set:
    otherwise every run would pay for compiling pipeflow, typer and click."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(root.parent / "pycache"))

    def call() -> None:
        subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=root, check=True,
                       stdout=subprocess.DEVNULL, env=env)

    call()  # warm the bytecode cache and the page cache
    return call


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--depth", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=50)
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true")
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeflow-history-"))
    root = tmp / "proj"
    try:
        start = time.perf_counter()
        deep, many = build(root, opts.depth, opts.rounds, opts.versions)
        runs = opts.depth * opts.rounds + opts.versions
        print(f"built {runs} runs + 1 source record in {time.perf_counter() - start:.1f} s "
              f"({opts.depth} stages x {opts.rounds} rounds; {opts.versions} versions of "
              f"{many})")
        # first use after the records were written: the index is already current
        cases = [
            ("start-up floor: pipeflow --help", ("--help",)),
            (f"lineage {deep}", ("lineage", deep)),
            (f"lineage {deep}@v1", ("lineage", f"{deep}@v1")),
            (f"lineage {deep} --format json", ("lineage", deep, "--format", "json")),
            (f"lineage {deep}@v1 --diff v{opts.rounds}",
             ("lineage", f"{deep}@v1", "--diff", f"v{opts.rounds}")),
            (f"versions {many}", ("versions", many)),
            (f"versions {many} --json", ("versions", many, "--json")),
        ]
        width = max(len(label) for label, _ in cases)
        print(f"{'median of ' + str(opts.repeat):<{width}}  in-process  end-to-end  target")
        for label, args in cases:
            inner = median_of(in_process(root, *args), opts.repeat)
            outer = median_of(end_to_end(root, *args), opts.repeat)
            verdict = "met" if outer <= 0.5 else "MISSED"
            if args == ("--help",):
                print(f"{label:<{width}}  {inner:8.3f} s  {outer:8.3f} s")
                continue
            print(f"{label:<{width}}  {inner:8.3f} s  {outer:8.3f} s  <= 0.5 s {verdict}")
    finally:
        if opts.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
