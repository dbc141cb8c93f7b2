"""The typed Config: defaults in its fields, values checked by Config.from_mapping,
the raw mapping kept for what takes arbitrary keys (a remote's fsspec options)."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeflow.errors import ConfigError, Location
from pipeflow.project.config import DEFAULT_CONFIG, DEFAULT_GRACE, CacheConfig, Config, load
from pipeflow.storage.links import LINK_SETTINGS


@pytest.fixture
def files(tmp_path: Path) -> tuple[Path, Path]:
    return tmp_path / "config", tmp_path / "config.local"


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
    with pytest.raises(ConfigError, match=r"cache\.link is 'nope'") as err:
        Config.from_mapping({"cache": {"link": "nope"}}, where)
    assert err.value.location == Location(str(where))
    with pytest.raises(ConfigError, match=r"gc\.grace: '30' is not a duration"):
        Config.from_mapping({"gc": {"grace": 30}}, where)
    with pytest.raises(ConfigError, match="trust_run_cache must be true or false"):
        Config.from_mapping({"remote": {"o": {"url": "x", "trust_run_cache": "yes"}}}, where)
    assert Config.from_mapping({"cache": {"dir": "c2"}}, where).cache.link == "reflink-or-copy"


@pytest.mark.parametrize("section", ["core", "remote", "gc"])
def test_a_section_that_is_not_a_mapping_names_its_file(files: tuple[Path, Path],
                                                        section: str) -> None:
    # core: and remote: were not checked: `remote list` crashed on them
    shared, local = files
    local.write_text(f"{section}: 5\n")
    with pytest.raises(ConfigError, match=f"section '{section}' must be a mapping") as err:
        load(shared, local)
    assert err.value.location == Location(str(local))


SETTINGS = st.dictionaries(st.sampled_from(["region", "profile", "anon", "endpoint_url"]),
                           st.one_of(st.text(max_size=8), st.integers(), st.booleans()))


@given(url=st.text(max_size=20), settings=SETTINGS, trust=st.booleans(),
       link=st.sampled_from(LINK_SETTINGS))
def test_from_mapping_keeps_every_remote_option(url: str, settings: dict[str, object],
                                                trust: bool, link: str) -> None:
    raw = {"cache": {"dir": "cache", "link": link},
           "remote": {"r": {"url": url, **settings, "trust_run_cache": trust}}}
    config = Config.from_mapping(raw, Path("config"))
    assert config.raw == raw and config.cache.link == link
    remote = config.remotes["r"]
    assert remote.url == url and remote.trust_run_cache is trust
    assert {**remote.fs_options, "url": url, "trust_run_cache": trust} == raw["remote"]["r"]
