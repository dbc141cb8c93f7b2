"""What a remote engine carries: a ``Task`` to the worker, an ``Answer`` back.

Both are frozen values with a JSON form (``to_json``/``from_json``), so any engine
can carry them: a Dask future, a process's stdin/stdout, a Kubernetes Job's
environment, a file on a shared disk. ``from_json`` validates everything: an answer
comes from the network, and a malformed one is a :class:`TaskFormatError` naming the
field, never a crash. Neither carries a credential: the remote's storage options are
stripped of secret-looking keys before a task is made (``dispatch``), and workers
use their own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeflow.content.hashing import is_hash
from pipeflow.errors import PipeflowError

FORMAT = 1
"""The version of the JSON form; a message of another version is refused."""

OutputKind = Literal["file", "dir"]


class TaskFormatError(PipeflowError):
    """A task or answer whose JSON is not what this version of pipeflow sends."""


def plain(value: Any) -> Any:
    """``value`` as it comes back from JSON (tuples become lists), so that a value
    computed here compares equal to one that travelled."""
    return json.loads(json.dumps(value))


class _Fields:
    """Typed reads from one decoded JSON object; each failure names ``what.key``."""

    def __init__(self, data: object, what: str) -> None:
        if not isinstance(data, dict):
            raise TaskFormatError(f"malformed {what}: expected a JSON object, "
                                  f"got {type(data).__name__}")
        self.data, self.what = data, what

    def _bad(self, key: str, expected: str) -> TaskFormatError:
        got = type(self.data.get(key)).__name__ if key in self.data else "nothing"
        return TaskFormatError(f"malformed {self.what}: '{key}' must be {expected}, got {got}")

    def text(self, key: str, default: str | None = None) -> str:
        value = self.data.get(key, default)
        if not isinstance(value, str):
            raise self._bad(key, "a string")
        return value

    def opt_text(self, key: str) -> str | None:
        value = self.data.get(key)
        if value is not None and not isinstance(value, str):
            raise self._bad(key, "a string or null")
        return value

    def flag(self, key: str, default: bool = False) -> bool:
        value = self.data.get(key, default)
        if not isinstance(value, bool):
            raise self._bad(key, "true or false")
        return value

    def integer(self, key: str) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self._bad(key, "an integer")
        return value

    def opt_integer(self, key: str) -> int | None:
        return None if self.data.get(key) is None else self.integer(key)

    def number(self, key: str) -> float:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self._bad(key, "a number")
        return float(value)

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._bad(key, "a list of strings")
        return tuple(value)

    def items(self, key: str) -> list[object]:
        value = self.data.get(key, [])
        if not isinstance(value, list):
            raise self._bad(key, "a list")
        return value

    def oid(self, key: str) -> str:
        value = self.text(key)
        if not is_hash(value):
            raise TaskFormatError(f"malformed {self.what}: '{key}' is not an object id: "
                                  f"{value[:80]!r}")
        return value

    def obj(self, key: str) -> dict[str, Any]:
        value = self.data.get(key, {})
        if not isinstance(value, dict):
            raise self._bad(key, "an object")
        return value


def _decode(text: str | bytes, what: str) -> _Fields:
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise TaskFormatError(f"malformed {what}: not JSON ({exc})") from exc
    found = _Fields(data, what)
    if found.data.get("format") != FORMAT:
        raise TaskFormatError(f"malformed {what}: format {found.data.get('format')!r}, "
                              f"this pipeflow reads format {FORMAT}",
                              hint="run the same pipeflow version on the client and workers")
    return found


@dataclass(frozen=True)
class Input:
    """One path of the stage's tree: a file or a folder (``oid`` of its manifest)."""

    path: str
    oid: str
    isdir: bool = False
    executable: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "oid": self.oid, "isdir": self.isdir,
                "executable": self.executable}

    @classmethod
    def from_dict(cls, data: object) -> Input:
        f = _Fields(data, "task input")
        return cls(f.text("path"), f.oid("oid"), f.flag("isdir"), f.flag("executable"))


