"""Project config and per-machine overrides, merged key by key."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.config import DEFAULT_CONFIG, LINK_MODES, CacheConfig, Config, load, load_config
from pipeflow.errors import Location, SpecError
from pipeflow.grace import DEFAULT_GRACE


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
    with pytest.raises(SpecError, match="unknown config section 'cahce'") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local)) and err.value.hint == "did you mean 'cache'?"
    local.write_text("")
    shared.write_text("cache:\n  lnk: copy\n")
    with pytest.raises(SpecError, match=r"unknown config key 'cache\.lnk'") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(shared))


def test_bad_cache_dir(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("cache:\n  dir: [a, b]\n")
    with pytest.raises(SpecError, match=r"cache\.dir must be a folder path") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


@pytest.mark.parametrize("mode", LINK_MODES)
def test_every_link_mode_accepted(files: tuple[Path, Path], mode: str) -> None:
    shared, local = files
    shared.write_text(f"cache:\n  link: {mode}\n")
    assert load_config(shared, local, DEFAULT_CONFIG)["cache"]["link"] == mode


def test_bad_link_mode_names_the_shared_file(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: symlink\n")
    with pytest.raises(SpecError) as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(shared))
    assert str(err.value).startswith(f"{shared}: cache.link is 'symlink'; choose one of ")
    assert "reflink-or-copy, reflink, copy, hardlink" in str(err.value)


def test_bad_link_mode_names_the_local_file(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: copy\n")
    local.write_text("cache:\n  link: hard-link\n")
    with pytest.raises(SpecError) as err:
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
    with pytest.raises(SpecError, match="section 'cache' must be a mapping") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


def test_invalid_yaml_names_file_line_and_column(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("cache:\n  link: [copy\n")
    with pytest.raises(SpecError, match="config is not valid YAML") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    loc = err.value.location
    assert loc is not None and loc.file == str(shared) and loc.line is not None


def test_config_not_a_mapping(files: tuple[Path, Path]) -> None:
    shared, local = files
    local.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="config must be a mapping of sections") as err:
        load_config(shared, local, DEFAULT_CONFIG)
    assert err.value.location == Location(str(local))


# --- the typed Config ------------------------------------------------------------

def test_config_defaults_are_the_fields_own(files: tuple[Path, Path]) -> None:
    shared, local = files
    config = load(shared, local)
    assert config == Config()
    assert (config.cache.dir, config.cache.link) == ("cache", "reflink-or-copy")
    assert config.gc.grace == DEFAULT_GRACE and config.core.remote is None
    assert DEFAULT_CONFIG == {"cache": {"dir": "cache", "link": "reflink-or-copy"}}


def test_config_typed_fields_and_raw_options(files: tuple[Path, Path]) -> None:
    shared, local = files
    shared.write_text("core:\n  remote: origin\ngc:\n  grace: 3h\nremote:\n  origin:\n"
                      "    url: s3://bucket/x\n    region: eu-west-1\n    trust_run_cache: true\n")
    local.write_text("cache:\n  link: copy\nremote:\n  origin:\n    profile: me\n")
    config = load(shared, local)
    assert config.cache == CacheConfig(dir="cache", link="copy")
    assert config.core.remote == "origin" and config.gc.grace == 3 * 3600
    origin = config.remotes["origin"]
    assert (origin.name, origin.url, origin.trust_run_cache) == ("origin", "s3://bucket/x", True)
    assert origin.fs_options == {"region": "eu-west-1", "profile": "me"}
    assert config.raw["remote"]["origin"]["profile"] == "me"


def test_from_mapping_names_the_file_and_key(tmp_path: Path) -> None:
    where = tmp_path / "config"
    with pytest.raises(SpecError, match=r"cache\.link is 'nope'") as err:
        Config.from_mapping({"cache": {"link": "nope"}}, where)
    assert err.value.location == Location(str(where))
    with pytest.raises(SpecError, match=r"gc\.grace: '30' is not a duration"):
        Config.from_mapping({"gc": {"grace": 30}}, where)
    with pytest.raises(SpecError, match="trust_run_cache must be true or false"):
        Config.from_mapping({"remote": {"o": {"url": "x", "trust_run_cache": "yes"}}}, where)
    assert Config.from_mapping({"cache": {"dir": "c2"}}, where).cache.link == "reflink-or-copy"


@pytest.mark.parametrize("section", ["core", "remote", "gc"])
def test_a_section_that_is_not_a_mapping_names_its_file(files: tuple[Path, Path],
                                                        section: str) -> None:
    # core: and remote: were not checked: `remote list` crashed on them
    shared, local = files
    local.write_text(f"{section}: 5\n")
    with pytest.raises(SpecError, match=f"section '{section}' must be a mapping") as err:
        load(shared, local)
    assert err.value.location == Location(str(local))


SETTINGS = st.dictionaries(st.sampled_from(["region", "profile", "anon", "endpoint_url"]),
                           st.one_of(st.text(max_size=8), st.integers(), st.booleans()))


@given(url=st.text(max_size=20), settings=SETTINGS, trust=st.booleans(),
       link=st.sampled_from(LINK_MODES))
def test_from_mapping_keeps_every_remote_option(url: str, settings: dict[str, object],
                                                trust: bool, link: str) -> None:
    raw = {"cache": {"dir": "cache", "link": link},
           "remote": {"r": {"url": url, **settings, "trust_run_cache": trust}}}
    config = Config.from_mapping(raw, Path("config"))
    assert config.raw == raw and config.cache.link == link
    remote = config.remotes["r"]
    assert remote.url == url and remote.trust_run_cache is trust
    assert {**remote.fs_options, "url": url, "trust_run_cache": trust} == raw["remote"]["r"]
