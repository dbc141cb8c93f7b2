"""Gitignore patterns (``.pipeflowignore``) matched in time linear in the path.

A ``.pipeflowignore`` comes with a clone, so its patterns are data from whoever
committed them. Translated to one Python regular expression per pattern (as
``pathspec`` does), a line such as ``*a*a*a*a*a*a*c`` makes every failed match
backtrack through each way of splitting a name among its stars: against a name of
200 ``a`` four stars took 9 s, five took minutes. Here no regular expression ever
sees more than one variable-length part:

- a pattern is split at ``/`` into segment globs and ``**``;
- a glob with at most one ``*`` is a regular expression matched against one name
  (one star backtracks at most once over the name); a glob with more is run as a
  bit-parallel automaton, one pass over the name whatever the number of stars;
- the segments of a path meet the pattern's segments by dynamic programming: for
  each ``**`` only the deepest place where the rest of the pattern matches is kept,
  so a path costs at most O(pattern segments x path segments) glob matches.

The syntax and the answers are git's gitignore as ``pathspec.GitIgnoreSpec`` gave them
(which pipeflow used before): ``#`` comments, ``!`` negation, ``\\`` escapes, trailing
spaces dropped unless escaped, a leading or inner ``/`` anchors to the root, a trailing
``/`` matches directories only, ``**`` any number of folders, ``*``, ``?`` and
``[...]`` within one name. A pattern matching a folder matches everything under it, and
the last pattern that matches decides, a match of the path itself (priority 2)
winning over a match through one of its folders (priority 1). Two deliberate
differences: a bracket expression never matches ``/`` (as in git), and a pattern that
``pathspec`` could not compile (a lone trailing ``\\``, a range such as ``[z-a]``) is an
error naming the file and line instead of a crash.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from pipeflow.errors import Location, SpecError


class _Wild:
    """``*`` or ``?`` in a glob (a literal ``*`` or ``?`` is a one-character str)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


_STAR = _Wild("*")
_ANY = _Wild("?")
Token = str | _Wild | re.Pattern[str]
Kind = Literal["segments", "any", "has_slash"]

# Bound on the per-glob cache of which tokens accept a character: a folder of names in
# every script there is must not make one pattern hold a dict without end.
_ACCEPT_CACHE = 4096


class _BadPattern(ValueError):
    """Why a line cannot be a pattern (becomes a located SpecError)."""


class _NoOp(ValueError):
    """A line git discards without a word (an unclosed ``[``)."""


class Glob:
    """The pattern of one path segment: characters, ``?``, ``[...]`` and ``*``."""

    __slots__ = ("_accept", "_any", "_classes", "_exact", "_literals", "_regex", "_size",
                 "_stars", "_tokens", "stars")

    def __init__(self, tokens: Sequence[Token]) -> None:
        self._tokens = tuple(tokens)
        self._size = len(self._tokens)
        self._exact: str | None = None
        self._regex: re.Pattern[str] | None = None
        if all(isinstance(t, str) for t in self._tokens):
            self._exact = "".join(t for t in self._tokens if isinstance(t, str))
        self.stars = self._tokens.count(_STAR)
        if self._exact is None and self.stars <= 1:  # one star backtracks once over a name
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # as in _bracket
                self._regex = re.compile(self.regex_text(), re.DOTALL)
        self._stars = sum(1 << k for k, t in enumerate(self._tokens) if t is _STAR)
        self._any = sum(1 << k for k, t in enumerate(self._tokens) if t is _ANY)
        self._literals: dict[str, int] = {}
        for k, token in enumerate(self._tokens):
            if isinstance(token, str):
                self._literals[token] = self._literals.get(token, 0) | 1 << k
        self._classes = tuple((1 << k, t) for k, t in enumerate(self._tokens)
                              if isinstance(t, re.Pattern))
        self._accept: dict[str, int] = {}

    def regex_text(self) -> str:
        """The glob as a regular expression that never matches ``/``."""
        return "".join(_regex_of(t) for t in self._tokens)

    def matches(self, name: str) -> bool:
        """Whether the glob matches the whole of ``name`` (one path segment)."""
        if self._exact is not None:
            return name == self._exact
        if self._regex is not None:
            return self._regex.fullmatch(name) is not None
        return self._run(name)

    def _run(self, name: str) -> bool:
        # Shift-And with stars: bit k set = the first k tokens match what was read so
        # far. A star's bit stays set on any character and lets the token after it
        # start at once (stars never follow each other, so one shift closes over them).
        stars = self._stars
        states = 1 | ((1 & stars) << 1)
        for char in name:
            accept = self._accept.get(char)
            if accept is None:
                accept = self._accepting(char)
            states = ((states & accept) << 1) | (states & stars)
            states |= (states & stars) << 1
            if not states:
                return False
        return bool(states >> self._size & 1)

    def _accepting(self, char: str) -> int:
        """Bit k set when token k (not a star) accepts ``char``."""
        bits = self._literals.get(char, 0) | self._any
        for bit, bracket in self._classes:
            if bracket.fullmatch(char) is not None:
                bits |= bit
        if len(self._accept) >= _ACCEPT_CACHE:
            self._accept.clear()
        self._accept[char] = bits
        return bits


