"""Credentials never land in what pipeflow commits, stores, pushes or prints (issue 11,
item 9): the committed config refuses them whatever the command (`remote add` or
`remote modify`, any key, `url` included); `env.vars` with secret names are kept as
a digest in pipeline.lock, run records and lineage; URLs are redacted in every
message, also with `/` or `@` in the password."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.conftest import Project

SECRET = "S3CR3T-v4lue+/=="
CONNECTION = ("DefaultEndpointsProtocol=https;AccountName=acct;"
              f"AccountKey={SECRET};EndpointSuffix=core.windows.net")


def _files_holding(folder: Path, secret: str) -> list[str]:
    """Files under ``folder`` whose bytes hold ``secret`` (SQLite databases too)."""
    needle = secret.encode()
    return [str(p) for p in folder.rglob("*") if p.is_file() and needle in p.read_bytes()]


def _assert_nowhere(project: Project, secret: str, *extra: Path) -> None:
    """Not in the committed files, the project's .pipeflow, nor the remote folders."""
    for rel in (".pipeflow/config", "pipeline.lock", "pipeline.yaml"):
        path = project.root / rel
        if path.exists():
            assert secret not in path.read_text(), rel
    assert _files_holding(project.root / ".pipeflow", secret) == []
    for folder in extra:
        assert _files_holding(folder, secret) == []
    assert secret not in project.git("ls-files", "-s")  # nothing staged by mistake


def _with_remote(project: Project, tmp_path: Path) -> Path:
    assert project.run("init").code == 0
    store = tmp_path / "store"
    assert project.run("remote", "add", "origin", str(store)).code == 0
    return store


# -- the committed config ----------------------------------------------------------------

@pytest.mark.parametrize(("key", "value"), [
    ("connection_string", CONNECTION),
    ("sas_token", f"sv=2024&sig={SECRET}"),
    ("AZURE_STORAGE_KEY", SECRET),
    ("aws_secret_access_key", SECRET),
    ("client_secret", SECRET),
    ("credentials_file", f"/home/bob/{SECRET}.json"),
    ("endpoint_url", f"https://minio:{SECRET}@minio.internal:9000"),  # by its value
    ("account_url", f"https://acct.blob.core.windows.net/c?sv=2024&sig={SECRET}"),
])
def test_modify_refuses_a_credential_in_the_committed_config(
        project: Project, tmp_path: Path, key: str, value: str) -> None:
    store = _with_remote(project, tmp_path)
    res = project.run("remote", "modify", "origin", key, value)
    assert res.code == 2, res.text
    assert "looks like a credential" in res.err or "contains credentials" in res.err
    assert "--local" in res.err and "Traceback" not in res.text
    assert SECRET not in res.text
    _assert_nowhere(project, SECRET, store)


def test_modify_url_refuses_a_password_as_add_does(project: Project, tmp_path: Path) -> None:
    store = _with_remote(project, tmp_path)
    for password in (SECRET, "pa/ss@w0rd-S3CR3T"):
        url = f"https://bob:{password}@host.example/store"
        for args in (("modify", "origin", "url", url), ("add", "other", url)):
            res = project.run("remote", *args, "--verbose")
            assert res.code == 2, res.text
            assert ("contains credentials" in res.err or "%2F" in res.err), res.err
            assert password not in res.text
            assert "S3CR3T" not in res.text
            _assert_nowhere(project, password, store)
    assert json.loads(project.run("remote", "list", "--json").out)["remotes"][0]["url"] == str(
        store)


def test_the_local_config_takes_credentials_and_stays_out_of_git(project: Project,
                                                                  tmp_path: Path) -> None:
    store = _with_remote(project, tmp_path)
    assert project.run("remote", "modify", "origin", "connection_string", CONNECTION,
                       "--local").code == 0
    url = f"https://bob:pa@ss{SECRET}@host.example/store"
    added = project.run("remote", "add", "web", url, "--local")
    assert added.code == 0, added.text
    assert SECRET not in added.text and "https://***@host.example/store" in added.out
    # an unescaped '/' would make every URL parser read a wrong host: refused, redacted
    slash = project.run("remote", "add", "web2", f"https://bob:pa/ss{SECRET}@host/x", "--local")
    assert slash.code == 2 and "%2F" in slash.err and SECRET not in slash.text
    assert SECRET in project.read(".pipeflow/config.local")
    project.git("add", "-A")
    assert ".pipeflow/config.local" not in project.git("ls-files")
    subprocess.run(["git", "check-ignore", "-q", ".pipeflow/config.local"], cwd=project.root,
                   check=True)
    for args in (("remote", "list"), ("remote", "list", "--json")):
        res = project.run(*args)
        assert res.code == 0 and SECRET not in res.text and "pa@ss" not in res.text
    assert SECRET not in project.read(".pipeflow/config")
    assert _files_holding(store, SECRET) == []


