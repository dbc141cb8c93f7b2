"""The house rules of issue 12, held against the code: sizes that stay readable, and
the object layout known only to ``storage/``. (The import layers are import-linter's
contract in ``.importlinter``, run by CI as ``lint-imports``.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "pipeflow"
SOURCES = sorted(PACKAGE.rglob("*.py"))

MODULE_LINES = 500
CLASS_METHODS = 20
FUNCTION_LINES = 60


def _rel(path: Path) -> str:
    return path.relative_to(PACKAGE.parent).as_posix()


def _functions(tree: ast.AST) -> list[ast.FunctionDef | ast.AsyncFunctionDef]:
    return [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def test_the_sources_are_found() -> None:
    assert len(SOURCES) > 50 and all(p.suffix == ".py" for p in SOURCES)


@pytest.mark.parametrize("path", SOURCES, ids=_rel)
def test_modules_classes_and_functions_stay_readable(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    too_long = [f"{f.name} ({f.end_lineno - f.lineno + 1} lines)" for f in _functions(tree)
                if f.end_lineno and f.end_lineno - f.lineno + 1 > FUNCTION_LINES]
    crowded = [f"{c.name} ({n} methods)" for c in ast.walk(tree) if isinstance(c, ast.ClassDef)
               for n in [sum(isinstance(b, ast.FunctionDef | ast.AsyncFunctionDef)
                             for b in c.body)] if n > CLASS_METHODS]
    lines = text.count("\n")
    assert lines <= MODULE_LINES, f"{_rel(path)}: {lines} lines; split it along a concept"
    assert not too_long, f"{_rel(path)}: functions over {FUNCTION_LINES} lines: {too_long}"
    assert not crowded, f"{_rel(path)}: classes over {CLASS_METHODS} methods: {crowded}"


FAN_OUT = re.compile(r"\[:2\]\s*\}?\s*/\s*\{?[^\n]*\[2:\]")


def test_only_storage_knows_where_an_object_lives() -> None:
    spelled = [f"{_rel(p)}:{i}" for p in SOURCES if "storage" not in p.relative_to(PACKAGE).parts
               for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
               if FAN_OUT.search(line)]
    assert not spelled, f"object layout spelled outside pipeflow/storage/: {spelled}"


def test_the_fan_out_pattern_would_be_caught() -> None:
    assert FAN_OUT.search('remote.remove("objects", f"{oid[:2]}/{oid[2:]}")')
    assert not FAN_OUT.search("shown = '.'.join(parts[:2])")
