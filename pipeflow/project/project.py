"""Project: where a project lives — its root, config, state database and object store.

A small holder of places and handles; the verbs live in ``pipeflow.ops``.
"""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pipeflow.errors import PipeflowError, UsageError
from pipeflow.project.config import DEFAULT_CONFIG, Config

if TYPE_CHECKING:
    from pipeflow.content.hasher import Hasher
    from pipeflow.content.ignore import IgnoreRules
    from pipeflow.files.repolock import RepoLock
    from pipeflow.git.committedstate import TrackedState
    from pipeflow.records.index import RunIndex
    from pipeflow.records.records import RecordStore
    from pipeflow.signing.keys import Signer
    from pipeflow.state import StateDB
    from pipeflow.storage.links import Linker
    from pipeflow.storage.store import ObjectStore

DOT = ".pipeflow"
SPEC_FILE = "pipeline.yaml"
LOCK_FILE = "pipeline.lock"
CONFIG_FILE = "config"
LOCAL_CONFIG_FILE = "config.local"

OWN_PLACES = (
    "state", "state/state.db", "state/index.db", "cache", "cache/objects", "cache/runs",
    "cache/runcache", "cache/tmp", "logs", "tmp", "tmp/exp", "tmp/reproduce", "lock",
    "chain", CONFIG_FILE,
    LOCAL_CONFIG_FILE, "tags.jsonl",
)
"""What pipeflow writes, deletes or reads under ``.pipeflow/``: none may be a link."""


class UnsafeProjectError(PipeflowError):
    """``.pipeflow`` or a place pipeflow keeps under it is a symlink: git commits links,
    so a clone could point pipeflow's state, cache and lock at any folder."""


def check_dot(root: Path) -> None:
    """Refuse ``root/.pipeflow``, or one of its :data:`OWN_PLACES`, that is a symlink
    (one ``lstat`` each, before anything is read or written there).

    A cache elsewhere is configured with ``cache.dir``, which this does not check."""
    for rel in ("", *OWN_PLACES):
        name = f"{DOT}/{rel}" if rel else DOT
        try:
            st = os.lstat(root / name)
        except OSError:  # absent (made later, as a real folder) or below a non-folder
            if not rel:
                return
            continue
        if stat.S_ISLNK(st.st_mode):
            target = os.path.realpath(root / name)
            msg = (f"{name} is a symlink (to {target}): pipeflow keeps its state, cache "
                   "and lock there and never follows a link out of them; nothing was read "
                   "or written")
            hint = (f"a clone can commit such a link: remove it (`rm {name}`) and check "
                    f"where it came from (`git log -- {name}`); for a cache elsewhere set "
                    "`cache.dir` in .pipeflow/config.local instead")
            raise UnsafeProjectError(msg, hint=hint)
        if not rel and not stat.S_ISDIR(st.st_mode):
            return  # not a project folder: find_root and init say so


def find_root(start: Path) -> Path:
    """The nearest folder at or above ``start`` holding ``.pipeflow/`` or a pipeline.yaml."""
    start = start.resolve()
    for folder in (start, *start.parents):
        if (folder / DOT).is_dir():
            return folder
    for folder in (start, *start.parents):
        if (folder / SPEC_FILE).is_file():
            return folder
    msg = f"no pipeflow project at or above {start}"
    raise UsageError(msg, hint="run `pipeflow init` in your project folder")


