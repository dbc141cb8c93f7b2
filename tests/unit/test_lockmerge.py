"""The three-way merge of locks, and the text of a lock with conflicts."""

from __future__ import annotations

import contextlib
import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.errors import LockConflictError, LockfileError
from pipeflow.lock import lockconflict
from pipeflow.lock.lockfile import FileEntry, Lock, StageLock, dumps, loads
from pipeflow.lock.lockmerge import MergedLock, merge
from pipeflow.planning.graph import build_graph
from pipeflow.planning.plan import Planner, StageState
from pipeflow.project.project import Project
from tests.unit.test_lockfile import locks, stages
from tests.unit.test_planning import Proj, reasons, words
from tests.unit.test_planning import proj as proj  # the fixture the planning test uses

H = "0123456789abcdef" * 2


def stage(fp: str, run: str | None = None, out: str = H) -> StageLock:
    return StageLock(cmd=("python train.py",), fingerprint=fp * 32,
                     outs=(FileEntry("model.pkl", out, 10),), run=run)


def src(digest: str) -> FileEntry:
    return FileEntry("data/raw.csv", digest * 32, 5)


BASE = Lock(stages={"prepare": stage("1"), "train": stage("2")},
            sources={"data/raw.csv": src("a")})


def test_each_side_changes_a_different_stage() -> None:
    ours = Lock(stages={**BASE.stages, "prepare": stage("3")}, sources=BASE.sources)
    theirs = Lock(stages={**BASE.stages, "train": stage("4")}, sources=BASE.sources)
    merged = merge(BASE, ours, theirs)
    assert merged.clean
    assert merged.lock.stages == {"prepare": stage("3"), "train": stage("4")}
    assert lockconflict.render(merged) == dumps(merged.lock)


def test_identical_changes_merge_and_a_removal_on_one_side_is_kept() -> None:
    ours = Lock(stages={"prepare": stage("3")}, sources=BASE.sources)
    theirs = Lock(stages={"prepare": stage("3"), "train": stage("2"), "new": stage("5")},
                  sources=BASE.sources)
    merged = merge(BASE, ours, theirs)
    assert merged.clean
    assert merged.lock.stages == {"prepare": stage("3"), "new": stage("5")}


def test_same_result_from_two_runs_keeps_one_run_whoever_merges() -> None:
    ours = Lock(stages={**BASE.stages, "train": stage("4", run="b" * 64)})
    theirs = Lock(stages={**BASE.stages, "train": stage("4", run="a" * 64)})
    one, other = merge(BASE, ours, theirs), merge(BASE, theirs, ours)
    assert one.clean and other.clean
    assert one.lock.stages["train"].run == other.lock.stages["train"].run == "a" * 64


def test_both_sides_change_one_stage_differently() -> None:
    ours = Lock(stages={**BASE.stages, "train": stage("4")},
                sources={"data/raw.csv": src("b")})
    theirs = Lock(stages={"train": stage("5")}, sources={"data/raw.csv": src("c")})
    merged = merge(BASE, ours, theirs)
    assert not merged.clean
    assert merged.stage_conflicts == {"train": (stage("4"), stage("5"))}
    assert merged.source_conflicts == {"data/raw.csv": (src("b"), src("c"))}
    assert "prepare" not in merged.lock.stages  # theirs removed it, ours left it alone
    assert merged.side(0).stages == {"train": stage("4")}


def test_removed_on_one_side_changed_on_the_other_is_a_conflict() -> None:
    ours = Lock(stages={"prepare": stage("1")}, sources=BASE.sources)
    theirs = Lock(stages={"prepare": stage("1"), "train": stage("9")}, sources=BASE.sources)
    merged = merge(BASE, ours, theirs)
    assert merged.stage_conflicts == {"train": (None, stage("9"))}
    text = lockconflict.render(merged)
    assert lockconflict.parse(text) == merged


def test_conflicted_text_marks_only_the_conflicting_entries() -> None:
    ours = Lock(stages={**BASE.stages, "train": stage("4")}, sources=BASE.sources)
    theirs = Lock(stages={**BASE.stages, "train": stage("5")}, sources=BASE.sources)
    text = lockconflict.render(merge(BASE, ours, theirs))
    before, _, rest = text.partition("<<<<<<< ours")
    block, _, after = rest.partition(">>>>>>> theirs")
    assert "prepare:" in before and "raw.csv" in after
    assert block.count("train:") == 2 and "prepare" not in block
    with pytest.raises(LockConflictError) as info:
        loads(text)
    assert "stage 'train'" in info.value.message and "pipeflow repro" in str(info.value)


def test_every_entry_of_a_section_in_conflict_with_a_removal() -> None:
    merged = MergedLock(Lock(), {"train": (stage("4"), None)})
    assert lockconflict.parse(lockconflict.render(merged)) == merged


def test_git_text_conflicts_are_read_too_also_in_diff3_style() -> None:
    ours = dumps(Lock(stages={"train": stage("4")}))
    theirs = dumps(Lock(stages={"train": stage("5")}))
    base = dumps(Lock(stages={"train": stage("2")}))

    def hunk(text: str) -> str:
        return text.split("stages:\n", 1)[1]

    head = ours.split("stages:\n", 1)[0] + "stages:\n"
    text = (head + "<<<<<<< HEAD\n" + hunk(ours) + "||||||| base\n" + hunk(base)
            + "=======\n" + hunk(theirs) + ">>>>>>> other\n")
    merged = lockconflict.parse(text)
    assert merged.stage_conflicts == {"train": (stage("4"), stage("5"))}


