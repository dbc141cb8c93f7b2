"""Stage `generate`: write `generate.count` pseudo-random integers, one a line."""

from __future__ import annotations

import random
from pathlib import Path

from simple_params import read_section


def main() -> None:
    """Write data/numbers.txt from the `generate` params."""
    params = read_section("generate")
    rng = random.Random(int(params["seed"]))
    numbers = [rng.randint(1, 100) for _ in range(int(params["count"]))]
    out = Path("data/numbers.txt")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("".join(f"{n}\n" for n in numbers), encoding="utf-8")


if __name__ == "__main__":
    main()