def test_a_remote_error_never_shows_the_password(project: Project, tmp_path: Path) -> None:
    """An unreachable web remote whose password holds `@`: the error, its --verbose
    traceback and --json never quote it."""
    _with_remote(project, tmp_path)
    url = f"http://bob:pa@ss{SECRET}@127.0.0.1:9/store"
    assert project.run("remote", "add", "web", url, "--local", "--default", "--force").code == 0
    project.write("data.txt", "x\n")
    assert project.run("add", "data.txt").code == 0
    for extra in ((), ("--verbose",), ("--json",), ("--json", "--verbose")):
        res = project.run("push", "-r", "web", *extra)
        assert res.code != 0, res.text
        assert SECRET not in res.text and "pa@ss" not in res.text, res.text
        assert "cannot upload" in res.err and "internal error" not in res.text


# -- env.vars ------------------------------------------------------------------------------

def _env_stage(project: Project) -> None:
    project.write("in.txt", "x\n")
    project.spec({"s": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outs": ["out.txt"],
                        "env": {"vars": ["AWS_SECRET_ACCESS_KEY", "DATABASE_URL",
                                         "OMP_NUM_THREADS"]}}})


def test_secret_env_vars_are_never_stored_or_shown(project: Project, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    store = _with_remote(project, tmp_path)
    _env_stage(project)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("DATABASE_URL", "postgres://app:DbPassw0rd@db.internal/prod")
    monkeypatch.setenv("OMP_NUM_THREADS", "4")
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    variables = project.lock()["stages"]["s"]["env"]["vars"]
    assert variables["OMP_NUM_THREADS"] == "4"  # a plain variable keeps its value
    assert variables["AWS_SECRET_ACCESS_KEY"].startswith("hidden:")
    assert variables["DATABASE_URL"].startswith("hidden:")  # credentials in its value
    for secret in (SECRET, "DbPassw0rd"):
        _assert_nowhere(project, secret, store)
        for args in (("lineage", "out.txt"), ("lineage", "out.txt", "--format", "json"),
                     ("status", "--json"), ("status",), ("versions", "out.txt")):
            res = project.run(*args)
            assert res.code == 0 and secret not in res.text, (args, res.text)

    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "an0ther-" + SECRET)
    status = project.run("status", "--json")
    assert "AWS_SECRET_ACCESS_KEY changed" in status.out and SECRET not in status.out
    assert project.run("status", "--check").code == 1  # a changed secret still reruns
    assert project.run("repro").code == 0
    assert project.run("status", "--check").code == 0
    _assert_nowhere(project, SECRET, store)


