"""Which run records may stand in for running a stage: the run cache's trust boundary.

A run-cache hit replaces running a stage with outputs some record names, so the
record must come from someone the project trusts. Anyone with write access to a
remote can put a record, a pointer and objects there (issue 11: a planted record
made CI restore a forged model). The rule, in :meth:`TrustPolicy.trusted`:

- a record this clone wrote (its own chain) is trusted, as it always was; ``fetch``
  never writes into this clone's chain, so a remote cannot put a record there;
- a record fetched from a remote (its origin is remembered by ``fetch``) stands in
  for a run only when it verifies against its name (SHA-256) and its chain's links
  from the first record hold, *and* it is signed by a trusted key (its ``.sig``
  beside it verifies by a key in ``keys.trusted``: :meth:`TrustPolicy.verdict`) or
  the project trusts that remote's run cache (``remote.NAME.trust_run_cache: true``);
- a record that came through git (someone committed ``.pipeflow/cache``; see
  :mod:`pipeflow.git.committedstate`) is never this clone's, whatever chain it is in,
  and never stands in for a run;
- a record of unknown origin (fetched before pipeflow remembered origins, its
  memory lost, or put into a shared cache folder by another clone) counts as coming
  from any remote: trusted only when every configured remote is.

Records from a remote still serve lineage, versions and metrics, marked unsigned.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError
from pipeflow.lineage.who import UNSIGNED
from pipeflow.project.config import TRUST_KEY as TRUST_KEY  # where ops/remotes reads it
from pipeflow.records.records import RecordStore, RunRecord
from pipeflow.signing.signatures import Signature, Status, TrustedKeys, Verdict

if TYPE_CHECKING:
    from pipeflow.project.project import Project
    from pipeflow.state import StateDB



class Origin(StrEnum):
    """Where a record came from."""

    LOCAL = "local"
    """This clone wrote it (its own chain)."""
    REMOTE = "remote"
    """Fetched from a remote pipeflow remembers."""
    UNKNOWN = "unknown"
    """Fetched before pipeflow remembered origins, or another clone's in a shared cache."""
    GIT = "git"
    """Committed into the repository."""
_ORIGIN = "record-origin:"
"""State-database key prefix: ``record-origin:<chain>/<file>`` -> remote name."""


@dataclass(frozen=True)
class Trust:
    """What pipeflow knows of who wrote a record, and whether it may skip a stage."""

    usable: bool
    """It may stand in for running its stage (a run-cache hit)."""
    origin: Origin
    record: str
    """``chain/seq-sha.json``."""
    remote: str | None = None
    signed: bool = False
    reasons: tuple[str, ...] = ()
    """Why it is not usable (empty when it is)."""
    vouched: bool = True
    """Signed by a trusted key, from a remote whose run cache is trusted, or local."""
    untrusted_remotes: tuple[str, ...] = ()
    """The configured remotes whose ``trust_run_cache`` would vouch for it (when not)."""
    signature: Verdict = UNSIGNED
    """Its signature's verdict (who signed it, if a trusted key did)."""

    def __bool__(self) -> bool:
        return self.usable

    @property
    def chain(self) -> str:
        return self.record.split("/", 1)[0]

    @property
    def local(self) -> bool:
        return self.origin is Origin.LOCAL

    def describe(self) -> str:
        """Where the record came from, in words (empty for this clone's own)."""
        if self.local:
            return ""
        where = (f"from remote '{self.remote}'" if self.remote else
                 "that came through git (committed into the repository)"
                 if self.origin is Origin.GIT else
                 "of unknown origin (fetched earlier, or another clone's)")
        signed = f"signed by {self.signature.signer}" if self.signed else "unsigned"
        return f"{signed} record {where}, chain {self.chain}"

    def to_json(self) -> dict[str, Any]:
        return {"origin": self.origin.value, "remote": self.remote, "record": self.record,
                "signed": self.signed, "usable_for_run_cache": self.usable,
                "reasons": list(self.reasons)}


def remember_origins(state: StateDB, remote: str, rels: Iterable[str]) -> None:
    """Note that the records ``rels`` (``chain/seq-sha.json``) came from ``remote``."""
    state.put_many((_ORIGIN + rel, remote) for rel in rels)


def origin_of(state: StateDB, rel: str) -> str | None:
    """The remote a record was fetched from, if pipeflow remembers it."""
    return state.get(_ORIGIN + rel)


def trusted_remotes(config: Mapping[str, Any]) -> dict[str, bool]:
    """Remote name -> whether the project trusts its unsigned run cache."""
    remotes = config.get("remote") or {}
    return {str(name): isinstance(s, dict) and s.get(TRUST_KEY) is True
            for name, s in remotes.items()}


