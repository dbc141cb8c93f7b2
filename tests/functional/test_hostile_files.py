"""The project's own files committed as symlinks (issue 11, attacker review): git
commits a link anywhere, so a clone can make ``.pipeflow`` itself, ``.gitattributes``,
an output's ``.gitignore``, the lock, the config, ``.pipeflowignore`` or a ``vars``
file point out of the project or at a device.

Each test: the attacker commits the link and pushes to a bare origin; the victim
clones and runs the real command. It must end with exit 2 naming the file, no
traceback, and nothing outside the project changed (a canary folder compared before
and after) nor copied into the project.
"""

from __future__ import annotations

import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import GIT_ENV, Project
from tests.functional.helpers import snapshot

SECRET = "SECRET-OUTSIDE-0451"
SPEC = {"make": {"cmd": "mkdir -p out && cp data.txt out/model.txt", "deps": ["data.txt"],
                 "params": ["train.lr"], "outs": ["out/model.txt"]}}




class Attack:
    """The attacker's project (one stage, run and pushed to a folder remote), its bare
    origin, and a canary folder outside every project."""

    def __init__(self, tmp_path: Path) -> None:
        self.tmp = tmp_path
        self.origin = tmp_path / "origin.git"
        subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(self.origin)],
                       check=True)
        self.canary = tmp_path / "canary"
        (self.canary / "sub").mkdir(parents=True)
        (self.canary / "file.txt").write_text(SECRET + "\n")
        (self.canary / "sub" / ".draft.tmp").write_text("notes\n")
        old = time.time() - 90 * 86400  # older than any grace period
        os.utime(self.canary / "sub" / ".draft.tmp", (old, old))
        self.attacker = a = self._clone(tmp_path / "attacker")
        assert a.run("init").code == 0
        a.spec(SPEC)
        a.params({"train": {"lr": 0.1}})
        a.write("data.txt", "hello\n")
        a.write(".gitignore", "/out/model.txt\n")  # still ignored when out/.gitignore is a link
        assert a.run("remote", "add", "origin", str(tmp_path / "store")).code == 0
        assert a.run("add", "data.txt").code == 0
        assert a.run("repro").code == 0
        assert a.run("push").code == 0
        self.publish("init")
        self.before = snapshot(self.canary)

    def _clone(self, folder: Path) -> Project:
        subprocess.run(["git", "clone", "-q", str(self.origin), str(folder)], check=True,
                       capture_output=True, env={**os.environ, **GIT_ENV})
        return Project(folder)

    def link(self, rel: str, target: str) -> None:
        """Replace ``rel`` in the attacker's project by a symlink to ``target``."""
        path = self.attacker.root / rel
        if path.is_dir() and not path.is_symlink():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        path.unlink(missing_ok=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(target, path)
        self.attacker.git("add", "-f", rel)

    def publish(self, message: str = "innocent change") -> None:
        a = self.attacker
        a.git("add", "-A")
        a.git("commit", "-qm", message)
        a.git("push", "-q", "origin", "main")

    def victim(self) -> Project:
        return self._clone(self.tmp / "victim")

    def assert_nothing_leaked(self, victim: Project) -> None:
        assert snapshot(self.canary) == self.before
        for dirpath, _dirs, files in os.walk(victim.root):
            if "/.git" in dirpath + "/" and ".git" in Path(dirpath).parts:
                continue
            for name in files:
                path = Path(dirpath) / name
                if not path.is_symlink():
                    assert SECRET.encode() not in path.read_bytes(), path


def _refused(res: object, *needles: str) -> None:
    code, text = res.code, res.text  # type: ignore[attr-defined]
    assert code == 2, text
    assert "Traceback" not in text and "internal error" not in text, text
    for needle in needles:
        assert needle in text, text


# --- .pipeflow itself ------------------------------------------------------------------

@pytest.mark.parametrize("rel, target", [
    (".pipeflow", "../canary"),
    (".pipeflow/state", "../../canary"),
    (".pipeflow/cache", "../../canary"),
])
def test_a_committed_dotpipeflow_link_is_refused_before_anything_is_written(
        tmp_path: Path, rel: str, target: str) -> None:
    attack = Attack(tmp_path)
    if rel == ".pipeflow":
        attack.attacker.git("rm", "-rq", "--cached", ".pipeflow")
    attack.link(rel, target)
    attack.publish()
    victim = attack.victim()
    for args in (("status",), ("gc", "--workspace", "--yes"), ("pull",), ("repro",),
                 ("init",)):
        _refused(victim.run(*args), f"{rel} is a symlink", f"rm {rel}")
        assert snapshot(attack.canary) == attack.before, args
    assert (attack.canary / "sub" / ".draft.tmp").exists()


# --- files pipeflow reads and rewrites ---------------------------------------------------

@pytest.mark.parametrize("rel, target, args", [
    (".gitattributes", "../canary/file.txt", ("pull",)),
    (".gitattributes", "../canary/file.txt", ("repro",)),
    ("out/.gitignore", "../../canary/file.txt", ("repro", "--pull")),
    ("out/.gitignore", "../../canary/file.txt", ("checkout", "out/model.txt")),
    (".pipeflow/tags.jsonl", "../../canary/file.txt", ("tag", "out/model.txt@v1", "prod")),
    ("pipeline.lock", "../canary/file.txt", ("status",)),
    (".pipeflow/config", "../../canary/file.txt", ("status",)),
])
def test_a_linked_file_pipeflow_rewrites_is_never_read_through(
        tmp_path: Path, rel: str, target: str, args: tuple[str, ...]) -> None:
    attack = Attack(tmp_path)
    attack.link(rel, target)
    attack.publish()
    victim = attack.victim()
    if args[0] == "checkout":
        assert victim.run("fetch").code == 0
    _refused(victim.run(*args), rel, "symlink")
    assert (victim.root / rel).is_symlink()  # neither read nor replaced
    attack.assert_nothing_leaked(victim)


# --- devices: /dev/zero and /dev/stdin -------------------------------------------------

def _limited() -> None:
    """1 GiB of address space: reading /dev/zero whole fails fast instead of eating RAM."""
    resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))


