"""Experiment names: given (``--name lr-high``), templated for a sweep
(``--name 'C{train.C}'``), or generated: short, readable, unique in the project.

A name is 1 to 60 characters from ``[A-Za-z0-9._-]``, starting with a letter or a digit
(so that it is never read as an option, a hidden file or a path). Names made only of
hex digits are allowed: ``exp apply NAME`` looks names up before id prefixes
(:func:`pipeflow.lineage.experiments.find`), so ``C10`` or ``1000`` stay reachable.

Placeholders in a template name an overridden key: ``{train.C}`` (the dotted key),
``{C}`` (its last part, when no other overridden key ends so) or
``{params.yaml:train.C}``. A template without placeholders for several experiments
numbers them: ``NAME-1``, ``NAME-2``... Names given or templated are returned as
asked; whether one is taken is the caller's to decide (``--replace``), with
:func:`taken_names`. Generated names (``brisk-otter``) avoid the taken ones.
"""

from __future__ import annotations

import random
import re
from collections.abc import Collection, Sequence
from typing import Any, Final

from pipeflow.errors import UsageError
from pipeflow.experiments.overrides import Combination, Override, label

MAX_LENGTH: Final = 60
_VALID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_NAME_HINT = "use 1 to 60 letters, digits, '.', '_' or '-', starting with a letter or digit"

ADJECTIVES: Final = (
    "amber", "bold", "brave", "brisk", "calm", "clever", "cool", "crisp", "daring", "eager",
    "fair", "fast", "fierce", "fond", "gentle", "glad", "golden", "grand", "happy", "hardy",
    "jolly", "keen", "kind", "lively", "lucky", "merry", "mighty", "modest", "neat", "nimble",
    "noble", "plucky", "polite", "proud", "quick", "quiet", "rapid", "ready", "rosy", "royal",
    "rustic", "sage", "shiny", "silent", "sleek", "smart", "snug", "solid", "spry", "steady",
    "stout", "sunny", "swift", "tidy", "tough", "tranquil", "upbeat", "vivid", "warm", "wise",
    "witty", "young", "zany", "zesty",
)
NOUNS: Final = (
    "badger", "beaver", "bison", "crane", "cricket", "dingo", "dolphin", "eagle", "falcon",
    "ferret", "finch", "fox", "gecko", "gibbon", "heron", "hornet", "ibex", "jackal",
    "jaguar", "koala", "lemur", "lynx", "magpie", "marmot", "marten", "mole", "moose",
    "newt", "ocelot", "orca", "osprey", "otter", "owl", "panda", "parrot", "pelican",
    "puffin", "quail", "rabbit", "raven", "robin", "salmon", "seal", "shrew", "sparrow",
    "squid", "stoat", "swan", "tapir", "tiger", "toad", "trout", "turtle", "viper", "vole",
    "walrus", "weasel", "whale", "wombat", "wren", "yak", "zebra", "hare", "mink",
)


def check_name(name: str) -> str:
    """``name`` when it is a valid experiment name; a UsageError saying why not."""
    if not name:
        raise UsageError("an experiment name is empty", hint=_NAME_HINT)
    if len(name) > MAX_LENGTH:
        raise UsageError(f"experiment name {name[:20]!r}... is {len(name)} characters long "
                         f"(at most {MAX_LENGTH})", hint=_NAME_HINT)
    if not _VALID.fullmatch(name):
        raise UsageError(f"invalid experiment name {name!r}", hint=_NAME_HINT)
    return name


def taken_names(names: Sequence[str], taken: Collection[str]) -> list[str]:
    """The names of ``names`` already in ``taken``, in order (for the caller's
    "exists already; use --replace" error)."""
    return [n for n in names if n in taken]


def experiment_names(template: str | None, combos: Sequence[Combination],
                     taken: Collection[str], rng: random.Random | None = None
                     ) -> list[str]:
    """One name per combination, never twice in the list: the template rendered for
    each, or generated names not in ``taken`` (the live experiments' names).
    ``rng``: for tests; by default the names are random."""
    if not template:
        return generated(len(combos), taken, rng)
    if not _PLACEHOLDER.search(template):
        check_name(template)
        if len(combos) == 1:
            return [template]
        return [check_name(f"{template}-{i + 1}") for i in range(len(combos))]
    names = [check_name(render(template, combo)) for combo in combos]
    first: dict[str, int] = {}
    for n, name in enumerate(names, 1):
        if name in first:
            raise UsageError(f"--name {template!r} gives '{name}' to experiments "
                             f"{first[name]} and {n}",
                             hint="add a placeholder for each key the sweep varies, "
                                  "e.g. --name 'C{train.C}-k{featurize.k}'")
        first[name] = n
    return names


def render(template: str, combo: Combination) -> str:
    """``template`` with each ``{placeholder}`` replaced by the value it names."""
    def value_of(match: re.Match[str]) -> str:
        return short(find_override(match.group(1).strip(), combo, template).value)

    return _PLACEHOLDER.sub(value_of, template)


def find_override(placeholder: str, combo: Combination, template: str) -> Override:
    """The override a placeholder names: ``FILE:KEY``, ``KEY`` or the last part of one."""
    hits = [o for o in combo if placeholder in (f"{o.file}:{o.key}", o.key)]
    if not hits:
        hits = [o for o in combo if o.key.rsplit(".", 1)[-1] == placeholder]
    if len(hits) == 1:
        return hits[0]
    known = ", ".join("{" + label(o) + "}" for o in combo) or "none"
    if hits:
        raise UsageError(f"--name {template!r}: {{{placeholder}}} could be "
                         f"{' or '.join(label(o) for o in hits)}",
                         hint=f"write the whole key: {known}")
    raise UsageError(f"--name {template!r}: {{{placeholder}}} names no key this "
                     "experiment sets", hint=f"placeholders: {known}")


def short(value: Any) -> str:
    """A value as a name part: ``0.1``, ``true``, lists joined with ``-``, characters
    a name cannot hold replaced by ``-``."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif value is None:
        text = "null"
    elif isinstance(value, list):
        text = "-".join(short(v) for v in value)
    else:
        text = str(value)
    return _UNSAFE.sub("-", text).strip("-") or "-"


def generated(count: int, taken: Collection[str], rng: random.Random | None = None
              ) -> list[str]:
    """``count`` readable names (``brisk-otter``) not in ``taken`` nor repeated; a
    number is added when the word pairs run short (``brisk-otter-2``)."""
    rng = rng or random.Random()
    used = set(taken)
    names: list[str] = []
    pairs = len(ADJECTIVES) * len(NOUNS)
    for _ in range(count):
        base = name = ""
        for attempt in range(64):
            base = name = f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
            if attempt >= 16 or len(used) > pairs // 2:
                name = f"{base}-{rng.randrange(2, 10_000)}"
            if name not in used:
                break
        n = 2
        while name in used:  # every random try was taken: count up, always ends
            name = f"{base}-{n}"
            n += 1
        used.add(name)
        names.append(name)
    return names