class TrustPolicy:
    """Judges records for one command (chain walks are remembered between calls)."""

    def __init__(self, records: RecordStore, state: StateDB,
                 remotes: Mapping[str, bool],
                 via_git: Callable[[str], bool] | None = None,
                 keys: TrustedKeys | None = None) -> None:
        """``via_git(rel)``: whether the record file ``chain/seq-sha.json`` is tracked
        by git (it came through git, not from this clone or a remote). ``keys``: whose
        signatures count (``keys.trusted``)."""
        self.records = records
        self.keys = keys or TrustedKeys({})
        self._verdicts: dict[str, Verdict] = {}
        self.via_git = via_git
        self.state = state
        self.remotes = dict(remotes)
        self._intact: dict[str, int] = {}
        """Chain -> the highest seq whose chain from seq 1 was checked whole."""

    @classmethod
    def of(cls, repo: Project) -> TrustPolicy:
        import os

        runs = os.path.relpath(repo.records.runs, repo.root).replace(os.sep, "/")

        def via_git(rel: str) -> bool:
            committed = repo.committed
            return bool(committed) and committed.tracked(f"{runs}/{rel}")

        return cls(repo.records, repo.state, trusted_remotes(repo.config.raw), via_git,
                   repo.config.registry.trusted)

    def origin(self, record: RunRecord) -> tuple[Origin, str | None]:
        """Where ``record`` came from: this clone, a named remote, git, or unknown."""
        if self.via_git is not None and self.via_git(record.rel_path):
            return Origin.GIT, None
        remote = origin_of(self.state, record.rel_path)
        if remote is not None:
            return Origin.REMOTE, remote
        if record.chain == self.records.own_chain():
            return Origin.LOCAL, None
        return Origin.UNKNOWN, None

    def describe_rel(self, rel: str) -> str:
        """``unsigned, from remote 'NAME'`` (or of unknown origin) for a record file
        ``chain/seq-sha.json`` this clone did not write; empty for its own."""
        chain, _, name = rel.partition("/")
        seq, _, rest = name.partition("-")
        # origin and signature need no body
        light = RunRecord(rest.removesuffix(".json"), chain, int(seq) if seq.isdigit() else 0)
        origin, remote = self.origin(light)
        if origin is Origin.LOCAL or self.signed(light):
            return ""
        if origin is Origin.GIT:
            return "unsigned, came through git"
        return f"unsigned, from remote '{remote}'" if remote else "unsigned, origin unknown"

    def trusted(self, record: RunRecord) -> Trust:
        """May ``record`` skip running its stage? With the reasons when it may not."""
        origin, remote = self.origin(record)
        verdict = self.verdict(record.rel_path)
        signed = verdict.trusted
        if origin is Origin.LOCAL:
            return Trust(True, origin, record.rel_path, signed=signed, signature=verdict)
        if origin is Origin.GIT:
            return Trust(False, origin, record.rel_path, None, signed,
                         ("it came through git (committed into the repository), not from "
                          "this clone or a remote",), False, signature=verdict)
        reasons: list[str] = []
        broken = self._chain_problem(record)
        if broken:
            reasons.append(broken)
        vouched = signed or self._remote_trusted(remote)
        needs: tuple[str, ...] = ()
        if not vouched:
            needs = (remote,) if remote else tuple(
                sorted(n for n, ok in self.remotes.items() if not ok))
            reasons.append(self._distrust(remote, needs))
        return Trust(not reasons, origin, record.rel_path, remote, signed, tuple(reasons),
                     vouched, needs, verdict)

    @staticmethod
    def _distrust(remote: str | None, needs: tuple[str, ...]) -> str:
        """Why an unsigned record is not vouched for, naming the remote(s)."""
        if remote:
            return (f"the record is unsigned and came from remote '{remote}', whose run "
                    "cache this project does not trust")
        names = ", ".join(f"'{n}'" for n in needs)
        return ("the record is unsigned and of unknown origin (another clone wrote it into "
                "a shared cache folder, or it was fetched before pipeflow remembered origins), "
                "so it may come from any remote, and this project does not trust the run "
                f"cache of remote{'s' if len(needs) > 1 else ''} {names}")

    def _remote_trusted(self, remote: str | None) -> bool:
        if remote is not None:
            return self.remotes.get(remote, False)
        return all(self.remotes.values())  # no remote at all: a shared local cache

    def signed(self, record: RunRecord) -> bool:
        """Signed by a trusted key."""
        return self.verdict(record.rel_path).trusted

    def verdict(self, rel: str) -> Verdict:
        """The verdict on record ``rel``'s signature file (``chain/seq-sha.sig`` beside
        it) over the record's exact bytes. A file that is not a signature, or that
        cannot be read, is an invalid signature: never an error."""
        if rel not in self._verdicts:
            self._verdicts[rel] = self._judge(rel)
        return self._verdicts[rel]

    def _judge(self, rel: str) -> Verdict:
        import json

        try:
            raw = self.records.signature_bytes(rel)
            if raw is None:
                return Verdict(Status.UNSIGNED)
            data = (self.records.runs / rel).read_bytes()
        except (OSError, StorageError) as exc:
            return Verdict(Status.INVALID, reason=f"cannot read it: {exc}")
        try:
            signature = Signature.from_json(json.loads(raw))
        except (ValueError, RecursionError):
            signature = None
        if signature is None:
            return Verdict(Status.INVALID, reason="its .sig file is not a signature")
        return self.keys.verify(data, signature)

    def _chain_problem(self, record: RunRecord) -> str | None:
        """Why the record's chain, from its first record to this one, does not hold
        (a missing, duplicate, rewritten, moved or unlinked record), or None."""
        chain, seq = record.chain, record.seq
        if record.body.chain != chain or record.body.seq != seq:
            return f"record {record.rel_path} does not say it is {chain}/{seq}"
        done = self._intact.get(chain, 0)
        if seq <= done:
            return None
        by_seq: dict[int, list[str]] = {}
        paths = {}
        for s, rid, path in self.records.chain_records(chain):
            by_seq.setdefault(s, []).append(rid)
            paths[rid] = path
        prev: str | None = None if done == 0 else by_seq[done][0]
        for s in range(done + 1, seq + 1):
            ids = by_seq.get(s, [])
            if len(ids) != 1:
                return (f"chain {chain} has {len(ids)} records with seq {s}, not one "
                        "(removed, or forked)")
            try:
                link = self.records.read_path(paths[ids[0]])
            except StorageError as exc:
                return exc.message
            if link.body.chain != chain or link.body.seq != s or (
                    link.prev != prev):
                return f"chain {chain} does not link at seq {s}"
            prev = link.id
        if prev != record.id:
            return f"record {record.rel_path} is not the one its chain holds at seq {seq}"
        self._intact[chain] = seq
        return None
