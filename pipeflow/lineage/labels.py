"""Version labels that don't move: ``vN`` from the git history of ``pipeline.lock``.

A path's versions are numbered by their first appearance in the first-parent history
of ``pipeline.lock``, oldest first (``git log --first-parent --reverse -- pipeline.lock``
from the project's folder). Every clone with that history computes the same numbers,
and new commits, a merge (a ``git pull`` that merges included) or a ``pipeflow fetch``
only add versions after the ones already numbered, so a label once shown keeps naming
the same content. A version no commit of that first-parent line names has no
number. It is shown by its hash prefix and marked either ``side`` -- some commit
names it, reachable from a branch, tag or remote-tracking ref of this clone but not
on this branch's first-parent line (a colleague's merge that this clone fast-forwarded
onto, a branch not merged yet) -- or ``local``: no commit this clone has names it
(produced since the last commit). Any ref rather than HEAD's history alone because
"local" promises that the version never reached a commit: a version committed on
another branch of this clone did. Stashes are not counted: they hold work in progress.

A history can also be replaced (a fast-forward onto a colleague's merge, a rebase, a
reset): labels then follow the new history, and ``relabel`` says which labels this
clone showed before now name other content, so that none changes meaning silently.

Each commit's lock is parsed once: the (path, hash) pairs it names are kept in the
index database keyed by commit hash, and the list of commits for the HEAD it was read
at, so a later call costs one ``git rev-parse HEAD`` (one ``git log`` after a commit).
Whether an unnumbered version is ``side`` is asked only when one is listed: the
commits reachable from any ref are remembered for the ref tips they were read at
(one ``git rev-parse --all``, and one ``git log --all`` after refs move).
"""

from __future__ import annotations

import hashlib
import subprocess
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow.errors import LockfileError
from pipeflow.files import safeload
from pipeflow.git import gitcmd
from pipeflow.project.project import LOCK_FILE
from pipeflow.records.index import RunIndex, sql_text

LOCAL_PREFIX = "local:"
SIDE_PREFIX = "side:"


def local_label(oid: str) -> str:
    """How a version that no commit names is shown."""
    return f"{LOCAL_PREFIX}{oid[:8]}"


def side_label(oid: str) -> str:
    """How a version that a commit names, off this branch's first-parent line, is shown."""
    return f"{SIDE_PREFIX}{oid[:8]}"


