"""Read params.yaml with the standard library alone.

The minimal example promises no dependency beyond Python and /bin/sh, so it
cannot import PyYAML. This reader accepts the two-level subset params.yaml
uses: top-level sections, each holding `key: scalar` lines (int, float,
true/false, or a string). Anything else is an error, not a guess.
"""

from __future__ import annotations

from pathlib import Path

Scalar = int | float | bool | str


def _scalar(text: str) -> Scalar:
    """Convert a YAML scalar of the accepted subset to a Python value."""
    if text in ("true", "false"):
        return text == "true"
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    for convert in (int, float):
        try:
            return convert(text)
        except ValueError:
            pass
    return text


def read_section(section: str, path: str = "params.yaml") -> dict[str, Scalar]:
    """Return the `key: value` pairs of one top-level section of `path`."""
    sections: dict[str, dict[str, Scalar]] = {}
    current: dict[str, Scalar] | None = None
    lines = Path(path).read_text(encoding="utf-8").splitlines()
    for number, raw in enumerate(lines, start=1):
        line = raw.split(" #", 1)[0].rstrip()
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        key, sep, value = line.strip().partition(":")
        if not sep:
            raise ValueError(f"{path}:{number}: expected 'key: value', got {raw!r}")
        if not line[0].isspace():
            if value.strip():
                raise ValueError(f"{path}:{number}: top-level keys must be sections")
            current = sections.setdefault(key, {})
        elif current is None or not value.strip():
            raise ValueError(f"{path}:{number}: only two levels are supported")
        else:
            current[key] = _scalar(value.strip())
    if section not in sections:
        raise KeyError(f"{path} has no section {section!r}")
    return sections[section]
