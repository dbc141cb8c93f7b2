"""Who and where a record is written: git's provenance, with the signer's name.

The one place the ``user`` of a run record (and of a tag-log line) is chosen: the
name of this user's signing key when there is one (the signature beside the record
vouches for it, docs/registry.md, "The trust model"), else git's ``user.email`` (else the login
name), which nothing vouches for.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from pipeflow.git.gitinfo import Provenance, read_provenance

if TYPE_CHECKING:
    from pipeflow.project.project import Project


def provenance(repo: Project) -> Provenance:
    """The provenance a record written now by ``repo`` says. Loads the signing key:
    a damaged one is a ConfigError here, before anything is written."""
    prov = read_provenance(repo.root)
    signer = repo.signer
    return replace(prov, user=signer.name) if signer is not None else prov
