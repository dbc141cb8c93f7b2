"""The errors pipeflow raises, each carrying the message a user reads.

Every error pipeflow raises on purpose is a :class:`PipeflowError`; its ``exit_code``
is what ``pipeflow`` exits with (``pipeflow.cli.app`` is the one place that maps it).
The tree, with the exit code of each branch (a class not marked has its parent's)::

    PipeflowError                   exit 2: the input is wrong, nothing was done
    ├── UsageError                  a command line or API call asks for what cannot be
    │                               done: unknown target, bad flag value, no project
    ├── LocatedError                a file the user wrote is wrong: names file (line, column)
    │   ├── SpecError               pipeline.yaml, params files
    │   │   └── params.ParamsFileNotFound   a params file the spec names does not exist
    │   └── ConfigError             .pipeflow/config, config.local
    ├── LockfileError               pipeline.lock cannot be read or has the wrong shape
    │   ├── LockConflictError       it holds merge conflicts (`repro` resolves them)
    │   └── LockfileWriteError      it cannot be written: an I/O failure (exit 1)
    ├── OutsideProjectError         a path read leads outside the project (or into /dev)
    ├── files.workspace_fs.UnsafeWriteError   a path written has a folder symlinked
    │   │                           outside
    │   └── files.workspace_fs.EnvironmentFolderError   ... or lies inside a Python env
    ├── files.workspace_fs.EnvironmentInDataError  cached data that would make a Python env
    ├── files.safepath.UnsafePathError  a path read from a file (lock, manifest, record) is
    │                               unsafe
    ├── project.project.UnsafeProjectError  .pipeflow (or a place in it) is a symlink
    ├── StorageError                exit 1: the cache cannot give or take what was asked
    │   ├── MissingSourceData       the lock's source data is in neither workspace nor cache
    │   ├── DiskFull                no space left (or quota exceeded) where pipeflow writes
    │   └── content.manifest.UnsafeManifestError   a folder manifest names an unsafe
    │                               member (exit 2)
    ├── SourceConflict              exit 1: source data changed both here and in git
    ├── RepoLockError               exit 1: the repository lock cannot be taken: its file
    │   │                           (.pipeflow/lock) cannot be made or written
    │   └── LockedError             another writer holds it
    ├── StageFailed                 exit 1: a stage's command failed
    ├── TaskFailed                  exit 1: an executor's task failed or answered wrongly
    │                               (the runner reports it as a failed stage)
    ├── EnvironmentDiffers          exit 1: reproduce --strict-env: not the recorded env
    ├── CheckFailed                 exit 1: a check found something to report
    ├── Cancelled                   exit 130: work stopped on request, nothing half-done kept
    └── Interrupted                 exit 130 (Ctrl-C) or 143 (SIGTERM) during a run

Outside the tree: ``Terminated`` (a ``KeyboardInterrupt``: SIGTERM raised like Ctrl-C,
exit 143 through :class:`Interrupted`), and any other exception, which is a bug in
pipeflow: the CLI says "internal error" and exits 3. A programming error (a function
called wrongly) raises a plain ``ValueError``/``TypeError``, never a UsageError.
Classes named with a module live there (``pipeflow.params``, ...); the rest here.
These, ``UnsafePathError`` and ``UnsafeProjectError`` are importable from ``pipeflow``
itself; catch the others through their parent.

Only ``pipeflow.cli`` turns these into exit codes and printed text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where in a file something was written (1-based line and column)."""

    file: str
    line: int | None = None
    column: int | None = None

    def __str__(self) -> str:
        if self.line is None:
            return self.file
        if self.column is None:
            return f"{self.file}:{self.line}"
        return f"{self.file}:{self.line}:{self.column}"


class PipeflowError(Exception):
    """Root of every error pipeflow raises on purpose."""

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        if self.hint:
            return f"{self.message}\n  hint: {self.hint}"
        return self.message


class UsageError(PipeflowError):
    """The command line asks for something that cannot be done."""


class LocatedError(PipeflowError):
    """A file the user wrote is wrong; the message starts with where (file, line)."""

    def __init__(
        self, message: str, location: Location | None = None, *, hint: str | None = None
    ) -> None:
        text = f"{location}: {message}" if location else message
        super().__init__(text, hint=hint)
        self.location = location


