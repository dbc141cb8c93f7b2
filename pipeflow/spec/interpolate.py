"""``${...}`` interpolation of spec strings.

A reference is a dotted path with optional integer indexes: ``${train.lr}``,
``${models[0].name}``, ``${item}``. Variables come from a :class:`Context`: the
template's ``item``/``key`` first, then the top-level ``vars`` and the default
``params.yaml``. ``$${`` writes a literal ``${``.

Inside a longer string only scalars may be interpolated (numbers, strings,
booleans as ``true``/``false``, null as ``null``). A string that is exactly one
reference keeps the referenced value as it is (:func:`interpolate_value`), which
is how ``foreach: ${models}`` gets its list.
"""

from __future__ import annotations

import datetime
import difflib
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from pipeflow.params import key_text
from pipeflow.spec.shellwords import Scanner, quote
from pipeflow.spec.yamlpos import SpecProblem, YamlPath

_TOKEN = re.compile(r"\$\$\{|\$\{([^}]*)\}|\$\{")
_SEG = r"[A-Za-z0-9_][A-Za-z0-9_-]*"
_EXPR = re.compile(rf"\s*({_SEG})((?:\.{_SEG}|\[\d+\])*)\s*")
_STEP = re.compile(rf"\.({_SEG})|\[(\d+)\]")
_MAX_KNOWN = 20


class Context:
    """Variables visible to ``${...}``: local names (``item``, ``key``) over a lazy base.

    The base (vars and params.yaml) is computed on first use and shared by every
    child context, so a spec without ``${`` never reads a params file for it.
    """

    def __init__(
        self,
        base: Callable[[], Mapping[str, Any]],
        local: Mapping[str, Any] | None = None,
        *,
        _memo: list[Mapping[str, Any]] | None = None,
    ) -> None:
        self._base = base
        self._local = dict(local or {})
        self._memo: list[Mapping[str, Any]] = _memo if _memo is not None else []

    def child(self, local: Mapping[str, Any]) -> Context:
        """A context where ``local`` names shadow this one's."""
        merged = {**self._local, **local}
        return Context(self._base, merged, _memo=self._memo)

    def base(self) -> Mapping[str, Any]:
        """The shared variables (computed once)."""
        if not self._memo:
            self._memo.append(self._base())
        return self._memo[0]

    def names(self) -> list[str]:
        """Every top-level variable name, sorted."""
        return sorted({*map(key_text, self.base()), *self._local})

    def lookup(self, expr: str, path: YamlPath, what: str) -> Any:
        """The value ``expr`` (the text inside ``${}``) names; SpecProblem when undefined."""
        parsed = _EXPR.fullmatch(expr)
        if parsed is None:
            raise SpecProblem(
                f"invalid reference '${{{expr}}}' in {what}",
                path,
                hint="write ${name}, ${section.key} or ${name[0]}; $${ writes a literal '${'",
            )
        head, rest = parsed.group(1), parsed.group(2)
        if head in self._local:
            node: Any = self._local[head]
        else:
            base = self.base()
            if head not in base:
                known = [k for k in base if not isinstance(k, str) and key_text(k) == head]
                if not known:
                    raise self._undefined(expr.strip(), head, self.names(), path, what)
                head = known[-1]
            node = base[head]
        done = key_text(head)
        for step in _STEP.finditer(rest):
            name, index = step.group(1), step.group(2)
            node, done = self._step(node, done, name, index, expr.strip(), path, what)
        return node

    def _step(
        self,
        node: Any,
        done: str,
        name: str | None,
        index: str | None,
        expr: str,
        path: YamlPath,
        what: str,
    ) -> tuple[Any, str]:
        if name is not None and isinstance(node, Mapping):
            if name in node:
                return node[name], f"{done}.{name}"
            for k in node:
                if key_text(k) == name:
                    return node[k], f"{done}.{name}"
            known = sorted(f"{done}.{key_text(k)}" for k in node)
            raise self._undefined(expr, f"{done}.{name}", known, path, what)
        if isinstance(node, list):
            position = index if index is not None else name
            if position is not None and position.isdigit():
                i = int(position)
                if i < len(node):
                    return node[i], f"{done}[{i}]"
                raise SpecProblem(
                    f"'${{{expr}}}' in {what}: '{done}' has {len(node)} items, no index {i}",
                    path,
                )
        kind = _kind(node)
        step = f"[{index}]" if index is not None else f".{name}"
        raise SpecProblem(f"'${{{expr}}}' in {what}: '{done}' is {kind}, it has no '{step}'", path)

    @staticmethod
    def _undefined(
        expr: str, missing: str, known: list[str], path: YamlPath, what: str
    ) -> SpecProblem:
        close = difflib.get_close_matches(missing, known, n=1, cutoff=0.6)
        hint = f"did you mean '{close[0]}'?" if close else None
        listed = ", ".join(known[:_MAX_KNOWN]) + (", ..." if len(known) > _MAX_KNOWN else "")
        message = f"undefined variable '{missing}' in '${{{expr}}}' of {what}"
        message += f" (known: {listed})" if known else " (no variables are defined)"
        if hint is None and not known:
            hint = "define variables under top-level 'vars:' or in params.yaml"
        return SpecProblem(message, path, hint=hint)


