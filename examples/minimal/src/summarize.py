"""Stage `summarize`: a few numbers about data/squares.txt, as a metrics file."""

from __future__ import annotations

import json
import math
from pathlib import Path

from simple_params import read_section


def main() -> None:
    """Write metrics/summary.json, rounded to `summarize.precision` digits."""
    precision = int(read_section("summarize")["precision"])
    squares = [int(line) for line in Path("data/squares.txt").read_text().split()]
    mean = sum(squares) / len(squares)
    summary = {
        "count": len(squares),
        "sum": sum(squares),
        "mean": round(mean, precision),
        "rms": round(math.sqrt(mean), precision),
    }
    out = Path("metrics/summary.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
