"""Pipelines the functional tests share."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import Project


def runs(p: Project) -> list[str]:
    """Stages that ran since the last call (each stage appends its name to runs.log)."""
    path = p.root / "runs.log"
    if not path.exists():
        return []
    names = path.read_text().split()
    path.unlink()
    return names


def chain(p: Project) -> None:
    """prepare -> train -> evaluate, each reading its own params keys."""
    p.params({"prep": {"n": 3}, "train": {"lr": 0.05, "epochs": 2}, "eval": {"k": 1}})
    p.write("data/raw.txt", "a\nb\nc\n")
    p.spec({
        "prepare": {
            "cmd": "echo prepare >> runs.log && head -n ${prep.n} data/raw.txt > data/prepared.txt",
            "deps": ["data/raw.txt"],
            "params": ["prep.n"],
            "outs": ["data/prepared.txt"],
        },
        "train": {
            "cmd": "echo train >> runs.log && mkdir -p models && "
                   "(echo lr=${train.lr}; cat data/prepared.txt) > models/model.txt",
            "deps": ["data/prepared.txt"],
            "params": ["train.lr", "train.epochs"],
            "outs": ["models/model.txt"],
        },
        "evaluate": {
            "cmd": "echo evaluate >> runs.log && "
                   "echo \"{\\\"lines\\\": $(wc -l < models/model.txt), \\\"k\\\": ${eval.k}}\" "
                   "> metrics.json",
            "deps": ["models/model.txt"],
            "params": ["eval.k"],
            "metrics": ["metrics.json"],
        },
    })


def commit(p: Project, message: str = "work") -> None:
    """Commit everything (vN labels number the versions committed locks name)."""
    p.git("add", "-A")
    p.git("commit", "-qm", message, "--allow-empty")


def snapshot(folder: Path) -> dict[str, bytes | str]:
    """Every entry below ``folder`` with its bytes (a link: its target; a folder:
    "dir"): a canary outside the project is compared before and after an attack."""
    import os

    seen: dict[str, bytes | str] = {}
    for dirpath, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = Path(dirpath) / name
            rel = str(path.relative_to(folder))
            if path.is_symlink():
                seen[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                seen[rel] = path.read_bytes()
            else:
                seen[rel] = "dir"
    return seen


def lock_without_run_ids(p: Project) -> dict[str, Any]:
    """The lock as a mapping, without each stage's run id (which differs by run)."""
    lock = p.lock()
    for entry in lock["stages"].values():
        entry.pop("run", None)
    return lock
