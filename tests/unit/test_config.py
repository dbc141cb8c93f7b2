"""Project config and per-machine overrides, merged key by key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from pipeflow.errors import ConfigError, Location
from pipeflow.project.config import load_config
from pipeflow.project.project import DEFAULT_CONFIG
from pipeflow.storage.links import LINK_SETTINGS


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "config", tmp_path / "config.local"


def test_defaults_when_no_files(files: tuple[Path, Path]) -> None:
    shared, local = files
    assert load_config(shared, local, DEFAULT_CONFIG) == DEFAULT_CONFIG
    shared.write_text("# only a comment\n")
    local.write_text("")
    assert load_config(shared, local, DEFAULT_CONFIG) == DEFAULT_CONFIG


def test_merge_key_by_key(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: copy\n  dir: shared-cache\n")
    local.write_text("cache:\n  dir: /big/disk\n")
    before = copy.deepcopy(DEFAULT_CONFIG)
    assert load_config(shared, local, DEFAULT_CONFIG) == {
        "cache": {"dir": "/big/disk", "link": "copy"},
    }
    assert before == DEFAULT_CONFIG  # the defaults are not modified
    local.write_text("cache:\n  link: hardlink\n")
    assert load_config(shared, local, DEFAULT_CONFIG) == {
        "cache": {"dir": "shared-cache", "link": "hardlink"},
    }


def test_empty_section_or_key_keeps_the_value_below(files: tuple[Path, Path]) -> None:
    # a section whose keys are all commented out is null in YAML: it sets nothing
    shared, local = files
    shared.write_text("cache:\n#  link: copy\n")
    local.write_text("cache:\n  link: copy\n  dir:\n")
    assert load_config(shared, local, DEFAULT_CONFIG) == {
        "cache": {"dir": "cache", "link": "copy"},
    }


def test_unknown_section_and_key_name_their_file(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("cahce:\n  link: copy\n")
    with pytest.raises(ConfigError, match="unknown config section 'cahce'") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local)) and err.value.hint == "did you mean 'cache'?"
    local.write_text("")
    shared.write_text("cache:\n  lnk: copy\n")
    with pytest.raises(ConfigError, match=r"unknown config key 'cache\.lnk'") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(shared))


def test_bad_cache_dir(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("cache:\n  dir: [a, b]\n")
    with pytest.raises(ConfigError, match=r"cache\.dir must be a folder path") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


@pytest.mark.parametrize("mode", LINK_SETTINGS)
def test_every_link_mode_accepted(files: tuple[Path, Path], mode: str) -> None:
    shared, local = files
    shared.write_text(f"cache:\n  link: {mode}\n")
    assert load_config(shared, local, DEFAULT_CONFIG)["cache"]["link"] == mode


def test_bad_link_mode_names_the_shared_file(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: symlink\n")
    with pytest.raises(ConfigError) as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(shared))
    assert str(err.value).startswith(f"{shared}: cache.link is 'symlink'; choose one of ")
    assert "reflink-or-copy, reflink, copy, hardlink" in str(err.value)


def test_bad_link_mode_names_the_local_file(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: copy\n")
    local.write_text("cache:\n  link: hard-link\n")
    with pytest.raises(ConfigError) as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


def test_local_fixes_a_bad_shared_link_mode(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: nope\n")
    local.write_text("cache:\n  link: copy\n")
    assert load_config(shared, local, DEFAULT_CONFIG)["cache"]["link"] == "copy"


def test_cache_section_not_a_mapping(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("cache: 5\n")
    with pytest.raises(ConfigError, match="section 'cache' must be a mapping") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


def test_invalid_yaml_names_file_line_and_column(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: [copy\n")
    with pytest.raises(ConfigError, match="config is not valid YAML") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    loc = err.value.location
    assert loc is not None and loc.file == str(shared) and loc.line is not None


def test_config_not_a_mapping(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="config must be a mapping of sections") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


@pytest.mark.parametrize("mode", ["symlink", "softlink"])
def test_an_unknown_link_mode_names_the_file_and_the_choices(
    files: tuple[Path, Path], mode: str
) -> None:
    shared, local = files
    local.write_text(f"cache:\n  link: {mode}\n")
    with pytest.raises(ConfigError, match=r"cache\.link is .*; choose one of reflink-or-copy, "
                                        r"reflink, copy, hardlink$") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))
