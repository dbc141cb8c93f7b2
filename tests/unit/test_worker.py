"""execution.worker: whatever goes wrong on a worker comes back as the answer's error,
never as an exception; ``python -m pipeflow.execution.worker`` refuses a task it
cannot read."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from pipeflow.execution.task import Answer, Input, Task
from pipeflow.execution.worker import run_task

OID = "0123456789abcdef0123456789abcdef"


def _task(tmp_path: Path, **changes: object) -> Task:
    fields: dict[str, object] = dict(
        stage="s", cmd=("cat in.txt > out.txt",), wdir="", outs=("out.txt",),
        inputs=(Input("in.txt", OID),), remote_name="r", remote_url=str(tmp_path / "store"),
        remote_options={}, env={})
    fields.update(changes)
    return Task(**fields)  # type: ignore[arg-type]


def test_a_missing_input_object_is_an_error_in_the_answer(tmp_path: Path) -> None:
    answer = run_task(_task(tmp_path))
    assert answer.error and "objects/01/23456789abcdef0123456789abcdef" in answer.error
    assert answer.outputs == ()


def test_an_unsafe_input_path_is_refused(tmp_path: Path) -> None:
    answer = run_task(_task(tmp_path, inputs=(Input("../escape.txt", OID),)))
    assert answer.error == "refusing the unsafe path '../escape.txt' in a task"


def test_the_worker_module_speaks_json_on_stdin_and_stdout(tmp_path: Path) -> None:
    worker = [sys.executable, "-m", "pipeflow.execution.worker"]
    bad = subprocess.run(worker, input=b"not json", capture_output=True, timeout=60)
    assert bad.returncode == 2 and b"malformed task: not JSON" in bad.stderr
    from pipeflow.code.environment import EnvironmentProbe

    for env in ({}, EnvironmentProbe().component(("echo hi",))):
        task = _task(tmp_path, inputs=(), cmd=("echo hi",), outs=(), env=env)
        good = subprocess.run(worker, input=task.to_json().encode(), capture_output=True,
                              timeout=60)
        assert good.returncode == 0, good.stderr
        answer = Answer.from_json(good.stdout)
        assert answer.error is None and answer.returncode == 0
        # another environment than the client's: the command does not run
        assert answer.log == ("hi\n" if env else "")
        assert answer.env == {"platform": EnvironmentProbe().component(()).get("platform")}