@pytest.mark.parametrize("text", [
    "schema: 1\n<<<<<<< ours\nstages: {}\n",
    "schema: 1\n=======\nstages: {}\n>>>>>>> theirs\n",
    "schema: 1\n<<<<<<< ours\nstages: {}\n=======\nstages: [\n>>>>>>> theirs\n",
])
def test_broken_conflicts_are_lockfile_errors(text: str) -> None:
    with pytest.raises(LockfileError) as info:
        lockconflict.parse(text)
    assert "git checkout --ours pipeline.lock" in str(info.value)
    with pytest.raises(LockfileError):
        loads(text)


# --- properties ----------------------------------------------------------------


def _edited(lock: Lock, data: st.DataObject) -> Lock:
    """``lock`` with some stages replaced, removed or added."""
    names = sorted(lock.stages)
    changed = dict(lock.stages)
    picked = data.draw(st.lists(st.sampled_from(names), max_size=3, unique=True)) if names else []
    for name in picked:
        if data.draw(st.booleans()):
            del changed[name]
        else:
            changed[name] = data.draw(stages)
    changed.update(data.draw(st.dictionaries(st.sampled_from("xyz"), stages, max_size=2)))
    return Lock(stages=changed, sources=lock.sources)


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(locks, locks)
def test_merging_with_itself_or_an_unchanged_side_returns_it(base: Lock, lock: Lock) -> None:
    assert merge(lock, lock, lock) == MergedLock(lock)
    for merged in (merge(base, lock, base), merge(base, base, lock), merge(base, lock, lock)):
        assert merged.clean
        assert merged.lock == lock


@settings(max_examples=80, suppress_health_check=[HealthCheck.too_slow])
@given(locks, st.data())
def test_merge_is_symmetric_and_its_text_reads_back(base: Lock, data: st.DataObject) -> None:
    ours, theirs = _edited(base, data), _edited(base, data)
    one, other = merge(base, ours, theirs), merge(base, theirs, ours)
    assert one.lock == other.lock
    assert one.stage_conflicts == {n: (t, o) for n, (o, t) in other.stage_conflicts.items()}
    for name, entry in one.lock.stages.items():
        # a stage only one side changed comes from that side
        if ours.stages.get(name) != base.stages.get(name) == theirs.stages.get(name):
            assert entry == ours.stages[name]
    text = lockconflict.render(one)
    assert lockconflict.parse(text) == one
    if not one.clean:
        with pytest.raises(LockConflictError):
            loads(text)


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow])
@given(locks, st.data())
def test_a_side_that_only_reruns_its_own_stages_never_conflicts(
    base: Lock, data: st.DataObject
) -> None:
    names = sorted(base.stages)
    mine = set(data.draw(st.lists(st.sampled_from(names), unique=True))) if names else set()
    ours = Lock(stages={n: data.draw(stages) if n in mine else s for n, s in base.stages.items()})
    theirs = Lock(stages={n: s if n in mine else data.draw(stages)
                          for n, s in base.stages.items()})
    merged = merge(Lock(stages=base.stages), ours, theirs)
    assert merged.clean
    assert merged.lock.stages == {n: (ours if n in mine else theirs).stages[n] for n in names}


def test_a_conflict_pair_keeps_entries_intact() -> None:
    s = dataclasses.replace(stage("4"), params={"params.yaml": {"lr": 0.1}})
    ours = Lock(stages={**BASE.stages, "train": s})
    merged = merge(BASE, ours, Lock(stages={**BASE.stages, "train": stage("5")}))
    assert lockconflict.parse(lockconflict.render(merged)).stage_conflicts["train"][0] == s


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow])
@given(locks, st.data())
def test_markers_anywhere_raise_only_lockfile_errors(lock: Lock, data: st.DataObject) -> None:
    lines = dumps(lock).split("\n")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(lines)))
        lines.insert(at, data.draw(st.sampled_from(
            ["<<<<<<< ours", "=======", ">>>>>>> theirs", "||||||| base", "<<<<<<<<"])))
    text = "\n".join(lines)
    for read in (loads, lockconflict.parse):
        with contextlib.suppress(LockfileError):
            read(text)


# --- planning a lock in conflict -------------------------------------------------


def test_a_stage_in_conflict_is_changed_and_its_downstream_pending(
    proj: Proj,
) -> None:
    lock = proj.record()
    without = Lock(stages={n: s for n, s in lock.stages.items() if n != "train"})

    def states() -> dict[str, StageState]:
        with Project(proj.root) as repo:
            planner = Planner(repo, build_graph(proj.pipeline), without,
                              conflicts=frozenset({"train"}))
            return planner.evaluate_all(["prep", "train", "report"])

    got = states()
    assert words(got) == {"prep": "up-to-date", "train": "changed", "report": "pending"}
    assert reasons(got["train"]) == [lockconflict.CONFLICT_REASON]
    proj.with_stage("train", frozen=True)
    frozen = states()["train"]
    assert frozen.word == "frozen" and not frozen.up_to_date
    assert reasons(frozen)[0].startswith(lockconflict.CONFLICT_REASON)


def test_a_conflict_on_a_stage_whose_name_holds_a_line_break_reads_back() -> None:
    # Found by the property above: the marker line named the stage raw, so its line
    # break split the marker and the ours side no longer parsed.
    name = "a\nb\x1f"
    base, ours, theirs = (Lock(stages={name: stage(fp)}) for fp in ("0", "1", "2"))
    merged = merge(base, ours, theirs)
    text = lockconflict.render(merged)
    assert "stage 'a\\x0ab\\x1f'" in text
    assert lockconflict.parse(text) == merged
