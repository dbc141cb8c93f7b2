"""``pipeflow export`` (a version under a templated name, its lineage JSON and model card
beside it) and ``pipeflow env export`` (the environment its runs recorded), on real
git projects whose stage imports PyYAML."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import Project
from tests.functional.helpers import commit

TRAIN = """\
import pathlib
import yaml

params = yaml.safe_load(open("params.yaml"))
rows = open("data/raw.csv").read()
pathlib.Path("models").mkdir(exist_ok=True)
pathlib.Path("models/model.pkl").write_text(f"C={params['train']['C']}\\n{rows}")
c = params["train"]["C"]
pathlib.Path("metrics.json").write_text('{"acc": %s}' % (c / 10 if c != str(c) else 0))
"""


def registry_project(p: Project) -> dict[str, str]:
    """A model ``wine`` (models/model.pkl) trained twice (C=0.5: v1, then C=2: v2) from
    source data added with ``pipeflow add``; returns each version's bytes by label."""
    p.write("data/raw.csv", "a,b\n1,2\n")
    p.write("src/train.py", TRAIN)
    p.params({"train": {"C": 0.5}})
    p.spec({"train": {
        "cmd": "python src/train.py", "deps": ["data/raw.csv", "src/train.py"],
        "params": ["train.C"],
        "outs": [{"models/model.pkl": {"model": "wine", "desc": "Wine quality classifier"}}],
        "metrics": ["metrics.json"]}})
    assert p.run("add", "data/raw.csv").code == 0
    commit(p, "data")
    seen = {}
    for n, c in ((1, 0.5), (2, 2)):
        p.params({"train": {"C": c}})
        res = p.run("repro")
        assert res.code == 0, res.text
        commit(p, f"C={c}")
        seen[f"v{n}"] = p.read("models/model.pkl")
    return seen


TEMPLATE = "{model}-v{n}-C{params.train.C}{ext}"


def test_export_to_a_folder_names_the_file_by_template_with_lineage_and_card(
        project: Project) -> None:
    seen = registry_project(project)
    assert project.run("promote", "wine@v1", "production").code == 0
    assert project.run("note", "wine@v1", "baseline for the March data").code == 0
    res = project.run("export", "wine@production", "dist", "--name-template", TEMPLATE)
    assert res.code == 0, res.text
    dist = project.root / "dist"
    assert sorted(p.name for p in dist.iterdir()) == [
        "wine-v1-C0.5.pkl", "wine-v1-C0.5.pkl.card.md", "wine-v1-C0.5.pkl.lineage.json"]
    assert (dist / "wine-v1-C0.5.pkl").read_text() == seen["v1"]
    lineage = project.run("lineage", "models/model.pkl@v1", "--format", "json")
    assert json.loads((dist / "wine-v1-C0.5.pkl.lineage.json").read_text()) == json.loads(
        lineage.out)

    card = (dist / "wine-v1-C0.5.pkl.card.md").read_text()
    version = next(v for v in json.loads(project.run("versions", "models/model.pkl",
                                                     "--json").out)["versions"]
                   if v["version"] == "v1")
    run = json.loads(lineage.out)["runs"][0]
    raw = next(a for a in json.loads(lineage.out)["artifacts"] if a["path"] == "data/raw.csv")
    assert card.startswith("# wine v1\n\nWine quality classifier\n")
    assert f"- **Version**: v1 (`{version['hash']}`)" in card
    assert "- **Aliases**: production" in card
    assert "- **Note**: baseline for the March data" in card
    assert "| train.C | 0.5 |" in card
    assert "| metrics.json:acc | 0.05 |" in card
    assert f"- `data/raw.csv` v1 (`{raw['hash']}`, pipeflow add)" in card
    assert f"- commit `{run['git']['commit']}`" in card and "- tree: clean" in card
    code = next(c for c in run["code"] if c["path"] == "src/train.py")
    assert f"- `src/train.py` (`{code['hash'][:8]}`)" in card.split("## Code")[1]
    assert "src/train.py" not in card.split("## Data versions")[1].split("## Code")[0]
    assert f"- python: cpython {platform.python_version()}" in card
    assert f"- PyYAML=={yaml.__version__}" in card
    assert "- **Author**: " + run["user"] + " (unverified)" in card  # no key signed it
    assert f"- **Date**: {version['first_seen'][:10]}" in card
    assert f"- train (run {run['id'][:12]}) <- data/raw.csv v1, src/train.py" in card
    for section in ("## Params", "## Metrics", "## Data versions", "## Code",
                    "## Environment", "## Lineage"):
        assert section in card
    res = project.run("export", "wine@production", "dist2", "--name-template",
                      "{alias}-{stem}-{hash}-{date}{ext}")
    assert res.code == 0, res.text
    day = version["first_seen"][:10]
    assert (project.root / f"dist2/production-model-{version['hash'][:8]}-{day}.pkl").exists()


