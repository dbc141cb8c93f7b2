"""What proving a version costs beyond rebuilding it (issue 15): ``pipeflow reproduce
LAST@v1`` against ``pipeflow repro --force`` of the same stages, on a chain of
``--stages`` stages (stage k copies stage k-1's output and sleeps ``--work`` seconds,
standing in for real work), in the same run.

    python benchmarks/reproduce_speed.py [--stages 20] [--work 0.05] [--repeat 5]

``reproduce`` adds: tracing the lineage, a git worktree at the recorded commit, the
pre-run check of each stage's command and code, placing the sources from the cache,
judging every output and writing the record. Prints medians and the ratio
reproduce / (repro --force); asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

from history_speed import ROOT, median_of

GIT = ("-c", "user.name=bench", "-c", "user.email=bench@example.com")


def quiet(root: Path, *args: str) -> Callable[[], None]:
    """The console script in a fresh interpreter, its output (progress on stderr
    included) thrown away; bytecode cached as an installed package has it. Run once
    here to warm the caches."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env.update(PYTHONPATH=str(ROOT), PYTHONPYCACHEPREFIX=str(root.parent / "pycache"))

    def call() -> None:
        subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=root, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)

    call()
    return call


def build(root: Path, stages: int, work: float) -> None:
    """A committed chain of ``stages`` stages, run once (version v1 of the last output)."""
    root.mkdir(parents=True)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    (root / "data.txt").write_text("x\n" * 1000)
    lines = ["stages:"]
    for k in range(stages):
        src = "data.txt" if k == 0 else f"out/s{k - 1}.txt"
        lines += [f"  s{k}:", f"    cmd: sleep {work} && mkdir -p out && cp {src} out/s{k}.txt",
                  f"    deps: [{src}]", f"    outs: [out/s{k}.txt]"]
    (root / "pipeline.yaml").write_text("\n".join(lines) + "\n")
    subprocess.run(["git", *GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *GIT, "commit", "-qm", "chain"], cwd=root, check=True)
    quiet(root, "repro")
    subprocess.run(["git", *GIT, "add", "-A"], cwd=root, check=True)
    subprocess.run(["git", *GIT, "commit", "-qm", "v1"], cwd=root, check=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stages", type=int, default=20)
    parser.add_argument("--work", type=float, default=0.05)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pf-reproduce-"))
    try:
        root = tmp / "proj"
        build(root, args.stages, args.work)
        last = f"out/s{args.stages - 1}.txt@v1"
        force = median_of(quiet(root, "repro", "--force"), args.repeat)
        prove = median_of(quiet(root, "reproduce", last), args.repeat)
        print(f"{args.stages} stages, {args.work} s of work each, medians of {args.repeat}")
        print(f"repro --force        {force:7.3f} s")
        print(f"reproduce {last:<10} {prove:7.3f} s")
        print(f"reproduce / repro --force = {prove / force:.2f}")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
