"""safeload: the limits every reader of untrusted text goes through."""

from __future__ import annotations

import time

import pytest

from pipeflow.errors import SpecError
from pipeflow.files import safeload

BOMB = 'a0: &a0 ["x","x","x","x","x","x","x","x","x"]\n' + "".join(
    f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]\n" for i in range(1, 10))


def test_an_alias_bomb_is_refused_in_milliseconds_naming_the_key_path() -> None:
    started = time.monotonic()
    with pytest.raises(SpecError, match=r"params.yaml: a9(\.\d+)*: the value expands"):
        safeload.load_yaml(BOMB, "params.yaml", "params")
    assert time.monotonic() - started < 0.5


def test_shared_values_within_the_limit_are_fine() -> None:
    data = safeload.load_yaml("a: &a {x: 1}\nb: *a\nc: [*a, *a]\n", "p.yaml", "params")
    assert data["c"][1] == {"x": 1}


def test_a_value_containing_itself_is_refused() -> None:
    with pytest.raises(SpecError, match=r"a\.0: a value contains itself"):
        safeload.load_yaml("a: &a [*a]\n", "p.yaml", "params")


def test_depth_is_bounded_and_the_parser_recursion_is_an_error() -> None:
    with pytest.raises(SpecError, match="nest deeper than 100 levels"):
        safeload.load_json("[" * 150 + "]" * 150, "r.json", "record")
    with pytest.raises(SpecError, match="nest deeper"):
        safeload.load_json("[" * 100_000 + "]" * 100_000, "r.json", "record")


def test_bad_utf8_is_located() -> None:
    with pytest.raises(SpecError, match=r"c:2:8: not UTF-8 text \(byte 0xff"):
        safeload.decode(b"cache:\n  dir: \xff\n", "c")


def test_size_is_checked_and_the_env_var_only_raises_it(monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    big = 5 * safeload.MiB
    with pytest.raises(SpecError, match="PIPEFLOW_MAX_SPEC_MB"):
        safeload.check_size(big, "pipeline.yaml", "spec")
    monkeypatch.setenv("PIPEFLOW_MAX_SPEC_MB", "8")
    safeload.check_size(big, "pipeline.yaml", "spec")
    monkeypatch.setenv("PIPEFLOW_MAX_SPEC_MB", "0.001")
    assert safeload.limits("spec").max_bytes == 4 * safeload.MiB