def render(value: Any) -> str | None:
    """A scalar as it reads in a command or path; None for mappings and lists."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    return None


def _kind(value: Any) -> str:
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"the scalar {render(value)!r}"


def _pieces(
    text: str, ctx: Context, path: YamlPath, what: str
) -> Iterator[tuple[str, str | None]]:
    """``text`` as (piece, reference): literal pieces with None, values with their ``${...}``."""
    pos = 0
    for m in _TOKEN.finditer(text):
        if m.start() > pos:
            yield text[pos : m.start()], None
        pos = m.end()
        token = m.group(0)
        if token == "$${":
            yield "${", None
        elif m.group(1) is None:
            raise SpecProblem(
                f"unclosed '${{' in {what}", path, hint="close it with '}', or write $${ for '${'"
            )
        else:
            value = ctx.lookup(m.group(1), path, what)
            shown = render(value)
            if shown is None:
                raise SpecProblem(
                    f"'{token}' in {what} is {_kind(value)}; only numbers, strings and "
                    "booleans can be interpolated into a string",
                    path,
                    hint="reference one key inside it, e.g. ${section.key}",
                )
            yield shown, token
    if pos < len(text):
        yield text[pos:], None


def interpolate(text: str, ctx: Context, path: YamlPath, what: str) -> str:
    """``text`` with every ``${...}`` replaced by its scalar value and ``$${`` by ``${``."""
    if "${" not in text:
        return text
    return "".join(piece for piece, _ in _pieces(text, ctx, path, what))


def interpolate_command(text: str, ctx: Context, path: YamlPath, what: str) -> str:
    """A shell command: like :func:`interpolate`, each value quoted to stay one shell word.

    The rule (:mod:`pipeflow.spec.shellwords`) depends on where the reference stands:
    outside quotes, inside the command's double quotes or single quotes; a value that
    cannot be quoted where it stands is refused.
    """
    if "${" not in text:
        return text
    scanner = Scanner()
    parts: list[str] = []
    for piece, token in _pieces(text, ctx, path, what):
        if token is None:
            scanner.feed(piece)
            parts.append(piece)
            continue
        if "\x00" in piece:
            raise SpecProblem(f"the value of '{token}' in {what} holds a NUL character, "
                              "which no command can receive", path)
        spot = scanner.spot()
        quoted = quote(piece, spot)
        if quoted is None or not scanner.feed_value(quoted):
            raise SpecProblem(
                f"'{token}' in {what} stands inside {spot.inside}, where its value "
                f"{piece!r} cannot be quoted safely; only letters, digits and @%+=:,./- "
                "can be inserted there",
                path,
                hint=_UNQUOTABLE_HINT,
            )
        parts.append(quoted)
    if scanner.problem is not None:
        raise SpecProblem(f"{what}: {scanner.problem}", path,
                          hint="choose a here-document delimiter no value can equal")
    return "".join(parts)


_UNQUOTABLE_HINT = (
    "move the reference outside it (write $(...) instead of backquotes), or pass the value "
    "as an argument outside quotes: pipeflow quotes it there (docs/spec.md)"
)


def interpolate_value(text: str, ctx: Context, path: YamlPath, what: str) -> Any:
    """Like :func:`interpolate`, but a string that is one whole ``${...}`` keeps its value."""
    m = _TOKEN.fullmatch(text)
    if m is not None and m.group(1) is not None:
        return ctx.lookup(m.group(1), path, what)
    return interpolate(text, ctx, path, what)


def interpolate_scalar(text: str, ctx: Context, path: YamlPath, what: str) -> str:
    """A list entry (a path, a key): one whole ``${x}`` may name any scalar, made a string."""
    value = interpolate_value(text, ctx, path, what)
    shown = render(value)
    if shown is None:
        raise SpecProblem(
            f"'{text}' in {what} is {_kind(value)}; it must name a single value",
            path,
            hint="reference one key inside it, e.g. ${section.key}",
        )
    return shown