def test_an_old_lock_and_record_with_a_secret_in_clear(project: Project, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """What an older pipeflow wrote (the value in clear) is never shown, and the next
    repro replaces it in the lock."""
    import pipeflow.code.environment

    _with_remote(project, tmp_path)
    _env_stage(project)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    with monkeypatch.context() as old_pipeflow:
        old_pipeflow.setattr(pipeflow.code.environment, "env_value", lambda name, value: value)
        assert project.run("repro").code == 0
    assert SECRET in project.read("pipeline.lock")  # as an older pipeflow left it
    for args in (("lineage", "out.txt"), ("lineage", "out.txt", "--format", "json"),
                 ("status",), ("status", "--json")):
        res = project.run(*args)
        assert res.code == 0 and SECRET not in res.text, (args, res.text)
    assert "values not shown" in project.run("status").out
    assert project.run("repro").code == 0
    assert SECRET not in project.read("pipeline.lock")
    assert project.run("status", "--check").code == 0


def test_the_fingerprint_key_is_shared_or_the_stage_reruns(
        project: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _with_remote(project, tmp_path)
    _env_stage(project)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("PIPEFLOW_FINGERPRINT_KEY", "team-key")
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["s"]["env"]["vars"]["AWS_SECRET_ACCESS_KEY"].startswith(
        "hidden+key:")
    assert project.run("status", "--check").code == 0
    monkeypatch.delenv("PIPEFLOW_FINGERPRINT_KEY")
    res = project.run("status")
    assert "PIPEFLOW_FINGERPRINT_KEY is set in one place" in res.out and SECRET not in res.out


def test_a_credential_already_committed_is_a_located_error(project: Project,
                                                           tmp_path: Path) -> None:
    """A config that an older `remote modify` let a connection string into: every
    command stops, names the file and the key, never the value, and says the fix."""
    _with_remote(project, tmp_path)
    config = project.root / ".pipeflow" / "config"
    config.write_text(config.read_text().replace(
        "url:", f"connection_string: '{CONNECTION}'\n    url:"))
    for args in (("remote", "list", "--json"), ("push", "--verbose"), ("pull",)):
        res = project.run(*args)
        assert res.code == 2, (args, res.text)
        assert ".pipeflow/config" in res.err and "'connection_string'" in res.err
        assert "config.local" in res.err and "rotate" in res.err
        assert SECRET not in res.text  # --verbose: the traceback neither


def test_a_committed_credential_can_be_moved_out_with_pipeflow_itself(
        project: Project, tmp_path: Path) -> None:
    """The fix the error names works: the edit that removes the credential is not
    blocked by it, and nothing else may be added while it is there."""
    _with_remote(project, tmp_path)
    config = project.root / ".pipeflow" / "config"
    config.write_text(config.read_text().replace(
        "url:", f"connection_string: '{CONNECTION}'\n    url:"))
    res = project.run("remote", "list")
    assert res.code == 2 and "remote modify origin connection_string --unset" in res.err
    assert project.run("remote", "modify", "origin", "region", "eu").code == 2
    res = project.run("remote", "modify", "origin", "connection_string", CONNECTION, "--local")
    assert res.code == 0, res.text
    res = project.run("remote", "modify", "origin", "connection_string", "--unset")
    assert res.code == 0, res.text
    assert SECRET not in config.read_text()
    assert SECRET in (project.root / ".pipeflow" / "config.local").read_text()
    assert project.run("remote", "list").code == 0


# -- what is not a credential --------------------------------------------------------------

def test_storage_settings_that_are_not_credentials_are_accepted(project: Project,
                                                                 tmp_path: Path) -> None:
    """A MinIO/Ceph remote's `signature_version` and a KMS key's ARN made every command,
    `status` included, exit 2 ("rotate it"); nested settings are checked by name."""
    _with_remote(project, tmp_path)
    config = project.root / ".pipeflow" / "config"
    config.write_text(config.read_text().replace("url:", (
        "config_kwargs: {signature_version: s3v4}\n"
        "    s3_additional_kwargs: {ServerSideEncryption: 'aws:kms', "
        "SSEKMSKeyId: 'arn:aws:kms:eu-west-1:111:key/abc'}\n"
        "    session_kwargs: {region_name: eu-west-1}\n    url:")))
    for args in (("status",), ("remote", "list")):
        res = project.run(*args)
        assert res.code == 0, (args, res.text)
    assert project.run("remote", "modify", "origin", "signature_version", "s3v4").code == 0
    config.write_text(config.read_text().replace(
        "region_name: eu-west-1", f"aws_session_token: '{SECRET}'"))
    res = project.run("remote", "list")
    assert res.code == 2 and "'session_kwargs.aws_session_token'" in res.err, res.text


def test_plain_env_vars_keep_their_values(project: Project,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """`SORT_KEY`, `AUTH_MODE`, `SESSION_ID`... are settings: the lock keeps their
    values and status says what changed."""
    names = ["AUTH_MODE", "SORT_KEY", "KEY_COLUMN", "PRIVATE_DATA_DIR",
             "CONNECTION_POOL_SIZE", "SESSION_ID"]
    project.write("in.txt", "x\n")
    project.spec({"s": {"cmd": "cp in.txt out.txt", "deps": ["in.txt"], "outs": ["out.txt"],
                        "env": {"vars": names}}})
    for name in names:
        monkeypatch.setenv(name, "one")
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["s"]["env"]["vars"] == dict.fromkeys(names, "one")
    monkeypatch.setenv("SORT_KEY", "two")
    res = project.run("status")
    assert "SORT_KEY 'one' -> 'two'" in res.out or "SORT_KEY one -> two" in res.out, res.out
    assert "values not shown" not in res.out


@pytest.mark.parametrize("where", [(), ("--local",)])
def test_a_wrong_value_is_the_value_given_not_a_config_file(
        project: Project, tmp_path: Path, where: tuple[str, ...]) -> None:
    """`trust_run_cache maybe --local` named config.local as if that file held the bad
    value, though nothing was written: the error is the value given."""
    _with_remote(project, tmp_path)
    before = {p.name: p.read_bytes() for p in (project.root / ".pipeflow").glob("config*")}
    res = project.run("remote", "modify", "origin", "trust_run_cache", "maybe", *where)
    assert res.code == 2, res.text
    assert "trust_run_cache must be true or false; the value given, 'maybe', is not" in res.err
    assert "nothing was written" in res.err and "config" not in res.err.split("hint")[0]
    assert before == {p.name: p.read_bytes()
                      for p in (project.root / ".pipeflow").glob("config*")}
    assert project.run("remote", "modify", "origin", "trust_run_cache", "true", *where).code == 0


def test_remote_modify_help_gives_examples_that_work(project: Project, tmp_path: Path) -> None:
    """Each example of `remote modify --help` runs as shown (a credential with --local)."""
    import shlex

    _with_remote(project, tmp_path)
    res = project.run("remote", "modify", "--help")
    assert res.code == 0 and "Examples:" in res.out, res.text
    examples = [line.strip() for line in res.out.splitlines()
                if line.strip().startswith("pipeflow remote modify ")]
    assert any("--local" in e for e in examples) and any("--unset" in e for e in examples)
    assert any("trust_run_cache true" in e for e in examples)
    assert any(e.endswith("--local") and "secret" in e for e in examples)
    for example in examples:
        args = [{"$MINIO_SECRET": SECRET, "$AZ_CONN": CONNECTION}.get(a, a)
                for a in shlex.split(example.replace('"', ""))[1:]]
        res = project.run(*args)
        assert res.code == 0, (example, res.text)
    assert SECRET not in project.read(".pipeflow/config")
