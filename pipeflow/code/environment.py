"""What of the environment a stage's result depends on.

Every stage: the platform (``sys.platform`` + machine). Stages that run Python:
the implementation and ``major.minor`` of the interpreter the shell would run
(``env.python: exact`` adds the patch level), and ``packages``: the installed
versions of the distributions its code imports plus their ``Requires-Dist``
closure (see ``pipeflow.code.pydists``), beside those ``env.packages`` declares. Never
paths or host names, so a clone elsewhere or another machine of the same kind hits
the same fingerprint.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pipeflow.code.interptrust import InterpreterTrust, run_probe
from pipeflow.code.pycommand import invocations
from pipeflow.code.pydists import SiteIndex, normalize
from pipeflow.code.pyinterp import SELF_PROBE, is_genuine, resolve_launcher
from pipeflow.code.siteindexes import SiteIndexes
from pipeflow.content.hashing import hash_file
from pipeflow.credentials import env_value
from pipeflow.files.safepath import is_special

if TYPE_CHECKING:
    from pipeflow.keyvalue import KeyValue


def platform_id() -> str:
    """``linux-x86_64`` and the like."""
    return f"{sys.platform}-{platform.machine().lower()}"


def python_program(cmd: str) -> str | None:
    """The interpreter a shell command starts, if it starts Python; else None.

    The first Python run of the command counts (``cd src && python x.py`` runs
    ``python``); a relative interpreter path after a ``cd`` is given from the
    folder the command starts in.
    """
    runs = invocations(cmd)
    if not runs:
        return None
    program = runs[0].program
    if runs[0].cwd and "/" in program and not os.path.isabs(program):
        program = os.path.normpath(os.path.join(runs[0].cwd, program))
    return program


def _interpreter_version(found: str, cwd: str) -> tuple[str | None, bool]:
    """``cpython-3.11.7`` for interpreter ``found`` started for a stage in ``cwd`` (a
    pyenv shim chooses by that folder), and whether ``found`` is itself that
    interpreter rather than a launcher running another one (only then may the answer
    be kept). The probe runs isolated, outside the project (``pipeflow.code.interptrust``)."""
    real = os.path.realpath(found)
    if real == os.path.realpath(sys.executable):
        impl = platform.python_implementation().lower()
        info = sys.version_info
        return f"{impl}-{info[0]}.{info[1]}.{info[2]}", True
    probe = (
        "import json,os,platform,sys;"
        "print(platform.python_implementation().lower(),*sys.version_info[:3]);"
        f"print(json.dumps({SELF_PROBE}))"
    )
    try:
        out = run_probe(found, probe, timeout=30, stage_dir=cwd).splitlines()
    except (OSError, subprocess.SubprocessError):
        return None, False
    words = out[0].split() if out else []
    if len(words) != 4:
        return None, False
    try:
        genuine = len(out) > 1 and is_genuine(real, json.loads(out[1]))
    except ValueError:
        genuine = False
    return f"{words[0]}-{words[1]}.{words[2]}.{words[3]}", genuine


_PACKAGES_PROBE = """
import json, sys
from importlib import metadata
out = {}
for name in sys.argv[1:]:
    try:
        out[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
        out[name] = None
print(json.dumps(out))
"""


class EnvironmentProbe:
    """Environment components, with interpreter versions looked up once per process.

    ``state`` (the state database) and, for interpreter binaries, the
    machine cache (``pipeflow.files.machinecache``) keep interpreter versions across
    processes, keyed by the interpreter's real path and modification time.
    """

    def __init__(
        self,
        state: KeyValue | None = None,
        root: str | os.PathLike[str] | None = None,
        managed: Iterable[str] = (),
    ) -> None:
        """``root``: the project, whose interpreters run only when trusted (see
        ``pipeflow.code.interptrust``; None: every interpreter may run); ``managed``: its
        outputs and source data paths."""
        self._memo: dict[tuple[str, str], str | None] = {}
        self._packages: dict[tuple[str, tuple[str, ...]], dict[str, str | None]] = {}
        self.trust = InterpreterTrust(root, managed, state)
        self._sites = SiteIndexes(state, allow=self.trust.allows)
        self._digests: dict[str, str] = {}
        self._root = os.path.abspath(root) if root is not None else None
        self._missing: dict[str, str] = {}

    @property
    def warnings(self) -> tuple[str, ...]:
        """One line per interpreter pipeflow refused to run (see ``interptrust``) or
        did not find."""
        return (tuple(r.message() for r in self.trust.refused.values())
                + tuple(self._missing.values()))

    def _note_missing(self, program: str, cwd: str | os.PathLike[str] | None) -> None:
        """Keep a warning when the interpreter ``program`` names does not exist (a
        fresh clone before its venv is made): the environment says only "unknown"."""
        if self._found(program, cwd) is not None:
            return
        if "/" not in program:
            shown = program
            how = f"`{program}` is not on PATH: install it or change the stage's cmd"
        else:
            folder = os.fspath(cwd) if cwd is not None else os.getcwd()
            path = os.path.normpath(os.path.join(folder, program))
            shown = (os.path.relpath(path, self._root)
                     if self._root and (path + os.sep).startswith(self._root + os.sep) else path)
            env_dir = os.path.dirname(os.path.dirname(shown))
            how = (f"make it: `python3 -m venv {env_dir}`, then install what the stage needs"
                   if os.path.basename(os.path.dirname(shown)) == "bin" and env_dir
                   else "create it or change the stage's cmd")
            if os.path.islink(path):  # a venv whose base python was removed
                how = f"it is a link to nothing: {how}"
        self._missing.setdefault(shown, f"interpreter {shown} does not exist, so the stage's "
                                        f"python version and packages are unknown ({how})")

    def _found(self, program: str, cwd: str | os.PathLike[str] | None) -> str | None:
        """The interpreter file ``program`` names for a stage in ``cwd``, or None."""
        folder = os.fspath(cwd) if cwd is not None else os.getcwd()
        if "/" in program and not os.path.isabs(program):
            program = os.path.join(folder, program)
        found = shutil.which(program)
        return resolve_launcher(os.path.abspath(found), folder) if found else None

    def untrusted(self, program: str, cwd: str | os.PathLike[str] | None = None) -> str | None:
        """The content digest of interpreter ``program`` when pipeflow may not run it
        (inside the project, not trusted); None when it may (or is not found)."""
        found = self._found(program, cwd)
        if found is None or self.trust.allows(found):
            return None
        digest = self._digests.get(found)
        if digest is None:
            digest = _file_digest(found)
            self._digests[found] = digest
        return digest

    def site_index(
        self, program: str, cwd: str | os.PathLike[str] | None = None
    ) -> SiteIndex | None:
        """What is installed for interpreter ``program`` (None: not found or not
        askable); remembered across processes."""
        return self._sites.for_program(program, cwd)

    def python_version(
        self, program: str, cwd: str | os.PathLike[str] | None = None
    ) -> str | None:
        """``cpython-3.11.7`` for the interpreter ``program`` names on PATH.

        A relative path with a folder (``venv/bin/python``) is taken from ``cwd``, the
        folder the stage runs in, as its shell would; not from this process's cwd.
        """
        folder = os.fspath(cwd) if cwd is not None else os.getcwd()
        if "/" in program and not os.path.isabs(program):
            program = os.path.join(folder, program)
        memo_key = (program, folder)  # a pyenv shim may run another Python elsewhere
        if memo_key in self._memo:
            return self._memo[memo_key]
        found = shutil.which(program)
        version = key = None
        if found is not None:
            found = resolve_launcher(os.path.abspath(found), folder)
        if found is not None and self.trust.allows(found):
            real = os.path.realpath(found)
            try:
                key = f"python-2:{real}:{os.stat(real).st_mtime_ns}"
            except OSError:
                key = None
            # Only a genuine interpreter's answer was ever shared: asking is always safe.
            version = self._sites.facts.get(key, True) if key else None
            if version is None:
                version, genuine = _interpreter_version(found, folder)
                if version and key and genuine:  # a launcher's answer may change: not kept
                    self._sites.facts.put(key, version, True)
        self._memo[memo_key] = version
        return version

    def package_versions(
        self, program: str, names: tuple[str, ...], cwd: str | os.PathLike[str] | None = None
    ) -> dict[str, str | None]:
        """Installed versions of distributions ``names`` as interpreter ``program`` sees
        them (None: not installed). Asked in-process when ``program`` is this
        interpreter, else by running it once per process."""
        if cwd is not None and "/" in program and not os.path.isabs(program):
            program = os.path.join(cwd, program)
        key = (program, names)
        if key in self._packages:
            return self._packages[key]
        found = shutil.which(program)
        versions: dict[str, str | None] = dict.fromkeys(names)
        if found is not None and os.path.realpath(found) == os.path.realpath(sys.executable):
            from importlib import metadata

            for name in names:
                try:
                    versions[name] = metadata.version(name)
                except metadata.PackageNotFoundError:
                    versions[name] = None
        elif found is not None and not self.trust.allows(os.path.abspath(found)):
            versions = dict.fromkeys(names, "unknown")
        elif found is not None:
            try:
                out = run_probe(found, _PACKAGES_PROBE, names, timeout=60,
                                stage_dir=os.fspath(cwd) if cwd is not None else None)
                answer = json.loads(out)
                versions = {n: answer.get(n) for n in names}
            except (OSError, subprocess.SubprocessError, ValueError):
                versions = dict.fromkeys(names, "unknown")
        self._packages[key] = versions
        return versions

    def component(
        self,
        cmds: tuple[str, ...],
        python_exact: bool = False,
        variables: tuple[str, ...] = (),
        cwd: str | os.PathLike[str] | None = None,
        packages: tuple[str, ...] = (),
        imports: tuple[str, ...] = (),
        root: str | os.PathLike[str] | None = None,
    ) -> dict[str, Any]:
        """The environment component of a stage running ``cmds`` in ``cwd``.

        ``variables`` are declared environment variables (``env.vars``): their
        values count, and an unset variable is recorded as None; a variable whose
        name or value looks like a credential is kept as a digest
        (:func:`pipeflow.credentials.env_value`). ``packages``
        (``env.packages``) are distributions whose installed versions count, read
        for the stage's Python interpreter (``python3`` on PATH for other stages).
        ``imports`` are top-level modules the stage's code imports from outside the
        project: the distributions providing them and their ``Requires-Dist``
        closure count too (editable installs from inside ``root`` are code, not
        environment).
        """
        env: dict[str, Any] = {"platform": platform_id()}
        if variables:
            # secret-looking variables count by a digest, never their value
            env["vars"] = {name: env_value(name, os.environ.get(name))
                           for name in sorted(set(variables))}
        programs = [p for p in map(python_program, cmds) if p is not None]
        if packages or imports:
            found = self._packages_of(programs[0] if programs else "python3", cwd,
                                      tuple(sorted(set(packages))), imports, root)
            if found:
                env["packages"] = found
        for program in programs:
            digest = self.untrusted(program, cwd)
            if digest is not None:
                env["python"] = "unprobed"
                env["interpreter"] = digest
                break
            version = self.python_version(program, cwd)
            if version is None:
                env["python"] = "unknown"
                self._note_missing(program, cwd)
            else:
                impl, _, full = version.partition("-")
                parts = full.split(".")
                shown = full if python_exact else ".".join(parts[:2])
                env["python"] = f"{impl}-{shown}"
            break
        return env

    def _packages_of(
        self,
        program: str,
        cwd: str | os.PathLike[str] | None,
        declared: tuple[str, ...],
        imports: tuple[str, ...],
        root: str | os.PathLike[str] | None,
    ) -> dict[str, str | None]:
        """Declared packages by the name written, detected ones by their own name."""
        index = self.site_index(program, cwd)
        found: dict[str, str | None] = {}
        if declared:
            if index is not None:
                found.update((name, index.version(name)) for name in declared)
            else:
                found.update(self.package_versions(program, declared, cwd))
        if imports and index is not None:
            taken = {normalize(name) for name in found}
            for name, version in index.closure(imports, os.fspath(root) if root else None).items():
                if normalize(name) not in taken:
                    found[name] = version
        return dict(sorted(found.items()))


def _file_digest(path: str) -> str:
    """The content hash of interpreter file ``path`` (links followed), or a word saying
    why there is none; never reads a device or a kernel file."""
    real = os.path.realpath(path)
    if is_special(real):
        return "special-file"
    try:
        if not stat.S_ISREG(os.stat(real).st_mode):
            return "not-a-file"
        return hash_file(real)
    except OSError:
        return "unreadable"