@dataclass(frozen=True)
class Task:
    """Everything a worker needs to run one stage; no credentials (see docs/dask.md)."""

    stage: str
    cmd: tuple[str, ...]
    wdir: str
    outs: tuple[str, ...]
    inputs: tuple[Input, ...]
    remote_name: str
    remote_url: str
    remote_options: Mapping[str, Any]
    env: Mapping[str, Any]
    """The client's environment component: the worker refuses to run if its own differs."""
    python_exact: bool = False
    env_vars: tuple[str, ...] = ()
    ignore: tuple[str, ...] = ()
    """Lines of the project's ``.pipeflowignore``: outputs hash as they would locally."""
    token: str = ""
    client_root: str = ""

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "stage": self.stage, "cmd": list(self.cmd), "wdir": self.wdir,
            "outs": list(self.outs), "inputs": [i.to_dict() for i in self.inputs],
            "remote": {"name": self.remote_name, "url": self.remote_url,
                       "options": plain(dict(self.remote_options))},
            "env": plain(dict(self.env)), "python_exact": self.python_exact,
            "env_vars": list(self.env_vars), "ignore": list(self.ignore),
            "token": self.token, "client_root": self.client_root,
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> Task:
        f = _decode(text, "task")
        remote = _Fields(f.data.get("remote"), "task remote")
        return cls(
            stage=f.text("stage"), cmd=f.texts("cmd"), wdir=f.text("wdir", ""),
            outs=f.texts("outs"), inputs=tuple(Input.from_dict(i) for i in f.items("inputs")),
            remote_name=remote.text("name"), remote_url=remote.text("url"),
            remote_options=remote.obj("options"), env=f.obj("env"),
            python_exact=f.flag("python_exact"), env_vars=f.texts("env_vars"),
            ignore=f.texts("ignore"), token=f.text("token", ""),
            client_root=f.text("client_root", ""),
        )


@dataclass(frozen=True)
class TaskOutput:
    """A declared output the worker made and uploaded: its object and what it is."""

    path: str
    oid: str
    """The file's object, or the folder's manifest."""
    size: int
    kind: OutputKind = "file"
    nfiles: int | None = None
    executable: bool = False

    @property
    def isdir(self) -> bool:
        return self.kind == "dir"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "oid": self.oid, "size": self.size, "kind": self.kind,
                "nfiles": self.nfiles, "executable": self.executable}

    @classmethod
    def from_dict(cls, data: object) -> TaskOutput:
        f = _Fields(data, "answer output")
        kind = f.text("kind")
        if kind not in ("file", "dir"):
            raise TaskFormatError(f"malformed answer output: 'kind' must be 'file' or "
                                  f"'dir', got {kind[:40]!r}")
        size, nfiles = f.integer("size"), f.opt_integer("nfiles")
        if size < 0 or (nfiles is not None and nfiles < 0):
            raise TaskFormatError("malformed answer output: a negative size or count")
        return cls(f.text("path"), f.oid("oid"), size, "dir" if kind == "dir" else "file",
                   nfiles, f.flag("executable"))


@dataclass(frozen=True)
class Answer:
    """How a task ended. ``error`` set: it could not run or its result cannot be taken
    (an expected failure, not retried); else ``returncode`` says how the command ended,
    and on success ``outputs`` names every declared output."""

    started: float
    ended: float
    returncode: int = 0
    tail: tuple[str, ...] = ()
    log: str = ""
    outputs: tuple[TaskOutput, ...] = ()
    env: Mapping[str, Any] = field(default_factory=dict)
    """The worker's environment component (compared with the client's)."""
    failed_cmd: str | None = None
    error: str | None = None

    def to_json(self) -> str:
        return json.dumps({
            "format": FORMAT, "started": self.started, "ended": self.ended,
            "returncode": self.returncode, "tail": list(self.tail), "log": self.log,
            "outputs": [o.to_dict() for o in self.outputs], "env": plain(dict(self.env)),
            "failed_cmd": self.failed_cmd, "error": self.error,
        })

    @classmethod
    def from_json(cls, text: str | bytes) -> Answer:
        f = _decode(text, "answer")
        return cls(
            started=f.number("started"), ended=f.number("ended"),
            returncode=f.integer("returncode"),
            tail=f.texts("tail"), log=f.text("log", ""),
            outputs=tuple(TaskOutput.from_dict(o) for o in f.items("outputs")),
            env=f.obj("env"), failed_cmd=f.opt_text("failed_cmd"), error=f.opt_text("error"),
        )
