"""A failing stage: exit 1, its name, status and log tail; nothing half-committed."""

from __future__ import annotations

import json

import yaml

from tests.conftest import Project
from tests.functional.helpers import chain, runs


def _break_train(p: Project) -> None:
    spec = yaml.safe_load(p.read("pipeline.yaml"))
    spec["stages"]["train"]["cmd"] = (
        "echo train >> runs.log && mkdir -p models && echo partial > models/model.txt && "
        "echo 'boom: bad things' && exit 3"
    )
    p.write("pipeline.yaml", yaml.safe_dump(spec, sort_keys=False))


def test_failing_stage_reports_and_keeps_earlier_stages(project: Project) -> None:
    chain(project)
    _break_train(project)
    res = project.run("repro")
    assert res.code == 1
    assert "stage 'train' failed" in res.err
    assert "exited with status 3" in res.err
    assert "boom: bad things" in res.err
    assert ".pipeflow/logs/train.log" in res.err
    assert "Traceback" not in res.text
    assert runs(project) == ["prepare", "train"]
    lock = project.lock()
    assert set(lock["stages"]) == {"prepare"}
    status = project.run("status").out
    assert "train" in status and "never run" in status


def test_failed_rerun_keeps_the_previous_lock_entry(project: Project) -> None:
    chain(project)
    project.run("repro")
    before = project.lock()["stages"]["train"]
    _break_train(project)
    assert project.run("repro").code == 1
    after = project.lock()["stages"]["train"]
    assert after == before
    # the committed version is still in the cache: checkout brings it back
    assert project.read("models/model.txt") == "partial\n"


def test_keep_going_runs_independent_branches(project: Project) -> None:
    project.spec({
        "bad": {"cmd": "echo bad >> runs.log && exit 1", "outs": ["b.txt"]},
        "after_bad": {"cmd": "echo after_bad >> runs.log && cp b.txt c.txt",
                      "deps": ["b.txt"], "outs": ["c.txt"]},
        "good": {"cmd": "echo good >> runs.log && echo ok > g.txt", "outs": ["g.txt"]},
    })
    res = project.run("repro")
    assert res.code == 1
    assert runs(project) == ["bad"]
    res = project.run("repro", "--keep-going")
    assert res.code == 1
    assert runs(project) == ["bad", "good"]
    assert "'after_bad' not run: upstream 'bad' failed" in res.err
    assert set(project.lock()["stages"]) == {"good"}


def test_missing_declared_output_fails_the_stage(project: Project) -> None:
    project.spec({"s": {"cmd": "echo hi", "outs": ["never.txt"]}})
    res = project.run("repro")
    assert res.code == 1
    assert "did not write its declared output 'never.txt'" in res.err
    assert not (project.root / "pipeline.lock").exists() or "s" not in project.lock().get(
        "stages", {})


def test_bad_metrics_file_fails_the_stage(project: Project) -> None:
    project.spec({"s": {"cmd": "echo '{not json' > m.json", "metrics": ["m.json"]}})
    res = project.run("repro")
    assert res.code == 1
    assert "metrics file 'm.json' is not valid JSON" in res.err


def test_corrupt_lock_file_is_a_clear_error(project: Project) -> None:
    chain(project)
    project.run("repro")
    project.write("pipeline.lock", "schema: 1\nstages:\n  train: [not, a, mapping]\n")
    res = project.run("status")
    assert res.code == 2
    assert "pipeline.lock" in res.err and "train" in res.err
    assert "Traceback" not in res.text


def test_corrupt_cache_object_is_never_served(project: Project) -> None:
    import os

    chain(project)
    project.run("repro")
    oid = project.lock()["stages"]["train"]["outs"][0]["hash"]
    obj = project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    os.chmod(obj, 0o644)
    obj.write_text("evil\n")
    (project.root / "models/model.txt").unlink()
    res = project.run("checkout")
    assert res.code == 1
    assert oid[:8] in res.err or "corrupt" in res.err
    assert not (project.root / "models/model.txt").exists()
    res = project.run("repro")  # not restorable any more: recompute
    assert res.code == 0, res.text
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_repro_recomputes_when_the_cached_copy_is_corrupt(project: Project) -> None:
    import os

    chain(project)
    project.run("repro")
    runs(project)
    oid = project.lock()["stages"]["train"]["outs"][0]["hash"]
    obj = project.root / ".pipeflow/cache/objects" / oid[:2] / oid[2:]
    os.chmod(obj, 0o644)
    obj.write_text("evil\n")
    (project.root / "models/model.txt").unlink()
    res = project.run("repro")
    assert res.code == 0, res.text
    assert "cannot restore from the cache" in res.out
    assert runs(project) == ["train"]
    assert project.read("models/model.txt") == "lr=0.05\na\nb\nc\n"


