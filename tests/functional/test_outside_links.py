"""Data outside the project reached through links: the messages say the way out.

A dep or a source that lives outside the project (a shared dataset) is read only
through a link in the project marked external; an output is never written through a
link leading outside. These tests check that each refusal names what to change and
the exact command, and that an external source is read but never written through.
"""

from __future__ import annotations

from pathlib import Path

from tests.conftest import Project


def test_an_absolute_external_dep_is_told_to_link_it_in(project: Project,
                                                        tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    project.spec({"use": {"cmd": "echo ok > out.txt",
                          "deps": [{str(shared): {"external": True}}], "outs": ["out.txt"]}})
    res = project.cli("status")
    assert res.code == 2, res.text
    assert "is absolute" in res.text and "Traceback" not in res.text
    assert f"ln -s {shared} shared" in res.text, res.text
    assert "- shared: {external: true}" in res.text
    assert "write it relative" not in res.text
