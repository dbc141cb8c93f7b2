"""Speed of ``pipeflow versions`` on one path with many versions (W8: 5,000 versions
<= 0.5 s). The history is written straight through RecordStore and RunIndex
(``history_speed.build``): one stage run ``--versions`` times over one source, each
run with a new param value and a new output content.

    python benchmarks/versions_speed.py [--versions 300] [--repeat 5]

Prints the in-process and end-to-end medians of ``versions PATH`` and ``--json``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from history_speed import build, end_to_end, in_process, median_of


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--versions", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    opts = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="pipeflow-versions-"))
    try:
        _, many = build(tmp / "proj", 1, 1, opts.versions)
        print(f"{opts.versions} versions of {many}")
        print(f"{'median of ' + str(opts.repeat):34} in-process  end-to-end")
        for args in (("versions", many), ("versions", many, "--json")):
            inside = median_of(in_process(tmp / "proj", *args), opts.repeat)
            outside = median_of(end_to_end(tmp / "proj", *args), opts.repeat)
            print(f"{' '.join(args):34} {inside:8.3f} s  {outside:8.3f} s")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
