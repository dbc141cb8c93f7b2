"""``push``, ``fetch`` and ``pull``: objects and run records to and from a remote.

Only what the other side lacks moves (one listing per prefix, then parallel
transfers); every downloaded object is verified against its hash before it enters
the cache, and every record against the SHA-256 in its name. Run records and
run-cache pointers travel with the data, so lineage, versions and the run cache
work in a colleague's clone.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow import faults, lockfile
from pipeflow.errors import StorageError
from pipeflow.hashing import hash_file
from pipeflow.lockfile import FileEntry, Lock, out_entries
from pipeflow.ops.remotes import open_remote
from pipeflow.repo import LOCK_FILE, Repo
from pipeflow.storage.remote import Progress, Remote, parallel


@dataclass
class TransferReport:
    remote: str
    objects: int = 0
    records: int = 0
    pointers: int = 0
    up_to_date: int = 0
    rejected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Objects the lock needs that neither side has."""


def local_objects(repo: Repo) -> set[str]:
    root = repo.cache_dir / "objects"
    found: set[str] = set()
    try:
        shards = list(os.scandir(root))
    except FileNotFoundError:
        return found
    for shard in shards:
        if len(shard.name) == 2 and shard.is_dir():
            for entry in os.scandir(shard.path):
                if len(entry.name) == 30 and not entry.name.startswith("."):
                    found.add(shard.name + entry.name)
    return found


def _entries(lock: Lock, paths: set[str] | None) -> list[FileEntry]:
    entries = [e for e in lock.sources.values()]
    for stage in lock.stages.values():
        entries.extend(out_entries(stage).values())
    return [e for e in entries if e.cache and (paths is None or e.path in paths)]


def objects_for(repo: Repo, entries: Iterable[FileEntry]) -> set[str]:
    """Oids that checking out ``entries`` needs, as far as the local cache knows."""
    oids: set[str] = set()
    for entry in entries:
        oids.add(entry.hash)
        if entry.isdir and repo.store.has(entry.hash):
            oids.update(e.hash for e in repo.store.manifest(entry.hash).entries)
    return oids


def _target_paths(repo: Repo, targets: list[str] | None) -> set[str] | None:
    if not targets:
        return None
    from pipeflow.graph import resolve_targets
    from pipeflow.ops.project import load_project

    graph = load_project(repo).graph
    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    paths = {t for t in targets if t in lock.sources}
    names = resolve_targets(graph, [t for t in targets if t not in lock.sources])
    for name in names:
        paths.update(o.path for o in graph.pipeline.stages[name].outs)
    return paths


def push(repo: Repo, remote_name: str | None = None, targets: list[str] | None = None,
         progress: Progress | None = None) -> TransferReport:
    """Send objects (all of the cache, or what TARGETS need) and every run record."""
    remote = open_remote(repo, remote_name)
    remote.check_reachable()
    report = TransferReport(remote.name)
    paths = _target_paths(repo, targets)
    have_local = local_objects(repo)
    if paths is None:
        wanted = have_local
    else:
        wanted = objects_for(repo, _entries(lockfile.read(repo.lock_path, LOCK_FILE), paths))
    have_remote = remote.objects()
    send = sorted(wanted & have_local - have_remote)
    report.up_to_date = len(wanted & have_remote)
    report.missing = sorted(wanted - have_local - have_remote)
    jobs: list[Callable[[], None]] = [
        _job(remote.upload, repo.store.path_of(oid), "objects", f"{oid[:2]}/{oid[2:]}")
        for oid in send
    ]
    records = repo.records
    local_records = {f"{chain}/{path.name}": path for chain, _s, _i, path in records.iter_all()}
    new_records = sorted(set(local_records) - remote.records())
    jobs += [_job(remote.upload, local_records[rel], "runs", rel) for rel in new_records]
    pointers = _local_pointers(repo)
    remote_pointers = remote.pointers()
    new_pointers = sorted(rel for rel in pointers if rel not in remote_pointers)
    jobs += [_job(remote.upload, pointers[rel], "runcache", rel) for rel in new_pointers]
    faults.point("push.listed")
    parallel(jobs, progress)
    report.objects, report.records, report.pointers = (
        len(send), len(new_records), len(new_pointers))
    return report


def _job(fn: Callable[..., None], *args: object) -> Callable[[], None]:
    return lambda: fn(*args)


def _local_pointers(repo: Repo) -> dict[str, Path]:
    root = repo.records.runcache
    found: dict[str, Path] = {}
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if not name.startswith("."):
                path = Path(folder) / name
                found[path.relative_to(root).as_posix()] = path
    return found


