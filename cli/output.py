"""Rows out, one at a time: ``table`` (aligned, fixed widths), ``csv`` or ``jsonl``.

Every format writes each row as it comes, so a command that streams its rows keeps its
memory flat however many there are. Table cells are cut to their column's width (the last
column is never cut); CSV has a header and one line per row, nested values (lists, maps,
booleans) JSON-encoded; JSON Lines is one object per line.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, NamedTuple, TextIO

FORMATS = ("table", "csv", "jsonl")


class Column(NamedTuple):
    """A table column: the row's key, its width, and how its value reads (default: cell)."""

    key: str
    width: int
    show: Callable[[Any], str] | None = None


def cell(value: Any) -> str:
    """A value as a table shows it: ``-`` for none, lists joined, maps as compact JSON."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
        return ", ".join(value) if value else "-"
    if isinstance(value, list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _cut(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _csv_value(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool | list | tuple | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def write_rows(
    rows: Iterable[Mapping[str, Any]],
    fmt: str,
    out: TextIO,
    columns: Sequence[Column],
    header: Sequence[str],
) -> int:
    """Write each row as it comes; the number written. ``columns`` lay out the table; CSV
    and JSON Lines carry every key of the rows, CSV under ``header`` (its keys, in order),
    written even when no row comes. The first row is read before anything is written, so
    a source that fails at once (no index, no access) leaves no header behind."""
    count = 0
    rows = iter(rows)
    first = next(rows, None)
    if first is not None:
        rows = itertools.chain((first,), rows)
    if fmt == "table":
        header = "  ".join(
            c.key.ljust(c.width) if i < len(columns) - 1 else c.key for i, c in enumerate(columns)
        )
        out.write(header + "\n")
        for row in rows:
            cells = []
            for i, column in enumerate(columns):
                text = (column.show or cell)(row.get(column.key))
                last = i == len(columns) - 1
                cells.append(" ".join(text.split()) if last else _cut(text, column.width))
            padded = [text.ljust(column.width) for text, column in zip(cells, columns, strict=True)]
            out.write("  ".join([*padded[:-1], cells[-1]]) + "\n")
            count += 1
        return count
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=list(header), lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_value(v) for k, v in row.items()})
            count += 1
        return count
    for row in rows:
        out.write(json.dumps(row, ensure_ascii=False) + "\n")
        count += 1
    return count
