"""Serving from the registry: the snapshot push publishes, ``get``, ``pipeflow.open``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import GIT_ENV, Project, Result
from tests.functional.helpers import commit

MODEL = "models/model.pkl"


def model_project(p: Project, remote: Path) -> dict[str, str]:
    """A declared model (wine) with two committed versions, v1 tagged production,
    pushed to the folder ``remote``; returns each version's bytes by label."""
    p.spec({"train": {
        "cmd": "mkdir -p models && echo \"model C=${train.C}\" > models/model.pkl",
        "params": ["train.C"],
        "outs": [{MODEL: {"model": "wine", "desc": "classifies wine"}}],
    }})
    made = {}
    for n, c in enumerate((1, 2), start=1):
        p.params({"train": {"C": c}})
        assert p.run("repro").code == 0
        commit(p, f"v{n}")
        made[f"v{n}"] = p.read(MODEL)
    assert p.run("tag", f"{MODEL}@v1", "production").code == 0
    assert p.run("remote", "add", "store", str(remote)).code == 0
    res = p.run("push")
    assert res.code == 0, res.text
    assert "published the registry snapshot: 1 model(s)" in res.out
    commit(p, "aliases and remote")
    return made


def run_in(folder: Path, *args: str) -> Result:
    """The real CLI started in ``folder`` (not a project, not a clone)."""
    folder.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=folder,
                          capture_output=True, text=True, timeout=120,
                          env={**os.environ, **GIT_ENV})
    return Result(proc.returncode, proc.stdout, proc.stderr)


def remote_object(remote: Path, oid: str) -> Path:
    return next(p for p in (remote / "objects").rglob("*")
                if p.is_file() and p.parent.name + p.name == oid)


def snapshot_body(remote: Path) -> dict[str, Any]:
    top = json.loads((remote / "registry" / "snapshot.json").read_text())
    assert top["format"] == 2
    return dict(top["body"])


def oid_of(remote: Path, version: str) -> str:
    body = snapshot_body(remote)
    return str(next(v["hash"] for v in body["models"]["wine"]["versions"]
                    if v["label"] == version))


