"""How git merges pipeflow's committed files: lines in the project's ``.gitattributes``.

``.pipeflow/tags.jsonl`` is an append-only log of per-clone chains, so two clones'
additions merge by keeping both (``merge=union``); ``pipeline.lock`` is merged stage by
stage by pipeflow's own merge driver (``merge=pipeflow``, defined in the repository's
git config by ``pipeflow merge-driver install``; without that definition git falls back
to its ordinary text merge). The ``.gitignore`` files pipeflow appends cached outputs to
merge by union too: two branches that each add a stage append a line at the same end of
one file, which a line merge would call a conflict.
"""

from __future__ import annotations

from pathlib import Path

from pipeflow.files import atomicfile, projectfile

ATTRIBUTES_FILE = ".gitattributes"

PROJECT_LINES = (
    "/.pipeflow/tags.jsonl merge=union",
    "/pipeline.lock merge=pipeflow",
    ".gitignore merge=union",
)
"""What every project's ``.gitattributes`` holds (patterns relative to the project)."""


def ensure_attributes(root: Path, lines: tuple[str, ...] = PROJECT_LINES) -> bool:
    """Add the missing ``lines`` to ``root/.gitattributes``; returns whether it changed."""
    path = root / ATTRIBUTES_FILE
    # rewritten below: a link is refused, never read (it would copy what it names in)
    text = projectfile.read_text(path, "rules", name=ATTRIBUTES_FILE) or ""
    present = {line.strip() for line in text.splitlines()}
    missing = [line for line in lines if line not in present]
    if not missing:
        return False
    if text and not text.endswith("\n"):
        text += "\n"
    if not text:
        text = "# pipeflow: how git merges the files pipeflow commits\n"
    atomicfile.write_text(path, text + "".join(line + "\n" for line in missing))
    return True
