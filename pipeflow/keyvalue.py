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
