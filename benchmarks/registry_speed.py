"""Speed of the registry's read commands on a long history: ``models``, ``aliases``,
``aliases --history`` and ``versions MODEL`` with ``--versions`` versions of one
declared model and ``--moves`` alias moves, every move signed and the aliases
protected (so each read verifies every signature of a protected alias).

    python benchmarks/registry_speed.py [--versions 1000] [--moves 1000] [--repeat 5]

The history is written straight through RecordStore and RunIndex
(``history_speed.build``) and the alias log through ``pipeflow.lineage.tags.move``.
Prints the in-process and end-to-end medians. No target is asserted: the issue that
sets them (W8: 5,000 versions, ``models`` <= 0.5 s) reads these figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from history_speed import build, end_to_end, fake_hash, in_process, median_of


def _declare_and_move(root: Path, versions: int, moves: int) -> None:
    from pipeflow.lineage import tags
    from pipeflow.signing.keys import generate

    (root / "pipeline.yaml").write_text(
        "stages:\n  tune:\n    cmd: python tune.py\n    outs:\n"
        "      - models/tuned.pkl: {model: tuned}\n")
    key = generate("alice", path=root.parent / "cfg" / "signing-key.json")
    (root / ".pipeflow" / "config").write_text(
        f'registry:\n  protected: ["production*"]\nkeys:\n  trusted:\n'
        f'    alice: "{key.public}"\n')
    dot = root / ".pipeflow"
    for m in range(moves):
        alias = ("production", "production-eu", "staging", "canary")[m % 4]
        tags.move(dot, "a" * 16, "models/tuned.pkl", alias,
                  fake_hash("tuned", (m * 7) % versions), "alice", signer=key)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--moves", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeflow-registry-"))
    os.environ["PIPEFLOW_CONFIG_DIR"] = str(tmp / "cfg")
    try:
        build(tmp / "proj", 1, 1, opts.versions)
        _declare_and_move(tmp / "proj", opts.versions, opts.moves)
        print(f"{opts.versions} versions of model 'tuned', {opts.moves} signed alias moves")
        print(f"{'median of ' + str(opts.repeat):34} in-process  end-to-end")
        for args in (("models",), ("aliases",), ("aliases", "--history"),
                     ("versions", "tuned")):
            inside = median_of(in_process(tmp / "proj", *args), opts.repeat)
            outside = median_of(end_to_end(tmp / "proj", *args), opts.repeat)
            print(f"{' '.join(args):34} {inside:8.3f} s  {outside:8.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
