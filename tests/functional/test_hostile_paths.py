"""Escapes through paths (issue 11, items 1 and 2): a crafted repository or remote
cannot make pipeflow write or delete outside the project.

Each test builds what an attacker can: a clone of a shared bare origin that commits
a crafted ``pipeline.lock`` (or a symlink) and pushes objects to the shared folder
remote. The victim clones and runs the real command. Every test asserts a clear
error naming the file and entry, exit status 2, no traceback, and that a canary
folder outside the project (listing and contents) did not change.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import xxhash
import yaml

from tests.conftest import Project
from tests.functional.helpers import snapshot

SPEC = {"count": {"cmd": "wc -l < data/raw.txt > count.txt", "deps": ["data/raw.txt"],
                  "outs": ["count.txt"]}}


def _clone(origin: Path, folder: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(folder)], check=True,
                   capture_output=True)
    return Project(folder)




class Team:
    """A bare origin, a shared folder remote, the attacker's clone, a canary outside."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.origin = tmp_path / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
                       check=True)
        self.store = tmp_path / "store"
        self.outside = tmp_path / "outside"
        self.outside.mkdir()
        (self.outside / "precious.txt").write_text("keep me\n")
        (self.outside / "models").mkdir()
        (self.outside / "models" / "keep.bin").write_text("keep me too\n")
        self.attacker = _clone(self.origin, tmp_path / "attacker")
        a = self.attacker
        a.spec(SPEC)
        a.write("data/raw.txt", "a\nb\n")
        a.write("folder/f.txt", "folder file\n")
        a.write("hooks/pre-commit", f"#!/bin/sh\ntouch {tmp_path / 'HOOK-RAN'}\n")
        os.chmod(a.root / "hooks/pre-commit", 0o755)
        assert a.run("remote", "add", "origin", str(self.store)).code == 0
        for path in ("data/raw.txt", "folder", "hooks"):
            assert a.run("add", path).code == 0
        assert a.run("repro").code == 0
        assert a.run("push").code == 0

    def publish(self, lock: dict[str, object] | None = None) -> None:
        """Commit (a crafted lock) and push to origin."""
        a = self.attacker
        if lock is not None:
            a.write("pipeline.lock", yaml.safe_dump(lock, sort_keys=False))
        a.git("add", "-A")
        a.git("commit", "-qm", "innocent change")
        a.git("push", "-q", "origin", "main")

    def source_as(self, real: str, crafted: str) -> None:
        """Publish a lock naming the source ``real`` under the path ``crafted``."""
        lock = self.attacker.lock()
        sources = lock["sources"]
        assert isinstance(sources, dict)
        sources[crafted] = sources.pop(real)
        self.publish(lock)

    def victim(self) -> Project:
        return _clone(self.origin, self.tmp / "victim")


def _refused(res: object, *needles: str) -> None:
    code, text = res.code, res.text  # type: ignore[attr-defined]
    assert code == 2, text
    assert "Traceback" not in text, text
    for needle in needles:
        assert needle in text, text


def test_a_source_climbing_out_of_the_project_is_refused_and_nothing_written(
        tmp_path: Path) -> None:
    team = Team(tmp_path)
    team.source_as("data/raw.txt", "../escaped.txt")
    before = snapshot(tmp_path / "outside")
    victim = team.victim()
    _refused(victim.run("pull"), "pipeline.lock", "../escaped.txt", "nothing was written")
    assert not (tmp_path / "escaped.txt").exists()
    _refused(victim.run("checkout"), "pipeline.lock", "../escaped.txt")
    _refused(victim.run("status"), "pipeline.lock", "../escaped.txt")
    assert not (tmp_path / "escaped.txt").exists()
    assert snapshot(tmp_path / "outside") == before


def test_an_absolute_source_is_refused(tmp_path: Path) -> None:
    team = Team(tmp_path)
    target = tmp_path / "outside" / "written.txt"
    team.source_as("data/raw.txt", str(target))
    before = snapshot(tmp_path / "outside")
    victim = team.victim()
    _refused(victim.run("pull"), "pipeline.lock", "is absolute")
    _refused(victim.cli("checkout"), "pipeline.lock", "is absolute")
    assert not target.exists()
    assert snapshot(tmp_path / "outside") == before


