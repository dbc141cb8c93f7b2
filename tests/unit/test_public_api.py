"""The public namespace: every name in pipeflow.__all__ is importable, lazily."""

from __future__ import annotations

import subprocess
import sys

import pytest

import pipeflow


@pytest.mark.parametrize("name", pipeflow.__all__)
def test_every_public_name_resolves(name: str) -> None:
    value = getattr(pipeflow, name)
    assert value is not None
    if isinstance(value, type) and issubclass(value, Exception):
        assert issubclass(value, pipeflow.PipeflowError)


def test_the_list_and_the_map_agree() -> None:
    assert sorted(pipeflow.__all__) == sorted(pipeflow._HOME)  # __version__ included
    assert set(pipeflow.__all__) <= set(dir(pipeflow))


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        _ = pipeflow.Nope  # type: ignore[attr-defined]
    from pipeflow import errors  # a submodule still imports as one

    assert errors.PipeflowError is pipeflow.PipeflowError


def test_star_import_loads_the_api_but_plain_import_loads_nothing() -> None:
    code = ("import sys, pipeflow; print(sorted(m for m in sys.modules "
            "if m.startswith('pipeflow.')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
    code = "from pipeflow import *; print(Repo.__module__, ConfigError.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.split() == ["pipeflow.api", "pipeflow.errors"]


def test_each_branch_has_the_exit_code_its_docstring_draws() -> None:
    doc = pipeflow.errors.__doc__ or ""
    codes = {
        pipeflow.PipeflowError: 2, pipeflow.UsageError: 2, pipeflow.SpecError: 2,
        pipeflow.ConfigError: 2, pipeflow.LockfileError: 2, pipeflow.LockfileWriteError: 1,
        pipeflow.StorageError: 1, pipeflow.DiskFull: 1, pipeflow.SourceConflict: 1,
        pipeflow.RepoLockError: 1, pipeflow.LockedError: 1, pipeflow.TaskFailed: 1,
        pipeflow.CheckFailed: 1,
        pipeflow.Cancelled: 130,
    }
    for cls, code in codes.items():
        assert cls.exit_code == code, cls
        assert cls.__name__ in doc, cls
    assert not issubclass(pipeflow.ConfigError, pipeflow.SpecError)
    assert issubclass(pipeflow.LockedError, pipeflow.RepoLockError)
