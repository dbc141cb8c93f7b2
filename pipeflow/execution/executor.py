"""The executor seam: what runs a stage's command for the scheduler, and by which name.

The scheduler owns concurrency (``--jobs`` worker threads, keep-going, skipping the
dependents of a failure); an executor only runs one stage when asked, blocking the
worker thread that asked, and says how it ended. ``run`` is called from several
threads at once, so an executor keeps no per-call state on ``self`` without a lock.

Engines are found by name in a registry the CLI and ``ops`` read; a factory is named
by a ``"module:function"`` string so that choosing ``local`` never imports Dask. The
registry also knows the names of each engine's own options (``dask``: ``scheduler``),
so that ``repro``'s options are checked, the engine unimported, before anything runs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from pipeflow.errors import UsageError

if TYPE_CHECKING:
    from types import TracebackType

    from pipeflow.execution.cancel import CancelToken
    from pipeflow.execution.runner import LineSink, RunResult
    from pipeflow.planning.fingerprint import Components
    from pipeflow.project.project import Project
    from pipeflow.spec.model import Stage
    from pipeflow.storage.remote import Remote


@runtime_checkable
class Executor(Protocol):
    """Runs stages; a context manager whose exit closes it."""

    def run(self, stage: Stage, components: Components) -> RunResult:
        """Run ``stage`` so its outputs end up in the workspace; block until it ended."""
        ...

    def cancel(self) -> None:
        """Stop every stage this executor is running (called from another thread); a
        cancelled executor serves no further stage (one executor serves one run)."""
        ...

    def close(self) -> None:
        """Release what the executor holds (connections, workers); idempotent."""
        ...

    def __enter__(self) -> Executor: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...


@dataclass(frozen=True)
class ExecutorContext:
    """What every factory is given: the project, where output lines go, the run's
    token (set in every stage process), the run's cancel token, the remote named
    on the command line, and the engine's own options (``scheduler=...``)."""

    repo: Project
    token: str
    cancel: CancelToken
    sink: LineSink | None = None
    remote: str | None = None
    options: Mapping[str, str] = field(default_factory=dict)
    open_remote: Callable[[str | None], Remote] | None = None
    """Opens a configured remote by name (None: the default one), for engines that
    exchange bytes through a remote; ``ops`` passes it (the project's remote settings
    are read above this layer), and only engines that need a remote call it."""


Factory = Callable[[ExecutorContext], Executor]


@dataclass(frozen=True)
class _Engine:
    factory: str | Factory
    options: tuple[str, ...]


_REGISTRY: dict[str, _Engine] = {
    "local": _Engine("pipeflow.execution.local:create", ()),
    "dask": _Engine("pipeflow.execution.dask_executor:create", ("scheduler",)),
}


def register(name: str, factory: str | Factory, options: tuple[str, ...] = ()) -> None:
    """Make ``--executor NAME`` create executors with ``factory`` (a callable, or a
    ``"module:function"`` string imported on first use). ``options``: the names of the
    engine's own options (``scheduler``); any other is refused before anything runs."""
    _REGISTRY[name] = _Engine(factory, tuple(options))


def names() -> list[str]:
    """The registered executor names, sorted."""
    return sorted(_REGISTRY)


def _engine(name: str) -> _Engine:
    found = _REGISTRY.get(name)
    if found is None:
        raise UsageError(f"unknown executor {name!r}",
                         hint=f"use one of: {', '.join(names())}")
    return found


def check_options(name: str, options: Mapping[str, str]) -> None:
    """:class:`UsageError` unless ``name`` is registered and takes every option in
    ``options``; imports nothing of the engine."""
    takes = _engine(name).options
    for key in options:
        if key not in takes:
            which = f"its options are {', '.join(takes)}" if takes else "it takes no options"
            flag = "--scheduler" if key == "scheduler" else f"--executor-option {key}"
            raise UsageError(f"{flag} is not an option of executor {name!r} ({which})",
                             hint=f"drop {flag}, or choose an executor that takes it")


def factory_for(name: str) -> Factory:
    """The factory registered as ``name``; :class:`UsageError` naming the known ones."""
    found = _engine(name).factory
    if callable(found):
        return found
    module, _, attr = found.partition(":")
    try:
        made: Factory = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError) as exc:
        raise UsageError(f"executor {name!r} cannot be loaded from {found}: {exc}",
                         hint="install the package that provides it, or fix its "
                              "register() call") from exc
    return made


def create(name: str, context: ExecutorContext) -> Executor:
    """A new executor of engine ``name``; raises the factory's errors (a missing
    scheduler address is a UsageError) before anything runs."""
    check_options(name, context.options)
    return factory_for(name)(context)
