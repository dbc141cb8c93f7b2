"""What serving may believe (issue 14, review of "Serving from the registry"): a push
from a clone that is behind never rewinds the snapshot, the committed policy decides
what is published, the signature travels inside the snapshot, and ``get`` says what
it verified."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import commit
from tests.functional.test_registry_serve import (
    MODEL,
    model_project,
    oid_of,
    run_in,
    snapshot_body,
)


def _origin(project: Project, tmp_path: Path) -> Path:
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    project.git("remote", "add", "origin", str(origin))
    project.git("push", "-q", "-u", "origin", "main")
    return origin


def _clone(origin: Path, where: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True,
                   env={**os.environ, **GIT_ENV})
    return Project(where)


def test_a_push_from_a_stale_clone_keeps_the_newer_snapshot(project: Project,
                                                           tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    origin = _origin(project, tmp_path)
    bob = _clone(origin, tmp_path / "bob")  # production = v1 in his tag log
    assert project.run("tag", f"{MODEL}@v2", "production").code == 0
    commit(project, "promote v2")
    project.git("push", "-q", "origin", "main")
    assert project.run("push").code == 0
    v1, v2 = oid_of(remote, "v1"), oid_of(remote, "v2")
    assert snapshot_body(remote)["models"]["wine"]["aliases"]["production"] == v2
    res = bob.run("push", "--json")
    assert res.code == 0, res.text
    assert "alias moves this clone has not seen (wine@production)" in res.err
    assert "`git pull`, then push again (the data was pushed)" in res.err
    assert json.loads(res.out)["registry"]["published"] is False
    wine = snapshot_body(remote)["models"]["wine"]
    assert wine["aliases"]["production"] == v2 and set(wine["moves"]) == {"production"}
    out = tmp_path / "server"
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 0 and (out / "m.pkl").read_text() == made["v2"], res.text
    # up to date in git, no run records fetched: his index knows no v1 nor v2
    bob.git("pull", "-q")
    res = bob.run("push")
    assert res.code == 0 and "published the registry snapshot" in res.out, res.text
    wine = snapshot_body(remote)["models"]["wine"]
    assert wine["aliases"]["production"] == v2
    kept = {v["hash"]: v for v in wine["versions"]}
    assert {v1, v2} <= set(kept) and kept[v1]["label"] == "v1" and kept[v1]["available"]
    res = run_in(out, "get", str(remote), "wine@v1", "-o", "v1.pkl")
    assert res.code == 0 and (out / "v1.pkl").read_text() == made["v1"], res.text


def test_the_snapshot_follows_the_committed_policy_not_config_local(
        project: Project, tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    remote = tmp_path / "remote"
    model_project(project, remote)
    alice = generate("alice", path=tmp_path / "alice.json")  # not this user's key
    with (project.root / ".pipeflow" / "config").open("a") as f:
        f.write(f'registry:\n  protected: ["production*"]\nkeys:\n  trusted:\n'
                f'    alice: "{alice.public}"\n')
    commit(project, "protect production")
    # this machine lifts the protection for itself, and moves production unsigned
    (project.root / ".pipeflow" / "config.local").write_text("registry:\n  protected: []\n")
    assert project.run("tag", f"{MODEL}@v2", "production").code == 0
    assert project.run("push").code == 0
    aliases = snapshot_body(remote)["models"]["wine"]["aliases"]
    assert aliases.get("production") != oid_of(remote, "v2")
    res = run_in(tmp_path / "server", "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 2 and "no version or alias 'production'" in res.err, res.text


def test_the_signature_lives_inside_the_snapshot_and_format_1_is_still_read(
        project: Project, tmp_path: Path) -> None:
    from pipeflow.records.runrecord import canonical
    from pipeflow.registry.snapshot import KIND
    from pipeflow.signing.keys import generate
    from pipeflow.signing.signatures import sign

    alice = generate("alice")
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    folder = remote / "registry"
    assert sorted(p.name for p in folder.iterdir()) == ["snapshot.json"]
    top = json.loads((folder / "snapshot.json").read_text())
    assert top["sig"]["name"] == "alice" and top["format"] == 2
    # a remote an older pipeflow wrote: the body at the top, its signature beside it
    old = canonical({**top["body"], "format": 1, "kind": KIND}) + b"\n"
    (folder / "snapshot.json").write_bytes(old)
    sig = {**sign(alice, old).to_json(), "sha256": hashlib.sha256(old).hexdigest()}
    (folder / "snapshot.json.sig").write_text(json.dumps(sig))
    out = tmp_path / "server"
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl", "--key",
                 f"alice={alice.public}", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["signature"] == "trusted"
    assert (out / "m.pkl").read_text() == made["v1"]
    # the next push replaces both with one object
    assert project.run("push").code == 0
    assert sorted(p.name for p in folder.iterdir()) == ["snapshot.json"]
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl", "--key",
                 alice.public)
    assert res.code == 0, res.text
    assert "snapshot signed by key1" in res.out and not res.err


def test_from_git_with_a_key_a_vn_label_needs_a_signed_snapshot(project: Project,
                                                                tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    alice = generate("alice")
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    origin = _origin(project, tmp_path)
    out = tmp_path / "server"
    res = run_in(out, "get", str(origin), "wine@v2", "-o", "v2.pkl", "--key", alice.public)
    assert res.code == 0 and (out / "v2.pkl").read_text() == made["v2"], res.text
    res = run_in(out, "get", str(origin), "wine@production", "-o", "p.pkl", "--key",
                 alice.public)
    assert res.code == 0, res.text
    assert "alias move in the tag log signed by key1" in res.out
    # someone who can write to the remote relabels: v2 now names v1's bytes, unsigned
    path = remote / "registry" / "snapshot.json"
    top = json.loads(path.read_text())
    versions = top["body"]["models"]["wine"]["versions"]
    versions[1]["hash"] = versions[0]["hash"]
    top["sig"] = None
    path.write_text(json.dumps(top))
    res = run_in(out, "get", str(origin), "wine@v2", "-o", "forged.pkl", "--key",
                 alice.public)
    assert res.code == 2, res.text
    assert "vN labels come from the remote's registry snapshot" in res.err
    assert "ask for an alias" in res.err and not (out / "forged.pkl").exists()
    res = run_in(out, "get", str(origin), "wine@v2", "-o", "forged.pkl",
                 "--require-signature")
    assert res.code == 2 and "is not signed" in res.err, res.text


def test_get_says_what_it_verified_and_warns_when_no_key_vouches(project: Project,
                                                                tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    out = tmp_path / "server"
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 0, res.text
    assert "its bytes verified against that hash" in res.out
    assert len(res.err.strip().splitlines()) == 1
    assert (f"snapshot unsigned: anyone who can write to {remote} could have changed "
            "which version production names") in res.err
    res = run_in(out, "get", str(remote), "wine@production", "-o", "m.pkl", "--json")
    assert json.loads(res.out)["signature"] == "unsigned" and "could have" in res.err


def test_a_signed_snapshot_without_a_key_is_not_called_trusted(project: Project,
                                                               tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    generate("alice")
    remote = tmp_path / "remote"
    model_project(project, remote)
    res = run_in(tmp_path / "server", "get", str(remote), "wine@production", "-o", "m.pkl",
                 "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["signature"] == "untrusted"
    assert "signed by 'alice', a key not checked" in res.err and "--key" in res.err


def test_an_output_name_the_system_refuses_is_a_usage_error(project: Project,
                                                           tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    res = run_in(tmp_path / "server", "get", str(remote), "wine@v1", "-o", "y" * 300 + ".pkl")
    assert res.code == 2, res.text
    assert "cannot write yyyy" in res.err and "Traceback" not in res.err


def test_a_relative_remote_url_is_anchored_or_refused(project: Project,
                                                      tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    made = model_project(project, remote)
    assert project.run("remote", "modify", "store", "url", "../remote").code == 0
    commit(project, "relative remote")
    origin = _origin(project, tmp_path)
    deep = tmp_path / "a" / "b" / "server"  # ../remote from here is not the remote
    res = run_in(deep, "get", str(project.root), "wine@v2", "-o", "m.pkl")
    assert res.code == 0, res.text
    assert (deep / "m.pkl").read_text() == made["v2"]
    res = run_in(deep, "get", str(origin), "wine@v2", "-o", "x.pkl")
    assert res.code == 2 and "has a relative URL ('../remote')" in res.err, res.text
    assert "give the remote's own URL as the source" in res.err


def test_messages_for_one_key_a_newer_format_and_an_unsigned_snapshot(
        project: Project, tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    other = generate("mallory", path=tmp_path / "mallory.json")
    remote = tmp_path / "remote"
    model_project(project, remote)
    code = ("import pipeflow\n"
            f"try:\n    pipeflow.open('wine', remote={str(remote)!r}, keys={other.public!r})\n"
            "except pipeflow.PipeflowError as exc:\n    print(exc.message)\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "is not signed, and a signature is required" in proc.stdout, proc.stdout
    res = run_in(tmp_path / "server", "get", str(remote), "wine@v1", "-o", "m.pkl",
                 "--require-signature")
    assert res.code == 1 and "push with a signing key: `pipeflow keys generate`" in res.err
    (remote / "registry" / "snapshot.json").write_text(
        json.dumps({"format": 3, "kind": "pipeflow-registry-snapshot"}))
    res = run_in(tmp_path / "server", "get", str(remote), "wine@v1", "-o", "m.pkl")
    assert res.code == 1 and "format 3 not supported (a newer pipeflow wrote it" in res.err


def test_a_stale_clone_never_brings_back_a_deleted_alias(project: Project,
                                                          tmp_path: Path) -> None:
    remote = tmp_path / "remote"
    model_project(project, remote)
    origin = _origin(project, tmp_path)
    assert project.run("tag", f"{MODEL}@v1", "canary").code == 0
    commit(project, "canary")
    project.git("push", "-q", "origin", "main")
    assert project.run("push").code == 0
    bob = _clone(origin, tmp_path / "bob")  # sees canary
    assert project.run("tag", "delete", MODEL, "canary").code == 0
    commit(project, "no canary")
    project.git("push", "-q", "origin", "main")
    assert project.run("push").code == 0
    assert "canary" not in snapshot_body(remote)["models"]["wine"]["aliases"]
    res = bob.run("push", "--json")
    assert res.code == 0, res.text
    assert "alias moves this clone has not seen (wine@canary)" in res.err
    assert "canary" not in snapshot_body(remote)["models"]["wine"]["aliases"]


def test_versions_planted_in_an_unsigned_snapshot_are_never_signed_into_the_next(
        project: Project, tmp_path: Path) -> None:
    from pipeflow.signing.keys import generate

    remote = tmp_path / "remote"
    model_project(project, remote)
    key = generate("alice")  # this user's key (PIPEFLOW_CONFIG_DIR of the test)
    assert project.run("keys", "trust", "alice", key.public).code == 0
    commit(project, "trust alice")
    assert project.run("push").code == 0
    path = remote / "registry" / "snapshot.json"
    top = json.loads(path.read_text())
    planted = "f" * 32
    top["body"]["models"]["wine"]["versions"].append(
        {"label": "v9", "hash": planted, "isdir": False, "size": 5, "available": True,
         "metrics": {}})
    top["sig"] = None  # someone who can write to the remote, without alice's key
    path.write_text(json.dumps(top))
    res = project.run("push")
    assert res.code == 0, res.text
    body = snapshot_body(remote)
    assert planted not in {v["hash"] for v in body["models"]["wine"]["versions"]}
    res = run_in(tmp_path / "server", "get", str(remote), "wine@v9", "-o", "x.pkl",
                 "--key", f"alice={key.public}")
    assert res.code != 0 and not (tmp_path / "server" / "x.pkl").exists()


def test_a_tag_log_line_whose_hash_is_no_content_id_is_skipped(project: Project,
                                                               tmp_path: Path) -> None:
    from pipeflow.lineage import tags

    remote = tmp_path / "remote"
    made = model_project(project, remote)
    line = {"chain": "z" * 16, "seq": 1, "prev": None, "path": MODEL, "name": "staging",
            "hash": "z" * 32, "previous": None, "user": "m",
            "when": "2026-01-01T00:00:00.000+00:00"}
    line["id"] = tags.entry_id(line)
    with (project.root / ".pipeflow" / "tags.jsonl").open("a") as f:
        f.write(json.dumps(line) + "\n")
    res = project.run("aliases")
    assert "is not a content id (32 hex digits): skipped" in res.err
    assert "staging" not in res.out
    assert project.run("push").code == 0
    res = run_in(tmp_path / "server", "get", str(remote), "wine@production", "-o", "m.pkl")
    assert res.code == 0 and (tmp_path / "server" / "m.pkl").read_text() == made["v1"], \
        res.text
