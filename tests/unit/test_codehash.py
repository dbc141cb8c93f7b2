"""The normalized code hash, import facts of a source, and their cache by content."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.code.codehash import (
    ImportRef,
    SourceCache,
    SourceFacts,
    analyze,
    serialize,
    source_hash,
    tree_hash,
)
from pipeflow.content.hasher import Hasher
from pipeflow.content.hashing import hash_bytes
from pipeflow.keyvalue import MemoryStore

BASE = '''"""Module docstring."""
import os


class Model:
    """Class docstring."""

    def fit(self, rows: list[int], scale: float = 1.0) -> float:
        """Method docstring."""
        total = sum(rows) * scale
        return total


async def fetch(url):
    """Async docstring."""
    return url
'''


def h(source: str) -> str:
    digest, problem = source_hash(source.encode())
    assert problem is None
    return digest


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("comment", BASE.replace("import os\n", "import os  # the os\n# a comment line\n")),
        ("blank lines", BASE.replace("\n\n\nclass", "\nclass").replace("\n\n", "\n\n\n\n")),
        ("line breaks in brackets", BASE.replace("(self, rows: list[int], scale: float = 1.0)",
                                                 "(\n        self,\n        rows: list[int],\n"
                                                 "        scale: float = 1.0,\n    )")),
        ("module docstring", BASE.replace("Module docstring.", "Another text.")),
        ("class docstring", BASE.replace('"""Class docstring."""', "'''Other.'''")),
        ("method docstring removed", BASE.replace('        """Method docstring."""\n', "")),
        ("async docstring", BASE.replace("Async docstring.", "Fetches.")),
        ("redundant parentheses", BASE.replace("sum(rows) * scale", "(sum(rows)) * (scale)")),
        ("u prefix", BASE.replace('return url', 'return url or u"x"').replace(
            "import os\n", "import os\n")),
        ("indentation", BASE.replace("    ", "  ")),
    ],
)
def test_cosmetic_edits_keep_the_hash(name: str, variant: str) -> None:
    base = BASE.replace("return url", 'return url or "x"') if name == "u prefix" else BASE
    assert h(variant) == h(base), name


@pytest.mark.parametrize(
    ("name", "variant"),
    [
        ("renamed local", BASE.replace("total", "result")),
        ("literal", BASE.replace("scale: float = 1.0", "scale: float = 2.0")),
        ("int for float", BASE.replace("= 1.0", "= 1")),
        ("annotation", BASE.replace("rows: list[int]", "rows: list[float]")),
        ("decorator", BASE.replace("    def fit", "    @staticmethod\n    def fit")),
        ("statement order", BASE.replace(
            "        total = sum(rows) * scale\n        return total\n",
            "        total = sum(rows) * scale\n        print(total)\n        return total\n")),
        ("second string statement", BASE.replace(
            '"""Method docstring."""', '"""Method docstring."""\n        "not a docstring"')),
        ("import", BASE.replace("import os", "import sys")),
        ("async to sync", BASE.replace("async def", "def")),
    ],
)
def test_changes_of_the_tree_change_the_hash(name: str, variant: str) -> None:
    assert h(variant) != h(BASE), name


def test_order_of_statements_counts() -> None:
    assert h("a = 1\nb = 2\n") != h("b = 2\na = 1\n")


def test_constants_keep_their_type() -> None:
    assert len({h("x = 1\n"), h("x = 1.0\n"), h("x = True\n"), h("x = '1'\n"),
                h("x = b'1'\n")}) == 5


def test_docstring_only_body_differs_from_pass() -> None:
    assert h('def f():\n    "doc"\n') != h("def f():\n    pass\n")
    assert h('def f():\n    "doc"\n') == h('def f():\n    "other"\n')


def test_not_parsing_is_hashed_by_bytes_with_the_reason() -> None:
    data = b"def broken(:\n    pass\n"
    digest, problem = source_hash(data)
    assert digest == hash_bytes(data)
    assert problem is not None and problem.startswith("line 1:")
    assert source_hash(b"x = 1\0\n")[1]  # NUL bytes: ValueError, not a crash


def test_deeply_nested_expression_does_not_hit_the_recursion_limit() -> None:
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(50_000)
    try:
        tree = ast.parse("x = " + " + ".join(["a"] * 5000))
    finally:
        sys.setrecursionlimit(limit)
    assert len(tree_hash(tree)) == 32  # 5000 levels deep, at the normal limit
    # too deep for the parser itself: hashed by bytes, with a note
    digest, problem = source_hash(("x = " + "(" * 5000 + "1" + ")" * 5000).encode())
    assert len(digest) == 32 and problem


def test_serialization_has_no_positions() -> None:
    text = serialize(ast.parse("x = 1\n"))
    assert "lineno" not in text and "col_offset" not in text


def test_encoding_cookie_and_bom_are_read() -> None:
    latin = "# -*- coding: latin-1 -*-\nx = 'é'\n".encode("latin-1")
    assert source_hash(latin) == (h("x = 'é'\n"), None)
    assert source_hash(b"\xef\xbb\xbfx = 1\n") == (h("x = 1\n"), None)


# property: layout never matters, values always do ------------------------------------

_names = st.sampled_from(["a", "b", "total", "rows", "x1"])
_values = st.one_of(st.integers(-5, 5), st.sampled_from(["'s'", "1.5", "None", "[1, 2]"]))
_statements = st.lists(st.tuples(_names, _values), min_size=1, max_size=6)


def _program(stmts: list[tuple[str, object]]) -> str:
    return "".join(f"{name} = {value}\n" for name, value in stmts)


@settings(max_examples=60, deadline=None)
@given(_statements, st.lists(st.sampled_from(["# c", "", "   # indented comment"]),
                             min_size=1, max_size=6))
def test_property_layout_does_not_matter(stmts: list[tuple[str, object]],
                                         junk: list[str]) -> None:
    source = _program(stmts)
    lines = source.splitlines()
    noisy = []
    for i, line in enumerate(lines):
        noisy.append(junk[i % len(junk)])
        noisy.append(line.replace(" = ", "=") + "  # trailing")
    assert h("\n".join(noisy) + "\n") == h(source)
    assert h(ast.unparse(ast.parse(source))) == h(source)


@settings(max_examples=60, deadline=None)
@given(_statements, st.data())
def test_property_a_changed_value_changes_the_hash(
    stmts: list[tuple[str, object]], data: st.DataObject
) -> None:
    i = data.draw(st.integers(0, len(stmts) - 1))
    name, value = stmts[i]
    other = data.draw(_values.filter(lambda v: str(v) != str(value)))
    changed = [*stmts[:i], (name, other), *stmts[i + 1:]]
    assert h(_program(changed)) != h(_program(stmts))


# facts -----------------------------------------------------------------------------


def test_analyze_lists_imports_everywhere() -> None:
    facts = analyze(
        "import a.b as c, d\n"
        "from .sib import x, y\n"
        "from .. import up\n"
        "from pkg import *\n"
        "try:\n    import fast\nexcept ImportError:\n    import slow\n"
        "def f():\n    import inner\n"
    )
    assert set(facts.imports) == {
        ImportRef(0, "a.b"), ImportRef(0, "d"), ImportRef(1, "sib", ("x", "y")),
        ImportRef(2, "", ("up",)), ImportRef(0, "pkg", ("*",)), ImportRef(0, "fast"),
        ImportRef(0, "slow"), ImportRef(0, "inner"),
    }
    assert len(facts.imports) == 8
    assert facts.problem is None and facts.dynamic == ()


def test_analyze_dynamic_imports() -> None:
    facts = analyze(
        "import importlib\n"
        "from importlib import import_module\n"
        "importlib.import_module('plugins.csv')\n"
        "import_module('.local', __package__)\n"
        "name = 'x'\n"
        "importlib.import_module(name)\n"
        "__import__('json')\n"
        "__import__(name + 'y')\n"
    )
    assert ImportRef(0, "plugins.csv") in facts.imports
    assert ImportRef(1, "local") in facts.imports
    assert ImportRef(0, "json") in facts.imports
    assert facts.dynamic == ((6, "importlib.import_module(name)"), (8, "__import__(name + 'y')"))


def test_analyze_exports_and_problems() -> None:
    assert analyze("__all__ = ['a', 'b']\n").exports == ("a", "b")
    assert analyze("__all__ = ('a',)\nx = 1\n").exports == ("a",)
    assert analyze("x = 1\n").exports is None
    broken = analyze("def (:\n")
    assert broken.problem and broken.imports == ()
    assert broken.hash == hash_bytes(b"def (:\n")


def test_analyze_hash_is_the_normalized_hash() -> None:
    assert analyze(BASE).hash == h(BASE)


def test_facts_json_round_trip() -> None:
    facts = analyze("from .a import b\nimport c\n__all__ = ['z']\n"
                    "import importlib\nimportlib.import_module(x)\n")
    assert SourceFacts.from_json(facts.to_json()) == facts
    broken = analyze("def (:")
    assert SourceFacts.from_json(broken.to_json()) == broken


def test_source_cache_parses_each_content_once(tmp_path: Path) -> None:
    (tmp_path / "m.py").write_text("import a\n")
    store: dict[str, str] = {}

    def cache() -> SourceCache:
        hasher = Hasher(tmp_path, None)
        return SourceCache(tmp_path, hasher.hash_path, MemoryStore(store))

    first = cache()
    facts = first.facts("m.py")
    assert facts is not None and facts.imports == (ImportRef(0, "a"),)
    assert first.facts("m.py") == facts and first.parsed == 1
    second = cache()  # another process: the state database answers
    assert second.facts("m.py") == facts and second.parsed == 0
    (tmp_path / "m.py").write_text("import b\n")
    third = cache()
    changed = third.facts("m.py")
    assert changed is not None and changed.imports == (ImportRef(0, "b"),)
    assert third.parsed == 1
    (tmp_path / "m.py").write_text("import a\n")  # back to a known content
    fourth = cache()
    assert fourth.facts("m.py") == facts and fourth.parsed == 0


def test_source_cache_missing_folder_and_damaged_entries(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "m.py").write_text("import a\n")
    hasher = Hasher(tmp_path, None)
    store: dict[str, str] = {}
    cache = SourceCache(tmp_path, hasher.hash_path, MemoryStore(store))
    assert cache.facts("missing.py") is None
    assert cache.facts("pkg") is None
    assert cache.facts("m.py") is not None
    [key] = store
    store[key] = "{not json"
    again = SourceCache(tmp_path, Hasher(tmp_path, None).hash_path, MemoryStore(store))
    assert again.facts("m.py") == analyze("import a\n") and again.parsed == 1
