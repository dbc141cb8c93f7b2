"""A project with a declared model and a few committed versions of it (issue 14)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import chain, commit

MODEL = "clf"
PATH = "models/model.txt"


def declare_model(p: Project, name: str = MODEL) -> None:
    """The shared chain of stages, its model output declared ``model: name``."""
    import yaml

    chain(p)
    spec = yaml.safe_load(p.read("pipeline.yaml"))
    spec["stages"]["train"]["outs"] = [{PATH: {"model": name, "desc": "the classifier"}}]
    p.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))


def version(p: Project, lr: float, message: str | None = None) -> None:
    """Train with ``lr`` and commit: one more version of the model."""
    p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})
    res = p.run("repro")
    assert res.code == 0, res.text
    commit(p, message or f"lr {lr}")


def model_with_versions(p: Project, lrs: tuple[float, ...] = (0.1, 0.2, 0.3)) -> None:
    p.git("config", "user.email", "alice@example.com")  # who records and moves name
    assert p.run("init").code == 0
    declare_model(p)
    for lr in lrs:
        version(p, lr)


def ok(p: Project, *args: str) -> str:
    res = p.run(*args)
    assert res.code == 0, res.text
    return res.out


def as_json(p: Project, *args: str) -> Any:
    return json.loads(ok(p, *args, "--json"))


def labels(p: Project) -> dict[str, str]:
    """vN -> hash of the model's versions."""
    return {v["version"]: v["hash"] for v in as_json(p, "versions", PATH)["versions"]}


def user_key(folder: Path, name: str) -> str:
    """Make ``name``'s signing key in the user config folder ``folder``; its public key."""
    from pipeflow.signing.keys import ENV_DIR, generate

    old = os.environ.get(ENV_DIR)
    try:
        return generate(name, path=folder / "signing-key.json").public
    finally:
        if old is not None:
            os.environ[ENV_DIR] = old


def git(root: Path, *args: str) -> str:
    proc = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                          env={**os.environ, **GIT_ENV}, check=True)
    return proc.stdout
