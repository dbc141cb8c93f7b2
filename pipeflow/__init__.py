"""pipeflow: declarative, reproducible pipelines for ML and data work.

The Python API — ``pipeflow.Repo(path)`` and ``pipeflow.open(path, version=...)`` —
lives in :mod:`pipeflow.api` and is imported on first use, so that ``import
pipeflow`` (and ``pipeflow --version``) stay instant: not even ``typing`` is loaded.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["CancelToken", "Repo", "__version__", "open"]

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.api import CancelToken, Repo, open


def __getattr__(name: str) -> object:
    if name in ("CancelToken", "Repo", "open"):
        from pipeflow import api

        value = getattr(api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'pipeflow' has no attribute {name!r}")
