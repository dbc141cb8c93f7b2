"""``pipeflow exp run``."""

from __future__ import annotations

from pipeflow.cli.options import Verbose


def run_command(verbose: Verbose = False) -> None:
    """Run experiments."""
    raise NotImplementedError
