"""``pipeflow exp show`` and ``pipeflow exp diff``."""

from __future__ import annotations

from pipeflow.cli.options import Verbose


def show_command(verbose: Verbose = False) -> None:
    """List the experiments with their params and metrics."""
    raise NotImplementedError


def diff_command(verbose: Verbose = False) -> None:
    """Two experiments' params and metrics side by side."""
    raise NotImplementedError
