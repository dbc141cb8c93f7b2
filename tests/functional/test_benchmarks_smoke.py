"""The benchmark runner still works: ``benchmarks/run.py --quick`` end to end.

A smoke test of the benchmark code only: it asserts the run succeeds and prints a
line for every workload, never anything about time.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_runs_every_workload() -> None:
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_bytes() if results.exists() else None
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for workload in ("W1", "W2", "W3", "W4", "W5"):
        mine = [ln for ln in lines if ln.startswith(workload + " ")]
        assert mine, f"no {workload} line in:\n{proc.stdout}"
        assert all("pipeflow " in ln and "floor " in ln for ln in mine), mine
    # --quick never rewrites the published results
    assert (results.read_bytes() if results.exists() else None) == before


def test_only_selects_workloads_and_rejects_unknown_ones() -> None:
    run = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"]
    proc = subprocess.run([*run, "--only", "w4"], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    printed = {ln.split()[0] for ln in proc.stdout.splitlines() if ln[:1] == "W"}
    assert printed == {"W4"}
    bad = subprocess.run([*run, "--only", "W9"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2
    assert "W9" in bad.stderr


def test_quick_experiment_benchmark_runs() -> None:
    """``benchmarks/exp_sweep.py --quick``: every measurement prints a line (no timing)."""
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "exp_sweep.py"), "--quick"],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    for code in ("E1", "E2", "E3"):
        assert any(ln.startswith(code + " ") for ln in lines), f"no {code} in:\n{proc.stdout}"
    assert "jobs2/jobs1" in proc.stdout and "per experiment" in proc.stdout
    assert "scratch copy" in proc.stdout, "the breakdown names its steps"


def test_registry_speed_runs_small() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "registry_speed.py"), "--versions", "20",
         "--moves", "20", "--repeat", "1"],
        cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    timed = [ln.split("  ")[0].strip() for ln in proc.stdout.splitlines() if " s " in ln]
    assert timed == ["models", "aliases", "aliases --history", "versions tuned"], proc.stdout


def test_reproduce_speed_runs_small() -> None:
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "reproduce_speed.py"), "--stages", "3",
         "--work", "0", "--repeat", "1"],
        cwd=ROOT / "benchmarks", capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "reproduce / repro --force = " in proc.stdout, proc.stdout
