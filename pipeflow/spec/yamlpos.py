"""YAML documents that remember where each value was written.

``yaml.load`` composes a node tree (every node carries its line and column) and
then constructs plain Python values from it. :func:`parse` does the same two steps
with the C loader but keeps the tree, so that a spec error found anywhere later
can be reported at its line and column without parsing again: the fast path costs
nothing extra.

A value is addressed by its :data:`YamlPath`: mapping keys and list indexes from
the document's root, e.g. ``("stages", "train", "deps", 2)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import yaml

from pipeflow.errors import Location, SpecError

YamlPath = tuple[str | int, ...]
Duplicate = tuple[YamlPath, str, Location]

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class SpecProblem(Exception):
    """A spec error at a path of the document; the loader adds file, line and column.

    Raised by the parts of the loader that work on values (interpolation,
    templates, normalization) and never escapes :mod:`pipeflow.spec.loader`.
    ``at_key`` points at the mapping key instead of its value.
    """

    def __init__(
        self, message: str, path: YamlPath, *, hint: str | None = None, at_key: bool = False
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        self.hint = hint
        self.at_key = at_key


@dataclass(frozen=True)
class Document:
    """Parsed YAML: the plain values and the node tree they came from."""

    file: str
    data: Any
    root: yaml.Node | None
    duplicates: tuple[Duplicate, ...] = ()
    """Keys written twice, when :func:`parse` was asked to find them."""

    def location(self, path: YamlPath, *, at_key: bool = False) -> Location:
        """Where the value (or with ``at_key`` its key) at ``path`` was written.

        Best effort: a path that leaves the tree (a value made by a template, a
        key merged from an anchor) is reported at the deepest node reached.
        """
        node = self.root
        if node is None:
            return Location(self.file, 1, 1)
        mark = node.start_mark
        for step in path:
            found = _child(node, step)
            if found is None:
                break
            key_node, node = found
            mark = key_node.start_mark if at_key and key_node is not None else node.start_mark
        if not at_key:
            mark = node.start_mark
        return Location(self.file, mark.line + 1, mark.column + 1)

    def error(
        self, message: str, path: YamlPath, *, hint: str | None = None, at_key: bool = False
    ) -> SpecError:
        """A SpecError located at ``path``."""
        return SpecError(message, self.location(path, at_key=at_key), hint=hint)

    def key_positions(self, path: YamlPath) -> dict[str, Location]:
        """Location of each key of the mapping at ``path`` (last one wins, as in YAML)."""
        node: yaml.Node | None = self.root
        for step in path:
            found = _child(node, step) if node is not None else None
            node = found[1] if found else None
        if not isinstance(node, yaml.MappingNode):
            return {}
        return {
            key_text(k): Location(self.file, k.start_mark.line + 1, k.start_mark.column + 1)
            for k, _ in node.value
            if isinstance(k, yaml.ScalarNode)
        }


def _child(node: yaml.Node, step: str | int) -> tuple[yaml.Node | None, yaml.Node] | None:
    """The (key node, value node) one step below ``node``, if there is one."""
    if isinstance(node, yaml.MappingNode):
        for key, value in reversed(node.value):  # the last of duplicate keys wins
            if isinstance(key, yaml.ScalarNode) and key_text(key) == str(step):
                return key, value
        return None
    is_item = isinstance(node, yaml.SequenceNode) and isinstance(step, int)
    if is_item and 0 <= int(step) < len(node.value):
        return None, node.value[int(step)]
    return None


def find_duplicates(root: yaml.Node | None, file: str) -> tuple[Duplicate, ...]:
    """Keys written twice in one mapping (PyYAML silently keeps the last).

    Must run on the tree before construction: constructing a mapping with a
    ``<<`` merge key splices the merged pairs in, and those may repeat keys legally.
    """
    found: list[Duplicate] = []
    if root is None:
        return ()
    stack: list[tuple[yaml.Node, YamlPath]] = [(root, ())]
    visited: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in visited:  # aliases share nodes; visit each once
            continue
        visited.add(id(node))
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key, value in node.value:
                if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                    continue
                text = key_text(key)
                if text in seen:
                    mark = key.start_mark
                    found.append((path, text, Location(file, mark.line + 1, mark.column + 1)))
                seen.add(text)
                stack.append((value, (*path, text)))
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((item, (*path, i)) for i, item in enumerate(node.value))
    found.sort(key=lambda d: (d[2].line or 0, d[2].column or 0))
    return tuple(found)


_MERGE_TAG = "tag:yaml.org,2002:merge"
_BOOL_TAG = "tag:yaml.org,2002:bool"
_NULL_TAG = "tag:yaml.org,2002:null"


def key_text(node: yaml.ScalarNode) -> str:
    """A key as it appears in a path: ``on``/``yes`` read as ``true``, ``~`` as ``null``.

    Matches :func:`pipeflow.params.key_text` of the constructed key for the
    scalars YAML 1.1 reads as booleans and null, the ones people trip over.
    """
    text = str(node.value)
    if node.tag == _BOOL_TAG:
        return "true" if text.lower() in ("yes", "true", "on") else "false"
    if node.tag == _NULL_TAG:
        return "null"
    return text


def parse(text: str, file: str, *, find_duplicate_keys: bool = False) -> Document:
    """Parse one YAML document, keeping its node tree; syntax errors are located."""
    loader = _Loader(text)
    duplicates: tuple[Duplicate, ...] = ()
    try:
        node = loader.get_single_node()
        if find_duplicate_keys:
            duplicates = find_duplicates(node, file)
        data = loader.construct_document(node) if node is not None else None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "cannot parse"
        if exc.context and exc.problem:
            problem = f"{exc.problem} ({exc.context})"
        hint = "check the indentation and quoting on that line and the one before it"
        lines = text.splitlines()
        if mark and mark.line < len(lines) and "${" in lines[mark.line]:
            hint = "inside [...] or {...}, quote values that use ${...}: ['${dir}/a.csv']"
        raise SpecError(f"YAML syntax error: {problem}", where, hint=hint) from None
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        # ValueError: a plain scalar that looks like a date but is none (2024-13-45)
        raise SpecError(f"cannot parse YAML: {exc}", Location(file)) from None
    finally:
        loader.dispose()
    return Document(file, data, node, duplicates)
