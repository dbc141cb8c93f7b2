"""Fingerprints: a stable digest of named components, and the reasons two differ."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.lock.lockfile import FileEntry, MetricEntry, StageLock
from pipeflow.planning.fingerprint import Components, explain, out_label

H1, H2, H3 = "1" * 32, "2" * 32, "3" * 32


def comps(**changes: Any) -> Components:
    base = Components(
        cmd=("python train.py",),
        deps=(FileEntry("data.csv", H1, 10), FileEntry("train.py", H2, 5)),
        params={"params.yaml": {"train.lr": 0.01, "train.epochs": 3}},
        code=(FileEntry("src/util.py", H3, 7),),
        env={"platform": "linux-x86_64", "python": "cpython-3.11"},
        outs=(out_label("model.pkl", "out", True, False),
              out_label("metrics.json", "metric", False, False)),
    )
    return dataclasses.replace(base, **changes)


def lock_of(c: Components) -> StageLock:
    """What the lock would hold after a run with components ``c``."""
    outs = tuple(FileEntry(label.split("|")[0], H1, 1) for label in c.outs
                 if "|metric" not in label)
    metrics = tuple(MetricEntry(label.split("|")[0], H2, 1) for label in c.outs
                    if "|metric" in label)
    return StageLock(cmd=c.cmd, fingerprint=c.digest(), deps=c.deps, params=c.params,
                     code=c.code, env=c.env, outs=outs, metrics=metrics)


def messages(old: Components, new: Components) -> list[str]:
    return [ch.message for ch in explain(lock_of(old), new)]


# the digest -----------------------------------------------------------------------


def test_digest_is_32_hex_and_deterministic() -> None:
    d = comps().digest()
    assert len(d) == 32 and int(d, 16) >= 0
    assert comps().digest() == d


def test_digest_stable_across_dict_and_entry_orders() -> None:
    a = comps(
        params={"params.yaml": {"train.lr": 0.01, "train.epochs": 3}, "b.json": {"x": 1}},
        env={"platform": "linux-x86_64", "python": "cpython-3.11"},
    )
    b = comps(
        params={"b.json": {"x": 1}, "params.yaml": {"train.epochs": 3, "train.lr": 0.01}},
        env={"python": "cpython-3.11", "platform": "linux-x86_64"},
        deps=tuple(reversed(comps().deps)),
    )
    assert a.digest() == b.digest()


def test_digest_ignores_sizes_of_entries() -> None:
    # identity is the content hash; the size is informational
    resized = comps(deps=(FileEntry("data.csv", H1, 999), FileEntry("train.py", H2, 5)))
    assert resized.digest() == comps().digest()


def test_digest_changes_with_each_component() -> None:
    base = comps().digest()
    variants = [
        comps(cmd=("python train.py --fast",)),
        comps(cmd=("python train.py", "echo done")),
        comps(deps=(FileEntry("data.csv", H3, 10), FileEntry("train.py", H2, 5))),
        comps(deps=(FileEntry("data.csv", H1, 10),)),
        comps(deps=(FileEntry("other.csv", H1, 10), FileEntry("train.py", H2, 5))),
        comps(params={"params.yaml": {"train.lr": 0.02, "train.epochs": 3}}),
        comps(params={"params.yaml": {"train.lr": 0.01, "train.epochs": 3.0}}),
        comps(params={"params.yaml": {"train.lr": 0.01, "train.epochs": True}}),
        comps(params={"other.yaml": {"train.lr": 0.01, "train.epochs": 3}}),
        comps(code=(FileEntry("src/util.py", H1, 7),)),
        comps(code=()),
        comps(env={"platform": "linux-aarch64", "python": "cpython-3.11"}),
        comps(env={"platform": "linux-x86_64"}),
        comps(outs=(out_label("model.pkl", "out", False, False),
                    out_label("metrics.json", "metric", False, False))),
        comps(outs=(out_label("model.pkl", "out", True, True),
                    out_label("metrics.json", "metric", False, False))),
        comps(outs=(out_label("model.pkl", "out", True, False),)),
    ]
    digests = [v.digest() for v in variants]
    assert base not in digests
    assert len(set(digests)) == len(digests)


def test_out_label() -> None:
    assert out_label("m.pkl", "out", True, False) == "m.pkl|out"
    assert out_label("m.json", "metric", False, True) == "m.json|metric|nocache|persist"


# explain --------------------------------------------------------------------------


def test_explain_nothing_when_equal() -> None:
    assert explain(lock_of(comps()), comps()) == []


def test_explain_single_line_cmd() -> None:
    got = explain(lock_of(comps()), comps(cmd=("python train.py --fast",)))
    assert [c.message for c in got] == [
        "command changed: 'python train.py' -> 'python train.py --fast'"
    ]
    assert (got[0].kind, got[0].old, got[0].new) == ("cmd", "python train.py",
                                                     "python train.py --fast")


def test_explain_multi_line_cmd() -> None:
    old = comps(cmd=("a", "b", "c"))
    assert messages(old, comps(cmd=("a", "B", "c"))) == ["command line 2 changed: 'b' -> 'B'"]
    assert messages(old, comps(cmd=("a", "b", "c", "d"))) == ["command line 4 added: 'd'"]
    assert messages(old, comps(cmd=("a", "b"))) == ["command line 3 removed: 'c'"]
    assert messages(comps(cmd=("a",)), comps(cmd=("a", "b"))) == ["command line 2 added: 'b'"]
    changes = explain(lock_of(old), comps(cmd=("x", "b", "y")))
    assert [c.subject for c in changes] == ["1", "3"]


def test_explain_deps_added_removed_modified() -> None:
    new = comps(deps=(FileEntry("data.csv", H3, 10), FileEntry("extra.csv", H1, 1)))
    got = {c.message for c in explain(lock_of(comps()), new)}
    assert got == {
        f"dependency modified: data.csv ({H1[:8]} -> {H3[:8]})",
        "dependency added: extra.csv",
        "dependency removed: train.py",
    }


def test_explain_dep_missing() -> None:
    new = comps(deps=(FileEntry("data.csv", "", 0), FileEntry("train.py", H2, 5)))
    assert messages(comps(), new) == ["dependency missing: data.csv"]


def test_explain_code_change() -> None:
    assert messages(comps(), comps(code=(FileEntry("src/util.py", H1, 7),))) == [
        f"code modified: src/util.py ({H3[:8]} -> {H1[:8]})"
    ]


def params(**values: Any) -> Components:
    return comps(params={"params.yaml": values})


def test_explain_params_added_removed_changed() -> None:
    old = params(lr=0.01, epochs=3, name="a")
    new = params(lr=0.02, name="a", batch=32)
    got = explain(lock_of(old), new)
    assert [c.message for c in got] == [
        "params.yaml: batch added (32)",
        "params.yaml: epochs removed (was 3)",
        "params.yaml: lr 0.01 -> 0.02",
    ]
    assert [(c.subject, c.old, c.new) for c in got] == [
        ("params.yaml:batch", None, 32),
        ("params.yaml:epochs", 3, None),
        ("params.yaml:lr", 0.01, 0.02),
    ]


def test_explain_param_type_changes() -> None:
    assert messages(params(lr=1), params(lr=1.0)) == ["params.yaml: lr 1 -> 1.0"]
    assert messages(params(flag=True), params(flag=1)) == ["params.yaml: flag true -> 1"]
    assert messages(params(flag=0), params(flag=False)) == ["params.yaml: flag 0 -> false"]
    assert messages(params(name="1"), params(name=1)) == ["params.yaml: name 1 -> 1"]


def test_explain_param_type_change_inside_a_list() -> None:
    # a list is one key; the digest sees [1] -> [1.0], so must the explanation
    assert messages(params(layers=[1, 2]), params(layers=[1.0, 2])) == [
        "params.yaml: layers [1, 2] -> [1.0, 2]"
    ]
    assert messages(params(x=[{"a": True}]), params(x=[{"a": 1}])) == [
        'params.yaml: x [{"a": true}] -> [{"a": 1}]'
    ]


def test_explain_params_file_added_and_removed() -> None:
    old = comps(params={"a.yaml": {"x": 1}})
    new = comps(params={"b.yaml": {"x": 1}})
    assert messages(old, new) == ["a.yaml: x removed (was 1)", "b.yaml: x added (1)"]


def test_explain_params_file_read_for_no_key() -> None:
    # an empty params file the stage reads whole: no key to name, the file itself
    assert messages(comps(params={}), comps(params={"e.yaml": {}})) == [
        "params file added: e.yaml"
    ]
    assert messages(comps(params={"e.yaml": {}}), comps(params={})) == [
        "params file removed: e.yaml"
    ]


def test_explain_env() -> None:
    new = comps(env={"platform": "linux-x86_64", "python": "cpython-3.12", "VAR": "1"})
    assert messages(comps(), new) == [
        "env: VAR unset -> 1",
        "env: python cpython-3.11 -> cpython-3.12",
    ]
    assert messages(comps(), comps(env={"platform": "linux-x86_64"})) == [
        "env: python cpython-3.11 -> unset"
    ]


def test_explain_declared_variables() -> None:
    old = comps(env={"platform": "p", "vars": {"A": "1", "B": None, "D": "x"}})
    new = comps(env={"platform": "p", "vars": {"A": "2", "B": "on", "C": None, "D": "x"}})
    assert messages(old, new) == [
        "env: A 1 -> 2", "env: B unset -> on", "env: variable C declared"
    ]
    assert messages(new, old) == [
        "env: A 2 -> 1", "env: B on -> unset", "env: variable C no longer declared"
    ]


def test_explain_a_variable_no_longer_taken_for_a_secret() -> None:
    """An older pipeflow kept SESSION_ID as a digest; now its value counts: the one
    rerun this causes says why."""
    old = comps(env={"platform": "p", "vars": {"SESSION_ID": "hidden:" + "0" * 32}})
    new = comps(env={"platform": "p", "vars": {"SESSION_ID": "run-42"}})
    said = messages(old, new)
    assert said == ["env: SESSION_ID is no longer taken for a secret: its value counts from "
                    "now on (the lock held a digest; the stage reruns once)"]
    assert "run-42" not in said[0]


def test_explain_outs_added_and_removed() -> None:
    new = comps(outs=(out_label("model.pkl", "out", True, False),
                      out_label("plots", "out", True, False)))
    assert messages(comps(), new) == ["output added: plots", "output removed: metrics.json"]


def test_explain_output_options() -> None:
    new = comps(outs=(out_label("model.pkl", "out", True, True),
                      out_label("metrics.json", "metric", False, False)))
    got = explain(lock_of(comps()), new)
    assert [(c.kind, c.message) for c in got] == [
        ("outs", "output options changed (cache, persist or kind)")
    ]


def test_change_to_json() -> None:
    [ch] = explain(lock_of(params(lr=1)), params(lr=2))
    assert ch.to_json() == {"kind": "param", "subject": "params.yaml:lr",
                            "message": "params.yaml: lr 1 -> 2", "old": 1, "new": 2}
    json.dumps(ch.to_json())
    [added] = explain(lock_of(params()), params(lr=False))
    assert added.to_json()["new"] is False and "old" not in added.to_json()


# property: digest equal iff components equal ---------------------------------------

_hash = st.sampled_from([H1, H2, H3])
_path = st.sampled_from(["a", "b/c", "é.csv", "d e"])
_scalar = st.one_of(
    st.none(), st.booleans(), st.integers(-2, 2),
    st.sampled_from([0.0, -0.5, 1.0, 2.5]), st.sampled_from(["", "1", "x", "true"]),
)
_value = st.recursive(
    _scalar,
    lambda inner: st.one_of(st.lists(inner, max_size=2),
                            st.dictionaries(st.sampled_from(["k", "1"]), inner, max_size=2)),
    max_leaves=4,
)
_entries = st.lists(st.tuples(_path, _hash), max_size=3, unique_by=lambda e: e[0]).map(
    lambda items: tuple(FileEntry(p, h, 0) for p, h in items)
)
_parts: dict[str, st.SearchStrategy[Any]] = {
    "cmd": st.lists(st.sampled_from(["a", "b", "a b"]), min_size=1, max_size=3).map(tuple),
    "deps": _entries,
    "params": st.dictionaries(
        st.sampled_from(["params.yaml", "p.json"]),
        st.dictionaries(st.sampled_from(["lr", "a.b", "n"]), _value, max_size=3),
        max_size=2,
    ),
    "code": _entries,
    "env": st.dictionaries(
        st.sampled_from(["platform", "python", "vars"]),
        st.one_of(st.sampled_from(["", "x", "1"]),
                  st.dictionaries(st.sampled_from(["A", "B"]),
                                  st.sampled_from([None, "", "1"]), max_size=2)),
        max_size=3,
    ),
    "outs": st.lists(st.sampled_from(["m|out", "m|out|persist", "x|metric"]), max_size=2,
                     unique=True).map(tuple),
}
components = st.fixed_dictionaries(_parts).map(lambda parts: Components(**parts))


def _reordered(c: Components) -> Components:
    """The same components with every mapping and entry list in another order."""
    return Components(
        cmd=c.cmd, deps=tuple(reversed(c.deps)), code=tuple(reversed(c.code)),
        params={f: dict(reversed(list(v.items()))) for f, v in reversed(list(c.params.items()))},
        env=dict(reversed(list(c.env.items()))), outs=c.outs,
    )


@st.composite
def pairs(draw: st.DrawFn) -> tuple[Components, Components]:
    """Two components: equal up to order, or one part redrawn (maybe to an equal value)."""
    a = draw(components)
    b = _reordered(a)
    part = draw(st.sampled_from([None, *_parts]))
    if part is not None:
        b = dataclasses.replace(b, **{part: draw(_parts[part])})
    return a, b


def _strict(value: Any) -> Any:
    """A form where equality also means equal types (1, 1.0 and True differ)."""
    if isinstance(value, dict):
        return ("dict", sorted((k, _strict(v)) for k, v in value.items()))
    if isinstance(value, list | tuple):
        return ("list", [_strict(v) for v in value])
    return (type(value).__name__, repr(value))


def _same(a: Components, b: Components) -> bool:
    return (
        a.cmd == b.cmd
        and sorted((e.path, e.hash) for e in a.deps) == sorted((e.path, e.hash) for e in b.deps)
        and _strict(dict(a.params)) == _strict(dict(b.params))
        and sorted((e.path, e.hash) for e in a.code) == sorted((e.path, e.hash) for e in b.code)
        and _strict(dict(a.env)) == _strict(dict(b.env))
        and a.outs == b.outs
    )


@settings(max_examples=400, deadline=None)
@given(pairs())
def test_digest_equal_iff_components_equal_and_explain_agrees(
    pair: tuple[Components, Components],
) -> None:
    a, b = pair
    same = _same(a, b)
    assert (a.digest() == b.digest()) == same
    # explain names a reason exactly when the digests differ, and falls back to the
    # generic "output options" message only when that is what changed
    changes = explain(lock_of(a), b)
    assert bool(changes) == (not same)
    if any(c.message.startswith("output options changed") for c in changes):
        assert len(changes) == 1 and a.outs != b.outs
