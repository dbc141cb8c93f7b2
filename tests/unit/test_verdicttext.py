"""How a reproduction reads in ``lineage`` and ``verify --reproduced``."""

from __future__ import annotations

from pipeflow.lineage.reproductions import (
    OutputDiff,
    Reproduction,
    StageVerdict,
    ValueDiff,
    Verdict,
)
from pipeflow.lineage.verdicttext import headline, stage_lines

H = "a" * 32


def _found(*stages: StageVerdict) -> Reproduction:
    return Reproduction("models/model.pkl", H, "v1", Verdict.worst([s.verdict for s in stages]),
                        stages, record="1a2b3c4d5e6f" + "0" * 52,
                        when="2026-12-05T10:02:33+00:00", user="alice")


def test_headline_says_verdict_when_who_record_and_earlier() -> None:
    found = _found(StageVerdict("train", Verdict.IDENTICAL))
    assert headline(found, 2) == ("reproduced (bit-identical) on 2026-12-05 10:02 "
                                  "by alice (unverified) "
                                  "(record 1a2b3c4d5e6f); 2 earlier")
    assert headline(found).endswith("(record 1a2b3c4d5e6f)")
    assert stage_lines(found) == []


def test_stage_lines_name_only_the_stages_that_did_not_reproduce() -> None:
    found = _found(
        StageVerdict("prepare", Verdict.WITHIN_TOLERANCE),
        StageVerdict("train", Verdict.DIFFERS, outputs=(
            OutputDiff("models/model.pkl", H, "b" * 32, 1258291, 1258300, first_byte=4096),
            OutputDiff("metrics.json", H, H, 10, 10, same=True))),
        StageVerdict("evaluate", Verdict.DIFFERS, outputs=(
            OutputDiff("scores.json", H, "c" * 32, 20, 20, values=(
                ValueDiff("accuracy", 0.912, 0.913, 0.0011),)),)),
        StageVerdict("report", Verdict.FAILED, exit_status=2),
        StageVerdict("publish", Verdict.CANNOT, reason="train.py had uncommitted changes"))
    assert stage_lines(found) == [
        "stage train: differs (models/model.pkl 1.2 MB -> 1.2 MB, first byte 4096)",
        "stage evaluate: differs (scores.json 20 B -> 20 B, accuracy 0.912 -> 0.913)",
        "stage report: failed (exit status 2)",
        "stage publish: cannot reproduce (train.py had uncommitted changes)"]
    assert headline(found).startswith("cannot reproduce on 2026-12-05 10:02 by alice")
