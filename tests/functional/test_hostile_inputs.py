"""Crafted files in a clone or a remote end in a clear, located error or a skipped
entry with a warning: never an internal error (exit 3), never minutes of work."""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import Project

BOMB = "\n".join(
    ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    + [f"{chr(97 + i)}: &{chr(97 + i)} [" + ",".join([f"*{chr(96 + i)}"] * 9) + "]"
       for i in range(1, 10)]) + "\n"


def _one_stage(p: Project) -> None:
    p.write("data/raw.txt", "hi\n")
    p.params({"train": {"lr": 1}})
    p.spec({"train": {
        "cmd": "mkdir -p models && cp data/raw.txt models/model.txt && "
               "echo '{\"acc\": 1}' > metrics.json",
        "deps": ["data/raw.txt"], "params": ["train.lr"], "outs": ["models"],
        "metrics": ["metrics.json"]}})
    assert p.run("init").code == 0
    assert p.run("repro").code == 0, p.run("repro").text


def _no_crash(p: Project, *args: str) -> str:
    r = p.cli(*args)
    assert r.code != 3 and "Traceback" not in r.text and "internal error" not in r.text, r.text
    return r.text


def _plant_record(p: Project, body_or_bytes: dict[str, object] | bytes) -> str:
    """A second record in this clone's chain, named by its real SHA-256 (as a fetch
    from a remote anyone can write to would bring it)."""
    first = next((p.root / ".pipeflow/cache/runs").glob("*/*.json"))
    if isinstance(body_or_bytes, bytes):
        data = body_or_bytes
    else:
        body = {**json.loads(first.read_bytes()), **body_or_bytes, "seq": 2,
                "prev": first.name[9:-5]}
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    name = f"00000002-{hashlib.sha256(data).hexdigest()}.json"
    (first.parent / name).write_bytes(data)
    return name


@pytest.mark.parametrize("field", [
    {"outputs": 5},
    {"metrics": [1, 2]},
    {"outputs": [{"path": "models", "hash": "53fa00ea08a5592f8067945b76138bb9",
                  "size": "abc"}]},
    b'{"a":' + b"[" * 5000 + b"]" * 5000 + b"}",
    b"\xff\xfe not json",
], ids=["outputs-5", "metrics-list", "size-abc", "deep", "binary"])
def test_a_bad_record_is_skipped_with_a_warning_and_verify_reports_it(
        project: Project, field: dict[str, object] | bytes) -> None:
    _one_stage(project)
    name = _plant_record(project, field)
    first = _no_crash(project, "versions", "models")
    assert name in first and "skipped" in first
    for _ in range(2):  # the clone keeps working: the index did not take the bad record
        assert project.cli("versions", "models").code == 0
        assert project.cli("lineage", "models").code == 0
    r = project.cli("verify")
    assert r.code == 1 and name in r.text


def test_a_remote_record_name_without_dash_is_not_fetched(project: Project,
                                                          tmp_path: Path) -> None:
    _one_stage(project)
    store = tmp_path / "store"
    assert project.run("remote", "add", "origin", str(store)).code == 0
    assert project.run("push").code == 0
    chain = next((store / "runs").iterdir())
    (chain / "abc.json").write_text("{}")
    (chain / "00000009.json").write_text("{}")
    text = _no_crash(project, "fetch")
    assert project.cli("fetch").code == 0, text
    assert not list((project.root / ".pipeflow/cache/runs").glob("*/abc.json"))


@pytest.mark.parametrize("config", [
    b"cache:\n  dir: \xff\xfe\n",
    b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    b"remote: " + BOMB.replace("\n", "\n  ").encode(),
], ids=["not-utf8", "deep", "bomb"])
def test_a_bad_config_is_a_located_error(project: Project, config: bytes) -> None:
    _one_stage(project)
    (project.root / ".pipeflow/config").write_bytes(config)
    r = project.cli("remote", "list")
    assert r.code == 2 and ".pipeflow/config" in r.err, r.text
    assert "Traceback" not in r.text


