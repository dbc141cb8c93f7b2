"""The test-only fault switch: rules parse, points fire on the pass they name."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from pipeflow import faults


def test_rules_parse_and_bad_rules_are_refused() -> None:
    rules = faults._parse("push.object:kill@3, fetch.*:sleep=0.25,gc.delete:interrupt")
    assert [(r.pattern, r.action, r.seconds, r.nth) for r in rules] == [
        ("push.object", "kill", 0.0, 3), ("fetch.*", "sleep", 0.25, None),
        ("gc.delete", "interrupt", 0.0, 1)]
    assert rules[1].matches("fetch.pointer") and not rules[1].matches("push.object")
    with pytest.raises(ValueError, match="bad rule"):
        faults._parse("push.object:explode")


def test_a_kill_point_kills_on_the_named_pass_only() -> None:
    code = ("from pipeflow import faults\n"
            "for i in range(5):\n"
            "    print(i, flush=True)\n"
            "    faults.point('x.step')\n")
    env = {**os.environ, "PIPEFLOW_FAULTS": "x.step:kill@3"}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == -9
    assert proc.stdout.split() == ["0", "1", "2"]


def test_a_pause_point_holds_until_its_file_is_removed(tmp_path) -> None:  # type: ignore[no-untyped-def]
    flag = tmp_path / "paused"
    code = ("from pipeflow import faults\n"
            "faults.point('x.step')\n"
            "print('went on', flush=True)\n")
    env = {**os.environ, "PIPEFLOW_FAULTS": f"x.step:pause={flag}"}
    proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                            text=True)
    try:
        while not flag.exists():
            assert proc.poll() is None
            time.sleep(0.01)
        assert proc.poll() is None  # held at the point
        flag.unlink()
        out, _ = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert out == "went on\n"
    with pytest.raises(ValueError, match="bad rule"):
        faults._parse("x.step:pause")
