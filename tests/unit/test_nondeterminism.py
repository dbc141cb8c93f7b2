"""The nondeterminism mark: comparing a run's outputs with earlier runs' of its
fingerprint, and how the mark reads."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from pipeflow.lineage.nondeterminism import Nondeterminism, detect

paths = st.dictionaries(st.text(min_size=1, max_size=8), st.text(min_size=1, max_size=8),
                        min_size=1, max_size=5)


@given(paths, st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=4))
def test_earlier_runs_that_wrote_the_same_outputs_mean_no_mark(
    outputs: dict[str, str], earlier_runs: list[str],
) -> None:
    rows = [(rid, path, oid) for rid in earlier_runs for path, oid in outputs.items()]
    assert detect(outputs.items(), rows) is None


def test_no_earlier_run_means_no_mark() -> None:
    assert detect([("out.txt", "a")], []) is None


def test_each_differing_path_names_the_newest_earlier_run_that_wrote_other_content() -> None:
    rows = [("r3", "m.json", "m1"), ("r3", "out.txt", "o3"), ("r2", "out.txt", "o2"),
            ("r1", "m.json", "m0")]
    assert detect([("out.txt", "o1"), ("m.json", "m1")], rows) == {
        "runs": ["r1", "r3"], "outputs": ["m.json", "out.txt"]}
    assert detect([("out.txt", "o3"), ("m.json", "m1")], rows) == {
        "runs": ["r1", "r2"], "outputs": ["m.json", "out.txt"]}


def test_the_mark_reads_with_short_ids_earlier_runs_first() -> None:
    mark = Nondeterminism.of("b" * 64, {"runs": ["a" * 64], "outputs": ["out.txt", "m.json"]})
    assert mark is not None
    assert mark.sentence() == ("nondeterministic: outputs differed for the same inputs "
                               f"(runs {'a' * 12}, {'b' * 12}): out.txt, m.json")
    assert mark.to_json() == {"runs": ["a" * 64, "b" * 64], "outputs": ["out.txt", "m.json"]}
    assert Nondeterminism.of("b" * 64, None) is None
