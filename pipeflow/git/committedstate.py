"""pipeflow's own per-clone state that came through git: never this clone's.

``.pipeflow/`` holds three files meant to be committed (``config``, ``.gitignore``,
``tags.jsonl``); everything else there (the chain id, the cache's records, pointers
and objects, the state databases) belongs to one clone. A repository can still
commit them (``git add -f``), and a clone would then adopt someone else's chain id as
its own: their records would pass for this clone's work (trusted by the run cache,
"everything verified"), and this clone's new records would extend their chain.

So the files of ``.pipeflow/`` (and of the cache, when it sits in the project) that
git tracks are looked up once per command, with one ``git ls-files``, remembered in
the state database by the git index's size and time (a no-op ``status`` pays one
``stat``). Then: a ``.pipeflow/chain`` whose bytes are those git has is not adopted
(a fresh chain starts), a record git tracks is never trusted by the run cache, and
``verify`` and ``status`` name what is tracked, with the command that untracks it.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow.git import gitcmd

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing
if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue

MEANT_TO_BE_COMMITTED = frozenset({"config", ".gitignore", "tags.jsonl"})
"""The files of ``.pipeflow/`` a project commits (see ``pipeflow.ops.init``)."""
UNTRACK_HINT = ("pipeflow's own state never comes through git: untrack it with `git rm -r "
                "--cached {paths}` and commit (the files stay on disk); ask who added it")
_KEY = "git-tracked-state"
"""State-database key: the last answer, with the git index's identity it holds for."""


@dataclass(frozen=True)
class TrackedState:
    """Files of pipeflow's own state that git tracks: project-relative path -> the
    blob id git has for it."""

    blobs: Mapping[str, str] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.blobs)

    def tracked(self, rel: str) -> bool:
        return rel in self.blobs

    def same_as_git(self, rel: str, data: bytes) -> bool:
        """Whether ``data`` (the file ``rel`` now) is exactly what git has: the file
        came through git and was not rewritten by this clone since."""
        blob = self.blobs.get(rel)
        return blob is not None and blob == _blob_id(data)

    def tops(self) -> list[str]:
        """The tracked paths by their first two levels (``.pipeflow/cache``,
        ``.pipeflow/chain``): what to untrack."""
        return sorted({"/".join(rel.split("/")[:2]) for rel in self.blobs})

    def message(self) -> tuple[str, str]:
        """A warning naming what is tracked, and its hint."""
        tops = self.tops()
        shown = ", ".join(tops[:5]) + (" ..." if len(tops) > 5 else "")
        return (f"{len(self.blobs)} file(s) of pipeflow's own per-clone state are tracked by "
                f"git ({shown}): they came through git, so they are not this clone's (its "
                "chain is not adopted, its records are not trusted for the run cache)",
                UNTRACK_HINT.format(paths=" ".join(tops)))


def _blob_id(data: bytes) -> str:
    """git's object id of a file's bytes (SHA-1 repositories; a SHA-256 repository
    never matches, so its chain file is simply never adopted: the safe side)."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _git_index(root: Path) -> Path | None:
    """The git index of the repository holding ``root`` (a worktree's too), or None."""
    git_dir = gitcmd.git_dir_of(root)
    return git_dir / "index" if git_dir is not None else None


def _ls_files(root: Path, pathspecs: list[str]) -> dict[str, str]:
    try:
        out = gitcmd.run(root, "--literal-pathspecs", "ls-files", "-s", "-z", "--", *pathspecs)
    except (OSError, subprocess.SubprocessError):
        return {}
    if out.returncode != 0:
        return {}
    blobs = {}
    for entry in out.stdout.decode("utf-8", "surrogateescape").split("\0"):
        meta, sep, rel = entry.partition("\t")
        fields = meta.split()
        if sep and len(fields) == 3:
            blobs[rel] = fields[1]
    return blobs


def tracked_state(root: Path, cache_dir: Path, state: KeyValue | None) -> TrackedState:
    """What of ``.pipeflow/`` (and of the cache at ``cache_dir`` if it sits in the
    project) git tracks, other than the files meant to be committed. ``state`` keeps
    the answer in the state database for as long as the git index is the
    same file (its size, time and inode)."""
    index = _git_index(root)
    if index is None:
        return TrackedState()
    try:
        st = index.stat()
    except OSError:
        return TrackedState()  # no index yet: nothing tracked
    specs = [".pipeflow"]
    cache_rel = os.path.relpath(cache_dir, root)
    if not (cache_rel == ".." or cache_rel.startswith("../") or cache_rel.startswith(
            ".pipeflow/")):
        specs.append(cache_rel)
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino, specs]
    if state is not None:
        try:
            cached = json.loads(state.get(_KEY) or "null")
            if isinstance(cached, dict) and cached.get("index") == stamp and isinstance(
                    cached.get("blobs"), dict):
                return TrackedState({str(k): str(v) for k, v in cached["blobs"].items()})
        except (ValueError, TypeError):
            pass  # a damaged memory: ask git again
    blobs = {rel: blob for rel, blob in _ls_files(root, specs).items()
             if not (rel.startswith(".pipeflow/")
                     and rel.removeprefix(".pipeflow/") in MEANT_TO_BE_COMMITTED)}
    if state is not None:
        state.put(_KEY, json.dumps({"index": stamp, "blobs": blobs}))
    return TrackedState(blobs)
