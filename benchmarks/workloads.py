"""Benchmark workloads W1..W5, each described once and written for every tool.

A generator returns a ``Workload``: tool-neutral stages (``cmd`` with ``${key}``
params, ``deps``, ``params``, ``outs``), the params, and the source files. ``write``
turns it into ``pipeline.yaml`` (pipeflow), ``dvc.yaml`` (DVC) or a ``Snakefile``
(Snakemake), always with the same ``params.yaml`` and files, so every tool runs the
very same shell commands. ``commands`` gives those commands with params substituted:
the floor, i.e. the same work without any engine.

The spec formats of pipeflow and DVC coincide for these workloads (stages with
``cmd``/``deps``/``params``/``outs``, ``${key}`` read from ``params.yaml``); a Snakefile
says the same with rules, ``configfile: "params.yaml"`` and ``{params.key}``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

TOOLS = ("pipeflow", "dvc", "snakemake")
_PARAM_REF = re.compile(r"\$\{([A-Za-z_][\w.]*)\}")


@dataclass(frozen=True)
class Stage:
    """One stage, written in the ``${key}`` syntax pipeflow and DVC share."""

    name: str
    cmd: str
    deps: tuple[str, ...] = ()
    params: tuple[str, ...] = ()
    outs: tuple[str, ...] = ()
    dir_outs: tuple[str, ...] = ()  # outs that are directories (Snakemake must be told)


@dataclass(frozen=True)
class Workload:
    """A pipeline plus the files it starts from, for every tool."""

    name: str
    stages: tuple[Stage, ...]
    params: dict[str, Any] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    dirs: tuple[str, ...] = ()  # created empty before the first run
    snakemake: bool = True  # False: not expressible (or not meaningful) as a Snakefile
    big_files: dict[str, int] = field(default_factory=dict)  # path -> size in bytes

    def commands(self, params: dict[str, Any] | None = None) -> list[str]:
        """Each stage's command with its params substituted, in stage order."""
        values = self.params if params is None else params
        return [substitute(s.cmd, values) for s in self.stages]


def substitute(cmd: str, params: dict[str, Any]) -> str:
    """``cmd`` with every ``${key}`` replaced by the value of ``key`` in ``params``."""
    return _PARAM_REF.sub(lambda m: str(params[m.group(1)]), cmd)


# --- writers --------------------------------------------------------------------------


def write(workload: Workload, root: Path, tool: str) -> None:
    """Write ``workload`` into the project at ``root`` in ``tool``'s format.

    ``tool`` is ``pipeflow``, ``dvc``, ``snakemake`` or ``floor`` (files only, no spec).
    """
    for rel, text in workload.files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for rel, size in workload.big_files.items():
        write_big_file(root / rel, size)
    for rel in workload.dirs:
        (root / rel).mkdir(parents=True, exist_ok=True)
    write_params(root, workload.params)
    if tool in ("pipeflow", "dvc"):
        name = "pipeline.yaml" if tool == "pipeflow" else "dvc.yaml"
        (root / name).write_text(yaml.safe_dump(_stages_doc(workload), sort_keys=False))
    elif tool == "snakemake":
        if not workload.snakemake:
            raise ValueError(f"{workload.name} has no Snakefile")
        (root / "Snakefile").write_text(snakefile(workload))
    elif tool != "floor":
        raise ValueError(f"unknown tool {tool!r}")


