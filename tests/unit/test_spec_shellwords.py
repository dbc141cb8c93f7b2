"""Quoting ``${...}`` values into commands: checked by running real shells."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipeflow.spec.interpolate import Context, interpolate, interpolate_command
from pipeflow.spec.shellwords import Scanner, Spot, is_plain, quote
from pipeflow.spec.yamlpos import SpecProblem

# /bin/sh (dash on Debian, bash on macOS), and bash and dash where they are installed
SHELLS = list({os.path.realpath(s): s for s in ("/bin/sh", shutil.which("bash"),
                                               shutil.which("dash")) if s}.values())
EXAMPLES = int(os.environ.get("PIPEFLOW_QUOTING_EXAMPLES", "150"))  # each runs the shells
SLOW = settings(max_examples=EXAMPLES, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])

# any text a params value or --set can hold (a NUL cannot be in an argument)
values = st.text(st.characters(codec="utf-8", exclude_characters="\x00"))
plain_values = st.from_regex(r"[A-Za-z0-9_@%+=:,./-]{1,12}", fullmatch=True)


def command(template: str, value: Any) -> str:
    return interpolate_command(template, Context(lambda: {"v": value}), (), "'cmd'")


def printed(cmd: str, shell: str) -> list[str]:
    """Each argument the shell passed to printf, as it received them."""
    out = subprocess.run([shell, "-c", cmd], capture_output=True, check=True).stdout
    return out.decode("utf-8", "surrogateescape").split("\x00")[:-1]


# words in each kind of spot, and what the shell must make of them
SPOTS: list[tuple[str, Callable[[str], str]]] = [
    ("${v}", lambda v: v),
    ('"${v}"', lambda v: v),
    ("'${v}'", lambda v: v),
    ("a${v}b", lambda v: f"a{v}b"),
    ('"a ${v} b"', lambda v: f"a {v} b"),
    ("'a ${v} b'", lambda v: f"a {v} b"),
    ('x"${v}"\'${v}\'${v}', lambda v: f"x{v}{v}{v}"),
    ('"$(printf %s ${v})"', lambda v: v.rstrip("\n")),
    ('"$(printf %s "${v}")"', lambda v: v.rstrip("\n")),
    ("\"$(printf %s '${v}')\"", lambda v: v.rstrip("\n")),
]


@pytest.mark.parametrize("shell", SHELLS)
@SLOW
@given(value=values)
def test_any_value_is_received_exactly(shell: str, value: str) -> None:
    template = "printf '%s\\000' " + " ".join(t for t, _ in SPOTS)
    assert printed(command(template, value), shell) == [want(value) for _, want in SPOTS]


@st.composite
def words(draw: st.DrawFn, depth: int = 0) -> tuple[str, Callable[[str], str]]:
    """A random shell word of literal text, references and nested quotes, and its value."""
    parts = draw(st.lists(part(depth), min_size=1, max_size=4))
    return "".join(t for t, _ in parts), lambda v: "".join(f(v) for _, f in parts)


def part(depth: int) -> st.SearchStrategy[tuple[str, Callable[[str], str]]]:
    literal = st.from_regex(r"[a-z0-9./=-]{1,3}", fullmatch=True)
    ref = st.just(("${v}", lambda v: v))
    options = [literal.map(lambda s: (s, lambda v, s=s: s)), ref,
               st.lists(dq_part(depth), max_size=4).map(_dq),
               st.lists(st.one_of(ref, st.from_regex(r"[a-z \"\\`#;|&()<>]{1,3}|\$x",
                                                     fullmatch=True)
                                  .map(lambda s: (s, lambda v, s=s: s))), max_size=4).map(_sq)]
    return st.one_of(options)


def dq_part(depth: int) -> st.SearchStrategy[tuple[str, Callable[[str], str]]]:
    literal = st.from_regex(r"[a-z '#;|&()<>{}]{1,3}", fullmatch=True)
    options = [literal.map(lambda s: (s, lambda v, s=s: s)),
               st.just(("${v}", lambda v: v)),
               st.just(('\\"', lambda v: '"')), st.just(("\\$x", lambda v: "$x"))]
    if depth < 2:
        options.append(words(depth + 1).map(
            lambda w: (f"$(printf %s {w[0]})", lambda v, f=w[1]: f(v).rstrip("\n"))))
    return st.one_of(options)


def _dq(parts: list[tuple[str, Callable[[str], str]]]) -> tuple[str, Callable[[str], str]]:
    return '"' + "".join(t for t, _ in parts) + '"', lambda v: "".join(f(v) for _, f in parts)


def _sq(parts: list[tuple[str, Callable[[str], str]]]) -> tuple[str, Callable[[str], str]]:
    return "'" + "".join(t for t, _ in parts) + "'", lambda v: "".join(f(v) for _, f in parts)


@pytest.mark.parametrize("shell", SHELLS)
@SLOW
@given(ws=st.lists(words(), min_size=1, max_size=3), value=values)
def test_nested_quotes_and_substitutions_receive_the_value(
        shell: str, ws: list[tuple[str, Callable[[str], str]]], value: str) -> None:
    template = "printf '%s\\000' " + " ".join(t for t, _ in ws)
    assert printed(command(template, value), shell) == [f(value) for _, f in ws]


# text made of the shell's syntax, to throw at the scanner
shellish = st.lists(st.one_of(st.sampled_from(
    ["${v}", "$${", "$(", "$((", "`", "'", '"', "\\", "#", "<<", "<<-", "EOF", "case ",
     "$'", "}", ")", "(", " ", "\n", "\t", ";", "x", "$"])), max_size=25).map("".join)


@settings(max_examples=3 * EXAMPLES, deadline=None)
@given(template=shellish, value=plain_values)
def test_plain_values_are_inserted_as_they_are(template: str, value: str) -> None:
    ctx = Context(lambda: {"v": value})
    try:
        quoted = interpolate_command(template, ctx, (), "'cmd'")
    except SpecProblem as exc:
        # the one refusal a plain value can meet: it would end a here-document
        assert "ends the here-document" in exc.message or "unclosed" in exc.message
        return
    assert quoted == interpolate(template, ctx, (), "'cmd'")


@settings(max_examples=3 * EXAMPLES, deadline=None)
@given(template=shellish, value=values)
def test_any_value_is_quoted_or_refused_never_a_crash(template: str, value: str) -> None:
    try:
        command(template, value)
    except SpecProblem as exc:  # located, and saying which reference or what is wrong
        assert "'${v}'" in exc.message or "here-document" in exc.message or (
            "unclosed" in exc.message)


piece = st.sampled_from([";", "\n", "'", '"', "`", "$(", ")", "#", "\\", "EOF", " ", "&",
                         "|", "$'", "}", "${", "))", "x"])
payloads = st.tuples(st.lists(piece, max_size=6), st.lists(piece, max_size=6)).map(
    lambda ab: "".join(ab[0]) + "touch pwned" + "".join(ab[1]))


@pytest.mark.parametrize("shell", SHELLS)
@SLOW
@given(template=st.tuples(shellish, shellish).map("${v}".join), value=payloads)
def test_no_value_runs_a_command_whatever_the_command_around_it(
        shell: str, template: str, value: str) -> None:
    try:
        cmd = command(template, value)
    except SpecProblem:
        return
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([shell, "-c", cmd], cwd=folder, capture_output=True, timeout=10,
                       stdin=subprocess.DEVNULL)
        assert not os.path.exists(os.path.join(folder, "pwned")), cmd


@pytest.mark.parametrize(("template", "inside"), [
    ("echo `echo ${v}`", "backquotes"),
    ("echo $((${v} + 1))", "$((...))"),
    ("echo $${X:-${v}}", "a shell ${...}"),
    ("echo $'a${v}'", "$'...'"),
    ("echo ok # ${v}", "a comment"),
    ("cat <<EOF\n${v}\nEOF\n", "a here-document"),
    ("cat <<${v}\nx\n", "a here-document's delimiter"),
    ("echo \\${v}", "a backslash escape"),
    ('echo "\\${v}"', "a backslash escape"),
    ("echo $(case x in x) echo;; esac) ${v}", "text after a 'case' inside $(...)"),
])
def test_where_values_cannot_be_quoted_only_plain_ones_pass(template: str, inside: str) -> None:
    with pytest.raises(SpecProblem, match=rf"stands inside {_re(inside)}, where its value "
                                          r"'1; touch x' cannot be quoted"):
        command(template, "1; touch x")
    assert command(template, "ok") == template.replace("${v}", "ok").replace("$${", "${")


def _re(text: str) -> str:
    import re

    return re.escape(text)


def test_the_rendered_text_for_each_spot() -> None:
    assert command("run ${v}", "a b") == "run 'a b'"
    assert command("run ${v}", "it's") == "run 'it'\"'\"'s'"
    assert command("run ${v}", "") == "run ''"
    assert command('run "${v}"', 'a"b$c`d\\e') == 'run "a\\"b\\$c\\`d\\\\e"'
    assert command("run '${v}'", "it's") == "run 'it'\\''s'"
    assert command("run '${v}'", "$x `y`") == "run '$x `y`'"
    # booleans and null render as before, plain
    assert command("run ${v} --x=${v}", True) == "run true --x=true"
    assert command("run ${v}", None) == "run null"
    assert command("run ${v}", 1e-05) == "run 1e-05"
    # right after "$(": a command of its own
    assert command("echo $(${v})", "a b") == "echo $('a b')"
    s = Scanner()
    s.feed("echo $(")
    assert s.feed_value("'a b'")
    # $${ stays a literal ${ for the shell
    assert command("echo $${HOME} ${v}", "a b") == "echo ${HOME} 'a b'"


def test_a_nul_is_refused() -> None:
    with pytest.raises(SpecProblem, match="NUL"):
        command("run ${v}", "a\x00b")


def test_quote_and_is_plain() -> None:
    assert is_plain("data/x.csv") and is_plain("-3") and is_plain("0.1")
    assert not is_plain("") and not is_plain("a b") and not is_plain("é")
    assert quote("a b", Spot("other", "backquotes")) is None
    assert quote("ab", Spot("other", "backquotes")) == "ab"


def test_scanner_follows_nesting() -> None:
    s = Scanner()
    s.feed('echo "$(printf %s \'')
    assert s.spot().kind == "single"
    s.feed("')\" ")
    assert s.spot().kind == "plain"
    s.feed('"`')
    assert s.spot() == Spot("other", "backquotes")
    s.feed('`"')
    assert s.spot().kind == "plain"
