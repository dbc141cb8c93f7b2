"""``verify``'s account of signatures: who signed which run records and tag-log
entries, each signature that does not verify (a problem: exit 1), each key that
signed but is not in ``keys.trusted``, and the moves of protected aliases that were
refused (pipeflow.lineage.aliasstate). Unsigned is counted, never a failure: records
written before anyone had a key stay valid (docs/registry.md, "The trust model")."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeflow.errors import StorageError
from pipeflow.signing.signatures import Signature, Status, Verdict

if TYPE_CHECKING:
    from pipeflow.project.project import Project


@dataclass(frozen=True)
class BadSignature:
    """A signature that does not verify, or that a key outside ``keys.trusted`` made."""

    subject: str
    """``runs/<chain>/<file>.sig`` or ``.pipeflow/tags.jsonl:LINE``."""
    verdict: Verdict
    key: str | None
    """The public key the signature names (None when it names none)."""

    @property
    def message(self) -> str:
        if self.verdict.status is Status.INVALID:
            claims = f" (claims {self.verdict.signer!r})" if self.verdict.signer else ""
            return f"{self.subject}: bad signature{claims}: {self.verdict.reason}"
        return (f"{self.subject}: signed by key {self.key} claiming {self.verdict.signer!r}, "
                "which keys.trusted does not list (`pipeflow keys trust NAME KEY` if you "
                "trust it)")

    def to_json(self) -> dict[str, Any]:
        return {"subject": self.subject, "status": self.verdict.status.value,
                "claims": self.verdict.signer, "key": self.key, "reason": self.verdict.reason,
                "message": self.message}


@dataclass
class SignatureReport:
    """Counts by signer (trusted names) of run records and tag-log entries."""

    records: Counter[str] = field(default_factory=Counter)
    tags: Counter[str] = field(default_factory=Counter)
    unsigned: Counter[str] = field(default_factory=Counter)
    """``records`` / ``tags`` -> how many carry no signature."""
    invalid: list[BadSignature] = field(default_factory=list)
    untrusted: list[BadSignature] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    """Messages of refused moves of protected aliases."""

    def to_json(self) -> dict[str, Any]:
        names = sorted(set(self.records) | set(self.tags))
        return {"by_signer": {n: {"records": self.records[n], "tags": self.tags[n]}
                              for n in names},
                "unsigned": {"records": self.unsigned["records"],
                             "tags": self.unsigned["tags"]},
                "invalid": [b.to_json() for b in self.invalid],
                "untrusted": [b.to_json() for b in self.untrusted],
                "refused": list(self.refused)}


def check_signatures(repo: Project) -> SignatureReport:
    """Verify every run record's ``.sig`` and every tag-log entry's ``sig``."""
    from pipeflow.lineage.trust import TrustPolicy

    report = SignatureReport()
    policy = TrustPolicy.of(repo)
    for chain, _seq, _rid, path in repo.records.iter_all():
        rel = f"{chain}/{path.name}"
        _count(report, report.records, "records", f"runs/{rel.removesuffix('.json')}.sig",
               policy.verdict(rel), _record_key(repo, rel))
    _check_tags(repo, report)
    return report


def _count(report: SignatureReport, counts: Counter[str], kind: str, subject: str,
           verdict: Verdict, key: str | None) -> None:
    if verdict.status is Status.TRUSTED:
        counts[str(verdict.signer)] += 1
    elif verdict.status is Status.UNSIGNED:
        report.unsigned[kind] += 1
    elif verdict.status is Status.UNTRUSTED:
        report.untrusted.append(BadSignature(subject, verdict, key))
    else:
        report.invalid.append(BadSignature(subject, verdict, key))


def _record_key(repo: Project, rel: str) -> str | None:
    """The key a record's signature file names, when it parses."""
    import json

    try:
        raw = repo.records.signature_bytes(rel)
        sig = Signature.from_json(json.loads(raw)) if raw is not None else None
    except (ValueError, RecursionError, StorageError):  # judged invalid already
        return None
    return sig.key if sig is not None else None


def _check_tags(repo: Project, report: SignatureReport) -> None:
    from pipeflow.lineage import tags

    trusted = repo.config.registry.trusted
    every = tags.read_log(repo.dot)  # no policy: refused moves are checked too
    entries = [(m.line, m.payload, m.sig) for m in every.moves]
    entries += [(n.line, n.payload, n.sig) for n in every.notes]
    for line, payload, sig in entries:
        _count(report, report.tags, "tags", f".pipeflow/tags.jsonl:{line}",
               trusted.verify(payload, sig), sig.key if sig is not None else None)
    report.refused = [r.message for r in tags.read(repo).refused]
