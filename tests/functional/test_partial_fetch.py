"""A fetch that stops halfway leaves each chain of run records whole up to some record:
a gap would read, to ``verify``, as records someone removed."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from pipeflow.storage.remote import Remote
from tests.conftest import Project


def test_a_fetch_failing_midway_leaves_no_gap_in_a_chain(
    project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project.write("seed.txt", "1\n")
    project.params({"n": 1})
    project.spec({"s": {"cmd": "cat seed.txt > out.txt", "deps": ["seed.txt"],
                        "params": ["n"], "outs": ["out.txt"]}})
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    assert project.run("repro").code == 0
    project.params({"n": 2})
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "two runs")
    clone = Project(tmp_path / "clone")
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone.root)], check=True)

    # the second record arrives; then the first one's download fails (a network error)
    second_done = threading.Event()
    download = Remote.download

    def flaky(self: Remote, kind: str, rel: str, *args: Any) -> None:
        if kind == "runs" and "/00000001-" in rel:
            assert second_done.wait(30)
            raise OSError("connection reset")
        download(self, kind, rel, *args)
        if kind == "runs" and "/00000002-" in rel:
            second_done.set()

    monkeypatch.setattr(Remote, "download", flaky)
    assert clone.run("fetch").code != 0
    monkeypatch.setattr(Remote, "download", download)
    res = clone.run("verify", "--json")
    assert '"gap"' not in res.out, res.out
    assert clone.run("fetch").code == 0
    assert clone.run("verify").code == 0