def _regex_of(token: Token) -> str:
    if isinstance(token, re.Pattern):
        return "(?!/)" + token.pattern  # a bracket expression never matches '/'
    if isinstance(token, _Wild):
        return "[^/]*" if token is _STAR else "[^/]"
    return re.escape(token)


def _tokens(glob: str) -> tuple[list[Token], str | None]:
    """One segment's glob as tokens: a character, ``*``, ``?`` or a compiled bracket
    expression (a run of ``*`` is one token: the same strings match); and why a bracket
    expression is not valid, if one is not (an error only if no later ``[`` is left
    open, which makes git discard the whole line)."""
    tokens: list[Token] = []
    invalid: str | None = None
    i, end = 0, len(glob)
    while i < end:
        char = glob[i]
        i += 1
        if char == "\\":
            if i == end:
                raise _BadPattern("it ends with a lone '\\' (write '\\\\' for a backslash)")
            tokens.append(glob[i])
            i += 1
        elif char == "*":
            if not tokens or tokens[-1] is not _STAR:
                tokens.append(_STAR)
        elif char == "[":
            i, problem = _bracket(glob, i, tokens)
            invalid = invalid or problem
        elif char == "?":
            tokens.append(_ANY)
        else:
            tokens.append(char)
    return tokens, invalid


def _bracket(glob: str, i: int, tokens: list[Token]) -> tuple[int, str | None]:
    """Append the bracket expression opening before ``glob[i]``; return the index past
    it and why it is not valid (None when it is). Read as pathspec reads it: ``!`` or
    ``^`` negates, a ``]`` first is a member, a backslash is a member."""
    j = i
    if j < len(glob) and glob[j] in "!^":
        j += 1
    if j < len(glob) and glob[j] == "]":
        j += 1
    j = glob.find("]", j)
    if j < 0:
        raise _NoOp  # git discards a pattern whose '[' is never closed
    negate = glob[i] in "!^"
    body = glob[i + 1 if negate else i:j + 1].replace("\\", "\\\\")
    expr = "[" + ("^" if negate else "") + body
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" for '[[:alpha:]]'
            tokens.append(re.compile(expr, re.DOTALL))
    except re.error as exc:
        return j + 1, f"the bracket expression {glob[i - 1:j + 1]!r} is not valid ({exc.msg})"
    return j + 1, None


@dataclass(frozen=True, eq=False)
class Pattern:
    """One pattern line of a ``.pipeflowignore``."""

    text: str
    line: int
    ignores: bool
    """False for a ``!`` line (it un-ignores what it matches)."""
    kind: Kind
    dir_only: bool
    """The line ended with ``/``."""
    segments: tuple[Glob | None, ...] = ()
    """For kind ``segments``: one glob per segment, None for ``**``."""
    regex: re.Pattern[str] | None = None
    """For a pattern that has at most one ``*`` and no inner ``**``: the same match as
    one regular expression, which cannot backtrack more than once over the path (a
    leading ``**`` tries each folder once, the one star each split of one name)."""

    def priority(self, path: str) -> int:
        """0 if the pattern does not match ``path`` (``/``-separated, a trailing ``/``
        for a directory); 2 if it matches the path itself, 1 if it matches through a
        folder of it (``build/`` matching ``build/x/y``)."""
        if self.kind == "any":
            return 2 if path else 0
        if self.kind == "has_slash":
            return (1 if self.dir_only else 2) if "/" in path else 0
        if self.regex is not None:
            found = self.regex.match(path)
            # 'd', the one group, is set when the match ended at a folder's '/'
            return 0 if found is None else 1 if found.lastgroup == "d" else 2
        return _match(self.segments, path.split("/"), self.dir_only)


def parse(lines: Iterable[str], source: str) -> tuple[Pattern, ...]:
    """The patterns of ``lines`` (the text of ``source``, named in errors); blank lines,
    comments and lines git discards yield nothing.

    Raises SpecError naming ``source`` and the line for a line that is no pattern."""
    patterns = []
    for number, line in enumerate(lines, start=1):
        try:
            pattern = _parse_line(line, number)
        except _NoOp:
            continue
        except _BadPattern as exc:
            raise SpecError(f"pattern {line[:200]!r}: {exc}", Location(source, number),
                            hint=f"fix or remove that line of {source}") from None
        if pattern is not None:
            patterns.append(pattern)
    return tuple(patterns)


