"""``push``, ``fetch`` and ``pull``: objects and run records to and from a remote.

Only what the other side lacks moves (one listing per prefix, then parallel
transfers); every downloaded object is verified against its hash before it enters
the cache, and every record against the SHA-256 in its name. Run records and
run-cache pointers travel with the data, so lineage, versions and the run cache
work in a colleague's clone.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pipeflow import faults
from pipeflow.errors import StorageError
from pipeflow.files import atomicfile
from pipeflow.lineage.trust import remember_origins
from pipeflow.lock import lockfile
from pipeflow.lock.lockfile import FileEntry, Lock, out_entries
from pipeflow.ops.remotes import open_remote
from pipeflow.planning.lacking import Lacking, lacking
from pipeflow.project.project import LOCK_FILE, Project
from pipeflow.records.records import MAX_SIG_BYTES, parse_pointer, read_pointer, sig_path
from pipeflow.storage import exchange
from pipeflow.storage.remote import Job, Progress, Remote, parallel, read_bounded


@dataclass
class TransferReport:
    remote: str
    objects: int = 0
    records: int = 0
    pointers: int = 0
    signatures: int = 0
    """Record signature files (``.sig``) sent or brought."""
    up_to_date: int = 0
    rejected: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """Objects the lock needs that neither side has."""
    skipped: list[str] = field(default_factory=list)
    """Damaged files met and left alone (run-cache pointers): warnings for the user."""
    lacking: list[Lacking] = field(default_factory=list)
    """``fetch``: the lock's paths whose objects are among ``missing``."""


def _entries(lock: Lock, paths: set[str] | None) -> list[FileEntry]:
    entries = [e for e in lock.sources.values()]
    for stage in lock.stages.values():
        entries.extend(out_entries(stage).values())
    return [e for e in entries if e.cache and (paths is None or e.path in paths)]


def objects_for(repo: Project, entries: Iterable[FileEntry]) -> set[str]:
    """Oids that checking out ``entries`` needs, as far as the local cache knows."""
    oids: set[str] = set()
    for entry in entries:
        oids.add(entry.hash)
        if entry.isdir and repo.store.has(entry.hash):
            oids.update(e.hash for e in repo.store.manifest(entry.hash).entries)
    return oids


def _target_paths(repo: Project, targets: list[str] | None) -> set[str] | None:
    if not targets:
        return None
    from pipeflow.ops.project import load_project
    from pipeflow.planning.graph import resolve_targets

    graph = load_project(repo).graph
    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    paths = {t for t in targets if t in lock.sources}
    names = resolve_targets(graph, [t for t in targets if t not in lock.sources])
    for name in names:
        paths.update(o.path for o in graph.pipeline.stages[name].outs)
    return paths


def push(repo: Project, remote_name: str | None = None, targets: list[str] | None = None,
         progress: Progress | None = None) -> TransferReport:
    """Send objects (all of the cache, or what TARGETS need) and every run record."""
    remote = open_remote(repo, remote_name)
    remote.check_reachable()
    report = TransferReport(remote.name)
    paths = _target_paths(repo, targets)
    have_local = set(repo.store.iter_oids())
    if paths is None:
        wanted = have_local
    else:
        wanted = objects_for(repo, _entries(lockfile.read(repo.lock_path, LOCK_FILE), paths))
    have_remote = remote.objects()
    send = sorted(wanted & have_local - have_remote)
    report.up_to_date = len(wanted & have_remote)
    report.missing = sorted(wanted - have_local - have_remote)
    records = repo.records
    local_records = {f"{chain}/{path.name}": path for chain, _s, _i, path in records.iter_all()}
    pointers, damaged = local_pointers(repo)
    report.skipped += [_damaged(repo, rel, "not pushed") for rel in damaged]
    report.skipped += _drop_via_git(repo, local_records, pointers)
    remote_records, remote_sigs = remote.run_files()
    new_records = sorted(set(local_records) - remote_records)
    jobs = [_upload(remote, local_records[rel], "runs", rel) for rel in new_records]
    sigs = _local_signatures(local_records, remote_sigs)
    jobs += [_upload(remote, path, "runs", rel) for rel, path in sigs.items()]
    remote_pointers = remote.pointers()
    new_pointers = sorted(rel for rel in pointers if rel not in remote_pointers)
    jobs += [_upload(remote, pointers[rel], "runcache", rel) for rel in new_pointers]
    # Objects first, records after: a record on the remote never names data that is
    # not there yet, and between the two only gc's grace period protects the new
    # objects (the fault point lets tests hold a push right there).
    total = len(send) + len(jobs)
    faults.point("push.listed")
    exchange.push_objects(repo.store, remote, send, _shifted(progress, 0, total))
    faults.point("push.records")
    parallel(jobs, _shifted(progress, len(send), total))
    report.objects, report.records, report.pointers, report.signatures = (
        len(send), len(new_records), len(new_pointers), len(sigs))
    return report


