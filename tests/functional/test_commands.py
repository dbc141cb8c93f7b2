"""init, dag, status warnings, templates, params formats, output options."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import yaml

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def test_init_creates_dot_folder_and_ignore_lines(project: Project) -> None:
    res = project.run("init")
    assert res.code == 0
    dot = project.root / ".pipeflow"
    assert (dot / "config").is_file()
    assert (project.root / "pipeline.yaml").is_file()
    ignored = subprocess.run(
        ["git", "check-ignore", ".pipeflow/cache/x", ".pipeflow/state/x", ".pipeflow/config.local"],
        cwd=project.root, capture_output=True, text=True,
    ).stdout.split()
    assert len(ignored) == 3
    assert subprocess.run(["git", "check-ignore", "-q", ".pipeflow/config"],
                          cwd=project.root).returncode == 1
    assert "already" in project.run("init").out
    # git asks the attributes: the tag log merges by union, the lock through our driver
    attrs = project.git("check-attr", "merge", "--", ".pipeflow/tags.jsonl", "pipeline.lock")
    assert ".pipeflow/tags.jsonl: merge: union" in attrs
    assert "pipeline.lock: merge: pipeflow" in attrs
    assert "merge: union" in project.git("check-attr", "merge", "--", "data/.gitignore")


def test_dag_formats(project: Project) -> None:
    chain(project)
    ascii_ = project.run("dag")
    assert ascii_.code == 0
    for name in ("prepare", "train", "evaluate"):
        assert name in ascii_.out
    assert "flowchart" in project.run("dag", "--format", "mermaid").out
    assert "digraph" in project.run("dag", "--format", "dot").out
    body = json.loads(project.run("dag", "--format", "json").out)
    assert {(e["from"], e["to"]) for e in body["edges"]} == {("prepare", "train"),
                                                            ("train", "evaluate")}
    assert project.run("dag", "--format", "png").code == 2


def test_status_json_is_stable(project: Project) -> None:
    chain(project)
    body = json.loads(project.run("status", "--json").out)
    assert body["schema"] == 1
    assert body["up_to_date"] is False
    assert [s["name"] for s in body["stages"]] == ["prepare", "train", "evaluate"]
    first = body["stages"][0]
    assert first["status"] == "changed"
    assert first["reasons"][0]["kind"] == "new"


def test_status_warns_when_git_tracks_a_cached_output(project: Project) -> None:
    chain(project)
    project.run("repro")
    project.git("add", "-f", "models/model.txt")
    res = project.run("status")
    assert "git tracks the cached output 'models/model.txt'" in res.err


def test_foreach_and_matrix(project: Project) -> None:
    project.spec({
        "fit": {"foreach": ["small", "large"],
                "do": {"cmd": "echo ${item} > out-${item}.txt", "outs": ["out-${item}.txt"]}},
        "grid": {"matrix": {"lr": [1, 2], "depth": [3]},
                 "do": {"cmd": "echo ${item.lr} ${item.depth} > g-${item.lr}-${item.depth}.txt",
                        "outs": ["g-${item.lr}-${item.depth}.txt"]}},
    })
    res = project.run("repro")
    assert res.code == 0, res.text
    assert project.read("out-small.txt") == "small\n"
    assert project.read("g-2-3.txt") == "2 3\n"
    assert "fit@small" in project.lock()["stages"]
    assert project.run("repro", "-f", "fit").code == 0  # a group target


def test_params_from_json_and_toml(project: Project) -> None:
    project.write("cfg.json", json.dumps({"a": {"b": 1}}))
    project.write("cfg.toml", "[t]\nx = 2\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && echo x > o.txt",
                        "params": [{"cfg.json": ["a.b"]}, {"cfg.toml": ["t.x"]}],
                        "outs": ["o.txt"]}})
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["s"]["params"] == {"cfg.json": {"a.b": 1},
                                                       "cfg.toml": {"t.x": 2}}
    project.write("cfg.toml", "[t]\nx = 3\n")
    assert "cfg.toml: t.x 2 -> 3" in project.run("status").out


def test_cache_false_and_persist(project: Project) -> None:
    project.spec({
        "s": {"cmd": "echo s >> runs.log && echo x >> p.txt && echo y > n.txt",
              "outs": [{"p.txt": {"persist": True}}, {"n.txt": {"cache": False}}]},
    })
    assert project.run("repro").code == 0
    assert project.run("repro", "-f").code == 0
    assert project.read("p.txt") == "x\nx\n"  # persisted between runs
    gi = project.read(".gitignore").splitlines()
    assert "/p.txt" in gi and "/n.txt" not in gi
    (project.root / "n.txt").unlink()
    st = project.run("status").out
    assert "output missing: n.txt" in st
    runs(project)
    project.run("repro")
    assert runs(project) == ["s"]  # an uncached output cannot be restored: rerun


def test_racy_rewrite_with_same_size_is_detected(project: Project) -> None:
    project.write("in.txt", "aaaa\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && cp in.txt o.txt",
                        "deps": ["in.txt"], "outs": ["o.txt"]}})
    project.run("repro")
    runs(project)
    path = project.root / "in.txt"
    st = path.stat()
    path.write_text("bbbb\n")
    import os

    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # same size, same mtime
    project.run("repro")
    assert runs(project) == ["s"]


def test_version_is_fast_and_help_explains(project: Project) -> None:
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "pipeflow", "--version"],
                         capture_output=True, text=True, check=True).stdout
    assert out.startswith("pipeflow ")
    assert time.perf_counter() - t < 5  # smoke only; speed is measured in benchmarks/
    res = project.run("repro", "--help")
    assert res.code == 0
    assert "--keep-going" in res.out and "--dry" in res.out


def _chain_run_with_train_frozen(project: Project) -> None:
    """The chain, run once (its run log cleared), then 'train' marked frozen."""
    chain(project)
    project.run("repro")
    runs(project)
    spec = yaml.safe_load(project.read("pipeline.yaml"))
    spec["stages"]["train"]["frozen"] = True
    project.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))


def test_frozen_stage_never_runs(project: Project) -> None:
    _chain_run_with_train_frozen(project)
    project.params({"prep": {"n": 3}, "train": {"lr": 9.0, "epochs": 2}, "eval": {"k": 1}})
    st = {s["name"]: s["status"] for s in json.loads(project.run("status", "--json").out)["stages"]}
    assert st["train"] == "frozen"
    project.run("repro")
    assert runs(project) == []


def test_dates_in_params_are_stable(project: Project) -> None:
    project.write("params.yaml", "run:\n  day: 2024-05-01\n")
    project.spec({"s": {"cmd": "echo s >> runs.log && echo x > o.txt", "params": ["run.day"],
                        "outs": ["o.txt"]}})
    assert project.run("repro").code == 0
    assert project.lock()["stages"]["s"]["params"] == {"params.yaml": {"run.day": "2024-05-01"}}
    runs(project)
    assert project.run("status", "--check").code == 0
    project.write("params.yaml", "run:\n  day: 2024-05-02\n")
    assert "run.day 2024-05-01 -> 2024-05-02" in project.run("status").out


def test_declared_env_vars_count(project: Project, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("PF_TEST_THREADS", raising=False)
    project.spec({"s": {"cmd": "echo s >> runs.log && echo x > o.txt", "outs": ["o.txt"],
                        "env": {"vars": ["PF_TEST_THREADS"]}}})
    assert project.run("repro").code == 0
    runs(project)
    monkeypatch.setenv("PF_TEST_THREADS", "4")
    assert "env: PF_TEST_THREADS unset -> 4" in project.run("status").out
    project.run("repro")
    assert runs(project) == ["s"]
    monkeypatch.setenv("PF_TEST_THREADS", "8")
    assert "env: PF_TEST_THREADS 4 -> 8" in project.run("status").out
    monkeypatch.delenv("PF_TEST_THREADS")
    assert "env: PF_TEST_THREADS 4 -> unset" in project.run("status").out


def test_hardlink_mode_links_read_only_objects(project: Project) -> None:
    import os

    chain(project)
    project.run("init")
    project.write(".pipeflow/config.local", "cache:\n  link: hardlink\n")
    assert project.run("repro").code == 0
    assert os.stat(project.root / "models/model.txt").st_nlink == 2  # no second copy
    (project.root / "models/model.txt").unlink()
    assert project.run("checkout").code == 0
    st = os.stat(project.root / "models/model.txt")
    assert st.st_nlink == 2
    assert st.st_mode & 0o222 == 0
    assert project.run("repro", "--force").code == 0
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_bad_link_mode_is_a_config_error(project: Project) -> None:
    chain(project)
    project.run("init")
    project.write(".pipeflow/config.local", "cache:\n  link: symbolic\n")
    res = project.run("repro")
    assert res.code == 2
    assert "cache.link" in res.err and "hardlink" in res.err


def test_bad_config_is_reported_before_anything_runs(project: Project) -> None:
    chain(project)
    project.run("init")
    project.write(".pipeflow/config.local", "cache:\n  lnk: copy\n")
    res = project.run("repro")
    assert res.code == 2
    assert "unknown config key 'cache.lnk'" in res.err
    assert "did you mean 'cache.link'" in res.err
    assert runs(project) == []
    project.write(".pipeflow/config.local", "cache:\n  link: bogus\n")
    res = project.run("repro")
    assert res.code == 2 and "cache.link is 'bogus'" in res.err
    assert runs(project) == []


def test_frozen_stage_outputs_are_restored_not_rerun(project: Project) -> None:
    _chain_run_with_train_frozen(project)
    (project.root / "models/model.txt").unlink()
    st = {s["name"]: s["status"] for s in json.loads(project.run("status", "--json").out)["stages"]}
    assert st["train"] == "missing-output"
    assert project.run("status", "--check").code == 1
    res = project.run("repro", "-f", "train")
    assert res.code == 0, res.text
    assert runs(project) == ["prepare"]  # forced upstream runs; frozen train is restored
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_output_targets_are_relative_to_the_current_folder(project: Project) -> None:
    import os

    chain(project)
    project.run("repro")
    runs(project)
    old = os.getcwd()
    os.chdir(project.root / "models")
    try:
        from pipeflow.cli.app import run

        assert run(["repro", "-f", "-s", "model.txt"]) == 0
    finally:
        os.chdir(old)
    assert runs(project) == ["train"]


def test_help_texts_explain(project: Project) -> None:
    for cmd, words in (("status", ["running", "pending", "--check"]),
                       ("init", ["starter"]),
                       ("checkout", ["TARGETS"]),
                       ("dag", ["mermaid"])):
        res = project.run(cmd, "--help")
        assert res.code == 0
        for word in words:
            assert word in res.out, (cmd, word)


def test_declared_packages_count(project: Project, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A package version change (a small local distribution on PYTHONPATH) reruns."""
    site = tmp_path / "site"
    site.mkdir()

    def install(version: str) -> None:
        for old in site.glob("pfdemo-*.dist-info"):
            import shutil

            shutil.rmtree(old)
        info = site / f"pfdemo-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: pfdemo\nVersion: {version}\n")

    import os
    import sys

    install("1.0")
    previous = os.environ.get("PYTHONPATH")  # later tests' subprocesses need it back
    os.environ["PYTHONPATH"] = str(site)
    sys.path.insert(0, str(site))
    try:
        project.spec({"s": {"cmd": "python3 -c 'open(\"o.txt\", \"w\").write(\"x\")'",
                            "outs": ["o.txt"], "env": {"packages": ["pfdemo", "no-such-pkg"]}}})
        assert project.run("repro").code == 0
        env = project.lock()["stages"]["s"]["env"]
        assert env["packages"] == {"no-such-pkg": None, "pfdemo": "1.0"}
        install("1.1")
        assert "env: pfdemo 1.0 -> 1.1" in project.run("status").out
    finally:
        sys.path.remove(str(site))
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


