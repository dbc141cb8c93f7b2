"""``pipeflow init``: make a folder a pipeflow project."""

from __future__ import annotations

from pathlib import Path

from pipeflow.files import atomicfile
from pipeflow.git.gitattributes import ATTRIBUTES_FILE, ensure_attributes
from pipeflow.lock import mergedriver
from pipeflow.project.project import CONFIG_FILE, DOT, SPEC_FILE, check_dot

DOT_GITIGNORE = """\
# pipeflow: per-machine state, never committed (config is committed)
/cache/
/state/
/logs/
/tmp/
/lock
/chain
/config.local
"""

CONFIG_TEXT = """\
# pipeflow project config (committed). Per-machine overrides go in config.local.
cache:
  dir: cache              # relative to .pipeflow/; a folder outside the project: config.local only
  link: reflink-or-copy   # reflink-or-copy | reflink | copy | hardlink
"""

STARTER_SPEC = """\
# Each stage: a command, what it reads (deps, params) and what it writes (outs).
# stages:
#   train:
#     cmd: python train.py
#     deps: [data/train.csv, train.py]
#     params: [train.lr]
#     outs: [models/model.pkl]
stages: {}
"""


def init(root: Path, *, starter: bool = True) -> list[str]:
    """Create ``.pipeflow/`` (idempotent) and define the lock's merge driver in git
    config; returns what it created."""
    created: list[str] = []
    check_dot(root)  # a committed `.pipeflow -> elsewhere` is refused, never written into
    dot = root / DOT
    dot.mkdir(parents=True, exist_ok=True)
    for name, text in ((".gitignore", DOT_GITIGNORE), (CONFIG_FILE, CONFIG_TEXT)):
        path = dot / name
        if not path.exists():
            atomicfile.write_text(path, text)  # a concurrent reader never sees half
            created.append(f"{DOT}/{name}")
    if ensure_attributes(root):
        created.append(ATTRIBUTES_FILE)
    if mergedriver.ensure(root):
        created.append("merge.pipeflow in the git config (merges pipeline.lock stage by stage)")
    for sub in ("cache", "state", "logs"):
        (dot / sub).mkdir(exist_ok=True)
    spec = root / SPEC_FILE
    if starter and not spec.exists():
        atomicfile.write_text(spec, STARTER_SPEC)
        created.append(SPEC_FILE)
    return created
