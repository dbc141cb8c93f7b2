"""networkx orders a pipeline whose structure is new; a known structure (every no-op
``status`` and ``repro``) is ordered from the state database without importing it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import chain, commit


def imports_networkx(project: Project, *args: str) -> bool:
    result = project.cli(*args)
    assert result.code == 0, result.text
    # PYTHONPROFILEIMPORTTIME lines: "import time: SELF | CUMULATIVE | <indent>name"
    return re.search(r"\|\s*networkx$", result.err, re.MULTILINE) is not None


def test_networkx_only_when_the_structure_changes(project: Project,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    chain(project)
    assert project.run("repro").code == 0
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    assert not imports_networkx(project, "status")
    assert not imports_networkx(project, "repro")
    assert not imports_networkx(project, "status", "evaluate")  # targets: walks upstream
    assert not imports_networkx(project, "repro", "--downstream", "train")
    project.write("pipeline.yaml", project.read("pipeline.yaml") + "# a comment\n")
    assert not imports_networkx(project, "status")  # new text, same structure
    project.write("pipeline.yaml", project.read("pipeline.yaml")
                  + "  report:\n    cmd: cat metrics.json\n    deps: [metrics.json]\n")
    assert imports_networkx(project, "status")  # a new stage: checked by networkx
    assert not imports_networkx(project, "status")  # ... and remembered


def test_a_fresh_clone_of_a_known_structure_needs_no_networkx(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order of a structure is remembered per machine as well (like a validated
    spec): a second clone on this machine orders its stages from that memory."""
    chain(project)
    assert project.run("repro").code == 0
    commit(project)
    other = Project(tmp_path / "other")
    subprocess.run(["git", "clone", "-q", str(project.root), str(other.root)], check=True)
    monkeypatch.setenv("PYTHONPROFILEIMPORTTIME", "1")
    assert not imports_networkx(other, "status")