def test_get_from_a_remote_folder_follows_the_alias(project: Project, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    outside = tmp_path / "server"
    res = run_in(outside, "get", str(remote), "wine@production", "-o", "out.pkl")
    assert res.code == 0, res.text
    assert (outside / "out.pkl").read_text() == made["v1"]
    assert "wine@production = v1" in res.out and "verified" in res.out
    res = run_in(outside, "get", f"file://{remote}", "wine@v2", "-o", "v2.pkl", "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["label"] == "v2" and body["alias"] is None and body["source"] == "remote"
    assert (outside / "v2.pkl").read_text() == made["v2"]
    res = run_in(outside, "get", str(remote), f"wine@{body['hash'][:10]}", "-o", "h.pkl")
    assert res.code == 0 and (outside / "h.pkl").read_text() == made["v2"]
    (outside / "models").mkdir()
    res = run_in(outside, "get", str(remote), "wine@v1", "-o", "models")  # a folder
    assert res.code == 0 and (outside / "models" / "model.pkl").read_text() == made["v1"]
    # the alias moves, push publishes it, get follows
    assert project.run("tag", f"{MODEL}@v2", "production").code == 0
    assert project.run("push").code == 0
    res = run_in(outside, "get", str(remote), "wine@production", "-o", "out.pkl")
    assert res.code == 0, res.text
    assert (outside / "out.pkl").read_text() == made["v2"]
    assert not (outside / ".pipeflow").exists()


def test_push_targets_still_publishes_the_aliased_versions_objects(
        project: Project, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    made = model_project(project, tmp_path / "first")
    assert project.run("remote", "add", "other", str(remote), "--default").code == 0
    res = project.run("push", "train", "--json")  # only what the lock names: v2
    assert res.code == 0, res.text
    assert json.loads(res.out)["registry"] == {
        "models": 1, "objects": 1, "signed_by": None, "published": True,
        "unseen_moves": [], "kept_versions": 0}
    snapshot = snapshot_body(remote)
    versions = snapshot["models"]["wine"]["versions"]
    assert [(v["label"], v["available"]) for v in versions] == [("v1", True), ("v2", True)]
    res = run_in(tmp_path / "server", "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 0, res.text
    assert (tmp_path / "server" / "m.pkl").read_text() == made["v1"]


def test_get_from_the_projects_bare_git_origin(project: Project, tmp_path: Path) -> None:
    made = model_project(project, tmp_path / "remote")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("push", "-q", str(origin), "main")
    outside = tmp_path / "server"
    res = run_in(outside, "get", str(origin), "wine@production", "-o", "out.pkl", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["source"] == "git"
    assert (outside / "out.pkl").read_text() == made["v1"]
    res = run_in(outside, "get", f"git+file://{origin}", "wine@v2", "-o", "v2.pkl")
    assert res.code == 0, res.text
    assert (outside / "v2.pkl").read_text() == made["v2"]
    # the alias moved in git (committed) decides, even before a push
    assert project.run("tag", f"{MODEL}@v2", "production").code == 0
    commit(project, "promote v2")
    project.git("push", "-q", str(origin), "main")
    res = run_in(outside, "get", str(origin), "wine@production", "-o", "out.pkl")
    assert res.code == 0, res.text
    assert (outside / "out.pkl").read_text() == made["v2"]
    # no snapshot on the remote: the alias and the lock of the clone still serve
    (tmp_path / "remote" / "registry" / "snapshot.json").unlink()
    (outside / "out.pkl").unlink()
    res = run_in(outside, "get", str(origin), "wine@production", "-o", "out.pkl")
    assert res.code == 0, res.text
    assert (outside / "out.pkl").read_text() == made["v2"]
    leftovers = [p for p in Path(os.environ.get("TMPDIR", "/tmp")).glob("pipeflow-get-*")]
    assert not [p for p in leftovers if p.stat().st_mtime > origin.stat().st_mtime]


def test_pipeflow_open_serves_a_model_in_a_clean_process(project: Project,
                                                         tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("push", "-q", str(origin), "main")
    code = (
        "import pipeflow, sys\n"
        f"with pipeflow.open('wine', remote={str(remote)!r}) as f: a = f.read()\n"
        f"with pipeflow.open('wine', 'v2', 'r', repo={str(origin)!r}) as f: b = f.read()\n"
        "print(repr(a)); print(repr(b))\n")
    clean = tmp_path / "serving"
    clean.mkdir()
    proc = subprocess.run([sys.executable, "-c", code], cwd=clean, capture_output=True,
                          text=True, timeout=120, env={**os.environ, **GIT_ENV})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [repr(made["v1"].encode()), repr(made["v2"])]
    assert list(clean.iterdir()) == []


def test_a_signed_snapshot_is_checked_against_the_keys_given(
        project: Project, tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    alice = generate("alice")
    other = generate("mallory", path=tmp_path / "mallory.json")
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    assert not (remote / "registry" / "snapshot.json.sig").exists()  # inside it now
    out = tmp_path / "server"
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl", "--key",
                 f"alice={alice.public}", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["signed_by"] == "alice"
    res = run_in(out, "get", str(remote), "wine@production", "-o", "x.pkl", "--key",
                 other.public)
    assert res.code == 1 and "none of the keys given" in res.err
    # the snapshot changed after signing: production now names v2
    path = remote / "registry" / "snapshot.json"
    top = json.loads(path.read_text())
    wine = top["body"]["models"]["wine"]
    wine["aliases"]["production"] = wine["versions"][1]["hash"]
    path.write_text(json.dumps(top))
    res = run_in(out, "get", str(remote), "wine@production", "-o", "x.pkl", "--key",
                 alice.public)
    assert res.code == 1, res.text
    assert "bad signature" in res.err and "Traceback" not in res.err
    assert not (out / "x.pkl").exists()
    top["sig"] = None
    path.write_text(json.dumps(top))
    res = run_in(out, "get", str(remote), "wine@production", "-o", "x.pkl",
                 "--require-signature")
    assert res.code == 1 and "not signed" in res.err
    assert "push with a signing key: `pipeflow keys generate`" in res.err
    assert (out / "m.pkl").read_text() == made["v1"]


def test_a_corrupted_object_is_refused_and_nothing_written(project: Project,
                                                           tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    target = remote_object(remote, oid_of(remote, "v1"))
    target.chmod(0o644)
    target.write_text("model C=666\n")
    out = tmp_path / "server"
    out.mkdir()
    (out / "m.pkl").write_text("the model serving now\n")
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 1, res.text
    assert "does not match its hash" in res.err and "nothing written" in res.err
    assert (out / "m.pkl").read_text() == "the model serving now\n"
    assert sorted(p.name for p in out.iterdir()) == ["m.pkl"]
    target.unlink()
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 1 and "is not on" in res.err and "pipeflow push" in res.err


@pytest.mark.parametrize("case", ["no-snapshot", "unknown-model", "unknown-alias",
                                  "not-json", "no-version", "nowhere", "bad-clone",
                                  "no-folder", "git-token"])
def test_bad_requests_say_what_is_wrong(project: Project, tmp_path: Path, case: str) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    request, source, expect = "wine@production", str(remote), ""
    if case == "no-snapshot":
        (remote / "registry" / "snapshot.json").unlink()
        expect = "`pipeflow push` publishes one"
    elif case == "unknown-model":
        request, expect = "wien@production", "did you mean 'wine'? models there: wine"
    elif case == "unknown-alias":
        request, expect = "wine@prod", "did you mean 'production'?"
    elif case == "not-json":
        (remote / "registry" / "snapshot.json").write_text("{not json")
        expect = "not a registry snapshot"
    elif case == "no-version":
        request, expect = "wine", "names no version"
    elif case == "nowhere":
        source, expect = str(tmp_path / "no-such-remote"), "nothing at"
    elif case == "bad-clone":
        source, expect = str(tmp_path / "no-such.git"), "cannot clone"
    elif case == "git-token":
        source, expect = "https://ci:sekrit-token@127.0.0.1:9/wine.git", "cannot clone"
    out = "no/such/folder/m.pkl" if case == "no-folder" else "m.pkl"
    expect = expect or "does not exist"
    res = run_in(tmp_path / "server", "get", source, request, "-o", out)
    assert res.code in (1, 2), res.text
    assert expect in res.err, res.err
    assert "Traceback" not in res.err and "sekrit" not in res.text
    assert not (tmp_path / "server" / "m.pkl").exists()


def test_a_snapshot_appears_once_the_project_declares_a_model(project: Project,
                                                              tmp_path: Path) -> None:
    project.spec({"s": {"cmd": "echo x > out.txt", "outs": ["out.txt"]}})
    assert project.run("repro").code == 0
    assert project.run("remote", "add", "store", str(tmp_path / "remote")).code == 0
    res = project.run("push", "--json")
    assert res.code == 0 and "registry" not in json.loads(res.out)
    assert not (tmp_path / "remote" / "registry").exists()  # no model: no snapshot
    project.spec({"s": {"cmd": "echo x > out.txt", "outs": [{"out.txt": {"model": "m"}}]}})
    res = project.run("push", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["registry"]["models"] == 1
    res = run_in(tmp_path / "server", "get", str(tmp_path / "remote"), "m@production",
                 "-o", "m.txt")
    assert res.code == 2 and "aliases: none; versions: local:" in res.err, res.err


def test_a_broken_spec_still_pushes_the_data_and_says_the_snapshot_waits(
        project: Project, tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    before = (remote / "registry" / "snapshot.json").read_bytes()
    assert project.run("tag", f"{MODEL}@v2", "production").code == 0
    project.write("pipeline.yaml", "stages:\n  train:\n    cmd: [\n")
    res = project.run("push")
    assert res.code == 0, res.text
    assert "pushed" in res.out and "registry snapshot not published" in res.err
    assert (remote / "registry" / "snapshot.json").read_bytes() == before


def test_from_git_the_key_must_have_signed_the_alias_move(project: Project,
                                                         tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    alice = generate("alice")  # the tag moves are signed with it
    other = generate("mallory", path=tmp_path / "mallory.json")
    made = model_project(project, tmp_path / "remote")
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("push", "-q", str(origin), "main")
    out = tmp_path / "server"
    res = run_in(out, "get", str(origin), "wine@production", "-o", "m.pkl", "--key",
                 f"alice={alice.public}", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["signed_by"] == "alice"
    assert (out / "m.pkl").read_text() == made["v1"]
    res = run_in(out, "get", str(origin), "wine@production", "-o", "x.pkl", "--key",
                 other.public)
    assert res.code == 1 and "move of alias 'production'" in res.err, res.text
    assert not (out / "x.pkl").exists()