def test_export_to_a_file_url_reports_json(project: Project, tmp_path: Path) -> None:
    seen = registry_project(project)
    url = (tmp_path / "published").as_uri()
    res = project.cli("export", "wine@v2", url, "--name-template", TEMPLATE, "--json")
    assert res.code == 0, res.text
    body = json.loads(res.out)
    assert body["version"] == "v2" and body["model"] == "wine" and body["name"] == "wine-v2-C2.pkl"
    assert (tmp_path / "published" / "wine-v2-C2.pkl").read_text() == seen["v2"]
    assert "# wine v2" in (tmp_path / "published" / "wine-v2-C2.pkl.card.md").read_text()
    assert body["files"]["lineage"].endswith("wine-v2-C2.pkl.lineage.json")
    assert not [p for p in (tmp_path / "published").iterdir() if p.name.startswith(".")]


def test_export_never_overwrites_without_force(project: Project) -> None:
    registry_project(project)
    assert project.run("export", "wine@v1", "dist").code == 0
    target = project.root / "dist" / "wine-v1.pkl"
    target.write_text("mine")
    res = project.run("export", "wine@v1", "dist")
    assert res.code == 2 and "already holds wine-v1.pkl" in res.err and "--force" in res.err
    assert target.read_text() == "mine"
    res = project.run("export", "wine@v1", "dist", "--force")
    assert res.code == 0, res.text
    assert target.read_text().startswith("C=0.5")
    assert sorted(p.name for p in (project.root / "dist").iterdir()) == [
        "wine-v1.pkl", "wine-v1.pkl.card.md", "wine-v1.pkl.lineage.json"]


def test_export_refuses_an_unknown_field_or_a_value_that_leaves_the_folder(
        project: Project) -> None:
    registry_project(project)
    res = project.run("export", "wine@v1", "dist", "--name-template", "{model}-{colour}{ext}")
    assert res.code == 2
    assert "unknown field '{colour}'" in res.err and "{params.SECTION.KEY}" in res.err
    assert "params.train.C" in res.err
    res = project.run("export", "wine@v1", "dist", "--name-template", "{params.train.X}")
    assert res.code == 2 and "no param 'train.X'" in res.err
    project.params({"train": {"C": "../../evil"}})
    assert project.run("repro").code == 0
    res = project.run("export", f"wine@{_current_hash(project)[:8]}", "dist",
                      "--name-template", "{params.train.C}")
    assert res.code == 2 and "would leave the destination folder" in res.err
    assert not (project.root / "dist").exists() or not list((project.root / "dist").iterdir())


def _current_hash(p: Project) -> str:
    return str(p.lock()["stages"]["train"]["outs"][0]["hash"])


def test_export_of_a_version_that_does_not_exist_lists_those_that_do(project: Project) -> None:
    registry_project(project)
    res = project.run("export", "wine@v7", "dist")
    assert res.code == 2
    assert "has no version 'v7'" in res.err and "v1 (" in res.err and "v2 (" in res.err
    res = project.run("export", "wine", "dist")
    assert res.code == 2 and "give the version" in res.err
    assert not (project.root / "dist").exists()


def test_a_folder_output_is_exported_as_a_folder(project: Project) -> None:
    project.spec({"train": {"cmd": "mkdir -p m/sub && echo w > m/weights && echo c > m/sub/c",
                            "outs": [{"m": {"model": "net"}}]}})
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("export", "net@v1", "out")
    assert res.code == 0, res.text
    assert (project.root / "out/net-v1/weights").read_text() == "w\n"
    assert (project.root / "out/net-v1/sub/c").read_text() == "c\n"
    assert (project.root / "out/net-v1.card.md").exists()
    import fsspec

    assert project.run("export", "net@v1", "memory://folders/net").code == 0
    fs = fsspec.filesystem("memory")
    assert fs.cat("/folders/net/net-v1/sub/c") == b"c\n"
    assert fs.cat("/folders/net/net-v1/weights") == b"w\n"
    fs.pipe("/folders/net/net-v1/stale", b"old")
    assert project.run("export", "net@v1", "memory://folders/net", "--force").code == 0
    assert not fs.exists("/folders/net/net-v1/stale")


def test_export_to_an_fsspec_url(project: Project) -> None:
    import fsspec

    seen = registry_project(project)
    res = project.run("export", "wine@v2", "memory://exports/wine", "--json")
    assert res.code == 0, res.text
    fs = fsspec.filesystem("memory")
    assert fs.cat("/exports/wine/wine-v2.pkl").decode() == seen["v2"]
    assert json.loads(fs.cat("/exports/wine/wine-v2.pkl.lineage.json"))["schema"] == 1
    assert project.run("export", "wine@v2", "memory://exports/wine").code == 2


def test_lineage_shows_the_packages_of_each_run(project: Project) -> None:
    registry_project(project)
    text = project.run("lineage", "wine@v2").out
    assert f"packages PyYAML {yaml.__version__}" in text
    body = json.loads(project.run("lineage", "models/model.pkl@v2", "--json").out)
    assert body["runs"][0]["env"]["packages"] == {"PyYAML": yaml.__version__}
    assert body["runs"][0]["env"]["python"] == f"cpython-{platform.python_version()}"