def test_output_that_cannot_be_cleared_fails_the_stage(project: Project) -> None:
    import os
    import subprocess

    project.spec({"a": {"cmd": "echo x > out/o.txt", "outs": ["out/o.txt"]}})
    assert project.run("repro").code == 0
    os.chmod(project.root / "out", 0o555)
    try:
        if os.access(project.root / "out", os.W_OK):  # root ignores modes: use chattr
            if subprocess.run(["chattr", "+i", str(project.root / "out")]).returncode != 0:
                import pytest

                pytest.skip("cannot make a read-only folder here")
        res = project.run("repro", "-f")
    finally:
        subprocess.run(["chattr", "-i", str(project.root / "out")], capture_output=True)
        os.chmod(project.root / "out", 0o755)
    assert res.code == 1, res.text
    assert "stage 'a' failed: cannot clear its output" in res.err
    assert "out/o.txt" in res.err


def test_symlinks_inside_outputs_fail_the_stage(project: Project) -> None:
    project.write("real.txt", "x\n")
    project.spec({
        "link": {"cmd": "mkdir -p d && ln -sf ../real.txt d/l", "outs": ["d"]},
        "dangling": {"cmd": "mkdir -p e && ln -sf nowhere e/l", "outs": ["e"]},
        "top": {"cmd": "ln -sf real.txt t", "outs": ["t"]},
    })
    res = project.run("repro", "--keep-going")
    assert res.code == 1
    assert "output 'd' contains a symlink: d/l" in res.err
    assert "stage 'dangling' failed" in res.err
    assert "output 't' is a symlink" in res.err
    assert "Traceback" not in res.text and "internal error" not in res.text
    assert not (project.root / "pipeline.lock").exists() or not project.lock().get("stages")


def test_checkout_with_a_missing_object_restores_the_rest_and_leaves_no_half_folder(
    project: Project,
) -> None:
    import os
    import shutil

    project.spec({
        "make": {"cmd": "mkdir -p d && for i in 1 2 3; do echo $i > d/f$i; done && echo m > m.txt",
                 "outs": ["d", "m.txt"]},
    })
    project.write(".pipeflow/config.local", "cache:\n  link: hardlink\n")
    assert project.run("repro").code == 0
    gone = project.root / ".pipeflow/cache/objects"
    oid = next(e for e in project.lock()["stages"]["make"]["outs"] if e["path"] == "d")["hash"]
    manifest = json.loads((gone / oid[:2] / oid[2:]).read_bytes())
    victim = manifest["entries"][1][1]
    os.unlink(gone / victim[:2] / victim[2:])
    shutil.move(project.root / "d", project.root.parent / "d-away")
    (project.root / "m.txt").unlink()
    res = project.run("checkout")
    assert res.code == 1
    assert "not in the cache, cannot restore: d" in res.err
    assert not (project.root / "d").exists()  # nothing half made
    assert project.read("m.txt") == "m\n"  # the other output is back
    # With the folder present, it is left as it is rather than half replaced.
    shutil.copytree(project.root.parent / "d-away", project.root / "d")
    os.chmod(project.root / "d" / "f1", 0o644)
    (project.root / "d" / "f1").write_text("edited\n")
    res = project.run("checkout")
    assert res.code == 1 and "cannot restore: d" in res.err
    assert project.read("d/f1") == "edited\n"


def test_checkout_of_an_absent_folder_whose_manifest_is_missing_or_corrupt(
    project: Project,
) -> None:
    import os

    project.spec({
        "s1": {"cmd": "mkdir -p d && echo 1 > d/a", "outs": ["d"]},
        "s2": {"cmd": "echo z > z.txt", "outs": ["z.txt"]},
    })
    assert project.run("repro").code == 0
    objects = project.root / ".pipeflow/cache/objects"
    oid = project.lock()["stages"]["s1"]["outs"][0]["hash"]
    manifest = objects / oid[:2] / oid[2:]
    kept = manifest.read_bytes()
    for damage in ("missing", "corrupt"):
        os.chmod(manifest.parent, 0o755)
        if manifest.exists():
            os.chmod(manifest, 0o644)
            manifest.unlink()
        if damage == "corrupt":
            manifest.write_bytes(kept.replace(b"format", b"formax"))
        import shutil

        shutil.rmtree(project.root / "d", ignore_errors=True)
        (project.root / "z.txt").unlink()
        res = project.run("checkout")
        assert res.code == 1, (damage, res.text)
        assert "not in the cache, cannot restore: d" in res.err
        assert "pipeflow repro" in res.err  # the hint
        assert project.read("z.txt") == "z\n"  # the other stage's output is back
        assert not (project.root / "d").exists()
        manifest.parent.mkdir(exist_ok=True)
    # a rerun recomputes what could not be restored
    assert project.run("repro").code == 0 and project.read("d/a") == "1\n"
