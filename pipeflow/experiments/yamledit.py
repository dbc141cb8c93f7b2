"""Replacing values in YAML text, in place: everything not replaced stays byte-identical.

``yaml.compose`` gives every node the marks where its text starts and ends; a value is
replaced by its new text in flow style, which fits wherever a block or flow value was.
Forms whose edit would change other values are refused: a value with an anchor (``&a``)
or reached through an alias (``*a``, ``<<: *a``) is shared with other keys, a tagged
one (``!!str``) would keep its tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import yaml

from pipeflow import params
from pipeflow.errors import UsageError

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_HAND = "edit this value by hand (pipeflow edits plain `key: value` entries only)"


def set_values(text: str, values: Mapping[str, Any], shown: str) -> str:
    """``text`` with the value of each dotted key of ``values`` replaced."""
    root = yaml.compose(text, Loader=_Loader)
    edits: list[tuple[int, int, str]] = []
    for key, value in values.items():
        start, end, pad = value_span(text, root, key, shown)
        edits.append((start, end, pad + flow(value, shown, key)))
    edits.sort(reverse=True)
    for (_, end, _), (next_start, _, _) in zip(edits[1:], edits, strict=False):
        if end > next_start:
            raise UsageError(f"{shown}: two keys set share one value", hint=_HAND)
    for start, end, new in edits:  # from the end backwards: earlier offsets stay true
        text = text[:start] + new + text[end:]
    return text


def value_span(text: str, root: yaml.Node | None, key: str, shown: str
               ) -> tuple[int, int, str]:
    """(start, end) character offsets of the value at dotted ``key`` in ``text``, and
    what the new value needs before it. A value on the lines below its key (a block
    sequence, or nothing: ``C:`` alone is null) moves up to the key's line, unless a
    comment follows the key there."""
    node = root
    colon = key_column = -1
    for part in key.split("."):
        if not isinstance(node, yaml.MappingNode):
            raise UsageError(f"{shown}: '{key}' is not written as a plain mapping entry",
                             hint=_HAND)
        _refuse_shared(text, node, key, shown)
        found = None
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            if _key_matches(key_node, part):
                found = value_node  # the last one wins, as for the loader
                colon = text.find(":", key_node.end_mark.index)
                key_column = key_node.start_mark.column
        if found is None:
            raise UsageError(f"{shown}: '{key}' comes from a merge key (<<) or an alias",
                             hint=_HAND)
        node = found
    assert node is not None
    _refuse_shared(text, node, key, shown)
    start = node.start_mark.index
    end = _end(node)
    if isinstance(node, yaml.ScalarNode) and node.style in ("|", ">"):
        end = _block_scalar_end(text, start, end)
    if colon >= 0 and not text[colon + 1: start].strip():
        return colon + 1, max(end, colon + 1), " "
    # after a comment: on its own line, indented past its key (a block sequence may
    # start in the key's column, a flow value may not)
    return start, end, " " * max(0, key_column + 2 - node.start_mark.column)


def _refuse_shared(text: str, node: yaml.Node, key: str, shown: str) -> None:
    mark = text[node.start_mark.index: node.start_mark.index + 1]
    if mark in ("&", "*"):
        raise UsageError(f"{shown}: '{key}' is inside a YAML anchor or alias, shared with "
                         "other keys", hint=_HAND)
    if mark == "!":
        raise UsageError(f"{shown}: '{key}' has a YAML tag", hint=_HAND)


def _key_matches(key_node: yaml.Node, part: str) -> bool:
    if not isinstance(key_node, yaml.ScalarNode):
        return False
    if key_node.tag == "tag:yaml.org,2002:str":  # the common case: no constructing
        return bool(key_node.value == part)
    loader = yaml.SafeLoader("")
    try:
        value = loader.construct_object(key_node)
    except (yaml.YAMLError, ValueError):
        return False
    finally:
        loader.dispose()
    return params.key_text(value) == part


def _end(node: yaml.Node) -> int:
    """Where the text of ``node`` ends: for a block collection, the end of its last
    item (its own end mark lies past the comments and blank lines that follow it)."""
    block = isinstance(node, yaml.SequenceNode | yaml.MappingNode) and not node.flow_style
    if block and node.value:
        last = node.value[-1]
        return _end(last[1] if isinstance(last, tuple) else last)
    return int(node.end_mark.index)


def _block_scalar_end(text: str, start: int, end: int) -> int:
    # A literal or folded scalar ends after its last line break (and the blank lines
    # it keeps): stop at the end of its last non-blank line, so that what follows keeps
    # its own line.
    body = text[start:end]
    return start + len(body.rstrip("\n\r \t"))


def flow(value: Any, shown: str = "", key: str = "") -> str:
    """``value`` as one line of YAML in flow style, reading back as the same value
    (``'10'`` for the string, ``[1, 2]``, ``{a: 1}``); strings that would span lines
    are double-quoted with escapes."""
    if isinstance(value, list):
        return "[" + ", ".join(flow(v, shown, key) for v in value) + "]"
    if isinstance(value, Mapping):
        items = (f"{flow(k, shown, key)}: {flow(v, shown, key)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    try:
        out = _dump(value)
        one_line = out.rstrip("\n").removesuffix("\n...")
        if isinstance(value, str) and ("\n" in one_line or not _reads_back(one_line, value)):
            # spans lines, would not read back inside a flow collection ({C: a,b} or
            # [:0]), or holds a character a reader takes for a line break (U+0085):
            # double quotes and escapes, ASCII only
            out = _dump(value, style='"', unicode=False)
    except yaml.YAMLError as exc:
        raise UsageError(f"{shown}: cannot write the value of '{key}' as YAML ({exc})",
                         hint="set a number, string, bool, date or list") from None
    return out.rstrip("\n").removesuffix("\n...")


def _dump(value: Any, style: str | None = None, unicode: bool = True) -> str:
    return str(yaml.safe_dump(value, default_flow_style=True, default_style=style,
                              width=1 << 30, allow_unicode=unicode))


def _reads_back(text: str, value: str) -> bool:
    """Whether ``text`` reads as ``value`` alone, in a flow list and in a flow mapping."""
    return bool(_load(text) == value and _load(f"[{text}]") == [value]
                and _load(f"{{k: {text}}}") == {"k": value})


def _load(text: str) -> Any:
    try:
        return yaml.load(text, Loader=_Loader)
    except (yaml.YAMLError, ValueError):
        return None