@pytest.mark.parametrize("line", [
    b"[" * 100000 + b"]" * 100000,
    b'{"a": ' + b"[" * 500 + b"]" * 500 + b"}",
    b'{"path": "models\xff", "name": "prod", "hash": "x", "user": "u", "when": "t"}',
], ids=["very-deep", "deep", "not-utf8"])
def test_bad_tag_log_lines_are_skipped(project: Project, line: bytes) -> None:
    _one_stage(project)
    (project.root / ".pipeflow/tags.jsonl").write_bytes(line + b"\n")
    r = project.cli("versions", "models")
    assert r.code == 0 and "tags.jsonl:1" in r.err and "skipped" in r.err, r.text


@pytest.mark.parametrize("file", ["pipeline.yaml", "params.yaml"])
def test_a_yaml_bomb_fails_fast_with_a_located_error(project: Project, file: str) -> None:
    _one_stage(project)
    path = project.root / file
    if file == "params.yaml":
        path.write_text(path.read_text() + BOMB)
    else:
        path.write_text(BOMB + "stages: {}\n")
    started = time.monotonic()
    r = project.cli("status", timeout=30)
    assert time.monotonic() - started < 5
    assert r.code == 2 and f"{file}:" in r.err and "expands" in r.err, r.text


def test_a_huge_spec_is_refused_at_once(project: Project) -> None:
    _one_stage(project)
    stage = "  s{0}:\n    cmd: echo {0} > o{0}\n    outs: [o{0}]\n"
    (project.root / "pipeline.yaml").write_text(
        "stages:\n" + "".join(stage.format(i) for i in range(150_000)))
    started = time.monotonic()
    r = project.cli("status", timeout=60)
    assert time.monotonic() - started < 5
    assert r.code == 2 and "pipeline.yaml" in r.err and "PIPEFLOW_MAX_SPEC_MB" in r.err


def test_a_matrix_bomb_fails_fast(project: Project) -> None:
    _one_stage(project)
    axis = "[" + ",".join(map(str, range(1000))) + "]"
    project.write("pipeline.yaml", f"stages:\n  s:\n    matrix:\n      a: {axis}\n"
                  f"      b: {axis}\n    do:\n      cmd: echo ${{item.a}}\n"
                  "      outs: ['o_${item.a}_${item.b}']\n")
    started = time.monotonic()
    r = project.cli("status", timeout=30)
    assert time.monotonic() - started < 5
    assert r.code == 2 and "pipeline.yaml:4:" in r.err and "1,000,000 stages" in r.err, r.text


def test_a_stage_writing_a_metrics_bomb_fails_fast(project: Project) -> None:
    project.write("bomb.yaml", BOMB)
    project.spec({"s": {"cmd": "cp bomb.yaml m.yaml", "deps": ["bomb.yaml"],
                        "metrics": ["m.yaml"]}})
    assert project.run("init").code == 0
    started = time.monotonic()
    r = project.cli("repro", timeout=30)
    assert time.monotonic() - started < 5
    assert r.code == 1 and "metrics file 'm.yaml'" in r.err and "expands" in r.err, r.text


def test_a_binary_run_cache_pointer_is_skipped(project: Project, tmp_path: Path) -> None:
    _one_stage(project)
    pointer = next((project.root / ".pipeflow/cache/runcache").glob("*/*"))
    pointer.chmod(0o644)
    pointer.write_bytes(bytes(range(256)) * 4)
    assert project.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
    r = project.cli("push")
    assert r.code == 0 and "damaged" in r.text and "not pushed" in r.text, r.text
    _no_crash(project, "repro", "--force")


def _deep_path_manifest(raw: str) -> bytes:
    from pipeflow.content.manifest import Manifest, ManifestEntry

    return Manifest((ManifestEntry("a/" * 3000 + "f", raw, 3, False),)).to_bytes()


