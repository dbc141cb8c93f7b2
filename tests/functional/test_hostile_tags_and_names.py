"""Issue 11 review: a crafted tag line cannot pin a tag or crash ``tag``; a lock path
that is not UTF-8 cannot crash ``versions`` or ``lineage``."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.lineage.tags import entry_id, tags_of
from pipeflow.records.records import canonical
from tests.conftest import Project
from tests.functional.helpers import commit


def model(project: Project) -> None:
    project.write("make.py", "open('model.txt', 'w').write('m')\n")
    project.spec({"make": {"cmd": "python3 make.py", "deps": ["make.py"],
                           "outs": ["model.txt"]}})
    assert project.run("repro").code == 0
    commit(project, "model")


def plant(project: Project, when: str) -> None:
    """A well-chained line of an attacker's chain putting 'production' on a fake hash."""
    body = {"chain": "evil", "seq": 1, "prev": None, "path": "model.txt",
            "name": "production", "hash": "0" * 32, "previous": None, "user": "boss",
            "when": when}
    body["id"] = entry_id(body)
    with (project.root / ".pipeflow" / "tags.jsonl").open("ab") as log:
        log.write(canonical(body) + b"\n")


@pytest.mark.parametrize("when", ["~~~~", "9999-12-31T23:59:59.999+00:00",
                                  "2999-01-01T00:00:00+00:00", "2020-01-01T00:00:00"])
def test_a_tag_line_with_a_time_that_is_no_time_cannot_pin_the_tag(
    project: Project, when: str
) -> None:
    model(project)
    plant(project, when)
    result = project.run("tag", "model.txt@v1", "production")
    assert result.code == 0, result.text
    assert "tags.jsonl:1:" in result.err and "skipped" in result.err
    versions = project.run("versions", "model.txt", "--json")
    assert versions.code == 0
    real = tags_of(project.root / ".pipeflow", "model.txt")["production"]
    assert real != "0" * 32
    assert project.run("checkout", "model.txt@production").code == 0
    verify = project.run("verify")
    assert "tags.jsonl:1" in verify.text and "Traceback" not in verify.text


_NAME = st.text(alphabet="ab\udcff\udc80.", min_size=1, max_size=8).filter(
    lambda n: "\udcff" in n or "\udc80" in n)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(name=_NAME)
def test_a_lock_path_with_surrogates_never_crashes_versions_or_lineage(
    project: Project, name: str
) -> None:
    if not (project.root / "pipeline.lock").exists():
        model(project)
    lock = project.read("pipeline.lock")
    escaped = "".join(f"\\u{ord(c):04X}" if ord(c) > 127 else c for c in name)
    crafted = lock.replace("path: model.txt", f'path: "out/{escaped}"', 1)
    (project.root / "pipeline.lock").write_text(crafted, encoding="utf-8")
    commit(project, "crafted")
    for args in (("versions", f"out/{name}"), ("lineage", f"out/{name}"),
                 ("versions", f"out/{name}", "--json"), ("lineage", f"out/{name}", "--json"),
                 ("versions", "model.txt"), ("lineage", "model.txt"), ("status",)):
        result = project.run(*args)
        assert result.code in (0, 1, 2), (args, result.text)
        assert "internal error" not in result.text, (args, result.text)
    (project.root / "pipeline.lock").write_text(lock, encoding="utf-8")
    commit(project, "restored")




def test_tag_fails_when_its_move_does_not_decide_the_tag(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Whatever outranks it, `tag` never reports a move that did not win."""
    from pipeflow.lineage import tags

    model(project)
    real_move = tags.move

    def move_then_outranked(*args: object, **kwargs: object) -> tags.TagMove:
        done = real_move(*args, **kwargs)  # type: ignore[arg-type]
        plant(project, "2020-01-01T00:00:00.000+00:00")
        monkeypatch.setattr(tags.TagLog, "tags_of", lambda self, path: {"production": "0" * 32})
        return done

    monkeypatch.setattr(tags, "move", move_then_outranked)
    result = project.run("tag", "model.txt@v1", "production")
    assert result.code == 1, result.text
    assert "still names 00000000" in result.err and "pipeflow verify" in result.err
