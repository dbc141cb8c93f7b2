"""What differs between two versions' makings (pipeflow.lineage.makings)."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from pipeflow.cli.versionview import differs_line
from pipeflow.lineage.makings import Differs, Makings, compare, flat_env
from pipeflow.lineage.versions import Version

_values = st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=5))
_maps = st.dictionaries(st.text(min_size=1, max_size=5), st.text(max_size=8), max_size=4)
_params = st.dictionaries(st.sampled_from(["params.yaml", "other.yaml"]),
                          st.dictionaries(st.text(min_size=1, max_size=5), _values,
                                          max_size=4), max_size=2)
_makings = st.builds(Makings, data=_maps, code=_maps,
                     env=st.dictionaries(st.text(min_size=1, max_size=5), _values, max_size=4),
                     params=_params)


def _flat(made: Makings) -> dict[str, Any]:
    return {f"{f}:{k}": v for f, values in made.params.items() for k, v in values.items()}


@given(_makings)
def test_a_version_never_differs_from_itself(made: Makings) -> None:
    assert not compare(made, made)


@given(_makings, _makings)
def test_what_differs_is_exactly_what_changed(old: Makings, new: Makings) -> None:
    found = compare(old, new)
    assert set(found.data) == {k for k in {*old.data, *new.data}
                               if old.data.get(k) != new.data.get(k)}
    assert bool(found) == (old.data != new.data or old.code != new.code
                           or old.env != new.env or _flat(old) != _flat(new))
    flipped = compare(new, old)
    assert flipped.data == found.data and flipped.code == found.code
    assert {k: (b, a) for k, a, b in flipped.params} == {k: (a, b) for k, a, b in found.params}


def test_the_environment_is_compared_by_package() -> None:
    old = Makings(env=flat_env({"python": "3.11.7", "packages": {"numpy": "1.26", "x": "1"}}))
    new = Makings(env=flat_env({"python": "3.11.7", "packages": {"numpy": "2.0", "x": "1"}}))
    assert compare(old, new).to_json() == {"data": [], "code": [],
                                           "env": ["packages.numpy"], "params": {}}


def _version(**fields: Any) -> Version:
    return Version(path="m.pkl", number=2, hash="ab" * 16, size=1, isdir=False,
                   first_run="r", first_seen="2026-12-04T00:00:00", runs=1, **fields)


def test_the_line_names_each_kind_and_caps_long_lists() -> None:
    found = Differs(data=tuple(f"data/{n}.csv" for n in range(6)),
                    params=(("params.yaml:train.C", 1.0, 2.0),))
    line = differs_line(found, _version())
    assert line == ("differs: data (data/0.csv, data/1.csv, data/2.csv, data/3.csv and 2 "
                    "more), params (params.yaml:train.C 1.0 -> 2.0)")
    assert differs_line(Differs(), _version()).startswith("differs: nothing recorded")