def _sig_rel(rel: str) -> str:
    return rel.removesuffix(".json") + ".sig"


def _local_signatures(records: dict[str, Path], remote_sigs: set[str]) -> dict[str, Path]:
    """The signature files (``chain/seq-sha.sig`` -> file) of ``records`` the remote
    lacks."""
    found = {}
    for rel, path in sorted(records.items()):
        sig = sig_path(path)
        if _sig_rel(rel) not in remote_sigs and sig.is_file():
            found[_sig_rel(rel)] = sig
    return found


def _shifted(progress: Progress | None, start: int, total: int) -> Progress | None:
    """One phase's progress, reported as part of the whole transfer."""
    if progress is None:
        return None
    return lambda done, _count: progress(start + done, total)


def _upload(remote: Remote, local: Path, kind: str, rel: str) -> Job[None]:
    return lambda stop: remote.upload(local, kind, rel, stop)


def local_pointers(repo: Project) -> tuple[dict[str, Path], list[str]]:
    """This clone's run-cache pointers (relative path -> file) that name a record, and
    the relative paths of those that are damaged (cut short by a crash of an older
    pipeflow, or garbled)."""
    root = repo.records.runcache
    found: dict[str, Path] = {}
    damaged: list[str] = []
    for folder, _dirs, files in os.walk(root):
        for name in files:
            if name.startswith("."):
                continue  # a temporary name
            path = Path(folder) / name
            rel = path.relative_to(root).as_posix()
            try:
                good = parse_pointer(read_pointer(path)) is not None
            except OSError:
                good = False
            if good:
                found[rel] = path
            else:
                damaged.append(rel)
    return found, sorted(damaged)


def _drop_via_git(repo: Project, records: dict[str, Path], pointers: dict[str, Path]
                  ) -> list[str]:
    """Remove from ``records`` and ``pointers`` the files that came through git: they
    are not this clone's, and a push would pass them off as its own to everyone who
    fetches (see :mod:`pipeflow.git.committedstate`). Returns the warning, if any."""
    committed = repo.committed
    if not committed:
        return []
    dropped = 0
    for found in (records, pointers):
        for rel, path in list(found.items()):
            if committed.tracked(os.path.relpath(path, repo.root).replace(os.sep, "/")):
                del found[rel]
                dropped += 1
    if not dropped:
        return []
    return [f"{dropped} run record(s) and run-cache pointer(s) came through git, not from "
            "this clone: not pushed"]


def _damaged(repo: Project, rel: str, what: str) -> str:
    return (f"run-cache entry {repo.records.runcache / rel} is damaged (it does not name a "
            f"run record): {what}")


def fetch(repo: Project, remote_name: str | None = None, targets: list[str] | None = None,
          progress: Progress | None = None) -> TransferReport:
    """Bring run records, run-cache pointers and the objects the lock needs."""
    remote = open_remote(repo, remote_name)
    report = TransferReport(remote.name)
    have_remote = remote.objects()
    _fetch_records(repo, remote, report, progress)
    sides = _fetch_sides(repo)
    entries = [e for side in sides for e in _entries(side, _target_paths(repo, targets))]
    # manifests first: a folder's entries are only known once its manifest is here
    manifests = [e.hash for e in entries if e.isdir and not repo.store.has(e.hash)]
    _download_objects(repo, remote, manifests, have_remote, report, progress)
    wanted = objects_for(repo, entries)
    todo = sorted(oid for oid in wanted if not repo.store.has(oid))
    _download_objects(repo, remote, todo, have_remote, report, progress)
    report.up_to_date = len(wanted) - len(todo)
    report.lacking = _lacking(repo, sides, entries, set(report.missing))
    if report.rejected:
        listed = ", ".join(o[:12] for o in report.rejected[:5])
        raise StorageError(f"{len(report.rejected)} item(s) on remote '{remote.name}' did not "
                           f"match their hash and were rejected: {listed}",
                           hint="push them again from a clone that has good copies")
    return report


