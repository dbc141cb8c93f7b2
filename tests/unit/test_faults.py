"""The test-only fault switch: rules parse, points fire on the pass they name."""

from __future__ import annotations

import os
import subprocess
import sys

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
