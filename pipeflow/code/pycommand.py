"""Python runs in a shell command: which interpreter, which script, module or code.

A stage's ``cmd`` is shell text. It is split like ``/bin/sh`` would split it (``&&``,
``||``, ``;``, ``|``, newlines, ``( )``, redirections, comments), ``cd DIR`` between
commands is followed, and ``VAR=value``, ``env``, ``exec``, ``time``, ``nohup``
prefixes are skipped. A simple command runs Python when its program is an
interpreter (``python``, ``python3.12``, ``.venv/bin/pypy3``) or a ``.py`` file; the
interpreter's options are read as CPython reads them, up to the script, ``-m`` or
``-c``.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

_PY_WORD = re.compile(r"^(python|pypy)(\d+(\.\d+)?)?$")
_ASSIGN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_PREFIX_WORDS = frozenset({"env", "exec", "time", "nohup", "command"})
_OPERATORS = frozenset({"&&", "||", ";", ";;", "|", "|&", "&", "(", ")", "\n"})
UNRESOLVED = ("$", "`", "*", "?", "[", "~")
"""Characters that make a word unknowable before the shell runs (variables, globs)."""


@dataclass(frozen=True)
class Invocation:
    """One Python run found in a stage's command."""

    program: str
    """The interpreter as written (``python3``, ``venv/bin/python``)."""
    cwd: str
    """Folder it runs in, relative to the project root (``""``: the root)."""
    kind: str
    """``script``, ``module`` (``-m``), ``inline`` (``-c``) or ``other`` (stdin,
    ``--version``: the interpreter runs, no code of the project)."""
    target: str
    pythonpath: tuple[str, ...] = ()
    """Folders a ``PYTHONPATH=...`` prefix of the command adds (as written)."""


def _tokens(cmd: str) -> list[str]:
    lex = shlex.shlex(cmd, posix=True, punctuation_chars="();<>|&\n")
    lex.whitespace = " \t\r"  # a newline separates commands, as in the shell
    lex.whitespace_split = True
    lex.commenters = ""  # handled below: shlex would swallow the newline ending a comment
    try:
        return list(lex)
    except ValueError:
        return []  # unbalanced quotes: the shell refuses it too


def _simple_commands(cmd: str) -> list[list[str]]:
    """The words of each simple command, without redirections and comments."""
    commands: list[list[str]] = [[]]
    tokens = _tokens(cmd)
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok in _OPERATORS:
            commands.append([])
        elif tok.startswith("#"):
            while i + 1 < len(tokens) and tokens[i + 1] != "\n":
                i += 1  # a comment runs to the end of its line
        elif tok and not tok.strip("<>&|"):
            i += 1  # a redirection and its target
        else:
            commands[-1].append(tok)
        i += 1
    return [c for c in commands if c]


def is_python_word(word: str) -> bool:
    """True for an interpreter name or path: ``python``, ``python3.11``, ``venv/bin/pypy3``."""
    return _PY_WORD.match(posixpath.basename(word)) is not None


def _python_target(args: Sequence[str]) -> tuple[str, str] | None:
    """``(kind, target)`` from an interpreter's arguments, or None (``-``, ``--version``)."""
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            return ("script", args[i + 1]) if i + 1 < len(args) else None
        if arg.startswith("--"):
            if arg == "--check-hash-based-pycs":
                i += 2
                continue
            return None
        if arg.startswith("-") and len(arg) > 1:
            for j in range(1, len(arg)):
                letter = arg[j]
                if letter in "mcWX":
                    value = arg[j + 1:]
                    if not value:
                        i += 1
                        if i >= len(args):
                            return None
                        value = args[i]
                    if letter == "m":
                        return ("module", value)
                    if letter == "c":
                        return ("inline", value)
                    break  # -W and -X take a value and nothing else
            i += 1
            continue
        if arg == "-":
            return None
        return ("script", arg)
    return None


@lru_cache(maxsize=4096)
def invocations(cmd: str, wdir: str = "") -> tuple[Invocation, ...]:
    """The Python runs in one shell command run in ``wdir`` (root-relative).

    Follows ``cd DIR`` between commands; skips ``VAR=value``, ``env``, ``exec``,
    ``time``, ``nohup`` prefixes and redirections. Memoized: the planner, the
    environment probe and code detection each ask about every command, and shlex is
    slow enough for three passes to show in a large pipeline's no-op status.
    """
    found: list[Invocation] = []
    cwd = "" if wdir in ("", ".") else wdir
    for words in _simple_commands(cmd):
        pythonpath: tuple[str, ...] = ()
        while words and (_ASSIGN.match(words[0]) or words[0] in _PREFIX_WORDS):
            if words[0].startswith("PYTHONPATH="):
                pythonpath = tuple(p for p in words[0][11:].split(":") if p)
            words = words[1:]
        if not words:
            continue
        first = words[0]
        if first == "cd" and len(words) == 2 and not any(c in words[1] for c in UNRESOLVED):
            cwd = posixpath.normpath(posixpath.join(cwd, words[1])) if words[1] else cwd
            cwd = "" if cwd == "." else cwd
        elif is_python_word(first):
            kind, target = _python_target(words[1:]) or ("other", "")
            found.append(Invocation(first, cwd, kind, target, pythonpath))
        elif first.endswith(".py"):
            found.append(Invocation("python3", cwd, "script", first, pythonpath))
    return tuple(found)