@dataclass
class VersionLabels:
    """Numbers of the versions in this clone's first-parent history of the lock."""

    commits: list[str]
    """First-parent commits that changed the lock, oldest first (empty outside git)."""
    in_git: bool
    index: RunIndex
    branch: str | None = None
    """The checked-out branch (``refs/heads/...``); None when detached or outside git."""
    root: Path | None = None
    """The project's folder, to ask git which commits any ref reaches (None: none)."""
    _numbers: dict[str, dict[str, int]] = field(default_factory=dict)
    _reached: set[str] | None = None

    def numbers(self, path: str) -> dict[str, int]:
        """Hash -> N for every committed version of ``path``."""
        known = self._numbers.get(path)
        if known is None:
            position = {c: i for i, c in enumerate(self.commits)}
            rows = self.index.db.execute(
                "SELECT commit_id, hash FROM lock_paths WHERE path = ?",
                (sql_text(path),)).fetchall()
            seen = sorted((position[str(c)], str(h)) for c, h in rows if str(c) in position)
            known = {}
            for _pos, oid in seen:
                if oid not in known:
                    known[oid] = len(known) + 1
            self._numbers[path] = known
        return known

    def number(self, path: str, oid: str) -> int | None:
        return self.numbers(path).get(oid)

    def committed(self, path: str, oid: str) -> bool:
        """Whether a commit reachable from some ref (stashes aside) names this content
        of ``path``: true for every numbered version, and for the ``side`` ones."""
        if self.number(path, oid) is not None:
            return True
        if self._reached is None:
            self._reached = _reached_commits(self.root, self.index) if self.root else set()
        if not self._reached:
            return False
        rows = self.index.db.execute(
            "SELECT commit_id FROM lock_paths WHERE path = ? AND hash = ?", (sql_text(path), oid))
        return any(str(c) in self._reached for (c,) in rows)

    def commits_naming(self, path: str, oid: str) -> list[str]:
        """The commits whose lock names this content of ``path``: this branch's
        first-parent line first (oldest first), then the others this clone's refs reach
        (a branch merged, a ``side`` version); empty for a ``local`` one."""
        if self._reached is None and self.root is not None:  # parses their locks too
            self._reached = _reached_commits(self.root, self.index)
        rows = [str(c) for (c,) in self.index.db.execute(
            "SELECT commit_id FROM lock_paths WHERE path = ? AND hash = ?",
            (sql_text(path), oid))]
        position = {c: i for i, c in enumerate(self.commits)}
        on_line = [c for _, c in sorted((position[c], c) for c in rows if c in position)]
        off = sorted(c for c in rows if c not in position and c in (self._reached or ()))
        return [*on_line, *off]

    def label(self, path: str, oid: str) -> str:
        """``vN``; ``side:<hash prefix>`` for a version committed off this branch's
        first-parent line; ``local:<hash prefix>`` for one no commit names."""
        n = self.number(path, oid)
        if n is not None:
            return f"v{n}"
        return side_label(oid) if self.committed(path, oid) else local_label(oid)

    def relabel(self, path: str) -> list[Relabel]:
        """The labels of ``path`` shown before on this branch that now name other
        content; then remembers them as they are now. A label the history no longer
        reaches (an older commit checked out) is no change: it comes back as it was."""
        if self.branch is None:
            return []  # a detached HEAD looks at history; it does not replace it
        now = {n: oid for oid, n in self.numbers(path).items()}
        db = self.index.db
        before = {int(n): str(h) for n, h in db.execute(
            "SELECT number, hash FROM shown_labels WHERE branch = ? AND path = ?",
            (self.branch, path))}
        changed = [Relabel(path, n, old, now[n]) for n, old in sorted(before.items())
                   if n in now and now[n] != old]
        fresh = [(self.branch, path, n, oid) for n, oid in now.items() if before.get(n) != oid]
        if fresh:
            with db:
                db.executemany("INSERT OR REPLACE INTO shown_labels VALUES (?, ?, ?, ?)",
                               fresh)
        return changed


@dataclass(frozen=True)
class Relabel:
    """A label this clone showed that names other content since its history changed."""

    path: str
    number: int
    before: str
    now: str

    @property
    def message(self) -> str:
        return (f"v{self.number} of {self.path} now names {self.now[:8]} (it named "
                f"{self.before[:8]} on this branch before): the first-parent history of "
                "pipeline.lock was replaced (a fast-forward onto a colleague's merge, a "
                "rebase or a reset); hashes do not change, and the content it named is "
                "still listed by its hash")


def _git(root: Path, *args: str, stdin: bytes | None = None) -> bytes | None:
    try:
        proc = gitcmd.run(root, *args, stdin=stdin, timeout=300)
    except (OSError, subprocess.SubprocessError):
        return None  # no git on this machine: every version is local
    return proc.stdout if proc.returncode == 0 else None


def _lock_commits(root: Path) -> list[str] | None:
    out = _git(root, "log", "--first-parent", "--reverse", "--format=%H", "--", LOCK_FILE)
    if out is None:
        return None
    return out.decode("ascii", "replace").split()


def _reached_commits(root: Path, index: RunIndex) -> set[str]:
    """The commits changing the lock that any ref reaches, parsed into the index,
    remembered for the ref tips they were read at."""
    refs = ("--exclude=refs/stash", "--all")
    tips = _git(root, "rev-parse", "HEAD", *refs)  # HEAD: a detached one's new commits
    if tips is None:
        return set()
    key = "refs:" + hashlib.sha1(b"\n".join(sorted(tips.split()))).hexdigest()
    row = index.db.execute("SELECT commits FROM lock_history WHERE head = ?",
                           (key,)).fetchone()
    if row:
        return set(str(row[0]).split())
    # --full-history: a merge that kept one side's lock must not hide the other side
    out = _git(root, "log", *refs, "--full-history", "--format=%H", "--", LOCK_FILE)
    if out is None:
        return set()
    commits = out.decode("ascii", "replace").split()
    _remember(root, index, commits)
    with index.db:
        index.db.execute("DELETE FROM lock_history WHERE head LIKE 'refs:%'")
        index.db.execute("INSERT INTO lock_history VALUES (?, ?)", (key, " ".join(commits)))
    return set(commits)


