"""Only names pipeflow makes count as its temporary files (issue 11: a cache folder
pointed at ``~`` must not lose ``~/tmp/thesis.tex`` or ``~/docs/.report.tmp``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pipeflow.errors import ConfigError
from pipeflow.files import atomicfile
from pipeflow.project.config import load_config
from pipeflow.project.project import DEFAULT_CONFIG
from pipeflow.storage.leftovers import is_ours, temp_path, writer_pid


def test_the_names_pipeflow_makes_are_its_own() -> None:
    made = [atomicfile.temp_name(Path("/x/pipeline.lock")).name,
            os.path.basename(temp_path("/x/data.csv", f"{os.getpid()}-0a1b2c3d")),
            os.path.basename(temp_path("/x/ab/cdef", f"{os.getpid()}-0a1b2c-7")),
            f"{'ab' * 16}.{os.getpid()}-0a1b2c3d.part",
            f".reflink-probe.{os.getpid()}-0a1b2c3d4e5f.pftmp"]
    for name in made:
        assert is_ours(name), name
        assert writer_pid(name) == os.getpid()


@pytest.mark.parametrize("name", [
    "thesis.tex", ".report.tmp", ".notes.tmp", "abcd.0a1b2c3d", "x.part", ".x.pftmp",
    "download.123-0a1b2c3d.part", ".a.b.tmp", "file.txt.12.0a1b2c3d.tmp"])
def test_other_names_are_not(name: str) -> None:
    assert not is_ours(name)


@pytest.mark.parametrize("value", ["~", "~/c", "/abs/cache", "..", "../..", "../.git/x",
                                   "../../other/.pipeflow/cache"])
def test_committed_cache_dir_must_stay_in_the_project(tmp_path: Path, value: str) -> None:
    dot = tmp_path / "proj/.pipeflow"
    dot.mkdir(parents=True)
    (dot / "config").write_text(f"cache:\n  dir: {value!r}\n")
    with pytest.raises(ConfigError, match=r"cache\.dir") as err:
        load_config(dot / "config", dot / "config.local", DEFAULT_CONFIG)
    assert err.value.location is not None and err.value.location.file == str(dot / "config")
    assert "config.local" in (err.value.hint or "")
    (dot / "config").write_text("")
    (dot / "config.local").write_text(f"cache:\n  dir: {value!r}\n")  # this machine's choice
    assert load_config(dot / "config", dot / "config.local",
                       DEFAULT_CONFIG)["cache"]["dir"] == value


@pytest.mark.parametrize("value", ["cache", "../pfcache", "sub/../cache2"])
def test_committed_cache_dir_inside_the_project_is_fine(tmp_path: Path, value: str) -> None:
    dot = tmp_path / "proj/.pipeflow"
    dot.mkdir(parents=True)
    (dot / "config").write_text(f"cache:\n  dir: {value!r}\n")
    assert load_config(dot / "config", dot / "config.local",
                       DEFAULT_CONFIG)["cache"]["dir"] == value