def write_params(root: Path, params: dict[str, Any]) -> None:
    """(Re)write ``params.yaml``."""
    (root / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def _stages_doc(workload: Workload) -> dict[str, Any]:
    stages: dict[str, Any] = {}
    for s in workload.stages:
        body: dict[str, Any] = {"cmd": s.cmd}
        if s.deps:
            body["deps"] = list(s.deps)
        if s.params:
            body["params"] = list(s.params)
        if s.outs:
            body["outs"] = list(s.outs)
        stages[s.name] = body
    return {"stages": stages}


def _snake_param(key: str) -> str:
    """A Snakemake params name for ``key`` (prefixed: names like ``count`` are reserved)."""
    return "p_" + key.replace(".", "_")


def _snake_shell(cmd: str) -> str:
    """A shell command in Snakemake's format syntax: braces doubled, params named."""
    parts: list[str] = []
    last = 0
    for m in _PARAM_REF.finditer(cmd):
        parts.append(cmd[last:m.start()].replace("{", "{{").replace("}", "}}"))
        parts.append("{params." + _snake_param(m.group(1)) + "}")
        last = m.end()
    parts.append(cmd[last:].replace("{", "{{").replace("}", "}}"))
    return "".join(parts)


def snakefile(workload: Workload) -> str:
    """The workload as a Snakefile: one rule per stage, params from ``params.yaml``."""
    outs = [o for s in workload.stages for o in s.outs]
    lines = ['configfile: "params.yaml"', "", "rule all:", f"    input: {outs!r}", ""]
    for s in workload.stages:
        lines.append(f"rule {s.name}:")
        if s.deps:
            lines.append(f"    input: {list(s.deps)!r}")
        if s.outs:
            outs_src = ", ".join(
                f"directory({o!r})" if o in s.dir_outs else repr(o) for o in s.outs
            )
            lines.append(f"    output: {outs_src}")
        if s.params:
            named = ", ".join(
                f"{_snake_param(p)}=config[{p!r}]" for p in s.params
            )
            lines.append(f"    params: {named}")
        lines.append(f"    shell: {_snake_shell(s.cmd)!r}")
        lines.append("")
    return "\n".join(lines)


def write_big_file(path: Path, size: int) -> None:
    """``size`` bytes of incompressible-looking data, written in 1 MiB blocks."""
    block = bytearray(os.urandom(1 << 20))
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        left, i = size, 0
        while left > 0:
            block[:8] = i.to_bytes(8, "little")  # every block differs
            n = min(left, len(block))
            f.write(memoryview(block)[:n])
            left -= n
            i += 1


# --- the workloads ---------------------------------------------------------------------


def chain(n: int) -> Workload:
    """W1: a linear chain of ``n`` shell one-liners; stage k reads stage k-1's output
    and its own param ``sNNN`` (in its command)."""
    stages = []
    for i in range(n):
        src = "seed.txt" if i == 0 else f"out/{i - 1:03d}.txt"
        key = f"s{i:03d}"
        stages.append(Stage(
            name=key,
            cmd=f"cat {src} > out/{i:03d}.txt && echo ${{{key}}} >> out/{i:03d}.txt",
            deps=(src,),
            params=(key,),
            outs=(f"out/{i:03d}.txt",),
        ))
    return Workload(
        name=f"chain{n}",
        stages=tuple(stages),
        params={f"s{i:03d}": i for i in range(n)},
        files={"seed.txt": "seed\n"},
        dirs=("out",),
    )


GEN_PY = '''\
"""Write COUNT files of 1 KiB, each with its own content, into DIR."""
import os
import sys

count, target = int(sys.argv[1]), sys.argv[2]
os.makedirs(target, exist_ok=True)
for i in range(count):
    line = f"file {i:06d} ".encode()
    with open(os.path.join(target, f"f{i:06d}.txt"), "wb") as f:
        f.write((line * (1024 // len(line) + 1))[:1024])
'''

READ_PY = '''\
"""Read every file of DIR; write their count and total size to OUT."""
import os
import sys

target, out = sys.argv[1], sys.argv[2]
n = size = 0
for name in sorted(os.listdir(target)):
    with open(os.path.join(target, name), "rb") as f:
        size += len(f.read())
    n += 1
with open(out, "w") as f:
    f.write(f"{n} {size}\\n")
'''


def many_files(count: int) -> Workload:
    """W2: one stage writes ``count`` files of 1 KiB into a directory output; a second
    stage reads them all."""
    return Workload(
        name=f"files{count}",
        stages=(
            Stage("generate", "python gen.py ${count} data", deps=("gen.py",),
                  params=("count",), outs=("data",), dir_outs=("data",)),
            Stage("read", "python read.py data count.txt", deps=("read.py", "data"),
                  outs=("count.txt",)),
        ),
        params={"count": count},
        files={"gen.py": GEN_PY, "read.py": READ_PY},
    )


def big_dep(size: int) -> Workload:
    """W3: one stage depending on a file of ``size`` bytes (its command does not read
    the bytes: ``wc -c`` of a redirected file only asks for the size)."""
    return Workload(
        name=f"big{size}",
        stages=(Stage("size", "wc -c < big.bin > size.txt", deps=("big.bin",),
                      outs=("size.txt",)),),
        big_files={"big.bin": size},
        snakemake=False,  # Snakemake compares mtimes and never hashes: nothing to measure
    )


def empty() -> Workload:
    """W4: a project without stages (start-up cost only)."""
    return Workload(name="empty", stages=(), snakemake=False)


def sleepers(n: int, seconds: float) -> Workload:
    """W5: ``n`` independent stages that each sleep ``seconds`` and write one file."""
    stages = tuple(
        Stage(f"sleep{i}", f"sleep {seconds} && echo {i} > slept/{i}.txt",
              outs=(f"slept/{i}.txt",))
        for i in range(n)
    )
    return Workload(name=f"sleep{n}", stages=stages, dirs=("slept",))
