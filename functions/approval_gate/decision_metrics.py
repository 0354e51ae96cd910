"""The gate's decision metrics (CloudWatch embedded metric format, through Powertools).

What to measure is pure: `at_close` (the decision: Decisions, TimeToDecision, Expired,
HeldSeconds) and `at_reminder` (Reminders, Escalations) turn an approval into
`Measurement`s; `emit` writes them as EMF lines, one per set of dimensions (metrics that
share one EMF line share its dimensions: the decision's carry `outcome`, the others not).

Each fact is counted where it becomes final, once. A request is closed once, whatever
decided it (Slack, the console, the deadline), so `MeteredStore.close` measures the
decision right after its conditional write closed the request, before Slack is updated:
a close step retried after a Slack failure finds the request closed and emits nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, NamedTuple

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.base import MetricManager

from approval_gate.clock import iso
from approval_gate.records import EXPIRED, Approval
from approval_gate.store import ApprovalStore

#: The dimension every metric carries (Powertools adds its own `service` besides).
PIPELINE = "pipeline"
#: The dimension of Decisions and TimeToDecision: approved, rejected, expired, decided_elsewhere.
OUTCOME = "outcome"

DECISIONS = "Decisions"
TIME_TO_DECISION = "TimeToDecision"
EXPIRED_METRIC = "Expired"
HELD_SECONDS = "HeldSeconds"
REMINDERS = "Reminders"
ESCALATIONS = "Escalations"


class Measurement(NamedTuple):
    """One metric value and the dimensions it is recorded under."""

    name: str
    unit: MetricUnit
    value: float
    dimensions: tuple[tuple[str, str], ...]


def at_close(approval: Approval) -> list[Measurement]:
    """What a closed request measures: its decision by outcome and the time it took, an
    expiry, and how long a hold kept it from CodePipeline (reported after a hold only)."""
    outcome = approval.outcome
    if outcome is None or approval.decided_at is None:
        return []  # not decided: nothing to measure (a close always follows a decision)
    by_outcome = ((PIPELINE, approval.pipeline), (OUTCOME, outcome))
    by_pipeline = ((PIPELINE, approval.pipeline),)
    waited = (approval.decided_at - approval.requested_at).total_seconds()
    found = [
        Measurement(DECISIONS, MetricUnit.Count, 1, by_outcome),
        Measurement(TIME_TO_DECISION, MetricUnit.Seconds, max(0.0, waited), by_outcome),
    ]
    if approval.status == EXPIRED:
        found.append(Measurement(EXPIRED_METRIC, MetricUnit.Count, 1, by_pipeline))
    if approval.held is not None and approval.reported_at is not None:
        # A hold starts at the decision and ends when the outcome goes to CodePipeline.
        held = (approval.reported_at - approval.decided_at).total_seconds()
        found.append(Measurement(HELD_SECONDS, MetricUnit.Seconds, max(0.0, held), by_pipeline))
    return found


def at_reminder(before: Approval | None, result: Mapping[str, Any]) -> list[Measurement]:
    """What one reminder cycle measures: the reminder it sent (`reminded`: its counting
    write succeeded) and an escalation made in this cycle (`before` was not escalated)."""
    if before is None:
        return []
    by_pipeline = ((PIPELINE, before.pipeline),)
    found = []
    if result.get("reminded"):
        found.append(Measurement(REMINDERS, MetricUnit.Count, 1, by_pipeline))
    if result.get("escalated") and not before.escalated:
        found.append(Measurement(ESCALATIONS, MetricUnit.Count, 1, by_pipeline))
    return found


def emf_lines(
    measurements: Iterable[Measurement], *, namespace: str, service: str | None
) -> list[str]:
    """The EMF JSON lines of `measurements`: one per set of dimensions. Each also reads
    as a log line (`level`, `message`), like the function's others."""
    groups: dict[tuple[tuple[str, str], ...], list[Measurement]] = {}
    for measurement in measurements:
        groups.setdefault(measurement.dimensions, []).append(measurement)
    lines = []
    for dimensions, members in groups.items():
        # One manager per line: Powertools' Metrics share their state across instances.
        manager = MetricManager(namespace=namespace, service=service)
        for name, value in dimensions:
            manager.add_dimension(name=name, value=value)
        for measurement in members:
            manager.add_metric(
                name=measurement.name, unit=measurement.unit, value=measurement.value
            )
        blob = manager.serialize_metric_set()
        lines.append(json.dumps({"level": "INFO", "message": "metrics", **blob}))
    return lines


#: Where an EMF line goes: the function's log stream (stdout in Lambda).
Out = Callable[[str], None]


def emit(
    measurements: Iterable[Measurement],
    *,
    namespace: str,
    service: str | None = None,
    out: Out = print,
) -> None:
    for line in emf_lines(measurements, namespace=namespace, service=service):
        out(line)


class MeteredStore(ApprovalStore):
    """The approvals table whose `close` measures the decision when its conditional write
    closed the request (`measure`), and only then: a retried close changes nothing and
    measures nothing."""

    def __init__(
        self,
        table_name: str,
        client: Any,
        retention_days: int = 400,
        *,
        measure: Callable[[Approval], None],
    ) -> None:
        super().__init__(table_name, client, retention_days)
        self._measure = measure

    def close(
        self,
        approval_id: str,
        *,
        at: datetime,
        status: str | None = None,
        note: str | None = None,
        reported: bool = False,
    ) -> Approval:
        approval = super().close(approval_id, at=at, status=status, note=note, reported=reported)
        if closed_by(approval, at):
            self._measure(approval)
        return approval


def closed_by(approval: Approval, at: datetime) -> bool:
    """Whether the close written at `at` is the one the item holds (the table keeps
    milliseconds): False for a close that found the request closed already."""
    return approval.closed_at is not None and iso(approval.closed_at) == iso(at)
