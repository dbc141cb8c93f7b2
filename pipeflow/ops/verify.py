"""``pipeflow verify``: re-hash every cached object and walk every chain of run records.

Found and reported (exit 1): an object whose bytes do not match its name (it is
moved aside to ``cache/corrupt/`` so it is never served), a record whose bytes do
not match the SHA-256 in its name (rewritten), a gap in a chain's sequence (a
removed record), a fork (two records naming the same predecessor, or one sequence
number used twice), a record whose ``prev`` does not name the record before it or
names none that exists, a lock entry naming a record that does not exist, and each
damaged line of the tag log (file:line and what is wrong), and a signature of a record
or tag-log entry that does not verify (pipeflow.ops.signed). Noted but not failing:
who signed what, keys that signed but are not trusted, refused moves of protected
aliases,
objects the lock names that the cache does not hold (after ``gc`` or in a fresh clone
before ``pull``), and, chain by chain, records this clone did not write that no trusted
key signed (``unsigned``; chains no earlier verify listed are marked new): intact is
not vouched for, so those are never summed up as "everything verified".

What this cannot see: the newest records of a chain removed together (nothing
names them — unless a lock does), or a history forged consistently by someone who
can also rewrite git. See docs/history.md.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pipeflow.errors import StorageError
from pipeflow.ops.signed import SignatureReport, check_signatures
from pipeflow.project.project import Project
from pipeflow.records.records import RecordStore, RunRecord

ProblemKind = Literal[
    "corrupt-object", "rewritten-record", "bad-record", "gap", "fork", "broken-link",
    "missing-record", "damaged-record", "lock-mismatch", "tags", "damaged-pointer",
    "committed-state", "bad-signature",
]


@dataclass(frozen=True)
class Problem:
    """One thing ``verify`` found wrong."""

    kind: ProblemKind
    subject: str
    """The object id, record file (``chain/seq-sha.json``), chain, stage or file."""
    message: str

    def to_json(self) -> dict[str, str]:
        return {"kind": self.kind, "subject": self.subject, "message": self.message}


@dataclass(frozen=True)
class UnsignedChain:
    """Records of a chain this clone did not write, that no trusted key signed."""

    chain: str
    records: int
    origin: str
    """The remote they were fetched from (names joined by ', '), ``git`` (they are
    tracked by git: someone committed them), or ``unknown``."""
    users: tuple[str, ...]
    """Who the records say ran them (their word: nothing vouches for it)."""
    new: bool
    """Not seen by an earlier ``verify`` in this clone."""

    def to_json(self) -> dict[str, Any]:
        return {"chain": self.chain, "records": self.records, "origin": self.origin,
                "users": list(self.users), "new": self.new}


@dataclass
class VerifyReport:
    """What ``verify`` checked and found."""

    objects: int = 0
    records: int = 0
    chains: int = 0
    lock_runs: int = 0
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    unsigned: list[UnsignedChain] = field(default_factory=list)
    """Informational (``ok`` stays true): records from other clones, intact but unsigned."""
    signatures: SignatureReport = field(default_factory=SignatureReport)
    """Who signed what; its invalid signatures are :attr:`problems` too."""

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {"schema": 1, "ok": self.ok,
                "checked": {"objects": self.objects, "records": self.records,
                            "chains": self.chains, "lock_runs": self.lock_runs},
                "problems": [p.to_json() for p in self.problems], "notes": self.notes,
                "unsigned": [u.to_json() for u in self.unsigned],
                "signatures": self.signatures.to_json()}


def verify_objects(repo: Project, report: VerifyReport, jobs: int | None = None) -> None:
    """Re-hash every object in the cache, a few threads at once (hashing releases
    the GIL, so this runs at disk speed rather than one core's)."""
    from concurrent.futures import ThreadPoolExecutor

    store = repo.store
    oids = store.iter_oids()
    report.objects = len(oids)
    workers = jobs or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        results = list(pool.map(_verify_one(store.verify), oids))
    for oid, ok in zip(oids, results, strict=True):
        if not ok:
            report.problems.append(Problem(
                "corrupt-object", oid,
                f"object {oid} does not match its hash: moved to cache/corrupt/ "
                "(`pipeflow repro` or `pull` stores a good copy)"))


def _verify_one(check: Callable[[str], bool]) -> Callable[[str], bool]:
    def run(oid: str) -> bool:
        try:
            return check(oid)
        except (OSError, StorageError):
            return False

    return run


def verify_chains(records: RecordStore, report: VerifyReport) -> set[str]:
    """Walk every chain; returns the ids of every record that reads back intact."""
    good: set[str] = set()
    chains = records.chains()
    report.chains = len(chains)
    for chain in chains:
        files = records.chain_records(chain)
        report.records += len(files)
        by_seq: dict[int, list[tuple[str, str]]] = {}
        bodies: dict[str, RunRecord] = {}
        for seq, rid, path in files:
            rel = f"{chain}/{path.name}"
            by_seq.setdefault(seq, []).append((rid, rel))
            try:
                record = records.read_path(path)
            except StorageError as exc:
                kind: ProblemKind = ("rewritten-record" if "does not match" in exc.message
                                     else "bad-record")
                report.problems.append(Problem(kind, rel, exc.message))
                continue
            if record.body.chain != chain or record.body.seq != seq:
                report.problems.append(Problem(
                    "bad-record", rel, f"record {rel} says it is "
                    f"{record.body.chain}/{record.body.seq}: it was moved"))
                continue
            bodies[rid] = record
            good.add(rid)
        _check_links(chain, by_seq, bodies, report)
    return good


def _check_links(
    chain: str, by_seq: dict[int, list[tuple[str, str]]], bodies: dict[str, RunRecord],
    report: VerifyReport,
) -> None:
    if not by_seq:
        return
    top = max(by_seq)
    missing = [s for s in range(1, top + 1) if s not in by_seq]
    if missing:
        shown = ", ".join(str(s) for s in missing[:10]) + (" ..." if len(missing) > 10 else "")
        report.problems.append(Problem(
            "gap", chain, f"chain {chain} has no record with seq {shown} (of 1..{top}): "
            "records were removed"))
    for seq, entries in sorted(by_seq.items()):
        if len(entries) > 1:
            names = ", ".join(rel for _, rel in entries)
            report.problems.append(Problem(
                "fork", chain, f"chain {chain} has {len(entries)} records with seq {seq}: "
                f"{names}"))
    prevs: dict[str, list[str]] = {}
    for record in bodies.values():
        prev = record.prev
        if prev is not None:
            prevs.setdefault(prev, []).append(record.rel_path)
        before = by_seq.get(record.seq - 1, [])
        if record.seq == 1:
            if prev is not None:
                report.problems.append(Problem(
                    "broken-link", record.rel_path,
                    f"record {record.rel_path} is the first of its chain but names a "
                    f"predecessor {prev[:12]}"))
        elif prev is None:
            report.problems.append(Problem(
                "broken-link", record.rel_path,
                f"record {record.rel_path} names no predecessor"))
        elif before and all(prev != b_id for b_id, _ in before):
            report.problems.append(Problem(
                "broken-link", record.rel_path,
                f"record {record.rel_path} names predecessor {prev[:12]}, but seq "
                f"{record.seq - 1} is {before[0][0][:12]}: the chain was rewritten"))
        elif not before:
            report.problems.append(Problem(
                "broken-link", record.rel_path,
                f"record {record.rel_path} names predecessor {prev[:12]}, which is missing"))
    for prev, children in sorted(prevs.items()):
        if len(children) > 1:
            report.problems.append(Problem(
                "fork", chain, f"chain {chain} forks after {prev[:12]}: "
                + ", ".join(sorted(children))))


def verify_lock(repo: Project, good: set[str], report: VerifyReport) -> None:
    """Every record the workspace lock names exists and is intact, and its outputs
    are the lock entry's; note locked objects the cache lacks."""
    from pipeflow.lock.lockfile import hash_info
    from pipeflow.ops.lineage import current_lock

    lock = current_lock(repo)
    paths = {rid: rel for _c, _s, rid, rel in _all_records(repo.records)}
    for name, entry in sorted(lock.stages.items()):
        missing_objects = [o.path for o in (*entry.outs, *entry.metrics)
                           if o.cache and repo.store.missing(hash_info(o))]
        if missing_objects:
            report.notes.append(f"stage '{name}': not in the cache: "
                                + ", ".join(missing_objects))
        if entry.run is None:
            continue
        report.lock_runs += 1
        if entry.run not in paths:
            report.problems.append(Problem(
                "missing-record", name, f"pipeline.lock: stage '{name}' names run record "
                f"{entry.run[:12]}, which is not in this clone (removed, or not pulled)"))
            continue
        if entry.run not in good:
            report.problems.append(Problem(
                "damaged-record", name, f"pipeline.lock: stage '{name}' names run record "
                f"{entry.run[:12]}, which is damaged ({paths[entry.run]})"))
            continue
        record = repo.records.read_rel(paths[entry.run])
        recorded = {o.path: o.hash for o in record.outputs}
        locked = {o.path: o.hash for o in (*entry.outs, *entry.metrics)}
        if recorded != locked:
            report.problems.append(Problem(
                "lock-mismatch", name, f"pipeline.lock: stage '{name}' outputs differ from "
                f"those of the run it names ({entry.run[:12]})"))
    for path, source in sorted(lock.sources.items()):
        if repo.store.missing(hash_info(source)):
            report.notes.append(f"source '{path}': not in the cache")


def _all_records(records: RecordStore) -> list[tuple[str, int, str, str]]:
    return [(chain, seq, rid, f"{chain}/{path.name}")
            for chain, seq, rid, path in records.iter_all()]


def verify_tags(repo: Project, report: VerifyReport) -> None:
    """Every line of the tag log: it parses, its id matches its content, and it
    follows a line of its clone's chain. Reads skip the lines reported here."""
    from pipeflow.lineage.aliasstate import AliasPolicy
    from pipeflow.lineage.taghistory import removed_entries
    from pipeflow.lineage.tagline import TAGS_FILE, signed_bytes
    from pipeflow.lineage.tags import log_text, parse_log
    from pipeflow.signing.signatures import Signature

    policy = AliasPolicy.of(repo)
    text = log_text(repo.dot)  # read once: parsed here, compared with git history below
    for problem in parse_log(text, policy).problems:
        report.problems.append(Problem(
            "tags", f"{problem.file}:{problem.line}",
            f"{problem.message} (reads skip it; `pipeflow verify --repair` sets it aside)"))
    shown = f".pipeflow/{TAGS_FILE}"

    def guarded(body: dict[str, object]) -> bool:
        return body.get("kind") != "note" and policy.protects(str(body.get("name")))

    def vouched(body: dict[str, object]) -> bool:
        sig = Signature.from_json(body.get("sig"))
        return policy.trusted.verify(signed_bytes(body), sig).trusted

    removed, unchecked = removed_entries(repo.root, repo.dot, text,
                                         guarded=guarded, vouched=vouched)
    if unchecked is not None:
        report.problems.append(Problem(
            "tags", shown, f"cannot check that no entry was removed from {shown}: "
                           f"{unchecked} (a padded history can hide a removal: look at "
                           f"`git log -p -- {shown}`)"))
    for gone in removed:
        how = gone.how or "a line was removed by hand"
        report.problems.append(Problem(
            "tags", shown,
            f"entry {gone.id[:12]} ({gone.summary}), added by commit {gone.commit[:10]}, "
            f"is no longer in {shown}: {how}, and reads no longer see it (`git show "
            f"{gone.commit[:10]}:{shown}` has it; put it back if no one meant to remove it)"))


def verify_pointers(repo: Project, report: VerifyReport) -> None:
    """Every run-cache pointer names a record (a damaged one is skipped by ``repro``,
    which then runs the stage, and fetched again by ``fetch``)."""
    from pipeflow.ops.transfer import local_pointers

    for rel in local_pointers(repo)[1]:
        report.problems.append(Problem(
            "damaged-pointer", rel,
            f"run-cache entry {repo.records.runcache / rel} does not name a run record "
            "(cut short or garbled): delete it, `pipeflow fetch` brings it again"))


SEEN_CHAINS = "verify:seen-chains"
"""State key: the chains an earlier ``verify`` listed (JSON list), so new ones stand out."""


def verify_unsigned(repo: Project, report: VerifyReport) -> None:
    """List, chain by chain, the records this clone did not write that no trusted key
    signed: where they came from, who they say ran them, and whether the chain is new
    since the last ``verify``. Not a problem (unsigned is all there is until signing
    keys exist) but never "everything verified" either."""
    import json

    from pipeflow.lineage.trust import Origin, TrustPolicy

    policy = TrustPolicy.of(repo)
    try:
        seen = set(json.loads(repo.state.get(SEEN_CHAINS) or "[]"))
    except (ValueError, TypeError):
        seen = set()  # a damaged memory: every chain is new again, nothing worse
    for chain in repo.records.chains():
        origins: set[str] = set()
        count = 0
        for seq, rid, _path in repo.records.chain_records(chain):
            light = RunRecord(rid, chain, seq)  # origin and signature need no body
            origin, remote = policy.origin(light)
            if origin is Origin.LOCAL or policy.signed(light):
                continue
            count += 1
            origins.add(remote or ("git" if origin is Origin.GIT else "unknown"))
        if count:
            report.unsigned.append(UnsignedChain(chain, count, ", ".join(sorted(origins)),
                                                 repo.index.users(chain), chain not in seen))
    listed = {u.chain for u in report.unsigned}
    if not listed <= seen:
        repo.state.put(SEEN_CHAINS, json.dumps(sorted(seen | listed)))


def verify(repo: Project, *, jobs: int | None = None) -> VerifyReport:
    """Check cache objects, record chains, the records the lock names, run-cache
    pointers, and tags; list records from other clones that are unsigned."""
    report = VerifyReport()
    verify_objects(repo, report, jobs)
    good = verify_chains(repo.records, report)
    verify_lock(repo, good, report)
    verify_pointers(repo, report)
    verify_tags(repo, report)
    verify_signatures(repo, report)
    verify_unsigned(repo, report)
    verify_untracked(repo, report)
    return report


def verify_signatures(repo: Project, report: VerifyReport) -> None:
    """Every signature of run records and tag-log entries (pipeflow.ops.signed): one
    that does not verify is a problem."""
    report.signatures = check_signatures(repo)
    for bad in report.signatures.invalid:
        report.problems.append(Problem("bad-signature", bad.subject, bad.message))


def verify_untracked(repo: Project, report: VerifyReport) -> None:
    """pipeflow's own per-clone state that git tracks is a problem: someone committed
    it, and a clone must not take it for its own."""
    if repo.committed:
        said, hint = repo.committed.message()
        report.problems.append(Problem("committed-state", ".pipeflow",
                                       f"{said}; {hint}"))