def test_a_folder_source_naming_an_outside_folder_deletes_nothing_there(
        tmp_path: Path) -> None:
    team = Team(tmp_path)
    team.source_as("folder", "../outside/models")
    before = snapshot(tmp_path / "outside")
    victim = team.victim()
    _refused(victim.run("pull"), "pipeline.lock", "../outside/models")
    _refused(victim.run("checkout"), "pipeline.lock", "../outside/models")
    assert snapshot(tmp_path / "outside") == before
    assert (tmp_path / "outside/models/keep.bin").read_text() == "keep me too\n"


def test_a_source_in_git_hooks_replaces_no_hook_and_runs_nothing(tmp_path: Path) -> None:
    team = Team(tmp_path)
    team.source_as("hooks", ".git/hooks")
    victim = team.victim()
    hooks_before = snapshot(victim.root / ".git/hooks")
    _refused(victim.run("pull"), "pipeline.lock", ".git/hooks", "goes into .git/")
    _refused(victim.run("checkout"), "pipeline.lock", ".git/hooks")
    assert snapshot(victim.root / ".git/hooks") == hooks_before
    victim.write("notes.txt", "mine\n")
    victim.git("add", "notes.txt")
    victim.git("commit", "-qm", "my work")
    assert not (tmp_path / "HOOK-RAN").exists()


def _crafted_folder(team: Team, member: str) -> str:
    """Push a folder manifest naming ``member`` (its file object is real) to the
    remote; returns the manifest's oid."""
    data = b"#!/bin/sh\ntouch " + str(team.tmp / "HOOK-RAN").encode() + b"\n"
    file_oid = xxhash.xxh3_128_hexdigest(data)
    manifest = json.dumps({"format": 1, "entries": [[member, file_oid, len(data), True]]},
                          separators=(",", ":")).encode()
    oid = xxhash.xxh3_128_hexdigest(manifest)
    for obj, body in ((file_oid, data), (oid, manifest)):
        path = team.store / "objects" / obj[:2] / obj[2:]
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)
    return oid


def test_a_manifest_member_climbing_out_is_refused(tmp_path: Path) -> None:
    team = Team(tmp_path)
    oid = _crafted_folder(team, "../../escaped.txt")
    lock = team.attacker.lock()
    lock["sources"]["folder"] = {"hash": oid, "size": 10, "isdir": True, "nfiles": 1}  # type: ignore[index]
    team.publish(lock)
    before = snapshot(tmp_path / "outside")
    victim = team.victim()
    _refused(victim.run("pull"), oid, "../../escaped.txt", "nothing was written")
    _refused(victim.run("checkout"), oid, "../../escaped.txt")
    assert not (tmp_path / "escaped.txt").exists()
    assert not (victim.root / "escaped.txt").exists()
    assert snapshot(tmp_path / "outside") == before


def test_a_manifest_member_in_git_hooks_is_refused(tmp_path: Path) -> None:
    team = Team(tmp_path)
    oid = _crafted_folder(team, ".git/hooks/pre-commit")
    lock = team.attacker.lock()
    # a folder source at "folder" whose member reaches a nested .git/ (folder/.git/...)
    lock["sources"]["folder"] = {"hash": oid, "size": 10, "isdir": True, "nfiles": 1}  # type: ignore[index]
    team.publish(lock)
    victim = team.victim()
    _refused(victim.run("pull"), oid, ".git/hooks/pre-commit")
    assert not (victim.root / "folder/.git").exists()
    # nothing else of the pull was written either: the check comes first
    assert not (victim.root / "data/raw.txt").exists()


def test_pull_and_checkout_write_nothing_when_a_later_entry_is_refused(
        tmp_path: Path) -> None:
    # check first, then act: the victim pulled a good lock, removed two files; a
    # crafted folder source then arrives through git beside the good ones
    team = Team(tmp_path)
    team.publish()
    victim = team.victim()
    assert victim.run("pull").code == 0
    (victim.root / "data/raw.txt").unlink()
    (victim.root / "count.txt").unlink()
    oid = _crafted_folder(team, "a/../../x")
    lock = team.attacker.lock()
    lock["sources"]["zz-folder"] = {"hash": oid, "size": 10, "isdir": True, "nfiles": 1}  # type: ignore[index]
    team.publish(lock)
    victim.git("pull", "-q")
    _refused(victim.run("pull"), oid, "a/../../x")
    _refused(victim.run("checkout"), oid, "a/../../x")
    assert not (victim.root / "data/raw.txt").exists()
    assert not (victim.root / "count.txt").exists()


