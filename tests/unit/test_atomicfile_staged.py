"""atomicfile.Staged: a file filled under a temporary name, published by a rename."""

from __future__ import annotations

from pathlib import Path

import pytest

from pipeflow.files import atomicfile
from pipeflow.storage.leftovers import is_ours


def test_published_file_replaces_the_target_and_leaves_no_temp(tmp_path: Path) -> None:
    final = tmp_path / "record.json"
    final.write_text("old")
    with atomicfile.Staged(final) as staged:
        assert staged.tmp.parent == tmp_path and atomicfile.is_temp_name(staged.tmp.name)
        staged.tmp.write_text("new")
        assert final.read_text() == "old"  # nothing seen before the rename
        staged.publish()
    assert final.read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["record.json"]


def test_unpublished_or_failed_leaves_the_target_alone(tmp_path: Path) -> None:
    final = tmp_path / "pointer"
    with atomicfile.Staged(final) as staged:
        staged.tmp.write_text("damaged")
    with pytest.raises(OSError), atomicfile.Staged(final) as staged:
        staged.tmp.write_text("half")
        raise OSError("connection reset")
    assert list(tmp_path.iterdir()) == []


def test_published_later_in_an_order_of_ones_choosing(tmp_path: Path) -> None:
    staged = [atomicfile.Staged(tmp_path / name) for name in ("b", "a")]
    for s in staged:
        s.tmp.write_text(s.path.name)
    for s in sorted(staged, key=lambda s: s.path):
        s.publish()
    assert {p.name: p.read_text() for p in tmp_path.iterdir()} == {"a": "a", "b": "b"}
    staged[0].discard()  # published already: nothing to remove, no error


def test_temp_filename_is_a_name_gc_and_listings_know() -> None:
    name = atomicfile.temp_filename("cdef0123")
    assert "/" not in name and atomicfile.is_temp_name(name) and is_ours(name)
    assert name != atomicfile.temp_filename("cdef0123")
