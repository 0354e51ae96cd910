"""`approval-gate stats`: per pipeline, how approvals went over a time range.

Over the approvals requested in the range (open ones included), per pipeline:

- ``approved``, ``rejected``, ``expired``, ``decided_elsewhere``: how many ended so;
- ``median_s``, ``p90_s``: seconds from the request to the decision, over the approvals
  people decided (approved or rejected); the median of an even count is the mean of the
  middle two, the 90th percentile is by nearest rank; null when none was decided;
- ``reminders``: reminders sent per approval (the mean, 2 decimals);
- ``escalations``: how many approvals were escalated;
- ``held_s``: seconds held in all, each hold from its start (the approvers' decision) to
  its report to CodePipeline (a hold still running counts once reported).

One small tally per pipeline is kept (the decision times, as numbers), never the records.
"""

from __future__ import annotations

import math
import statistics
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TextIO

from approval_gate.records import APPROVED, DECIDED_ELSEWHERE, EXPIRED, REJECTED, Approval

from cli.output import Column, write_rows
from cli.records import approvals
from cli.target import Target

FIELDS = (
    "pipeline",
    "approved",
    "rejected",
    "expired",
    "decided_elsewhere",
    "median_s",
    "p90_s",
    "reminders",
    "escalations",
    "held_s",
)
COLUMNS = (
    Column("pipeline", 24),
    Column("approved", 8),
    Column("rejected", 8),
    Column("expired", 7),
    Column("decided_elsewhere", 17),
    Column("median_s", 10),
    Column("p90_s", 10),
    Column("reminders", 9),
    Column("escalations", 11),
    Column("held_s", 0),
)
_OUTCOMES = {
    APPROVED: "approved",
    REJECTED: "rejected",
    EXPIRED: "expired",
    DECIDED_ELSEWHERE: "decided_elsewhere",
}


def nearest_rank(values: list[float], percent: float) -> float:
    """The percentile by nearest rank: the smallest value with ``percent`` % at or below."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(percent / 100 * len(ordered))) - 1]


@dataclass
class Tally:
    """One pipeline's figures so far."""

    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(_OUTCOMES.values(), 0))
    decision_s: array = field(default_factory=lambda: array("d"))
    approvals: int = 0
    reminders: int = 0
    escalations: int = 0
    held_s: float = 0.0

    def add(self, approval: Approval) -> None:
        self.approvals += 1
        self.reminders += approval.reminders
        self.escalations += int(approval.escalated)
        outcome = _OUTCOMES.get(approval.status)
        if outcome is not None:
            self.counts[outcome] += 1
        if approval.status in (APPROVED, REJECTED) and approval.decided_at is not None:
            self.decision_s.append((approval.decided_at - approval.requested_at).total_seconds())
        if approval.held and approval.decided_at and approval.reported_at:
            self.held_s += (approval.reported_at - approval.decided_at).total_seconds()

    def row(self, pipeline: str) -> dict[str, Any]:
        times = list(self.decision_s)
        return {
            "pipeline": pipeline,
            **self.counts,
            "median_s": round(statistics.median(times), 3) if times else None,
            "p90_s": round(nearest_rank(times, 90), 3) if times else None,
            "reminders": round(self.reminders / self.approvals, 2),
            "escalations": self.escalations,
            "held_s": round(self.held_s, 3),
        }


def tally(found: Iterable[Approval]) -> list[dict[str, Any]]:
    """The stats rows of these approvals, by pipeline name."""
    tallies: dict[str, Tally] = {}
    for approval in found:
        tallies.setdefault(approval.pipeline, Tally()).add(approval)
    return [tallies[name].row(name) for name in sorted(tallies)]


def run_stats(target: Target, *, since: datetime, until: datetime, fmt: str, out: TextIO) -> int:
    write_rows(tally(approvals(target, since, until)), fmt, out, COLUMNS, FIELDS)
    return 0