# --- symlinked parents (item 2) ----------------------------------------------------

LINKED = {"train": {"cmd": "mkdir -p link/models && echo weights > link/models/w.bin",
                    "deps": ["data/raw.txt"], "outs": ["link/models"]}}


def _linked_team(tmp_path: Path, target: str) -> Team:
    """The attacker runs a stage writing ``link/models`` (a real folder then), pushes
    its output, and commits ``link`` as a symlink to ``target``."""
    team = Team(tmp_path)
    a = team.attacker
    a.spec(LINKED)
    assert a.run("repro").code == 0
    assert a.run("push").code == 0
    subprocess.run(["rm", "-rf", str(a.root / "link")], check=True)
    os.symlink(target, a.root / "link")
    team.publish()
    return team


def test_an_output_under_a_symlink_leading_out_is_refused_by_every_writer(
        tmp_path: Path) -> None:
    team = _linked_team(tmp_path, str(tmp_path / "outside"))
    before = snapshot(tmp_path / "outside")
    victim = team.victim()
    assert (victim.root / "link").is_symlink()
    for command in (("pull",), ("checkout",), ("repro",), ("repro", "--force"),
                    ("checkout", "link/models")):
        res = victim.run(*command)
        _refused(res, "link/models", "'link' is a symlink to", "outside the project")
        assert snapshot(tmp_path / "outside") == before, command
    # the spec error is located at the stage
    assert "pipeline.yaml:" in victim.run("repro").text
    assert not (tmp_path / "outside/.gitignore").exists()
    assert (tmp_path / "outside/models/keep.bin").read_text() == "keep me too\n"


def test_an_output_under_a_symlink_into_git_is_refused(tmp_path: Path) -> None:
    team = _linked_team(tmp_path, ".git")
    victim = team.victim()
    hooks = snapshot(victim.root / ".git/hooks")
    _refused(victim.run("pull"), "link/models", "inside .git/ or .pipeflow/")
    _refused(victim.run("repro"), "link/models", "inside .git/ or .pipeflow/")
    assert not (victim.root / ".git/models").exists()
    assert not (victim.root / ".git/.gitignore").exists()
    assert snapshot(victim.root / ".git/hooks") == hooks


def test_a_symlink_inside_the_project_pointing_inside_still_works(tmp_path: Path) -> None:
    team = Team(tmp_path)
    a = team.attacker
    (a.root / "real").mkdir()
    os.symlink("real", a.root / "link")
    a.spec(LINKED)
    res = a.run("repro")
    assert res.code == 0, res.text
    assert (a.root / "real/models/w.bin").read_text() == "weights\n"
    assert a.run("push").code == 0
    team.publish()
    victim = team.victim()
    res = victim.run("pull")
    assert res.code == 0, res.text
    assert (victim.root / "real/models/w.bin").read_text() == "weights\n"


def test_git_folder_spelled_another_way_is_refused_too(tmp_path: Path) -> None:
    """`.GIT/hooks` is `.git/hooks` on macOS and Windows file systems, `.git./x` on
    Windows: refused on every system, so a lock cannot reach the hooks there."""
    team = Team(tmp_path)
    team.source_as("hooks", ".GIT/hooks")
    victim = team.victim()
    _refused(victim.run("pull"), "pipeline.lock", ".GIT/hooks", ".git/ on some file systems")
    assert not (victim.root / ".GIT").exists()
    oid = _crafted_folder(team, ".Git./hooks/pre-commit")
    lock = team.attacker.lock()
    del lock["sources"][".GIT/hooks"]  # type: ignore[index]
    lock["sources"]["folder"] = {"hash": oid, "size": 10, "isdir": True, "nfiles": 1}  # type: ignore[index]
    team.publish(lock)
    victim.git("pull", "-q")
    _refused(victim.run("pull"), oid, ".Git./hooks/pre-commit")
    assert not (victim.root / "folder").exists()
