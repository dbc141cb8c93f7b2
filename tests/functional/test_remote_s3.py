"""A real S3 remote: an S3-compatible server (moto) on 127.0.0.1, through s3fs."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import Project
from tests.functional.helpers import chain

pytest.importorskip("s3fs")
moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3_env(monkeypatch: pytest.MonkeyPatch, s3_endpoint: str) -> str:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing-key-id")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing-secret-value")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    import boto3

    boto3.client("s3", endpoint_url=s3_endpoint).create_bucket(Bucket="team-cache")
    return s3_endpoint


def test_push_and_pull_through_s3(project: Project, tmp_path: Path, s3_env: str) -> None:
    chain(project)
    assert project.run("remote", "add", "s3", "s3://team-cache/proj").code == 0
    assert project.run("remote", "modify", "s3", "endpoint_url", s3_env, "--local").code == 0
    assert project.run("repro").code == 0
    res = project.run("push", "--json")
    assert res.code == 0, res.text
    assert json.loads(res.out)["records"] == 3
    assert json.loads(project.run("push", "--json").out)["objects"] == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "pipeline")
    clone = tmp_path / "colleague"
    subprocess.run(["git", "clone", "-q", str(project.root), str(clone)], check=True)
    other = Project(clone)
    assert other.run("remote", "modify", "s3", "endpoint_url", s3_env, "--local").code == 0
    res = other.run("pull")
    assert res.code == 0, res.text
    assert other.read("models/model.txt") == project.read("models/model.txt")
    assert other.run("status", "--check").code == 0
    text = other.run("versions", "models/model.txt").out + project.read(".pipeflow/config")
    assert "testing-secret-value" not in text


def test_unreachable_s3_names_the_url(project: Project, s3_env: str) -> None:
    chain(project)
    project.run("repro")
    project.run("remote", "add", "s3", "s3://no-such-bucket-here/x")
    project.run("remote", "modify", "s3", "endpoint_url", "http://127.0.0.1:9", "--local")
    res = project.run("push")
    assert res.code == 1, res.text
    assert "s3://no-such-bucket-here/x" in res.err
    assert "testing-secret-value" not in res.text


def test_gc_reads_object_times_from_s3(project: Project, s3_env: str) -> None:
    chain(project)
    assert project.run("remote", "add", "s3", "s3://team-cache/gc").code == 0
    assert project.run("remote", "modify", "s3", "endpoint_url", s3_env, "--local").code == 0
    assert project.run("repro").code == 0
    project.params({"prep": {"n": 3}, "train": {"lr": 0.5, "epochs": 2}, "eval": {"k": 1}})
    assert project.run("repro").code == 0
    assert project.run("push").code == 0
    args = ("gc", "--workspace", "--keep-days", "0", "--remote", "s3", "--yes", "--json")
    young = json.loads(project.run(*args).out)["remote"]
    assert young["removed"] == [] and young["kept_by"]["grace"] >= 1  # just pushed
    old = json.loads(project.run(*args, "--grace", "0").out)["remote"]
    assert len(old["removed"]) >= 1 and "grace" not in old["kept_by"]  # S3 gave its times
    assert project.run("status", "--check").code == 0


def test_a_bad_option_is_an_internal_error_not_a_failed_remote(
        project: Project, s3_env: str) -> None:
    """s3fs hands unknown options to the botocore session: a TypeError, which is no
    I/O failure of the remote: exit 3 and, with --verbose, the traceback."""
    chain(project)
    project.run("repro")
    project.run("remote", "add", "s3", "s3://team-cache/bad")
    project.run("remote", "modify", "s3", "endpoint_url", s3_env, "--local")
    assert project.run("remote", "modify", "s3", "some_bad_option", "1").code == 0
    res = project.run("push", "--verbose")
    assert res.code == 3, res.text
    assert "internal error: TypeError" in res.err and "some_bad_option" in res.err
    assert "Traceback" in res.err


def test_get_serves_a_model_from_s3_without_a_clone(project: Project, tmp_path: Path,
                                                    s3_env: str,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    project.params({"train": {"C": 1}})
    project.spec({"train": {"cmd": "mkdir -p models && echo C=${train.C} > models/m.pkl",
                            "params": ["train.C"],
                            "outs": [{"models/m.pkl": {"model": "wine"}}]}})
    assert project.run("repro").code == 0
    project.git("add", "-A")
    project.git("commit", "-qm", "v1")
    assert project.run("tag", "models/m.pkl@v1", "production").code == 0
    assert project.run("remote", "add", "s3", "s3://team-cache/registry").code == 0
    assert project.run("remote", "modify", "s3", "endpoint_url", s3_env, "--local").code == 0
    res = project.run("push")
    assert res.code == 0 and "published the registry snapshot" in res.out, res.text
    # a serving machine: no clone, the endpoint and credentials from its environment
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_env)
    server = tmp_path / "server"
    server.mkdir()
    proc = subprocess.run([sys.executable, "-m", "pipeflow", "get", "s3://team-cache/registry",
                           "wine@production", "-o", "m.pkl"], cwd=server,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (server / "m.pkl").read_text() == project.read("models/m.pkl")
