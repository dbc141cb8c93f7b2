"""KeyValue: the get/put store a cache remembers its answers in.

The project's state database (:class:`pipeflow.state.StateDB`) and the machine cache
(:class:`pipeflow.files.machinecache.MachineCache`) are such stores; a module that remembers
something takes one (or None: remember nothing), not a pair of its bound methods.
:class:`MemoryStore` keeps the answers in a dict (tests; a command with no project).
"""

from __future__ import annotations

from typing import Protocol


class KeyValue(Protocol):
    """Text values under text keys; ``get`` is None for a key never put."""

    def get(self, key: str) -> str | None: ...

    def put(self, key: str, value: str) -> None: ...


class MemoryStore:
    """A :class:`KeyValue` in a dict (``data``), for as long as the object lives."""

    def __init__(self, data: dict[str, str] | None = None) -> None:
        self.data: dict[str, str] = data if data is not None else {}

    def get(self, key: str) -> str | None:
        return self.data.get(key)

    def put(self, key: str, value: str) -> None:
        self.data[key] = value


class Layered:
    """Two stores as one: ``get`` asks ``near`` (may be None), then ``far`` under
    ``far_prefix`` (copying a hit into ``near``); ``put`` writes both. The project's
    state database before the machine cache, so that what one clone learned serves
    every clone of this user."""

    def __init__(self, near: KeyValue | None, far: KeyValue, far_prefix: str = "") -> None:
        self.near = near
        self.far = far
        self.far_prefix = far_prefix

    def get(self, key: str) -> str | None:
        found = self.near.get(key) if self.near is not None else None
        if found is None:
            found = self.far.get(self.far_prefix + key)
            if found is not None and self.near is not None:
                self.near.put(key, found)
        return found

    def put(self, key: str, value: str) -> None:
        if self.near is not None:
            self.near.put(key, value)
        self.far.put(self.far_prefix + key, value)
