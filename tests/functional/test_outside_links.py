"""Data outside the project reached through links: the messages say the way out.

A dep or a source that lives outside the project (a shared dataset) is read only
through a link in the project marked external; an output is never written through a
link leading outside. These tests check that each refusal names what to change and
the exact command, and that an external source is read but never written through.
"""

from __future__ import annotations

import json
import os
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


def _snapshot(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): p.read_text() if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def _linked_source(project: Project, tmp_path: Path) -> Path:
    """What an older pipeflow left: `pipeflow add data` of `data`, now a link to a
    shared dataset outside the project (the lock does not say it is external)."""
    assert project.run("init").code == 0
    project.write("data/a.csv", "a\n")
    assert project.run("add", "data").code == 0
    shared = tmp_path / "ds"
    (project.root / "data").rename(shared)
    (project.root / "data").symlink_to(os.path.relpath(shared, project.root))
    return shared


def test_a_source_linked_outside_names_the_lock_entry_and_the_ways_out(
        project: Project, tmp_path: Path) -> None:
    shared = _linked_source(project, tmp_path)
    for args in (("status",), ("checkout",), ("add", "data"), ("repro",)):
        res = project.cli(*args)
        assert res.code == 2, (args, res.text)
        assert "Traceback" not in res.text
        assert "pipeline.lock: sources: source 'data' leads outside the project" in res.err
        assert str(shared) in res.err
        assert "`pipeflow add --external data`" in res.err
        assert "delete its entry 'data' under `sources:` in pipeline.lock" in res.err
    res = project.cli("add", "--external", "data")
    assert res.code == 0, res.text
    assert project.lock()["sources"]["data"]["external"] is True
    assert "external: true" in project.read("pipeline.lock")
    for args in (("status", "--check"), ("checkout",), ("repro",)):
        assert project.cli(*args).code == 0, args


def test_a_fresh_link_leading_outside_is_refused_with_the_ways_out(
        project: Project, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    (shared / "x.csv").write_text("x\n")
    (project.root / "rawlink").symlink_to(shared)
    assert project.run("init").code == 0
    res = project.cli("add", "rawlink")
    assert res.code == 2, res.text
    assert "cannot add: source 'rawlink' leads outside the project" in res.err
    assert "`pipeflow add --external rawlink`" in res.err
    assert "pipeline.lock" not in res.err  # nothing to drop: it was never added
    assert "rawlink" not in (project.read("pipeline.lock")
                             if (project.root / "pipeline.lock").exists() else "")


def test_an_external_source_is_read_but_never_written_through(
        project: Project, tmp_path: Path) -> None:
    shared = _linked_source(project, tmp_path)
    assert project.cli("add", "--external", "data").code == 0
    (shared / "a.csv").write_text("changed by whoever owns the dataset\n")
    (shared / "b.csv").write_text("new\n")
    before = _snapshot(shared)
    status = project.cli("status")
    assert status.code == 0 and "data" in status.text and "changed" in status.text
    (source,) = json.loads(project.cli("status", "--json").out)["sources"]
    assert source["external"] is True and source["state"] == "edited"
    for args in (("checkout",), ("checkout", "data")):
        res = project.cli(*args)
        assert res.code == 0, (args, res.text)
        assert "external source 'data' differs" in res.text
        assert "never writes through" in res.text
        assert _snapshot(shared) == before, args
    # a link whose target is gone: checkout does not create it outside
    gone = tmp_path / "gone"
    (project.root / "data").unlink()
    (project.root / "data").symlink_to(gone)
    res = project.cli("checkout")
    assert res.code == 0, res.text
    assert not gone.exists() and (project.root / "data").is_symlink()
    # recording the new outside version keeps it external
    (project.root / "data").unlink()
    (project.root / "data").symlink_to(shared)
    assert project.cli("add", "data").code == 0
    assert project.lock()["sources"]["data"]["external"] is True
    assert project.cli("status", "--check").code == 0
    assert _snapshot(shared) == before
    # the dataset goes back to the first version: repro would restore the locked one
    (shared / "b.csv").unlink()
    (shared / "a.csv").write_text("a\n")
    before = _snapshot(shared)
    res = project.cli("repro")
    assert res.code == 0, res.text
    assert "external source 'data' differs" in res.text
    assert _snapshot(shared) == before