def _parse_line(line: str, number: int) -> Pattern | None:
    text = line if line.endswith("\\ ") else line.rstrip()
    if not text or text.startswith("#") or text == "/":
        return None
    ignores = not text.startswith("!")
    body = text if ignores else text[1:]
    parts = body.split("/")
    dir_only = parts[-1] == ""
    if parts[0] == "":
        del parts[0]  # a leading '/' anchors to the root
    elif (len(parts) == 1 or (len(parts) == 2 and dir_only)) and parts[0] != "**":
        parts.insert(0, "**")  # a lone name matches at any depth
    if not parts:
        return None  # '!' alone
    if parts[-1] == "":
        parts[-1] = "**"  # 'x/' matches everything under x
    parts = [p for k, p in enumerate(parts) if not (p == "**" and k and parts[k - 1] == "**")]
    kind: Kind = "segments"
    if parts == ["**"]:
        kind = "has_slash" if dir_only else "any"
    elif parts == ["**", "*"]:
        kind = "any"
    elif parts == ["**", "*", "**"]:
        kind = "has_slash"
    if kind != "segments":
        return Pattern(text, number, ignores, kind, dir_only)
    globs: list[Glob | None] = []
    invalid: str | None = None
    for part in parts:
        if part == "**":
            globs.append(None)
            continue
        # A whole segment '*' is a name of one character or more (pathspec's reading).
        tokens, problem = ([_ANY, _STAR], None) if part == "*" else _tokens(part)
        invalid = invalid or problem
        globs.append(None if problem else Glob(tokens))
    if invalid:
        raise _BadPattern(invalid)
    return Pattern(text, number, ignores, kind, dir_only, tuple(globs),
                   _whole_regex(globs, dir_only))


def _whole_regex(globs: Sequence[Glob | None], dir_only: bool) -> re.Pattern[str] | None:
    """The pattern as one regular expression (pathspec's translation) when that is
    safe: at most one ``*`` in all and no ``**`` between two names; else None."""
    last = len(globs) - 1
    inner = any(g is None for g in globs[1:last])
    if inner or sum(g.stars for g in globs if g is not None) > 1:
        return None
    parts = []
    for i, glob in enumerate(globs):
        if glob is None:
            if i == 0:
                parts.append("(?:.+/)?")
            else:
                parts.append("(?P<d>/)" if dir_only else "/")
            continue
        if i > 0 and globs[i - 1] is not None:
            parts.append("/")
        parts.append(glob.regex_text())
        if i == last:
            parts.append(r"(?:(?P<d>/)|\Z)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "possible nested set" for '[[:alpha:]]'
        return re.compile("".join(parts), re.DOTALL)


def _match(globs: tuple[Glob | None, ...], names: list[str], dir_only: bool) -> int:
    """The priority of the match a backtracking matcher finds first (the one
    pathspec's regular expression reported), computed without backtracking.

    A backtracking matcher gives each ``**`` as many folders as it can first, so the
    match it reports puts every ``**`` as deep as the rest of the pattern still
    allows. ``deepest[i]`` is that place for the ``**`` at ``i`` (with the result from
    there), found once per ``**``, from the last one back."""
    count, last = len(names), len(globs) - 1
    deepest: dict[int, tuple[int, int]] = {}
    # Names the globs from i on need (one each): bounds the places a '**' may end.
    needs = [0] * (last + 2)
    for i in range(last, -1, -1):
        needs[i] = needs[i + 1] + (globs[i] is not None)

    def run(i: int, j: int) -> int:
        """Result of ``globs[i:]`` starting at name ``j``."""
        while True:
            glob = globs[i]
            if glob is None:
                if i == last:  # 'x/**': needs a '/' after the name before it
                    return (1 if dir_only else 2) if j < count else 0
                if i not in deepest:
                    deepest[i] = _deepest(i)
                place, result = deepest[i]
                return result if place >= j else 0
            if j >= count or not glob.matches(names[j]):
                return 0
            if i == last:  # the pattern ends here: at the path's end, or at a folder
                return 2 if j == count - 1 else 1
            i, j = i + 1, j + 1

    def _deepest(i: int) -> tuple[int, int]:
        for later in range(last, i, -1):  # fill deeper '**' first: no recursion
            if globs[later] is None and later != last and later not in deepest:
                deepest[later] = _deepest(later)
        for j in range(count - needs[i + 1], needs[0] - needs[i] - 1, -1):
            result = run(i + 1, j)
            if result:
                return j, result
        return -1, 0

    return run(0, 0)


def ignored(patterns: Sequence[Pattern], path: str) -> bool:
    """Whether ``patterns`` ignore ``path`` (a trailing ``/`` for a directory): the last
    pattern matching the path itself decides; failing one, the last matching through
    a folder."""
    decided: bool | None = None
    for pattern in reversed(patterns):
        priority = pattern.priority(path)
        if priority == 2:
            return pattern.ignores
        if priority == 1 and decided is None:
            decided = pattern.ignores
    return bool(decided)
