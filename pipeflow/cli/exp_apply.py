"""``pipeflow exp apply`` and ``pipeflow exp remove``."""

from __future__ import annotations

from pipeflow.cli.options import Verbose


def apply_command(verbose: Verbose = False) -> None:
    """Make an experiment's params and outputs the workspace's."""
    raise NotImplementedError


def remove_command(verbose: Verbose = False) -> None:
    """Remove experiments."""
    raise NotImplementedError