class SpecError(LocatedError):
    """The pipeline spec or a params file is wrong; says where."""


class ConfigError(LocatedError):
    """``.pipeflow/config`` or ``config.local`` is wrong; says which file (and where)."""


class LockfileError(PipeflowError):
    """pipeline.lock cannot be read or has the wrong shape."""


class LockConflictError(LockfileError):
    """pipeline.lock holds merge conflicts: only ``status`` and ``repro`` read it then."""


class LockfileWriteError(LockfileError):
    """pipeline.lock cannot be written (permissions, a read-only file system): an I/O
    failure, not bad input."""

    exit_code = 1


class StorageError(PipeflowError):
    """The object store cannot give or take what was asked."""

    exit_code = 1


class MissingSourceData(StorageError):
    """Source data the lock names is in neither the workspace nor the local cache (a
    colleague's version that came through git without its data): exit 1."""

    def __init__(self, message: str, *, paths: tuple[str, ...], hint: str | None = None
                 ) -> None:
        super().__init__(message, hint=hint)
        self.paths = paths


class DiskFull(StorageError):
    """A write failed for lack of space (ENOSPC, EDQUOT, SQLite's "disk is full"):
    exit 1, naming the path; ``pipeflow.files.diskfull`` makes every one of them."""


class SourceConflict(PipeflowError):
    """The workspace's source data was edited while the lock moved (through git) to a
    version it had not seen: recording either side would silently drop the other."""

    exit_code = 1


class RepoLockError(PipeflowError):
    """The repository lock cannot be taken: its file cannot be created or written
    (permissions, a read-only file system, a folder in its place)."""

    exit_code = 1


class LockedError(RepoLockError):
    """Another pipeflow process holds the repository lock."""


class StageFailed(PipeflowError):
    """A stage's command exited non-zero or did not produce its outputs."""

    exit_code = 1

    def __init__(self, stage: str, message: str, *, log_tail: str = "") -> None:
        super().__init__(f"stage '{stage}' failed: {message}")
        self.stage = stage
        self.log_tail = log_tail


class TaskFailed(PipeflowError):
    """A task an executor ran elsewhere failed, was interrupted, or answered with
    something other than what was asked; the runner reports the stage as failed."""

    exit_code = 1


class EnvironmentDiffers(PipeflowError):
    """``reproduce --strict-env``: the environment differs from the one the version
    was made in; nothing ran."""

    exit_code = 1


class CheckFailed(PipeflowError):
    """A check (status --check, verify) found something; the report is already made."""

    exit_code = 1


class Cancelled(PipeflowError):
    """Work (transfers, for one) stopped because the run it serves was interrupted;
    what it had half done was removed."""

    exit_code = 130


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so that finished stages are still committed."""


class Interrupted(PipeflowError):
    """A run stopped by Ctrl-C (exit 130) or SIGTERM (exit 143) after committing
    the stages that finished; ``message`` and ``hint`` for a command that keeps
    something else (``exp apply`` undoes itself)."""

    def __init__(self, terminated: bool, message: str | None = None,
                 hint: str | None = None) -> None:
        super().__init__(
            message or "interrupted: the stages that finished are kept in pipeline.lock",
            hint=hint if message else "`pipeflow repro` goes on from there",
        )
        self.terminated = terminated
        self.exit_code = 143 if terminated else 130


class OutsideProjectError(PipeflowError):
    """A path pipeflow would read resolves outside the project (through a symlink),
    or into ``/dev``, ``/proc`` or ``/sys``; names the path, the link and where it
    leads."""

    def __init__(self, path: str, link: str, target: str, *, special: bool,
                 what: str = "path", hint: str | None = None) -> None:
        where = f"'{path}'" if link == path else f"'{path}' (through the link '{link}' inside it)"
        if special:
            message = (f"{what} {where} leads to {target}, a device or kernel file: pipeflow "
                       "never reads /dev, /proc or /sys")
        else:
            message = f"{what} {where} leads outside the project, to {target}"
        super().__init__(message, hint=hint)
        self.path = path
        self.link = link
        self.target = target
        self.special = special
        self.what = what