def fetch(repo: Repo, remote_name: str | None = None, targets: list[str] | None = None,
          progress: Progress | None = None) -> TransferReport:
    """Bring run records, run-cache pointers and the objects the lock needs."""
    remote = open_remote(repo, remote_name)
    report = TransferReport(remote.name)
    have_remote = remote.objects()
    _fetch_records(repo, remote, report, progress)
    entries = _entries(lockfile.read(repo.lock_path, LOCK_FILE), _target_paths(repo, targets))
    # manifests first: a folder's entries are only known once its manifest is here
    manifests = [e.hash for e in entries if e.isdir and not repo.store.has(e.hash)]
    _download_objects(repo, remote, manifests, have_remote, report, progress)
    wanted = objects_for(repo, entries)
    todo = sorted(oid for oid in wanted if not repo.store.has(oid))
    _download_objects(repo, remote, todo, have_remote, report, progress)
    report.up_to_date = len(wanted) - len(todo)
    if report.rejected:
        listed = ", ".join(o[:12] for o in report.rejected[:5])
        raise StorageError(f"{len(report.rejected)} item(s) on remote '{remote.name}' did not "
                           f"match their hash and were rejected: {listed}",
                           hint="push them again from a clone that has good copies")
    return report


def download_objects(repo: Repo, remote: Remote, oids: Iterable[str]) -> list[str]:
    """Bring ``oids`` (those the remote has) into the local cache, verified; returns
    the oids that could not be had (absent or rejected)."""
    wanted = sorted(set(oids))
    have_remote = remote.objects() if wanted else set()
    report = TransferReport(remote.name)
    _download_objects(repo, remote, wanted, have_remote, report, None)
    return sorted(set(report.missing) | set(report.rejected))


def unpushed(repo: Repo, remote_name: str | None = None) -> tuple[list[str], int]:
    """Paths in the lock whose objects the remote lacks, and how many run records."""
    remote = open_remote(repo, remote_name)
    have = remote.objects()
    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    paths = [e.path for e in _entries(lock, None) if not objects_for(repo, [e]) <= have]
    local = {f"{chain}/{path.name}" for chain, _s, _i, path in repo.records.iter_all()}
    return sorted(paths), len(local - remote.records())


def _download_objects(repo: Repo, remote: Remote, oids: list[str], have_remote: set[str],
                      report: TransferReport, progress: Progress | None) -> None:
    tmp_dir = repo.cache_dir / "tmp"
    tmp_dir.mkdir(parents=True, exist_ok=True)
    report.missing.extend(o for o in oids if o not in have_remote)

    def get(oid: str) -> None:
        tmp = tmp_dir / f"{oid}.{secrets.token_hex(4)}"
        try:
            remote.download("objects", f"{oid[:2]}/{oid[2:]}", tmp)
            if hash_file(tmp) != oid:
                report.rejected.append(oid)
                return
            repo.store.add_file(tmp, oid, move=True)
            report.objects += 1
        finally:
            tmp.unlink(missing_ok=True)

    parallel([_job(get, oid) for oid in oids if oid in have_remote], progress)


def _fetch_records(repo: Repo, remote: Remote, report: TransferReport,
                   progress: Progress | None) -> None:
    records = repo.records
    local = {f"{chain}/{path.name}" for chain, _s, _i, path in records.iter_all()}
    todo = sorted(remote.records() - local)
    verified: list[tuple[Path, Path]] = []

    def get(rel: str) -> None:
        final = records.runs / rel
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.{secrets.token_hex(4)}.tmp")
        try:
            remote.download("runs", rel, tmp)
            try:
                _verify_record(tmp, final.name)
            except StorageError:
                report.rejected.append(rel)
                tmp.unlink(missing_ok=True)
                return
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        verified.append((tmp, final))

    try:
        parallel([_job(get, rel) for rel in todo], progress)
    except BaseException:
        for tmp, _ in verified:
            tmp.unlink(missing_ok=True)
        raise
    # Placed in chain order (sequence numbers sort as text), so that a fetch stopped at
    # any moment leaves each chain whole up to some record: verify reads a gap as a
    # removed record.
    for tmp, final in sorted(verified, key=lambda pair: pair[1]):
        os.replace(tmp, final)
        report.records += 1
    pointers = _local_pointers(repo)
    for rel in sorted(remote.pointers() - set(pointers)):
        target = records.runcache / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        remote.download("runcache", rel, target)
        report.pointers += 1


def _verify_record(path: Path, name: str) -> None:
    import hashlib

    expected = name.split("-", 1)[1].removesuffix(".json")
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise StorageError(f"run record {name} does not match its hash")