@dataclass
class Project:
    """A pipeflow project on disk. Opening one writes nothing (it only checks that
    ``.pipeflow`` holds no symlink: :func:`check_dot`); handles open lazily."""

    root: Path
    _closers: list[Any] = field(default_factory=list, repr=False)
    dot: Path = field(init=False, repr=False, compare=False)
    """``.pipeflow/``: state, cache, lock and config."""
    spec_path: Path = field(init=False, repr=False, compare=False)
    lock_path: Path = field(init=False, repr=False, compare=False)
    logs_dir: Path = field(init=False, repr=False, compare=False)
    config_files: tuple[Path, Path] = field(init=False, repr=False, compare=False)
    """The committed config file and this machine's ``config.local``."""

    def __post_init__(self) -> None:
        self.dot = self.root / DOT
        self.spec_path = self.root / SPEC_FILE
        self.lock_path = self.root / LOCK_FILE
        self.logs_dir = self.dot / "logs"
        self.config_files = (self.dot / CONFIG_FILE, self.dot / LOCAL_CONFIG_FILE)
        check_dot(self.root)

    @classmethod
    def find(cls, start: Path | str | None = None) -> Project:
        """The project containing ``start`` (default: the current directory)."""
        return cls(find_root(Path(start) if start is not None else Path.cwd()))

    # places -----------------------------------------------------------------
    @cached_property
    def config(self) -> Config:
        """Project config merged with the per-machine ``config.local``."""
        from pipeflow.project.config import load

        return load(*self.config_files, DEFAULT_CONFIG)

    @property
    def cache_dir(self) -> Path:
        configured = os.path.expanduser(self.config.cache.dir)
        return (self.dot / configured).resolve() if not os.path.isabs(configured) else Path(
            configured
        )

    # handles ----------------------------------------------------------------
    @cached_property
    def state(self) -> StateDB:
        from pipeflow.state import StateDB

        db = StateDB(self.dot / "state" / "state.db")
        self._closers.append(db)
        return db

    @cached_property
    def ignore(self) -> IgnoreRules:
        from pipeflow.content.ignore import IgnoreRules

        return IgnoreRules(self.root)

    @cached_property
    def hasher(self) -> Hasher:
        from pipeflow.content.hasher import Hasher

        return Hasher(self.root, self.state if self.dot.is_dir() else None, self.ignore)

    @cached_property
    def linker(self) -> Linker:
        from pipeflow.storage.links import Linker

        return Linker(self.cache_dir, self.root, self.config.cache.link, self.state)

    @cached_property
    def store(self) -> ObjectStore:
        from pipeflow.storage.store import ObjectStore

        return ObjectStore(self.cache_dir / "objects", self.linker)

    @cached_property
    def records(self) -> RecordStore:
        """Run records and run-cache pointers (beside the objects, so they travel)."""
        from pipeflow.records.records import RecordStore

        def came_through_git(path: Path, data: bytes) -> bool:
            rel = os.path.relpath(path, self.root).replace(os.sep, "/")
            return self.committed.same_as_git(rel, data)

        def sign(data: bytes) -> bytes | None:
            from pipeflow.records.runrecord import canonical
            from pipeflow.signing.signatures import sign

            signer = self.signer
            return None if signer is None else canonical(sign(signer, data).to_json())

        return RecordStore(self.cache_dir, self.dot / "chain", came_through_git, sign)

    @cached_property
    def signer(self) -> Signer | None:
        """This user's signing key (``pipeflow keys generate``), or None: run records
        and alias moves are signed with it (docs/registry.md)."""
        from pipeflow.signing.keys import load_signer

        return load_signer()

    @cached_property
    def committed(self) -> TrackedState:
        """pipeflow's own state that git tracks (someone committed it): never this
        clone's (:mod:`pipeflow.git.committedstate`)."""
        from pipeflow.git.committedstate import TrackedState, tracked_state

        if not self.dot.is_dir():
            return TrackedState()
        return tracked_state(self.root, self.cache_dir, self.state)

    @cached_property
    def index(self) -> RunIndex:
        """The SQLite index of run records, brought up to date on first use."""
        from pipeflow.records.index import RunIndex

        index = RunIndex(self.dot / "state" / "index.db", self.records)
        self._closers.append(index)
        index.refresh()
        return index

    def forget(self, *names: str) -> None:
        """Read ``config`` or open ``index`` (or ``signer``...) afresh on next use:
        after an edit wrote the config files, after a fetch brought records to index.
        An old index handle stays open until :meth:`close`: whoever took it during
        the fetch may still read through it."""
        for name in names:
            self.__dict__.pop(name, None)

    def open_index(self) -> RunIndex | None:
        """The run index if this session opened it, else None (never opens it)."""
        index: RunIndex | None = self.__dict__.get("index")
        return index

    def written(self) -> list[str | os.PathLike[str]]:
        """What the object store and the run records wrote in this session, for one
        batched sync (neither is opened just to ask)."""
        paths: list[str | os.PathLike[str]] = []
        if "store" in self.__dict__:
            paths += self.store.written()
        if "records" in self.__dict__:
            paths += self.records.written
        return paths

    def lock(self, *, wait: float = 0.0) -> RepoLock:
        """The repository lock (a context manager; :mod:`pipeflow.files.repolock`): one
        writer at a time, waiting up to ``wait`` seconds for another to finish."""
        from pipeflow.files.repolock import RepoLock

        return RepoLock(self.dot / "lock", wait=wait)

    def close(self) -> None:
        """Flush the stat cache and close the state database."""
        if "hasher" in self.__dict__:
            self.hasher.flush()
        for closer in self._closers:
            closer.close()
        self._closers.clear()

    def __enter__(self) -> Project:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