def test_env_export_conda_parses_with_the_exact_python(project: Project) -> None:
    registry_project(project)
    res = project.run("env", "export", "wine@v1", "--format", "conda")
    assert res.code == 0, res.text
    env = yaml.safe_load(res.out)
    assert env["dependencies"][0] == f"python={platform.python_version()}"
    assert {"pip": [f"PyYAML=={yaml.__version__}"]} in env["dependencies"]
    body = json.loads(project.run("env", "export", "wine@v1", "--format", "json").out)
    assert body["packages"] == {"PyYAML": yaml.__version__} and body["conflicts"] == []
    assert "imports" in res.out.splitlines()[3]  # the header says what records keep


def _index_reachable(tmp_path: Path) -> bool:
    """Whether pip can fetch the PyYAML this interpreter has (the index, a mirror or
    the configured wheel folders): else the install test cannot tell anything."""
    probe = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d",
         str(tmp_path / "probe"), f"PyYAML=={yaml.__version__}"],
        capture_output=True, text=True, timeout=300)
    return probe.returncode == 0


def test_env_export_installs_into_a_fresh_venv(project: Project, tmp_path: Path) -> None:
    registry_project(project)
    res = project.run("env", "export", "wine@v2", "-o", str(tmp_path / "requirements.txt"))
    assert res.code == 0, res.text
    lines = (tmp_path / "requirements.txt").read_text().splitlines()
    assert lines[0].startswith("# environment of wine (models/model.pkl) v2")
    assert [x for x in lines if not x.startswith("#")] == [f"PyYAML=={yaml.__version__}"]
    if not _index_reachable(tmp_path):
        pytest.skip("the package index is unreachable: pip cannot download PyYAML")
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    install = subprocess.run(
        [str(venv / "bin/python"), "-m", "pip", "install", "-q", "-r",
         str(tmp_path / "requirements.txt")], capture_output=True, text=True, timeout=600)
    assert install.returncode == 0, install.stdout + install.stderr
    got = subprocess.run([str(venv / "bin/python"), "-c", "import yaml; print(yaml.__version__)"],
                         capture_output=True, text=True, check=True)
    assert got.stdout.strip() == yaml.__version__


def test_a_damaged_or_missing_cached_copy_exports_nothing(project: Project) -> None:
    import os

    from pipeflow.project.project import Project as Core

    registry_project(project)
    oid = _current_hash(project)
    with Core(project.root) as core:
        cached = core.store.path_of(oid)
    os.chmod(cached, 0o644)
    cached.write_text("tampered")
    res = project.run("export", "wine@v2", "dist")
    assert res.code == 1 and "damaged" in res.err and "pipeflow verify" in res.err
    assert not (project.root / "dist").exists()  # not even the folder it would have made
    cached.unlink()
    res = project.run("export", "wine@v2", "dist")
    assert res.code == 1 and "is not in the cache" in res.err and "pipeflow fetch" in res.err
    (project.root / "dist").mkdir()
    assert project.run("export", "wine@v2", "dist").code == 1
    assert list((project.root / "dist").iterdir()) == []


def test_export_warns_about_skipped_lines_of_the_alias_log(project: Project) -> None:
    registry_project(project)
    assert project.run("promote", "wine@v2", "production").code == 0
    with open(project.root / ".pipeflow/tags.jsonl", "a") as log:
        log.write("{not json\n")
    res = project.run("export", "wine@production", "dist")
    assert res.code == 0, res.text
    assert "skipped" in res.err and "pipeflow verify" in res.err
    assert (project.root / "dist/wine-v2.pkl").exists()


def _venv_with(folder: Path, version: str) -> Path:
    """A bare venv whose site-packages holds a tiny distribution ``pfdemo`` at ``version``."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(folder)], check=True,
                   timeout=300)
    [site] = folder.glob("lib/python*/site-packages")
    info = site / f"pfdemo-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pfdemo\nVersion: {version}\n")
    return folder / "bin" / "python"


def test_env_export_refuses_runs_that_disagree_unless_first(project: Project,
                                                            tmp_path: Path) -> None:
    old = _venv_with(tmp_path / "old", "1.0")
    new = _venv_with(tmp_path / "new", "1.1")
    project.spec({
        "prepare": {"cmd": f"{old} -c 'open(\"p.txt\", \"w\").write(\"p\")'",
                    "outs": ["p.txt"], "env": {"packages": ["pfdemo"]}},
        "train": {"cmd": f"{new} -c 'open(\"m.txt\", \"w\").write(open(\"p.txt\").read())'",
                  "deps": ["p.txt"], "outs": [{"m.txt": {"model": "m"}}],
                  "env": {"packages": ["pfdemo"]}}})
    assert project.run("repro").code == 0
    commit(project)
    res = project.run("env", "export", "m@v1")
    assert res.code == 1
    assert "pfdemo: 1.1 (train), 1.0 (prepare)" in res.err and "--first" in res.err
    res = project.run("env", "export", "m@v1", "--first")
    assert res.code == 0, res.text
    assert "pfdemo==1.1" in res.out.splitlines()
    assert "# conflict, took the run nearest the model: pfdemo: 1.1 (train), 1.0 (prepare)" in (
        res.out)
    assert "took the run nearest the model" in res.err
