"""Where a ``${...}`` value lands in a ``/bin/sh`` command, and the value quoted to fit there.

A stage's ``cmd`` runs under ``/bin/sh -c``; a params value spliced in raw would be
parsed as shell syntax (``1; touch x`` would run a second command). Interpolation
therefore feeds the command it builds, piece by piece, to a :class:`Scanner` that
follows the shell's quoting, and quotes each value for the spot it lands in, so that
the shell reads exactly the value, as one word (or part of the user's own word):

* outside quotes: POSIX single-quoting, as :func:`shlex.quote` does. A value made only
  of letters, digits and ``@%+=:,./-`` (numbers, names, paths) is left as it is, so
  the commands (and the fingerprints) of ordinary pipelines do not change;
* inside the user's double quotes (``"${msg}"``): ``\\``, ``"``, ``$`` and backquote
  get a backslash; nothing else is special there;
* inside the user's single quotes (``'${x}'``): each ``'`` becomes ``'\\''`` (close,
  an escaped quote, reopen);
* anywhere the shells disagree or quoting cannot be made exact — backquotes, a shell
  ``$${...}``, ``$((...))``, ``$'...'``, a comment, a here-document or its delimiter,
  right after a backslash, or after text the scanner cannot follow (a ``case`` inside
  ``$(...)``, quotes inside ``$${...}``) — a value is allowed only when it is made of
  those plain characters, and inserted as it is; anything else is refused.

After a value, the scanner must be back in the state it was in before it: a check
that the quoting kept the command's structure.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from typing import Literal

# shlex.quote's own test: these characters never need quotes (ASCII only)
_PLAIN = re.compile(r"[\w@%+=:,./-]+", re.ASCII)
_BLANK = " \t"
_ENDS_WORD = " \t\n;&|()<>"

SpotKind = Literal["plain", "double", "single", "other"]

# frame kind -> (spot kind, where a refused value stood, for the message)
_SPOTS: dict[str, tuple[SpotKind, str]] = {
    "top": ("plain", "the command"),
    "subst": ("plain", "$(...)"),
    "dq": ("double", "double quotes"),
    "sq": ("single", "single quotes"),
    "bq": ("other", "backquotes"),
    "arith": ("other", "$((...))"),
    "param": ("other", "a shell ${...}"),
    "ansi": ("other", "$'...'"),
    "comment": ("other", "a comment"),
    "hdword": ("other", "a here-document's delimiter"),
    "hdbody": ("other", "a here-document"),
}


@dataclass(frozen=True)
class Spot:
    """Where a value lands: ``kind`` decides the quoting, ``inside`` names it for people."""

    kind: SpotKind
    inside: str


def is_plain(text: str) -> bool:
    """Whether ``text`` is one shell word that needs no quotes anywhere (``data/x.csv``)."""
    return _PLAIN.fullmatch(text) is not None


def quote(text: str, spot: Spot) -> str | None:
    """``text`` written so that the shell reads exactly it at ``spot``; None if it cannot be."""
    if spot.kind == "plain":
        return shlex.quote(text)
    if spot.kind == "double":
        return re.sub(r'([\\"$`])', r"\\\1", text)
    if spot.kind == "single":
        return text.replace("'", "'\\''")
    return text if is_plain(text) else None


@dataclass
class _Frame:
    """One open construct: the command itself, a quote, a substitution, a here-document."""

    kind: str
    depth: int = 0  # open "(" inside a command or $((...))
    word_start: bool = True  # a "#" here starts a comment
    word: str | None = ""  # the literal word so far (None once a value is part of it)
    lts: int = 0  # "<" just seen in a row
    heredocs: list[tuple[str, bool, bool]] = field(default_factory=list)  # delim, strip, quoted
    text: str = ""  # a here-document's delimiter being read, or its current line
    delim: str = ""  # a here-document's delimiter
    quoted: bool = False  # the delimiter was quoted: the body is literal
    strip: bool = False  # <<-: tabs before the delimiter line are ignored
    quote_char: str = ""  # the quote open inside a delimiter being read
    value_on_line: bool = False
    backslash: bool = False  # a backslash just seen (in $'...' or a delimiter)
    closing: bool = False  # one ")" of "))" seen in $((...))


class Scanner:
    """Follows the quoting of a shell command fed to it in pieces (POSIX ``sh``, and bash)."""

    def __init__(self) -> None:
        self._frames = [_Frame("top")]
        self._escape = False  # the next character is escaped by a backslash
        self._dollar = ""  # "$" or "$(" waiting for the character that says what it opens
        self.lost: str | None = None  # what the scanner could not follow
        self.problem: str | None = None  # a value that changed the command's structure

    def spot(self) -> Spot:
        """Where a value fed next would land."""
        if self._dollar == "$(":
            self._settle_subst()
        frame = self._frames[-1]
        if self.lost is not None:
            return Spot("other", f"text after {self.lost}")
        if self._escape:
            return Spot("other", "a backslash escape")
        if self._dollar or (frame.kind in ("top", "subst") and frame.lts == 2):
            return Spot("other", "a here-document's delimiter" if frame.lts else "'$'")
        kind, inside = _SPOTS[frame.kind]
        return Spot(kind, inside)

    def feed_value(self, quoted: str) -> bool:
        """Feed a value's quoted text; False when the quoting did not keep the structure.

        Quoted values (outside or inside quotes) must leave the scanner where they found
        it. A plain value where quoting is impossible has no quotes or operators to
        change it; the scanner follows whatever it does mean (a delimiter, the end of a
        broken ``$((``), except after a bare ``$``, where it would name a variable.
        """
        quoted_spot = self.spot().kind != "other"  # (settles a "$(" first)
        before = self._shape()
        if self._dollar:
            return False
        frame = self._frames[-1]
        frame.value_on_line = True
        frame.word = None
        self.feed(quoted)
        self._frames[-1].word = None
        return not quoted_spot or self._shape() == before

    def feed(self, text: str) -> None:
        """Feed literal command text."""
        for char in text:
            self._char(char)

    def _shape(self) -> tuple[object, ...]:
        # (a value after a backslash uses up the escape: only plain values go there)
        return (self.lost, self._dollar, *(f.kind for f in self._frames))

    def _push(self, frame: _Frame) -> None:
        self._frames[-1].word_start = False
        self._frames.append(frame)

    def _pop(self) -> None:
        frame = self._frames.pop()
        # after a quote the word goes on; after a here-document a new line starts
        self._frames[-1].word_start = frame.kind == "hdbody"

    def _settle_subst(self) -> None:
        self._dollar = ""
        self._push(_Frame("subst"))

    def _char(self, c: str) -> None:
        frame = self._frames[-1]
        if self._escape:
            self._escape = False
            frame.word_start = False
            return
        if self._dollar and self._after_dollar(c, frame):
            return
        frame = self._frames[-1]
        kind = frame.kind
        if kind in ("top", "subst"):
            self._command(c, frame)
        elif kind == "sq":
            if c == "'":
                self._pop()
        elif kind == "dq":
            self._double(c)
        elif kind == "hdword":
            self._heredoc_word(c, frame)
        elif kind == "hdbody":
            self._heredoc_line(c, frame)
        elif kind == "comment":
            if c == "\n":
                self._pop()
                self._char(c)
        else:
            self._nested(c, frame)

    def _after_dollar(self, c: str, frame: _Frame) -> bool:
        """Resolve a pending ``$``/``$(`` with the character after it; True if ``c`` is used."""
        pending, self._dollar = self._dollar, ""
        if pending == "$(":
            if c == "(":
                self._push(_Frame("arith"))
                return True
            self._push(_Frame("subst"))
            return False
        commandlike = frame.kind in ("top", "subst")
        if c == "(":
            self._dollar = "$("
        elif c == "{":
            self._push(_Frame("param"))
        elif c == "'" and commandlike:
            self._push(_Frame("ansi"))
        elif c == '"' and commandlike:
            self._push(_Frame("dq"))
        elif c != "$":  # $$ is the shell's pid; anything else: $name or a literal $
            return False
        return True

    def _command(self, c: str, frame: _Frame) -> None:
        """A character of command text (the command itself or inside ``$(...)``)."""
        if frame.lts and c != "<":
            heredoc = frame.lts == 2
            frame.lts = 0
            if heredoc:
                self._push(_Frame("hdword", strip=c == "-"))
                if c != "-":
                    self._char(c)
                return
        if c in _ENDS_WORD:
            if frame.word == "case" and frame.kind == "subst":
                self.lost = "a 'case' inside $(...)"  # its ")" patterns close nothing
            frame.word = ""
        elif frame.word is not None:
            frame.word += c
        if c == "\\":
            self._escape = True
        elif c == "'":
            self._push(_Frame("sq"))
        elif c == '"':
            self._push(_Frame("dq"))
        elif c == "`":
            self._push(_Frame("bq"))
        elif c == "$":
            self._dollar = "$"
        elif c == "#" and frame.word_start:
            self._push(_Frame("comment"))
        elif c == "<":
            frame.lts += 1
        elif c == "(":
            frame.depth += 1
        elif c == ")":
            if frame.depth:
                frame.depth -= 1
            elif frame.kind == "subst":
                self._pop()
        elif c == "\n" and frame.heredocs:
            self._start_heredoc(frame)
        if self._frames[-1] is frame:
            frame.word_start = c in _ENDS_WORD

    def _double(self, c: str) -> None:
        if c == "\\":
            self._escape = True
        elif c == '"':
            self._pop()
        elif c == "`":
            self._push(_Frame("bq"))
        elif c == "$":
            self._dollar = "$"

    def _nested(self, c: str, frame: _Frame) -> None:
        """Backquotes, ``$((...))``, a shell ``${...}``, ``$'...'``: only their end matters."""
        if frame.kind == "bq":
            if c == "\\":
                self._escape = True
            elif c == "`":
                self._pop()
        elif frame.kind == "ansi":
            if frame.backslash and c == "'":
                self.lost = "\\' inside $'...'"  # bash escapes it, dash ends the quote
            elif c == "'" and not frame.backslash:
                self._pop()
            frame.backslash = c == "\\" and not frame.backslash
        elif c in "'\"`":
            self.lost = f"a quote inside {_SPOTS[frame.kind][1]}"
        elif c == "$":
            self._dollar = "$"
        elif frame.kind == "param":
            self._param(c, frame)
        else:
            self._arith(c, frame)

    def _param(self, c: str, frame: _Frame) -> None:
        if c == "\\":
            self._escape = True
        elif c == "{":
            frame.depth += 1
        elif c == "}":
            if frame.depth:
                frame.depth -= 1
            else:
                self._pop()

    def _arith(self, c: str, frame: _Frame) -> None:
        if frame.closing:
            if c != ")":
                self.lost = "a '$((' that is not arithmetic"
            self._pop()
        elif c == "(":
            frame.depth += 1
        elif c == ")":
            if frame.depth:
                frame.depth -= 1
            else:
                frame.closing = True

    def _heredoc_word(self, c: str, frame: _Frame) -> None:
        """The word after ``<<``: the delimiter (quoted anywhere: the body is literal)."""
        if frame.backslash:
            frame.backslash = False
            frame.text += c
        elif frame.quote_char:
            if c == frame.quote_char:
                frame.quote_char = ""
            else:
                frame.text += c
        elif c in _BLANK and not frame.text and not frame.quoted:
            return
        elif c in _ENDS_WORD:
            self._pop()
            parent = self._frames[-1]
            parent.heredocs.append((frame.text, frame.strip, frame.quoted))
            self._char(c)
            return
        elif c == "\\":
            frame.backslash = frame.quoted = True
        elif c in "'\"":
            frame.quote_char, frame.quoted = c, True
        else:
            frame.text += c

    def _start_heredoc(self, frame: _Frame) -> None:
        delim, strip, quoted = frame.heredocs.pop(0)
        self._push(_Frame("hdbody", delim=delim, strip=strip, quoted=quoted))

    def _heredoc_line(self, c: str, frame: _Frame) -> None:
        if c != "\n":
            frame.text += c
            if not frame.quoted and c in "\\`$":
                # expansions and continuations inside the body: not followed here
                self.lost = "a here-document with \\, ` or $ in its body"
            return
        line = frame.text.lstrip("\t") if frame.strip else frame.text
        if line == frame.delim:
            if frame.value_on_line:
                self.problem = f"a value ends the here-document (a line reads '{line}')"
            self._pop()
            parent = self._frames[-1]
            if parent.heredocs:
                self._start_heredoc(parent)
            return
        frame.text, frame.value_on_line = "", False
