"""The cancel token: callbacks run once, late ones at once, forgotten ones never."""

from __future__ import annotations

import signal
from pathlib import Path

from pipeflow.execution.cancel import CancelToken
from pipeflow.execution.runner import run_stage
from pipeflow.spec.model import Stage


def test_callbacks_run_once_and_late_ones_at_once() -> None:
    token = CancelToken()
    calls: list[str] = []
    token.on_cancel(lambda: calls.append("a"))
    forget = token.on_cancel(lambda: calls.append("gone"))
    forget()
    token.cancel()
    token.cancel()
    token.on_cancel(lambda: calls.append("late"))
    assert token.cancelled
    assert calls == ["a", "late"]


def test_a_cancelled_stage_runs_no_further_command(tmp_path: Path) -> None:
    token = CancelToken()
    token.cancel()
    stage = Stage(name="s", cmd=("touch ran",))
    result = run_stage(tmp_path, stage, tmp_path / "logs", cancel=token)
    assert result.returncode == -signal.SIGTERM
    assert not (tmp_path / "ran").exists()
