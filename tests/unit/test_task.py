"""execution.task: a Task and an Answer survive JSON; anything else is a TaskFormatError
naming what is wrong, never a crash (an answer comes from the network)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeflow.execution.task import Answer, Input, Task, TaskFormatError, TaskOutput

OID = "0123456789abcdef0123456789abcdef"
oids = st.text("0123456789abcdef", min_size=32, max_size=32)
texts = st.text(max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-10**6, 10**6) | texts,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(texts, inner, max_size=3),
    max_leaves=8)
inputs = st.builds(Input, texts, oids, st.booleans(), st.booleans())
tasks = st.builds(
    Task, stage=texts, cmd=st.tuples(texts), wdir=texts, outs=st.tuples(texts, texts),
    inputs=st.lists(inputs, max_size=3).map(tuple), remote_name=texts, remote_url=texts,
    remote_options=st.dictionaries(texts, json_values, max_size=3),
    env=st.dictionaries(texts, json_values, max_size=3), python_exact=st.booleans(),
    env_vars=st.lists(texts, max_size=2).map(tuple), ignore=st.lists(texts, max_size=2).map(tuple),
    token=texts, client_root=texts)
outputs = st.builds(TaskOutput, texts, oids, st.integers(0, 2**40),
                    st.sampled_from(["file", "dir"]), st.none() | st.integers(0, 10**6),
                    st.booleans())
finite = st.floats(allow_nan=False, allow_infinity=False)
answers = st.builds(
    Answer, finite, finite, st.integers(-255, 255), st.lists(texts, max_size=3).map(tuple),
    texts, st.lists(outputs, max_size=3).map(tuple),
    st.dictionaries(texts, json_values, max_size=3), st.none() | texts, st.none() | texts)


@given(tasks)
def test_a_task_round_trips(task: Task) -> None:
    assert Task.from_json(task.to_json()) == task


@given(answers)
def test_an_answer_round_trips(answer: Answer) -> None:
    assert Answer.from_json(answer.to_json()) == answer


def _answer(**changes: Any) -> dict[str, Any]:
    good: dict[str, Any] = json.loads(Answer(1.0, 2.0, outputs=(
        TaskOutput("out.txt", OID, 3),)).to_json())
    good.update(changes)
    return good


@pytest.mark.parametrize(("changes", "says"), [
    ({"format": 99}, "format 99"),
    ({"returncode": "0"}, "'returncode' must be an integer, got str"),
    ({"returncode": True}, "'returncode' must be an integer, got bool"),
    ({"started": None}, "'started' must be a number"),
    ({"tail": ["ok", 3]}, "'tail' must be a list of strings"),
    ({"outputs": {"a": 1}}, "'outputs' must be a list"),
    ({"outputs": [{"path": "o", "oid": "../../etc/passwd", "size": 1, "kind": "file"}]},
     "'oid' is not an object id"),
    ({"outputs": [{"path": "o", "oid": OID, "size": -1, "kind": "file"}]}, "negative"),
    ({"outputs": [{"path": "o", "oid": OID, "size": 1, "kind": "link"}]},
     "'kind' must be 'file' or 'dir'"),
    ({"outputs": ["o"]}, "answer output: expected a JSON object, got str"),
    ({"env": []}, "'env' must be an object"),
    ({"error": 5}, "'error' must be a string or null"),
])
def test_a_malformed_answer_names_what_is_wrong(changes: dict[str, Any], says: str) -> None:
    with pytest.raises(TaskFormatError, match="malformed answer") as caught:
        Answer.from_json(json.dumps(_answer(**changes)))
    assert says in caught.value.message


@pytest.mark.parametrize("text", [b"", b"\xff\xfe", b"[1, 2]", b"null", b"{" * 100000,
                                  b'{"format": 1}'])
def test_garbage_is_refused(text: bytes) -> None:
    for kind in (Task, Answer):
        with pytest.raises(TaskFormatError):
            kind.from_json(text)


@settings(max_examples=300)
@given(st.one_of(st.binary(max_size=200), json_values.map(json.dumps),
                 st.dictionaries(st.sampled_from(sorted(_answer())), json_values)
                 .map(lambda d: json.dumps({**_answer(), **d}))))
def test_fuzzed_answers_parse_or_are_refused(text: bytes | str) -> None:
    try:
        answer = Answer.from_json(text)
    except TaskFormatError:
        return
    assert Answer.from_json(answer.to_json()) == answer

