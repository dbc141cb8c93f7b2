"""The remote a repository names: the committed config's url and options are data.

A chained fsspec URL with ``cache_storage`` made ``pull`` write every downloaded file
into any folder; a local-path url naming a sibling project's cache made ``push`` fill
it with this clone's records (and ``gc --remote`` empty it); ``push`` relayed records
that came through git as its own. Each attack: a crafted repository, the victim's real
command, a clear refusal naming ``.pipeflow/config``, nothing outside changed.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import Project
from tests.functional.helpers import commit
from tests.functional.test_hostile_cache import canary, clone, published, snapshot


def _set_remote(attacker: Project, settings: dict[str, Any], extra: str = "") -> None:
    """Commit and push a config whose remote 'origin' says ``settings``."""
    config = yaml.safe_load(attacker.read(".pipeflow/config"))
    config["remote"]["origin"] = settings
    attacker.write(".pipeflow/config", yaml.safe_dump(config) + extra)
    commit(attacker, "remote")
    attacker.git("push", "-q")


def _refused(res: Any, *needles: str) -> None:
    assert res.code == 2, res.text
    assert "Traceback" not in res.text
    for needle in (".pipeflow/config", "remote 'origin'", "config.local", *needles):
        assert needle in res.err, (needle, res.err)


def test_committed_cache_wrapper_url_writes_nowhere_outside(
        project: Project, tmp_path: Path) -> None:
    home = canary(tmp_path / "home")
    origin = published(project, tmp_path)
    store = tmp_path / "store"
    (store / "runcache" / "ab").mkdir(parents=True)
    (store / "runcache" / "ab" / "abcdef").write_text('echo "code from the remote"\n')
    _set_remote(project, {"url": f"simplecache::file://{store}",
                          "simplecache": {"cache_storage": str(home / ".bashrc.d")}})
    victim = clone(origin, tmp_path / "victim")
    before = snapshot(home)
    for args in (("pull",), ("fetch",), ("push",), ("gc", "--workspace", "--remote",
                                                   "origin", "--yes")):
        _refused(victim.run(*args), "'::'")
    assert snapshot(home) == before
    # the same, chosen by this machine in config.local, is taken as it is
    victim.write(".pipeflow/config.local", yaml.safe_dump({"remote": {"mine": {
        "url": f"simplecache::file://{store}",
        "simplecache": {"cache_storage": str(tmp_path / "mine")}}}}))
    assert victim.run("pull", "-r", "mine").code == 0
    assert (tmp_path / "mine").is_dir()


@pytest.mark.parametrize("settings, needle", [
    ({"url": "memory://x"}, "protocol 'memory'"),
    ({"url": "reference://"}, "protocol 'reference'"),
    ({"url": "zip://x.zip"}, "protocol 'zip'"),
    ({"url": "STORE", "target_protocol": "memory"}, "'target_protocol'"),
    ({"url": "STORE", "cache_storage": "HOME"}, "'cache_storage'"),
    ({"url": "STORE", "fo": "HOME/refs.json"}, "'fo'"),
    ({"url": "STORE", "simplecache": {"same_names": True}}, "'simplecache'"),
    ({"url": "STORE", "client_kwargs": {"remote_options": {}}},
     "'client_kwargs.remote_options'"),
])
def test_committed_protocols_and_options_beyond_storage_are_refused(
        project: Project, tmp_path: Path, settings: dict[str, Any], needle: str) -> None:
    home = canary(tmp_path / "home")
    origin = published(project, tmp_path)
    store, text = str(tmp_path / "store"), yaml.safe_dump(settings)
    _set_remote(project, yaml.safe_load(text.replace("STORE", store).replace(
        "HOME", str(home))))
    victim = clone(origin, tmp_path / "victim")
    before = snapshot(home)
    _refused(victim.run("pull"), needle)
    assert snapshot(home) == before


def test_remote_add_and_modify_refuse_what_the_committed_config_may_not_say(
        project: Project, tmp_path: Path) -> None:
    published(project, tmp_path)
    _refused(project.run("remote", "add", "origin", "memory://x", "--force"), "'memory'")
    _refused(project.run("remote", "modify", "origin", "target_protocol", "file"),
             "'target_protocol'")
    assert project.run("remote", "modify", "origin", "target_protocol", "file",
                       "--local").code == 0
    # plain storage settings stay the project's to commit
    assert project.run("remote", "add", "s3", "s3://team/p").code == 0
    assert project.run("remote", "modify", "s3", "endpoint_url", "http://minio:9000").code == 0
    assert project.run("remote", "modify", "origin", "auto_mkdir", "true").code == 0


def _sibling(tmp_path: Path, name: str) -> Project:
    """Another pipeflow project beside the victim, with data in its cache."""
    other = Project(tmp_path / name)
    other.root.mkdir()
    subprocess.run(["git", "init", "-q", "-b", "main", str(other.root)], check=True)
    assert other.run("init").code == 0
    other.write("big.csv", "1\n2\n3\n")
    assert other.run("add", "big.csv").code == 0
    commit(other, "data")
    return other


@pytest.mark.parametrize("url", ["../B/.pipeflow/cache", "B_ABS/.pipeflow/cache",
                                 "../B/.git", "LINK", "../victim", ".pipeflow/cache",
                                 "../B/.PIPEFLOW/cache"])
def test_committed_local_remote_into_pipeflow_or_git_state_is_refused(
        project: Project, tmp_path: Path, url: str) -> None:
    other = _sibling(tmp_path, "B")
    (tmp_path / "link").symlink_to(other.root / ".pipeflow" / "cache")
    origin = published(project, tmp_path)
    url = url.replace("B_ABS", str(other.root)).replace("LINK", str(tmp_path / "link"))
    _set_remote(project, {"url": url})
    victim = clone(origin, tmp_path / "victim")
    before = snapshot(other.root)
    for args in (("push",), ("pull",), ("gc", "--workspace", "--remote", "origin", "--yes",
                                        "--keep-days", "0", "--grace", "0")):
        _refused(victim.run(*args))
    assert snapshot(other.root) == before
    assert other.run("status").code == 0


def test_push_relays_no_records_that_came_through_git(project: Project,
                                                      tmp_path: Path) -> None:
    origin = published(project, tmp_path)
    project.git("add", "-f", ".pipeflow/cache/runs", ".pipeflow/cache/runcache")
    _set_remote(project, {"url": str(tmp_path / "empty")})
    victim = clone(origin, tmp_path / "victim")
    res = victim.run("push")
    assert res.code == 0, res.text
    assert "came through git" in res.text
    sent = [p for p in (tmp_path / "empty").rglob("*")
            if p.is_file() and {"runs", "runcache"} & set(p.parts)]
    assert sent == []


def test_committed_config_may_not_shorten_the_grace_period(
        project: Project, tmp_path: Path) -> None:
    origin = published(project, tmp_path)
    config = yaml.safe_load(project.read(".pipeflow/config"))
    config["gc"] = {"grace": 0}
    project.write(".pipeflow/config", yaml.safe_dump(config))
    commit(project, "grace")
    project.git("push", "-q")
    victim = clone(origin, tmp_path / "victim")
    assert victim.run("pull").code == 2  # every command: the value is wrong where it is
    before = snapshot(victim.root / ".pipeflow" / "cache" / "objects")
    res = victim.run("gc", "--workspace", "--yes", "--keep-days", "0")
    assert res.code == 2 and "gc.grace" in res.err and "config.local" in res.err
    assert snapshot(victim.root / ".pipeflow" / "cache" / "objects") == before
    victim.write(".pipeflow/config.local", "gc:\n  grace: 0\n")  # this machine's choice
    assert victim.run("gc", "--workspace", "--yes", "--keep-days", "0").code == 0
