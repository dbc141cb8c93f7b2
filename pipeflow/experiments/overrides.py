"""``--set KEY=VALUE`` and ``--sweep FILE``: the combinations of params an ``exp run`` tries.

KEY is a dotted key of ``params.yaml`` (``train.C``) or ``FILE:KEY`` for another
params file; VALUE is YAML (``10``, ``true``, ``[1, 2]``, ``abc``); ``A,B,C`` is a
list of values to try, and several such ``--set`` make a grid. A sweep file (YAML)
holds a list of combinations, or a mapping with a ``grid:`` and/or a ``list:``
(docs/experiments.md). Every key is checked against the params files
before anything runs: each mistake is a UsageError (exit 2) naming the text or the
sweep entry, with a hint.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pipeflow.spec.model import Pipeline

import functools
import itertools
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Final

from pipeflow import params
from pipeflow.errors import UsageError
from pipeflow.files import projectfile, safeload

DEFAULT_FILE = "params.yaml"
MAX_EXPERIMENTS: Final = 1000
"""The most experiments one ``exp run`` may ask for: a typo in a grid (``--set
x=1,2,...`` times four more keys) must fail at once, not queue a week of training."""

SWEEP_KEYS: Final = ("grid", "list")
_NULL_WORDS: Final = frozenset({"null", "Null", "NULL", "~"})
# PARAM, not KEY: the CLI's output masks what follows "KEY=" as a secret
_SET_HINT = ("write --set PARAM=VALUE or --set FILE:PARAM=VALUE "
             "(e.g. --set train.C=0.1,1,10)")


@dataclass(frozen=True)
class Override:
    """One params value set for an experiment."""

    file: str
    """The params file, relative to the project root (POSIX)."""
    key: str
    """A dotted key inside it."""
    value: Any


Combination = tuple[Override, ...]
"""The overrides of one experiment (by file, then key)."""

_Choices = tuple[str, str, list[Any]]  # (file, key, the values to try)


def combinations(root: Path, sets: Sequence[str], sweep: Path | None = None,
                 files: frozenset[str] | None = None) -> list[Combination]:
    """The experiments ``--set`` texts and a sweep file ask for, each checked against
    the params files under ``root`` before anything runs (UsageError, exit 2): a text
    without ``=``, a value that does not parse, an unknown file or key (with the
    closest keys), a file not in ``files`` (the pipeline's params files, when given).
    One (maybe empty) combination when nothing makes a grid.

    The sweep's combinations come first, each times the ``--set`` grid; a key both
    set and swept is an error, as is a key set twice or a combination repeated."""
    checker = _KeyChecker(root, files)
    choices = [parse_set(text) for text in sets]
    seen: dict[tuple[str, str], str] = {}
    for (file, key, _values), text in zip(choices, sets, strict=True):
        checker.check(file, key, f"--set {text!r}")
        _once(seen, (file, key), f"--set {text!r}")
    size = math.prod(len(values) for _f, _k, values in choices)
    swept: list[Combination] = [()]
    if sweep is not None:
        swept = read_sweep(sweep, checker, seen)
    _check_count(len(swept) * size, sweep)
    grid = [tuple(Override(f, k, v) for (f, k, _), v in zip(choices, picked, strict=True))
            for picked in itertools.product(*(values for _f, _k, values in choices))]
    combos = [_sorted(s + g) for s in swept for g in grid]
    _check_repeats(combos)
    return combos


def parse_set(text: str) -> _Choices:
    """(file, dotted key, values to try) of one ``--set`` text, not yet checked against
    the files: ``FILE:KEY=A,B`` splits at the first ``=``, the key at its first ``:``,
    and the values at commas outside brackets and quotes."""
    key_text, eq, value_text = text.partition("=")
    if not eq:
        raise UsageError(f"--set {text!r} has no '='", hint=_SET_HINT)
    file, key = split_key(key_text.strip(), f"--set {text!r}")
    pieces = split_values(value_text)
    values = [parse_value(piece, f"--set {text!r}") for piece in pieces]
    return file, key, values


def split_key(text: str, where: str) -> tuple[str, str]:
    """(file, dotted key) of ``KEY`` or ``FILE:KEY``; the file is a relative POSIX path
    with a params suffix, the key non-empty."""
    file, colon, key = text.partition(":")
    if not colon:
        file, key = DEFAULT_FILE, text
    file = file.strip()
    key = key.strip()
    if not key:
        raise UsageError(f"{where}: the key is empty", hint=_SET_HINT)
    if any(not part for part in key.split(".")):
        raise UsageError(f"{where}: '{key}' is not a dotted key (an empty part)",
                         hint="write keys as section.name, e.g. train.C")
    return _params_file(file, where), key


def _params_file(file: str, where: str) -> str:
    path = PurePosixPath(file.replace("\\", "/"))
    if not file or path.is_absolute() or ".." in path.parts:
        raise UsageError(f"{where}: params file '{file}' must be a path inside the project",
                         hint="name it relative to the project root, e.g. "
                              "configs/model.yaml:train.C=1")
    if path.suffix.lower() not in params.PARAMS_SUFFIXES:
        raise UsageError(f"{where}: '{file}' is not a params file (.yaml, .yml, .json, .toml)",
                         hint=_SET_HINT)
    return path.as_posix()


def split_values(text: str) -> list[str]:
    """``A,B,C`` -> ``["A", "B", "C"]``: commas inside ``[]``, ``{}`` or quotes do not
    split (``[1, 2]`` and ``'a,b'`` are one value each)."""
    pieces: list[str] = []
    depth = 0
    quote = ""
    start = 0
    for i, char in enumerate(text):
        if quote:
            if char == quote:
                quote = ""
        elif char in "'\"" and (depth or not text[start:i].strip()):
            quote = char  # YAML quotes a scalar only from its first character
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth = max(0, depth - 1)
        elif char == "," and depth == 0:
            pieces.append(text[start:i])
            start = i + 1
    pieces.append(text[start:])
    return pieces


def parse_value(text: str, where: str) -> Any:
    """One value as YAML (safe loader, within the limits of a small file): a number,
    bool, string, date or list; not a mapping, not nothing."""
    import yaml

    stripped = text.strip()
    if not stripped:
        raise UsageError(f"{where}: a value is empty",
                         hint="write '' for an empty string, null for no value")
    error = safeload.plain(UsageError, hint="quote a string: --set \"key='a: b'\"")
    try:
        value = safeload.load_yaml(stripped, where, "config", error, load=load_yaml)
    except (yaml.YAMLError, ValueError, TypeError) as exc:
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise UsageError(f"{where}: value {stripped!r} is not YAML ({problem})",
                         hint="quote it as a YAML string: 'like this'") from None
    if value is None and stripped not in _NULL_WORDS:
        raise UsageError(f"{where}: value {stripped!r} reads as nothing (a YAML comment?)",
                         hint="quote it as a YAML string: '#like this'")
    if isinstance(value, Mapping):
        raise UsageError(f"{where}: value {stripped!r} is a mapping",
                         hint="set each leaf key on its own: --set train.opt.lr=0.1")
    return value


def load_yaml(text: str) -> Any:
    """YAML as the safe loader reads it, except that ``1e-5`` is a float (as in YAML
    1.2 and Python): PyYAML's YAML 1.1 floats need a dot (``1.0e-5``), and a learning
    rate typed on the command line must not become a string. Quoted, it stays one."""
    import yaml

    return yaml.load(text, Loader=_loader())  # a safe loader


@functools.cache
def _loader() -> Any:
    import yaml

    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    loader: Any = type("OverrideLoader", (base,), {})
    float_12 = re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$")
    loader.add_implicit_resolver("tag:yaml.org,2002:float", float_12, list("-+0123456789."))
    return loader


class _KeyChecker:
    """Checks (file, key) pairs against the params files under the root, reading each
    file once."""

    def __init__(self, root: Path, files: frozenset[str] | None = None) -> None:
        self.root = root
        self.files = files
        """The params files the pipeline reads (None: any file)."""

    def check(self, file: str, key: str, where: str) -> None:
        if self.files is not None and file not in self.files:
            raise UsageError(
                f"{where}: {file} is not a params file of this pipeline (no stage lists "
                "it under `params:`, and it is not a `vars:` file)",
                hint="the params files: " + ", ".join(sorted(self.files)))
        data = self._read(file, where)
        try:
            value = params.lookup(data, key)
        except params.MissingParamError as exc:
            leaves = params.flatten(data)
            close = [c for c in exc.suggestions(6) if c in leaves][:3]
            hint = (f"did you mean {', '.join(repr(c) for c in close)}?" if close
                    else f"the keys of {file}: {_some(leaves)}")
            raise UsageError(f"{where}: {file} has {exc}", hint=hint) from None
        if isinstance(value, Mapping) and value:
            under = _some(params.flatten(value, key))
            raise UsageError(f"{where}: '{key}' is a section of {file}, not a value",
                             hint=f"set a leaf key under it: {under}")

    def _read(self, file: str, where: str) -> dict[str, Any]:
        try:
            return params.read_params(self.root / file, name=file, root=self.root)
        except params.ParamsFileNotFound:
            known = _some(sorted(self.files) if self.files is not None else sorted(
                p.name for p in self.root.iterdir()
                if p.suffix.lower() in params.PARAMS_SUFFIXES))
            hint = (f"the params files: {known}" if known != "-"
                    else "name a params file of the project (FILE:KEY=VALUE)")
            raise UsageError(f"{where}: params file '{file}' does not exist",
                             hint=hint) from None


def read_sweep(path: Path, checker: _KeyChecker,
               set_keys: Mapping[tuple[str, str], str]) -> list[Combination]:
    """The combinations of a sweep file: a list of ``{KEY: value}`` mappings, or a
    mapping with ``grid:`` (KEY -> list of values) and/or ``list:`` (such a list).
    Keys also in ``set_keys`` (set by ``--set``) are an error."""
    shown = str(path)
    error = safeload.plain(UsageError, hint="a sweep file is YAML: a list of "
                           "{KEY: value} or grid: {KEY: [values]} (docs/experiments.md)")
    raw = projectfile.read(path, "config", name=shown, error=error, inside=Path(path.anchor or "/"))
    if raw is None:
        raise UsageError(f"sweep file '{shown}' does not exist",
                         hint="give the path of a YAML file to --sweep")
    import yaml

    try:
        data = safeload.load_yaml(raw, shown, "config", error, load=load_yaml)
    except (yaml.YAMLError, ValueError, TypeError) as exc:  # ValueError: a bad date
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        mark = getattr(exc, "problem_mark", None)
        where = f"{shown}:{mark.line + 1}" if mark is not None else shown
        raise UsageError(f"{where}: not YAML ({problem})",
                         hint="check the file with a YAML linter") from None
    sweep = _Sweep(shown, checker, set_keys)
    return sweep.combinations(data)


class _Sweep:
    """Reading one sweep file's value; errors name the file and the entry."""

    def __init__(self, name: str, checker: _KeyChecker,
                 set_keys: Mapping[tuple[str, str], str]) -> None:
        self.name = name
        self.checker = checker
        self.set_keys = set_keys

    def combinations(self, data: Any) -> list[Combination]:
        if isinstance(data, list):
            return self._list(data, self.name)
        if not isinstance(data, Mapping) or not data:
            raise self._shape(f"{self.name}: a sweep file must hold a list of combinations "
                              "or a mapping with grid: and/or list:")
        unknown = [str(k) for k in data if k not in SWEEP_KEYS]
        if unknown:
            raise self._shape(f"{self.name}: unknown entry '{unknown[0]}' (a sweep file "
                              "holds grid: and/or list:)")
        combos = self._grid(data["grid"]) if "grid" in data else []
        if "list" in data:
            combos += self._list(data["list"], f"{self.name}: list")
        return combos

    def _grid(self, grid: Any) -> list[Combination]:
        where = f"{self.name}: grid"
        if not isinstance(grid, Mapping) or not grid:
            raise self._shape(f"{where} must map keys to lists of values")
        axes: list[list[Override]] = []
        mine: dict[tuple[str, str], str] = {}
        for key_text, values in grid.items():
            file, key = self._key(key_text, f"{where}: {key_text}")
            _once(mine, (file, key), f"{where}: {key_text}")
            tried = values if isinstance(values, list) else [values]
            if not tried:
                raise self._shape(f"{where}: {key_text} has no values to try")
            _check_count(math.prod(len(a) for a in axes) * len(tried), self.name)
            axes.append([Override(file, key, self._value(v, f"{where}: {key_text}"))
                         for v in tried])
        return [tuple(picked) for picked in itertools.product(*axes)]

    def _list(self, items: Any, where: str) -> list[Combination]:
        if not isinstance(items, list) or not items:
            raise self._shape(f"{where} must be a non-empty list of {{KEY: value}} mappings")
        _check_count(len(items), self.name)
        combos: list[Combination] = []
        for n, item in enumerate(items, 1):
            at = f"{where}, combination {n}"
            if not isinstance(item, Mapping) or not item:
                raise self._shape(f"{at} must be a mapping of keys to values, e.g. "
                                  "{train.C: 0.1}")
            mine: dict[tuple[str, str], str] = {}
            combo = []
            for key_text, value in item.items():
                file, key = self._key(key_text, f"{at}: {key_text}")
                _once(mine, (file, key), f"{at}: {key_text}")
                combo.append(Override(file, key, self._value(value, f"{at}: {key_text}")))
            combos.append(tuple(combo))
        return combos

    def _key(self, key_text: Any, where: str) -> tuple[str, str]:
        if not isinstance(key_text, str):
            raise self._shape(f"{where}: a key must be text (KEY or FILE:KEY)")
        file, key = split_key(key_text, where)
        self.checker.check(file, key, where)
        if (file, key) in self.set_keys:
            raise UsageError(f"{where}: {file}:{key} is also set by "
                             f"{self.set_keys[(file, key)]}",
                             hint="set a key either with --set or in the sweep file")
        return file, key

    @staticmethod
    def _value(value: Any, where: str) -> Any:
        if isinstance(value, Mapping):
            raise UsageError(f"{where}: the value is a mapping",
                             hint="name each leaf key on its own (train.opt.lr: 0.1)")
        return value

    @staticmethod
    def _shape(message: str) -> UsageError:
        example = "grid: {train.C: [0.1, 1, 10]}  or  - {train.C: 0.1, featurize.k: 5}"
        return UsageError(message, hint=f"e.g. {example} (docs/experiments.md)")


def _once(seen: dict[tuple[str, str], str], fk: tuple[str, str], where: str) -> None:
    first = seen.get(fk)
    if first is not None:
        file, key = fk
        raise UsageError(f"{where}: {file}:{key} is already set by {first}",
                         hint="set each key once (A,B,C tries several values)")
    seen[fk] = where


def _check_count(count: int, sweep: Path | str | None) -> None:
    if count > MAX_EXPERIMENTS:
        source = f" (with the sweep file {sweep})" if sweep else ""
        raise UsageError(f"this asks for {count:,} experiments{source}; one exp run "
                         f"runs at most {MAX_EXPERIMENTS:,}",
                         hint="try fewer values per key, or split the sweep in parts")


def _check_repeats(combos: list[Combination]) -> None:
    first: dict[str, int] = {}
    for n, combo in enumerate(combos, 1):
        text = repr([(o.file, o.key, type(o.value).__name__, o.value) for o in combo])
        if text in first:
            raise UsageError(f"experiment {n} would repeat experiment {first[text]} "
                             f"({describe(combo)})",
                             hint="each combination of values runs once: drop the repeat")
        first[text] = n


def _sorted(combo: Combination) -> Combination:
    return tuple(sorted(combo, key=lambda o: (o.file, o.key)))


def _some(items: Sequence[str] | Mapping[str, Any], n: int = 8) -> str:
    names = list(items)
    if not names:
        return "-"
    more = f", ... ({len(names) - n} more)" if len(names) > n else ""
    return ", ".join(names[:n]) + more


def describe(combo: Combination) -> str:
    """``train.C=0.1 featurize.k=5`` (the file shown when not params.yaml)."""
    return " ".join(f"{label(o)}={o.value!r}" for o in combo) or "(no overrides)"


def label(o: Override) -> str:
    """``train.C``, or ``FILE:KEY`` for another file than params.yaml."""
    return o.key if o.file == DEFAULT_FILE else f"{o.file}:{o.key}"


def as_table(combo: Combination) -> dict[str, dict[str, Any]]:
    """file -> key -> value."""
    table: dict[str, dict[str, Any]] = {}
    for o in combo:
        table.setdefault(o.file, {})[o.key] = o.value
    return table


def write_overrides(root: Path, table: Mapping[str, Mapping[str, Any]]) -> None:
    """Write ``table`` (file -> key -> value) into the params files under ``root``: every
    file's edit is made and checked before the first is written, so that a key
    missing in one file changes none of them."""
    from pipeflow.experiments.paramedit import edited_text
    from pipeflow.files import atomicfile

    texts = {file: edited_text(root / file, values, root=root, name=file)
             for file, values in table.items()}
    for file, text in texts.items():
        if text is not None:
            atomicfile.write_text(root / file, text)


def params_files_of(pipeline: Pipeline) -> frozenset[str]:
    """The files ``exp run --set`` and ``exp apply`` may write: ``params.yaml`` and
    every params or ``vars`` file the pipeline reads."""
    return frozenset((DEFAULT_FILE, *pipeline.params_files, *pipeline.vars_files))
