#!/usr/bin/env python3
"""Issue 12 item 8: cost of ``build_graph`` in a fresh interpreter for a chain of N
stages, a new structure (checked and ordered by networkx, its import included) vs a
remembered one (no networkx). Run: ``python benchmarks/graph_first_run.py``."""

import json
import statistics
import subprocess
import sys

CODE = r'''
import json, sys, time
from pipeflow.errors import Location
from pipeflow.spec.model import Out, Pipeline, Stage
from pipeflow.planning.graph import build_graph
n, store = int(sys.argv[1]), json.loads(sys.argv[2])
stages = [Stage(name=f"s{i}", cmd=("x",), deps=(f"o{i-1}",) if i else (), outs=(Out(f"o{i}"),),
                location=Location("p.yaml", 1, 1)) for i in range(n)]
p = Pipeline({s.name: s for s in stages})
t = time.perf_counter()
build_graph(p, cached_order=store.get, remember_order=store.__setitem__)
print(json.dumps([time.perf_counter() - t, "networkx" in sys.modules, store]))
'''


def run(n: int, store: dict[str, str]) -> list[object]:
    proc = subprocess.run([sys.executable, "-c", CODE, str(n), json.dumps(store)],
                          capture_output=True, text=True, check=True)
    result: list[object] = json.loads(proc.stdout)
    return result


def main() -> None:
    for n in (10, 100, 1000):
        store = run(n, {})[2]
        assert isinstance(store, dict)
        for label, known in (("new structure", {}), ("remembered   ", store)):
            runs = [run(n, known) for _ in range(7)]
            ms = statistics.median(float(r[0]) for r in runs) * 1000  # type: ignore[arg-type]
            print(f"N={n:5d} {label} build_graph median {ms:7.1f} ms"
                  f"  networkx imported: {runs[0][1]}")


if __name__ == "__main__":
    main()