def _batch(data: bytes) -> Iterator[bytes | None]:
    """The blobs of ``git cat-file --batch`` output, None for each one missing."""
    at = 0
    while at < len(data):
        end = data.find(b"\n", at)
        if end < 0:
            return
        header = data[at:end].split()
        at = end + 1
        if len(header) != 3 or header[1] != b"blob" or not header[2].isdigit():
            yield None  # "<spec> missing": no lock at that commit
            continue
        size = int(header[2])
        yield data[at:at + size]
        at += size + 1


def _entries(blob: bytes | None, commit: str) -> list[tuple[str, str]]:
    from pipeflow.lock import lockfile

    if blob is None:
        return []
    try:
        lock = lockfile.loads(blob.decode("utf-8"), f"{LOCK_FILE} at {commit[:8]}")
    except (LockfileError, UnicodeDecodeError):
        return []  # a lock this pipeflow cannot read names no version
    pairs = [(path, e.hash) for path, e in lock.sources.items()]
    for stage in lock.stages.values():
        pairs += [(o.path, o.hash) for o in (*stage.outs, *stage.metrics)]
    return pairs


def _remember(root: Path, index: RunIndex, commits: Iterable[str]) -> None:
    """Parse and keep the lock of each commit the index does not know yet."""
    have = {str(c) for (c,) in index.db.execute("SELECT commit_id FROM lock_commits")}
    todo = [c for c in commits if c not in have]
    if not todo:
        return
    prefix = (_git(root, "rev-parse", "--show-prefix") or b"").decode("utf-8").strip()
    # Sizes first: a lock too big to be one (a crafted commit) is never read.
    try:
        sizes = gitcmd.blob_sizes(root, [f"{c}:{prefix}{LOCK_FILE}" for c in todo])
    except (OSError, subprocess.SubprocessError):
        return
    limit = safeload.limits("lock").max_bytes
    readable = [c for c, size in zip(todo, sizes, strict=True)
                if size is not None and size <= limit]
    spec = "".join(f"{c}:{prefix}{LOCK_FILE}\n" for c in readable).encode("utf-8")
    out = _git(root, "cat-file", "--batch", stdin=spec) if readable else b""
    if out is None:
        return
    blobs = dict(zip(readable, _batch(out), strict=False))
    with index.db:
        for commit, blob in ((c, blobs.get(c)) for c in todo):
            index.db.executemany("INSERT INTO lock_paths VALUES (?, ?, ?)",
                                 [(commit, sql_text(p), h) for p, h in _entries(blob, commit)])
            index.db.execute("INSERT OR REPLACE INTO lock_commits VALUES (?)", (commit,))


def _head(root: Path) -> tuple[str | None, str | None]:
    """(HEAD's commit, its branch ref or None when detached), in one ``git rev-parse``."""
    out = _git(root, "rev-parse", "HEAD", "--symbolic-full-name", "HEAD")
    words = out.decode("utf-8", "replace").split() if out else []
    if len(words) != 2:
        return None, None
    return words[0], words[1] if words[1].startswith("refs/heads/") else None


def _history(root: Path, index: RunIndex, key: str | None) -> list[str] | None:
    """The lock's first-parent commits, remembered for the HEAD they were read at (a
    ``git rev-parse`` costs milliseconds; ``git log -- pipeline.lock`` grows with the
    history)."""
    if key:
        row = index.db.execute("SELECT commits FROM lock_history WHERE head = ?",
                               (key,)).fetchone()
        if row:
            return str(row[0]).split()
    commits = _lock_commits(root)
    if commits is not None and key:
        with index.db:
            index.db.execute("DELETE FROM lock_history WHERE head NOT LIKE 'refs:%'")
            index.db.execute("INSERT INTO lock_history VALUES (?, ?)", (key, " ".join(commits)))
    return commits


def version_labels(root: Path, index: RunIndex) -> VersionLabels:
    """The labels of this clone's history (new commits are parsed once)."""
    key, branch = _head(root)
    commits = _history(root, index, key)
    if commits is None:  # outside git, or a repository with no commit yet
        return VersionLabels([], _git(root, "rev-parse", "--git-dir") is not None, index)
    _remember(root, index, commits)
    return VersionLabels(commits, True, index, branch, root)
