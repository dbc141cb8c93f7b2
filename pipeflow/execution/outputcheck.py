"""The checks a stage's declared outputs pass before they are taken, wherever the
stage ran: ``commit`` applies them in the workspace, a remote worker in its scratch
tree, so an output refused locally is refused on a cluster with the same words."""

from __future__ import annotations

import os
from pathlib import Path

from pipeflow.content.hasher import DirScan, Hasher
from pipeflow.errors import PipeflowError
from pipeflow.files import workspace_fs


class OutputRefused(PipeflowError):
    """A declared output that cannot be taken; the message names it (the caller adds
    the stage)."""


def check_output(root: Path, rel: str, hasher: Hasher) -> DirScan | None:
    """Refuse the output ``rel`` below ``root`` when a folder above it leads out of
    ``root``, when it was not written, or when it is or holds a symlink; return the
    stat walk of a folder output (its files are stored from it: one walk)."""
    # the command may have made a folder above an output a link leading out of the
    # project: nothing is read, stored or written through it
    problem = workspace_fs.parent_problem(root, rel, made_by_stage=True)
    if problem is not None:
        raise OutputRefused(f"output {problem}")
    path = root / rel
    if not os.path.lexists(path):
        raise OutputRefused(f"it did not write its declared output '{rel}'")
    hasher.forget(rel)  # the command rewrote it: nothing remembered about it holds
    if path.is_symlink():
        raise OutputRefused(f"output '{rel}' is a symlink; write a real file or folder there")
    if not path.is_dir():
        return None
    scan = hasher.scan_dir(rel)
    if scan.links:
        raise OutputRefused(f"output '{rel}' contains a symlink: {rel}/{scan.links[0]} "
                            "(not supported yet)")
    return scan
