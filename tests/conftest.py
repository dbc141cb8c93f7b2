"""Shared fixtures: real temporary projects in real git repositories, driven by the real CLI."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

# the ``address`` fixture: a real Dask cluster on 127.0.0.1, started only for a test asking
pytest_plugins = ["tests.daskcluster"]

GIT_ENV = {
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
}


@pytest.fixture(autouse=True)
def _own_machine_cache(tmp_path_factory: pytest.TempPathFactory,
                       monkeypatch: pytest.MonkeyPatch) -> None:
    """Interpreter facts are cached per machine (pipeflow.files.machinecache): each test has
    its own cache (subprocesses inherit it), never the user's, never another test's
    (tests fake interpreters and reset folder mtimes)."""
    folder = tmp_path_factory.mktemp("machine-cache")
    monkeypatch.setenv("PIPEFLOW_MACHINE_CACHE", str(folder / "machine.db"))


@pytest.fixture(autouse=True)
def _own_user_config(tmp_path_factory: pytest.TempPathFactory,
                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test has its own user config directory (signing keys live there): never the
    user's key, never another test's. A test that plays two users points
    PIPEFLOW_CONFIG_DIR at a folder of each."""
    folder = tmp_path_factory.mktemp("user-config")
    monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(folder))
    monkeypatch.delenv("PIPEFLOW_SIGNING_KEY", raising=False)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


@dataclass
class Project:
    """A temporary pipeflow project inside its own git repository."""

    root: Path

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def read(self, rel: str) -> str:
        return (self.root / rel).read_text(encoding="utf-8")

    def spec(self, stages: dict[str, Any], **top: Any) -> None:
        self.write("pipeline.yaml", yaml.safe_dump({**top, "stages": stages}, sort_keys=False))

    def params(self, data: dict[str, Any], name: str = "params.yaml") -> None:
        self.write(name, yaml.safe_dump(data, sort_keys=False))

    def run(self, *args: str) -> Result:
        """Run the CLI in-process (fast); exit status as the console script returns it."""
        from pipeflow.cli.app import run

        out, err = io.StringIO(), io.StringIO()
        old = Path.cwd()
        os.chdir(self.root)
        try:
            with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                code = run(list(args))
        finally:
            os.chdir(old)
        return Result(code, out.getvalue(), err.getvalue())

    def cli(self, *args: str, timeout: float = 120) -> Result:
        """Run the real console script in a subprocess."""
        proc = subprocess.run(
            [sys.executable, "-m", "pipeflow", *args], cwd=self.root, capture_output=True,
            text=True, timeout=timeout, env={**os.environ, **GIT_ENV},
        )
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def git(self, *args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=self.root, capture_output=True, text=True,
                              env={**os.environ, **GIT_ENV}, check=True)
        return proc.stdout

    def lock(self) -> dict[str, Any]:
        data = yaml.safe_load(self.read("pipeline.lock"))
        assert isinstance(data, dict)
        return data


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Project]:
    """An empty git repository ready for a pipeline."""
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("NO_COLOR", "1")
    root = tmp_path / "proj"
    root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(root)], check=True)
    yield Project(root)