def _fetch_sides(repo: Project) -> tuple[Lock, ...]:
    """The locks fetch brings the entries of: the lock; for a lock in merge conflict,
    both sides (so that the ``repro`` resolving it can restore whichever its inputs
    select)."""
    from pipeflow.lock import lockconflict

    merged = lockconflict.read(repo.lock_path, LOCK_FILE)
    return (merged.lock,) if merged.clean else (merged.side(0), merged.side(1))


def _lacking(repo: Project, sides: tuple[Lock, ...], entries: list[FileEntry],
             missing: set[str]) -> list[Lacking]:
    """The paths among ``entries`` that a ``missing`` object leaves incomplete."""
    if not missing:
        return []
    paths = {e.path for e in entries if objects_for(repo, [e]) & missing}
    found = {item.path: item for side in sides for item in lacking(repo, side, paths)}
    return [found[path] for path in sorted(found)]


def download_objects(repo: Project, remote: Remote, oids: Iterable[str],
                     listed: set[str] | None = None) -> list[str]:
    """:func:`pipeflow.storage.exchange.download_objects` into the project's store."""
    return exchange.download_objects(repo.store, remote, oids, listed)


def unpushed(repo: Project, remote_name: str | None = None) -> tuple[list[str], int]:
    """Paths in the lock whose objects the remote lacks, and how many run records."""
    remote = open_remote(repo, remote_name)
    have = remote.objects()
    lock = lockfile.read(repo.lock_path, LOCK_FILE)
    paths = [e.path for e in _entries(lock, None) if not objects_for(repo, [e]) <= have]
    local = {f"{chain}/{path.name}" for chain, _s, _i, path in repo.records.iter_all()}
    return sorted(paths), len(local - remote.run_files()[0])


def _download_objects(repo: Project, remote: Remote, oids: list[str], have_remote: set[str],
                      report: TransferReport, progress: Progress | None) -> None:
    got = exchange.fetch_objects(repo.store, remote, oids, have_remote, progress)
    report.objects += got.stored
    report.missing += got.missing
    report.rejected += got.rejected


def fetch_records(repo: Project, remote: Remote) -> TransferReport:
    """Bring the run records and run-cache pointers this clone lacks (each record
    verified against the SHA-256 in its name; a bad one is left out and listed in
    ``rejected``)."""
    report = TransferReport(remote.name)
    _fetch_records(repo, remote, report, None)
    return report


def _fetch_records(repo: Project, remote: Remote, report: TransferReport,
                   progress: Progress | None) -> None:
    records = repo.records
    local = {f"{chain}/{path.name}" for chain, _s, _i, path in records.iter_all()}
    remote_records, remote_sigs = remote.run_files()
    todo, claiming = _not_own(records.chain, remote_records - local)
    if claiming:
        report.skipped.append(
            f"{len(claiming)} run record(s) on remote '{remote.name}' claim this clone's own "
            f"chain {records.chain} but are not here (e.g. runs/{claiming[0]}): not fetched; "
            "only this clone writes its chain, so they were put there by someone else (or "
            "this clone lost its cache: then delete .pipeflow/chain to start a new chain)")
    verified: list[atomicfile.Staged] = []
    try:
        oks = parallel([_get_record(repo, remote, rel, verified) for rel in todo], progress)
    except BaseException:
        for staged in verified:
            staged.discard()
        raise
    # Placed in chain order (sequence numbers sort as text), so that a fetch stopped at
    # any moment leaves each chain whole up to some record: verify reads a gap as a
    # removed record.
    for staged in sorted(verified, key=lambda staged: staged.path):
        staged.publish()
    # Where each record came from: the run cache trusts a remote's records only as far
    # as the project trusts that remote (pipeflow.lineage.trust).
    remember_origins(repo.state, remote.name,
                     (f"{s.path.parent.name}/{s.path.name}" for s in verified))
    for rel, ok in zip(todo, oks, strict=True):
        if ok:
            report.records += 1
        else:
            report.rejected.append(rel)
    _fetch_signatures(repo, remote, remote_sigs, report)
    pointers, damaged = local_pointers(repo)
    todo = sorted(remote.pointers() - set(pointers))  # damaged local ones come again
    for rel, ok in zip(todo, parallel([_get_pointer(repo, remote, rel) for rel in todo]),
                       strict=True):
        if ok:
            report.pointers += 1
        else:
            report.skipped.append(f"run-cache entry runcache/{rel} on remote '{remote.name}' "
                                  "is damaged (it does not name a run record): not fetched")
    fixed = set(damaged) & set(todo)
    report.skipped += [_damaged(repo, rel, "ignored (delete it, or fetch from a remote that "
                                           "has a good copy)")
                       for rel in damaged if rel not in fixed]


