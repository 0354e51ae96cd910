"""`make bench`: the figures users feel, each printed against its target (issue 7).

Benchmarks print; they never fail on timing. Each module has a `run(...)` that returns
`Row`s for the closing table.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the closing table."""

    figure: str
    median: str
    spread: str  # p99 or min-max
    target: str
    met: bool | None  # None: informative only, no target
    ratio: str = ""  # against a baseline measured in the same run, for machine-speed figures


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile (p99 of 20 samples is the largest)."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))  # ceil
    return ordered[int(rank) - 1]


def median(values: list[float]) -> float:
    return statistics.median(values)


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"
