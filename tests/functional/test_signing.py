"""Signed run records (issue 14, item 6): two users with their own keys in two clones
sharing a folder remote and a bare git origin; who signed what travels with the
records, ``verify`` checks it, and records signed by a trusted key serve the run cache
without ``trust_run_cache``."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import chain, commit, runs

MODEL = "models/model.txt"


class Users:
    """Each user's own config directory (their private key); commands run as one."""

    def __init__(self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        self.tmp_path = tmp_path
        self.monkeypatch = monkeypatch

    def folder(self, name: str) -> Path:
        return self.tmp_path / f"config-{name}"

    @contextmanager
    def as_(self, name: str) -> Iterator[None]:
        self.monkeypatch.setenv("PIPEFLOW_CONFIG_DIR", str(self.folder(name)))
        yield

    def generate(self, p: Project, name: str) -> str:
        with self.as_(name):
            res = p.run("keys", "generate", "--name", name, "--json")
        assert res.code == 0, res.text
        body = json.loads(res.out)
        assert body["trust_command"] == f"pipeflow keys trust {name} {body['public']}"
        return str(body["public"])


@pytest.fixture
def users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Users:
    return Users(tmp_path, monkeypatch)


def _clone(origin: Path, where: Path) -> Project:
    subprocess.run(["git", "clone", "-q", str(origin), str(where)], check=True)
    return Project(where)


def _set_lr(p: Project, lr: float) -> None:
    p.params({"prep": {"n": 3}, "train": {"lr": lr, "epochs": 2}, "eval": {"k": 1}})


def _sigs(p: Project) -> list[Path]:
    return sorted((p.root / ".pipeflow/cache/runs").glob("*/*.sig"))


def _records(p: Project) -> list[Path]:
    return sorted((p.root / ".pipeflow/cache/runs").glob("*/*.json"))


def _team(project: Project, users: Users, tmp_path: Path) -> tuple[Project, Path, dict[str, str]]:
    """Alice's project: both keys trusted in the committed config, her signed run of
    v1 pushed to the folder remote and the bare origin. Returns (origin, store, keys)."""
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    alice = project
    keys = {name: users.generate(alice, name) for name in ("alice", "bob")}
    with users.as_("alice"):
        assert alice.run("init").code == 0
        for name, key in keys.items():
            res = alice.run("keys", "trust", name, key)
            assert res.code == 0 and "commit it" in res.out, res.text
        chain(alice)
        assert alice.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
        assert alice.run("repro").code == 0
        commit(alice, "v1")
        alice.git("remote", "add", "origin", str(origin))
        alice.git("push", "-q", "-u", "origin", "main")
        assert alice.run("push").code == 0
    return origin, tmp_path / "store", keys  # type: ignore[return-value]


def test_records_are_signed_pushed_fetched_and_verified_by_name(
        project: Project, users: Users, tmp_path: Path) -> None:
    origin, store, _keys = _team(project, users, tmp_path)
    alice = project
    assert len(_sigs(alice)) == len(_records(alice)) == 3
    assert len(list(store.glob("runs/*/*.sig"))) == 3, "push sends the signatures"
    body = json.loads(alice.run("lineage", MODEL, "--json").out)
    (train,) = [r for r in body["runs"] if r["stage"] == "train"]
    assert (train["user"], train["signature"], train["signer"]) == ("alice", "trusted", "alice")

    bob = _clone(origin, tmp_path / "bob")
    with users.as_("bob"):
        assert bob.run("fetch").code == 0
        assert len(_sigs(bob)) == 3, "fetch brings them"
        _set_lr(bob, 0.06)
        assert bob.run("repro").code == 0
        assert bob.run("push").code == 0
        text = bob.run("lineage", MODEL).out
        assert "bob (signed)" in text and "alice (signed)" in text
        assert "trust    signed by alice record from remote 'origin'" in text
        assert "nothing vouches" not in text
        listed = bob.run("versions", MODEL)
        assert "by bob (signed)" in listed.out and "by alice (signed)" in listed.out
        res = bob.run("verify", "--json")
        assert res.code == 0, res.text
        sigs = json.loads(res.out)["signatures"]
        assert sigs["by_signer"] == {"alice": {"records": 3, "tags": 0},
                                     "bob": {"records": 2, "tags": 0}}
        assert sigs["invalid"] == [] and sigs["untrusted"] == []
    with users.as_("alice"):
        assert alice.run("fetch").code == 0
        res = alice.run("verify")
        assert res.code == 0, res.text
        assert "signed by alice: 3 run record(s)" in res.out
        assert "signed by bob: 2 run record(s)" in res.out


def test_user_is_unverified_without_a_key(project: Project) -> None:
    project.git("config", "user.email", "test@example.com")
    assert project.run("init").code == 0
    chain(project)
    assert project.run("repro").code == 0
    assert not _sigs(project)
    assert "test@example.com (unverified)" in project.run("lineage", MODEL).out
    body = json.loads(project.run("lineage", MODEL, "--json").out)
    (train,) = [r for r in body["runs"] if r["stage"] == "train"]
    assert (train["user"], train["signature"], train["signer"]) == (
        "test@example.com", "unsigned", None)
    listed = json.loads(project.run("versions", MODEL, "--json").out)["versions"][0]
    assert (listed["user"], listed["signature"]) == ("test@example.com", "unsigned")


def test_signed_records_serve_the_run_cache_without_trusting_the_remote(
        project: Project, users: Users, tmp_path: Path) -> None:
    """Alice runs lr 0.07 and pushes its records, but commits only the params: CI (no
    key, no trust_run_cache) restores the stages from her signed records."""
    origin, _store, _keys = _team(project, users, tmp_path)
    alice = project
    with users.as_("alice"):
        _set_lr(alice, 0.07)
        assert alice.run("repro").code == 0
        assert alice.run("push").code == 0
        alice.git("checkout", "-q", "--", "pipeline.lock")
        commit(alice, "lr 0.07: CI runs it")
        alice.git("push", "-q")
    runs(alice)
    ci = _clone(origin, tmp_path / "ci")
    assert "trust_run_cache" not in ci.read(".pipeflow/config")
    with users.as_("ci"):
        runs(ci)  # the log alice committed
        res = ci.run("repro", "--pull")
        assert res.code == 0, res.text
        assert runs(ci) == [], "restored from alice's signed records, not run"
        assert "lr=0.07" in ci.read(MODEL)
        assert "trust_run_cache" not in res.err


def test_an_untrusted_key_does_not_serve_the_run_cache_and_verify_names_it(
        project: Project, users: Users, tmp_path: Path) -> None:
    origin, _store, _keys = _team(project, users, tmp_path)
    mallory = _clone(origin, tmp_path / "mallory")
    evil = users.generate(mallory, "mallory")
    with users.as_("mallory"):
        _set_lr(mallory, 0.07)
        assert mallory.run("repro").code == 0
        assert mallory.run("push").code == 0
        mallory.git("checkout", "-q", "--", "pipeline.lock")
        commit(mallory, "lr 0.07")
    ci = _clone(mallory.root, tmp_path / "ci")
    with users.as_("ci"):
        runs(ci)  # the log committed
        res = ci.run("repro", "--pull")
        assert res.code == 0, res.text
        assert "train" in runs(ci), "an untrusted signature vouches for nothing"
        res = ci.run("verify")
        assert res.code == 0, res.text  # untrusted is reported, not a failure
        assert "untrusted:" in res.out and evil in res.out and "'mallory'" in res.out
        body = json.loads(ci.run("verify", "--json").out)["signatures"]
        assert {u["key"] for u in body["untrusted"]} == {evil}
        assert "alice (signed)" in ci.run("lineage", "data/prepared.txt").out


def test_a_tampered_signature_fails_verify_and_never_a_fetch(
        project: Project, users: Users, tmp_path: Path) -> None:
    origin, store, _keys = _team(project, users, tmp_path)
    remote_sigs = sorted(store.glob("runs/*/*.sig"))
    forged = json.loads(remote_sigs[0].read_text())
    forged["value"] = forged["value"][:-4] + ("AAA=" if forged["value"][-4:] != "AAA=" else "BBB=")
    remote_sigs[0].write_text(json.dumps(forged))
    remote_sigs[1].write_bytes(b"\xff not json {")
    bob = _clone(origin, tmp_path / "bob")
    with users.as_("bob"):
        res = bob.run("fetch")
        assert res.code == 0, res.text
        res = bob.run("verify")
        assert res.code == 1, res.text
        assert "PROBLEM [bad-signature]" in res.out
        assert remote_sigs[0].name in res.out and "does not verify" in res.out
        assert remote_sigs[1].name in res.out and "not a signature" in res.out
        assert "signed by alice: 1 run record(s)" in res.out
        body = json.loads(bob.run("verify", "--json").out)
        assert {p["subject"].rsplit("/", 1)[1] for p in body["problems"]
                if p["kind"] == "bad-signature"} == {s.name for s in remote_sigs[:2]}
        assert len(body["signatures"]["invalid"]) == 2


def test_a_garbage_signature_fetched_once_gives_way_to_the_remotes_good_one(
        project: Project, users: Users, tmp_path: Path) -> None:
    origin, store, _keys = _team(project, users, tmp_path)
    garbled, huge = sorted(store.glob("runs/*/*.sig"))[:2]
    good = garbled.read_bytes()
    garbled.write_bytes(b"\xff not json {")
    huge.write_bytes(b" " * (8 << 20))  # read bounded: never downloaded whole
    bob = _clone(origin, tmp_path / "bob")
    with users.as_("bob"):
        res = bob.run("fetch")
        assert res.code == 0 and "is larger than 4096 bytes: not fetched" in res.err
        assert bob.run("verify").code == 1
        garbled.write_bytes(good)  # the remote has a good copy again
        res = bob.run("fetch", "--json")
        assert res.code == 0 and json.loads(res.out)["signatures"] == 1, res.text
        res = bob.run("verify")
        assert "signed by alice: 2 run record(s)" in res.out, res.text
        assert garbled.name not in res.out
        res = bob.run("fetch", "--json")  # a good one is not fetched again
        assert json.loads(res.out)["signatures"] == 0


def test_a_damaged_key_file_stops_a_run_before_anything_is_written(
        project: Project, users: Users) -> None:
    assert project.run("init").code == 0
    chain(project)
    users.folder("alice").mkdir()
    key = users.folder("alice") / "signing-key.json"
    for text, said in (("not json", "not a JSON key file"),
                       ('{"name": "alice", "private": "ed25519:AAAA"}', "not 32 bytes")):
        key.write_text(text)
        with users.as_("alice"):
            res = project.run("repro")
            assert res.code == 2, res.text
            assert str(key) in res.err and said in res.err and "Traceback" not in res.text
            assert runs(project) == [] and not _records(project)
            assert not (project.root / "pipeline.lock").exists()
            res = project.run("keys", "list")
            assert res.code == 2 and said in res.err


def test_a_trusted_key_that_does_not_parse_is_a_config_error(project: Project) -> None:
    assert project.run("init").code == 0
    config = project.root / ".pipeflow/config"
    config.write_text(config.read_text() + "keys:\n  trusted:\n    bob: ed25519:tooshort\n")
    for args in (("status",), ("keys", "list"), ("verify",)):
        res = project.run(*args)
        assert res.code == 2, (args, res.text)
        assert ".pipeflow/config" in res.err and "keys.trusted.bob" in res.err
        assert "Traceback" not in res.text


def test_keys_trust_refuses_bad_keys_and_replacements(project: Project, users: Users) -> None:
    assert project.run("init").code == 0
    key = users.generate(project, "alice")
    other = users.generate(project, "carol")
    before = project.read(".pipeflow/config")
    res = project.run("keys", "trust", "alice", "ed25519:AAAA")
    assert res.code == 2 and "32 bytes" in res.err and "nothing was written" in res.err
    res = project.run("keys", "trust", "alice", "rsa:xyz")
    assert res.code == 2 and "not an ed25519 public key" in res.err
    assert project.read(".pipeflow/config") == before
    assert project.run("keys", "trust", "alice", key).code == 0
    res = project.run("keys", "trust", "alice", other)
    assert res.code == 2 and "names another key" in res.err and "--force" in res.err
    assert key in project.read(".pipeflow/config") and other not in project.read(
        ".pipeflow/config")
    assert project.run("keys", "trust", "alice", other, "--force").code == 0
    with users.as_("carol"):
        listing = json.loads(project.run("keys", "list", "--json").out)
    assert listing["mine"]["name"] == "carol" and listing["mine"]["public"] == other
    assert listing["trusted"] == [{"name": "alice", "public": other, "yours": True}]
    assert project.run("keys", "untrust", "alice").code == 0
    assert "alice" not in project.read(".pipeflow/config")
    res = project.run("keys", "untrust", "alice")
    assert res.code == 2 and "no trusted key named 'alice'" in res.err


def test_keys_generate_refuses_to_replace_a_key(project: Project, users: Users) -> None:
    users.generate(project, "alice")
    with users.as_("alice"):
        res = project.run("keys", "generate", "--name", "alice")
        assert res.code == 2 and "already exists" in res.err
        res = project.run("keys", "generate", "--name", "alice", "--force")
        assert res.code == 0 and "pipeflow keys trust alice ed25519:" in res.out


def test_verify_checks_the_tag_log_signatures_and_lists_refused_moves(
        project: Project, users: Users) -> None:
    from pipeflow.lineage import tags
    from tests.functional.helpers_registry import MODEL as NAME
    from tests.functional.helpers_registry import PATH, labels, model_with_versions

    key = users.generate(project, "alice")
    with users.as_("alice"):
        model_with_versions(project, (0.1, 0.2))
        with (project.root / ".pipeflow/config").open("a") as f:
            f.write(f'registry:\n  protected: ["production*"]\nkeys:\n  trusted:\n'
                    f'    alice: "{key}"\n')
        v = labels(project)
        assert project.run("promote", f"{NAME}@v1", "production").code == 0
        body = json.loads(project.run("verify", "--json").out)["signatures"]
        assert body["by_signer"] == {"alice": {"records": 5, "tags": 1}}  # 3 runs, 2 retrains
        # a move forced into the log by hand, unsigned: refused, listed, not a failure
        tags.move(project.root / ".pipeflow", "b" * 16, PATH, "production", v["v2"], "mallory")
        res = project.run("verify")
        assert res.code == 0, res.text
        assert "refused: .pipeflow/tags.jsonl:2: move of protected alias 'production'" in res.out
        assert "signed by alice: 5 run record(s), 1 tag-log entry" in res.out
        # alice's signed move with its signature changed: a bad signature, exit 1
        log = project.root / ".pipeflow/tags.jsonl"
        lines = log.read_text().splitlines()
        entry = json.loads(lines[0])
        entry["sig"]["value"] = entry["sig"]["value"][:-4] + (
            "AAA=" if not entry["sig"]["value"].endswith("AAA=") else "BBB=")
        lines[0] = json.dumps(entry)
        log.write_text("\n".join(lines) + "\n")
        res = project.run("verify", "--json")
        assert res.code == 1, res.text
        (bad,) = [p for p in json.loads(res.out)["problems"] if p["kind"] == "bad-signature"]
        assert bad["subject"] == ".pipeflow/tags.jsonl:1" and "does not verify" in bad["message"]
