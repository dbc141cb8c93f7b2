"""Helpers shared by the wine stages: params, tables on disk, output paths.

Every file a stage writes goes through here, so that the same params always
give byte-identical outputs: CSVs use one fixed float format and "\\n" line
endings, JSON is sorted, pickles use one protocol.
"""

from __future__ import annotations

import csv
import json
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml

FLOAT_FORMAT = "{:.10g}"
PICKLE_PROTOCOL = 5
TARGET = "target"


@dataclass(frozen=True)
class Table:
    """Feature matrix with its column names, and the class of each row."""

    columns: list[str]
    X: np.ndarray
    y: np.ndarray


def load_params(section: str, path: str = "params.yaml") -> dict[str, Any]:
    """Return one top-level section of the params file."""
    with open(path, encoding="utf-8") as f:
        params: dict[str, Any] = yaml.safe_load(f)[section]
    return params


def output_path(path: str) -> Path:
    """Return `path`, creating its parent folder.

    pipeflow removes declared outputs before a stage runs, so no stage may
    assume its output folder is still there.
    """
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def write_table(path: str, table: Table) -> None:
    """Write a table as CSV: feature columns, then the integer target."""
    with output_path(path).open("w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([*table.columns, TARGET])
        for row, label in zip(table.X, table.y, strict=True):
            writer.writerow([*(FLOAT_FORMAT.format(v) for v in row), int(label)])


def read_table(path: str) -> Table:
    """Read a CSV written by `write_table`."""
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.reader(f))
    header, body = rows[0], rows[1:]
    if header[-1] != TARGET:
        raise ValueError(f"{path}: last column must be {TARGET!r}, got {header[-1]!r}")
    X = np.array([[float(v) for v in row[:-1]] for row in body], dtype=np.float64)
    y = np.array([int(row[-1]) for row in body], dtype=np.int64)
    return Table(header[:-1], X, y)


def save_model(path: str, model: object) -> None:
    """Pickle a fitted model with a fixed protocol."""
    with output_path(path).open("wb") as f:
        pickle.dump(model, f, protocol=PICKLE_PROTOCOL)


def load_model(path: str) -> Any:
    """Unpickle a model written by `save_model` (only load files you made)."""
    with open(path, "rb") as f:
        return pickle.load(f)


def write_json(path: str, data: dict[str, Any]) -> None:
    """Write sorted, indented JSON ending with a newline."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    output_path(path).write_text(text, encoding="utf-8")