# An unsafe member path is a crafted manifest (exit 2, named); one that does not parse
# is treated as damaged, like a missing object (exit 1).
@pytest.mark.parametrize(("manifest", "code", "expected"), [
    (_deep_path_manifest, 2, "unsafe path"),
    (lambda raw: b'{"format":1,"entries":' + b"[" * 5000 + b"]" * 5000 + b"}",
     1, "nests too deeply"),
], ids=["path-3000-folders", "json-5000-levels"])
def test_a_crafted_folder_manifest_is_refused(
        project: Project, manifest: Callable[[str], bytes], code: int, expected: str) -> None:
    from pipeflow.content.hashing import hash_bytes

    _one_stage(project)
    lock = project.read("pipeline.lock")
    old = project.lock()["stages"]["train"]["outs"][0]["hash"]
    data = manifest(project.lock()["stages"]["train"]["deps"][0]["hash"])
    oid = hash_bytes(data)  # a remote would serve it under its real hash
    obj = project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    obj.parent.mkdir(parents=True, exist_ok=True)
    obj.write_bytes(data)
    project.write("pipeline.lock", lock.replace(old, oid))
    shutil.rmtree(project.root / "models")
    r = project.cli("checkout", "models")
    assert r.code == code and expected in r.text, r.text
    assert "Traceback" not in r.text
    assert not (project.root / "models").exists()
    _no_crash(project, "status")


def test_a_bad_record_fetched_from_a_remote_leaves_versions_and_lineage_working(
        project: Project, tmp_path: Path) -> None:
    _one_stage(project)
    store = tmp_path / "store"
    assert project.run("remote", "add", "origin", str(store)).code == 0
    assert project.run("push").code == 0
    own = next((store / "runs").iterdir())
    first = next(own.iterdir())
    # A teammate's chain (fetch never writes into this clone's own chain).
    chain = store / "runs" / "0123456789abcdef"
    chain.mkdir()
    body = {**json.loads(first.read_bytes()), "chain": chain.name, "outputs": 5}
    data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
    (chain / f"00000001-{hashlib.sha256(data).hexdigest()}.json").write_bytes(data)
    assert project.cli("fetch").code == 0
    for command in (("versions", "models"), ("lineage", "models"), ("versions", "models")):
        r = project.cli(*command)
        assert r.code == 0, r.text
    assert project.cli("verify").code == 1


def test_a_huge_lock_in_an_old_commit_is_refused_by_its_size_unread(
        project: Project, monkeypatch: pytest.MonkeyPatch) -> None:
    """A commit in the history may hold any pipeline.lock (a 400 MB one is a few MB in
    git): `metrics diff`, `params diff`, `versions` and `gc --rev` learn its size from
    git first and never read it."""
    from pipeflow.git import gitcmd
    from tests.functional.helpers import commit

    project.git("init", "-q")
    _one_stage(project)
    lock = project.read("pipeline.lock")
    project.write("pipeline.lock", "#" * (17 * 2**20) + "\n")  # past the 16 MB limit
    commit(project, "huge")
    project.write("pipeline.lock", lock)
    commit(project, "back")
    huge = project.git("rev-parse", "HEAD~1").strip()
    read: list[str] = []  # what git was asked to hand over whole
    real = gitcmd.run

    def spy(root: Path, *args: str, **kw: object) -> object:
        if args[:1] == ("show",) or "--batch" in args:
            read.append(" ".join(args) + " " + str(kw.get("stdin") or b"", "utf-8"))
        return real(root, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(gitcmd, "run", spy)
    for args in (("metrics", "diff", "HEAD~1"), ("params", "diff", "HEAD~1")):
        r = project.run(*args)
        assert r.code == 2 and "pipeline.lock at HEAD~1" in r.err and "MB" in r.err, r.text
    assert project.run("versions", "models").code == 0
    assert project.run("gc", "--rev", huge, "--dry").code == 0
    assert read, "the spy saw no read at all: it watches the wrong calls"
    assert not [r for r in read if "HEAD~1" in r or huge in r], read
