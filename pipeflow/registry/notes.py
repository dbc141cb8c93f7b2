"""``pipeflow note MODEL@VERSION TEXT``: a note on one version, shared like aliases
(an entry of ``.pipeflow/tags.jsonl``, signed when this user has a key)."""

from __future__ import annotations

from dataclasses import dataclass

from pipeflow.errors import UsageError
from pipeflow.lineage import tags as tagfile
from pipeflow.lineage.tags import Note
from pipeflow.lineage.versions import Version, resolve
from pipeflow.ops.lineage import light_versions
from pipeflow.project.project import Project
from pipeflow.registry.models import resolve_target

MAX_NOTE = 2000


@dataclass(frozen=True)
class Noted:
    path: str
    model: str | None
    version: Version
    note: Note


def note(repo: Project, target: str, text: str, *, wait: float = 0.0) -> Noted:
    """Add ``text`` as a note on ``MODEL_OR_PATH@VERSION``."""
    from pipeflow.git.gitattributes import ensure_attributes
    from pipeflow.registry.aliases import user_of

    text = text.strip()
    if not text:
        raise UsageError("the note is empty", hint='e.g. `pipeflow note MODEL@v3 "retrained '
                                                   'on the March data"`')
    if len(text) > MAX_NOTE:
        raise UsageError(f"the note is {len(text)} characters; at most {MAX_NOTE}",
                         hint="keep notes short; link to a longer document")
    where = resolve_target(repo, target)
    if where.version is None:
        raise UsageError(f"give the version to note as {target}@VERSION",
                         hint=f"`pipeflow versions {target}` lists them")
    with repo.lock(wait=wait):
        log = tagfile.read(repo)
        chosen = resolve(repo, where.path, where.version,
                         light_versions(repo, where.path, log.tags_of(where.path)))
        ensure_attributes(repo.root)
        added = tagfile.add_note(repo.dot, repo.records.chain, where.path, chosen.hash, text,
                                 user_of(repo), signer=repo.signer)
    return Noted(where.path, where.model.name if where.model else None, chosen, added)
