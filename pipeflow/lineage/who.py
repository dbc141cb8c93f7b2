"""Who ran a run, as ``lineage`` and ``versions`` show it: ``alice (signed)`` when a
key the project trusts signed the record, else the name the record gives, marked
``(unverified)`` (nothing vouches for it: git's ``user.email`` is anyone's to set)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeflow.signing.signatures import Status, Verdict

UNSIGNED = Verdict(Status.UNSIGNED)


@dataclass(frozen=True)
class Who:
    user: str | None
    """The name the record gives."""
    verdict: Verdict = UNSIGNED
    """Its signature's."""

    def describe(self) -> str:
        if self.verdict.trusted:
            return f"{self.verdict.signer} (signed)"
        return f"{self.user or '?'} (unverified)"

    def to_json(self) -> dict[str, Any]:
        """``user``, ``signature`` (trusted|untrusted|invalid|unsigned) and ``signer``
        (the trusted name, or the name an untrusted or invalid signature claims)."""
        return {"user": self.user, "signature": self.verdict.status.value,
                "signer": self.verdict.signer}
