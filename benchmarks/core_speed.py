"""Engine overhead on a linear chain of shell one-liners (issue: core engine speed).

    python benchmarks/core_speed.py [--stages 100 200] [--repeat 5]

For each size N it builds a fresh git project whose stage k reads stage k-1's
output and a ``${sNNN}`` param, then reports medians of: first ``repro`` (and its
cost per stage beyond the commands alone), no-op ``status``, no-op ``repro``, and
``pipeflow --version``. It measures; it asserts nothing. The full comparison with
DVC lives in benchmarks/run.py.
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


def build(root: Path, n: int) -> None:
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "params.yaml").write_text("".join(f"s{i:03d}: {i}\n" for i in range(n)))
    (root / "seed.txt").write_text("seed\n")
    stages = {}
    for i in range(n):
        src = "seed.txt" if i == 0 else f"out/{i - 1:03d}.txt"
        stages[f"s{i:03d}"] = {
            "cmd": f"cat {src} > out/{i:03d}.txt && echo ${{s{i:03d}}} >> out/{i:03d}.txt",
            "deps": [src],
            "params": [f"s{i:03d}"],
            "outs": [f"out/{i:03d}.txt"],
        }
    (root / "pipeline.yaml").write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    (root / "out").mkdir()


def timed(cmd: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def floor(root: Path, n: int) -> float:
    """The commands alone, one /bin/sh each, as the engine runs them."""
    spec = yaml.safe_load((root / "pipeline.yaml").read_text())
    params = yaml.safe_load((root / "params.yaml").read_text())
    cmds = []
    for name, stage in spec["stages"].items():
        cmds.append(stage["cmd"].replace("${" + name + "}", str(params[name])))
    start = time.perf_counter()
    for cmd in cmds:
        subprocess.run(["/bin/sh", "-c", cmd], cwd=root, check=True)
    return time.perf_counter() - start


def measure(n: int, repeat: int) -> dict[str, float]:
    first, base, status, noop = [], [], [], []
    for _ in range(repeat):
        tmp = Path(tempfile.mkdtemp(prefix="pf-bench-"))
        try:
            build(tmp / "p", n)
            base.append(floor(tmp / "p", n))
            shutil.rmtree(tmp / "p" / "out")
            (tmp / "p" / "out").mkdir()
            first.append(timed([*PIPEFLOW, "repro"], tmp / "p"))
            status.append(timed([*PIPEFLOW, "status"], tmp / "p"))
            noop.append(timed([*PIPEFLOW, "repro"], tmp / "p"))
        finally:
            shutil.rmtree(tmp)
    med = statistics.median
    return {"first_repro": med(first), "floor": med(base),
            "per_stage_ms": (med(first) - med(base)) / n * 1000,
            "noop_status": med(status), "noop_repro": med(noop)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stages", type=int, nargs="+", default=[100, 200])
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    os.environ.setdefault("GIT_AUTHOR_NAME", "bench")
    version = statistics.median(
        timed([*PIPEFLOW, "--version"], Path.cwd()) for _ in range(max(args.repeat, 5))
    )
    print(f"pipeflow --version: {version:.3f} s (median)")
    results = {}
    for n in args.stages:
        r = measure(n, args.repeat)
        results[n] = r
        print(f"{n} stages: first repro {r['first_repro']:.2f} s (commands alone "
              f"{r['floor']:.2f} s, engine {r['per_stage_ms']:.1f} ms/stage), "
              f"no-op status {r['noop_status']:.3f} s, no-op repro {r['noop_repro']:.3f} s")
    if len(results) > 1:
        ns = sorted(results)
        ratio = results[ns[-1]]["first_repro"] / results[ns[0]]["first_repro"]
        print(f"first repro {ns[-1]} / {ns[0]} stages: {ratio:.2f}x")


if __name__ == "__main__":
    main()