@pytest.mark.parametrize("rel, args", [
    ("pipeline.lock", ("status",)),
    ("pipeline.lock", ("verify",)),
    (".pipeflow/config", ("status",)),
    (".pipeflowignore", ("status",)),
    ("vv.yaml", ("status",)),
    ("vv.yaml", ("dag",)),
    ("params.yaml", ("status",)),
    ("pipeline.yaml", ("status",)),
    (".pipeflow/tags.jsonl", ("versions", "out/model.txt")),
    (".gitattributes", ("pull",)),
    ("out/.gitignore", ("repro", "--pull")),
])
def test_a_file_linked_to_dev_zero_is_refused_fast(
        tmp_path: Path, rel: str, args: tuple[str, ...]) -> None:
    attack = Attack(tmp_path)
    if rel == "vv.yaml":
        spec = attack.attacker.read("pipeline.yaml")
        attack.attacker.write("pipeline.yaml", "vars:\n  - vv.yaml\n" + spec)
    attack.link(rel, "/dev/zero")
    attack.publish()
    victim = attack.victim()
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pipeflow", *args], cwd=victim.root,
                          capture_output=True, text=True, timeout=60, preexec_fn=_limited,
                          env={**os.environ, **GIT_ENV})
    _refused(_Res(proc.returncode, proc.stdout + proc.stderr), rel, "/dev/zero")
    assert time.monotonic() - started < 30
    assert (victim.root / rel).is_symlink()


def test_a_lock_linked_to_dev_stdin_does_not_hang_status(tmp_path: Path) -> None:
    attack = Attack(tmp_path)
    attack.link("pipeline.lock", "/dev/stdin")
    attack.publish()
    victim = attack.victim()
    # stdin is a pipe nobody writes to: reading it would wait for ever
    with subprocess.Popen(["sleep", "60"], stdout=subprocess.PIPE) as writer:
        try:
            proc = subprocess.run([sys.executable, "-m", "pipeflow", "status"],
                                  cwd=victim.root, stdin=writer.stdout, capture_output=True,
                                  text=True, timeout=30, env={**os.environ, **GIT_ENV})
        finally:
            writer.kill()
    _refused(_Res(proc.returncode, proc.stdout + proc.stderr), "pipeline.lock",
             "never reads /dev")


class _Res:
    def __init__(self, code: int, text: str) -> None:
        self.code, self.text = code, text


# --- vars files ------------------------------------------------------------------------

def test_a_vars_file_linked_outside_is_refused_and_never_printed(tmp_path: Path) -> None:
    attack = Attack(tmp_path)
    (attack.canary / "hosts.yml").write_text("token: ghp_OUTSIDE_SECRET\n")
    attack.before = snapshot(attack.canary)
    a = attack.attacker
    spec = a.read("pipeline.yaml").replace("cp data.txt out/model.txt",
                                           "cp data.txt out/model.txt ${token}")
    a.write("pipeline.yaml", "vars:\n  - vv.yaml\n" + spec)
    os.symlink("../canary/hosts.yml", a.root / "vv.yaml")
    attack.publish()
    victim = attack.victim()
    for args in (("status",), ("status", "--json"), ("dag",)):
        res = victim.run(*args)
        _refused(res, "vars file 'vv.yaml' leads outside the project")
        assert "ghp_OUTSIDE_SECRET" not in res.text
    assert snapshot(attack.canary) == attack.before