def test_top_level_help_lists_every_command_and_a_typo_is_suggested_once(
    project: Project,
) -> None:
    from pipeflow.cli.commands import _COMMANDS

    res = project.cli("--help")
    assert res.code == 0
    listed = {line.split()[0] for line in res.out.split("Commands:")[1].splitlines()
              if line.startswith("  ")}
    assert listed == set(_COMMANDS)
    res = project.cli("--help", "status")  # --help first: the whole app's help
    assert res.code == 0 and set(_COMMANDS) <= set(res.out.split())
    res = project.cli("stat")
    assert res.code == 2
    assert res.err.count("Did you mean 'status'?") == 1
    project.run("init")
    res = project.cli("-v", "status")  # root options before the command
    assert res.code == 0 and "up to date" in res.out


def test_only_the_invoked_command_is_loaded(project: Project) -> None:
    # Start-up is paid on every keystroke: `status` must not import the modules of
    # unrelated commands (remote transfers, gc, lineage).
    project.run("init")
    code = ("import sys; from pipeflow.cli.app import run; rc = run(['status']); "
            "print(sorted(m for m in sys.modules if m.startswith('pipeflow.cli.')))")
    proc = subprocess.run([sys.executable, "-c", code], cwd=project.root,
                          capture_output=True, text=True, check=True)
    loaded = proc.stdout.strip().splitlines()[-1]
    assert "pipeflow.cli.status" in loaded
    for other in ("pipeflow.cli.remote", "pipeflow.cli.gc", "pipeflow.cli.lineage",
                  "pipeflow.cli.history"):
        assert other not in loaded


def test_a_spec_validated_once_is_not_validated_again_in_another_clone(
    project: Project, tmp_path
) -> None:  # type: ignore[no-untyped-def]
    import shutil

    chain(project)
    assert project.run("status").code == 0  # validates, remembered per machine
    clone = tmp_path / "clone"
    shutil.copytree(project.root, clone, ignore=shutil.ignore_patterns(".pipeflow"))
    code = ("import sys; from pipeflow.cli.app import run; rc = run(['status']); "
            "print(rc, 'jsonschema' in sys.modules)")
    proc = subprocess.run([sys.executable, "-c", code], cwd=clone, capture_output=True,
                          text=True, check=True)
    assert proc.stdout.split()[-2:] == ["0", "False"], proc.stdout + proc.stderr
    # an edited spec is new: validated again (and its mistakes reported)
    (clone / "pipeline.yaml").write_text(
        (clone / "pipeline.yaml").read_text().replace("cmd:", "comand:", 1))
    res = subprocess.run([sys.executable, "-m", "pipeflow", "status"], cwd=clone,
                         capture_output=True, text=True)
    assert res.returncode == 2 and "comand" in res.stderr