def _fetch_signatures(repo: Project, remote: Remote, remote_sigs: set[str],
                      report: TransferReport) -> None:
    """Bring the signatures of records of other chains this clone holds unsigned, or
    with a signature file that does not verify (garbage, say: the remote's, when it
    differs, may be good). Not checked here: one that does not parse or verify leaves
    its record unsigned or invalid (``verify`` says which), never fails the fetch."""
    records = repo.records
    todo = []
    for chain, _s, _i, path in records.iter_all():
        rel = _sig_rel(f"{chain}/{path.name}")
        # this clone signs its own chain: a signature from elsewhere is not taken
        if chain != records.chain and rel in remote_sigs and (
                not sig_path(path).exists() or not _verifies(repo, f"{chain}/{path.name}")):
            todo.append(rel)
    for rel, ok in zip(todo, parallel([_get_signature(repo, remote, rel) for rel in todo]),
                       strict=True):
        if ok:
            report.signatures += 1
        elif ok is False:
            report.skipped.append(f"signature runs/{rel} on remote '{remote.name}' is larger "
                                  f"than {MAX_SIG_BYTES} bytes: not fetched (its record "
                                  "counts as unsigned)")


def _verifies(repo: Project, rel: str) -> bool:
    """Whether record ``rel``'s signature file holds a signature of its bytes (by any
    key: who is trusted is ``verify``'s question, not fetch's)."""
    import json

    from pipeflow.signing.signatures import Signature, Status, TrustedKeys

    try:
        raw = repo.records.signature_bytes(rel)
        data = (repo.records.runs / rel).read_bytes()
        sig = Signature.from_json(json.loads(raw or b"null"))
    except (OSError, StorageError, ValueError, RecursionError):
        return False
    return sig is not None and TrustedKeys({}).verify(data, sig).status is not Status.INVALID


def _get_signature(repo: Project, remote: Remote, rel: str) -> Job[bool | None]:
    """A job fetching one record signature, read bounded (a huge file is never
    downloaded whole): True once in place, False if too large, None when it is what
    this clone holds already."""
    final = repo.records.runs / rel

    def job(stop: threading.Event) -> bool | None:
        data = read_bounded(remote, "runs", rel, MAX_SIG_BYTES)
        if data is None:
            return None  # removed since the listing
        if len(data) > MAX_SIG_BYTES:
            return False
        try:
            if final.read_bytes() == data:
                return None
        except OSError:
            pass  # none here yet
        atomicfile.write_bytes(final, data)
        return True
    return job


def _not_own(own: str, rels: set[str]) -> tuple[list[str], list[str]]:
    """``rels`` split into records of other chains and those naming this clone's own
    chain: a remote never adds to a chain only this clone writes (a planted record
    there would pass for this clone's own work)."""
    theirs = sorted(rel for rel in rels if rel.split("/", 1)[0] != own)
    return theirs, sorted(rel for rel in rels if rel.split("/", 1)[0] == own)


def _get_record(repo: Project, remote: Remote, rel: str,
                verified: list[atomicfile.Staged]) -> Job[bool]:
    """A job fetching one run record under a temporary name: True once verified (it
    is added to ``verified``, to be published), False if it does not verify."""
    final = repo.records.runs / rel

    def job(stop: threading.Event) -> bool:
        final.parent.mkdir(parents=True, exist_ok=True)
        staged = atomicfile.Staged(final)
        try:
            remote.download("runs", rel, staged.tmp, stop)
            try:
                _verify_record(staged.tmp, final.name)
            except StorageError:
                staged.discard()
                return False
        except BaseException:
            staged.discard()
            raise
        verified.append(staged)
        return True
    return job


def _get_pointer(repo: Project, remote: Remote, rel: str) -> Job[bool]:
    """A job fetching one run-cache pointer: True once in place, False if damaged."""
    final = repo.records.runcache / rel

    def job(stop: threading.Event) -> bool:
        final.parent.mkdir(parents=True, exist_ok=True)
        with atomicfile.Staged(final) as staged:
            remote.download("runcache", rel, staged.tmp, stop)
            if parse_pointer(read_pointer(staged.tmp)) is None:
                return False
            staged.publish()  # never a half pointer under the final name
            return True
    return job


def _verify_record(path: Path, name: str) -> None:
    import hashlib

    expected = name.split("-", 1)[1].removesuffix(".json")
    if hashlib.sha256(path.read_bytes()).hexdigest() != expected:
        raise StorageError(f"run record {name} does not match its hash")
