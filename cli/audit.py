"""`approval-gate audit`: who decided what, when and why, oldest first, streamed.

Each row is the decision record (DESIGN §4 and §8) with the execution's console link, read
from the audit index one page at a time: the rows are written as they come and never held
together, so memory stays flat over any range.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from fnmatch import fnmatchcase
from typing import Any, TextIO

from approval_gate.records import Approval
from approval_gate.rules import Approvers, Rules

from cli.output import Column, write_rows
from cli.records import approvals, audit_record
from cli.target import Target

#: What the table shows of each record (CSV and JSON Lines carry all of it).
COLUMNS = (
    Column("requested_at", 24),
    Column("pipeline", 20),
    Column("stage", 12),
    Column("action", 16),
    Column("outcome", 17),
    Column("decided_by", 22),
    Column("decided_at", 24),
    Column("reason", 30),
    Column("console_link", 0),
)


def fields() -> list[str]:
    """The keys of an audit row, in order: the domain's decision record, then the link."""
    moment = datetime(2000, 1, 1, tzinfo=UTC)
    blank = Approval(
        approval_id="",
        pipeline="",
        stage="",
        action="",
        pipeline_execution_id=None,
        region="",
        token="",
        rules=Rules(channel="", approvers=Approvers()),
        requested_at=moment,
        deadline_at=moment,
        expires=moment,
    )
    return list(audit_record(blank))


def audit_rows(
    target: Target,
    since: datetime,
    until: datetime,
    *,
    pipeline: str | None = None,
    outcome: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The audit rows of the range, oldest first, one at a time."""
    for approval in approvals(target, since, until):
        if pipeline is not None and not fnmatchcase(approval.pipeline, pipeline):
            continue
        if outcome is not None and (approval.outcome or "pending") != outcome:
            continue
        yield audit_record(approval)


def run_audit(
    target: Target,
    *,
    since: datetime,
    until: datetime,
    pipeline: str | None,
    outcome: str | None,
    fmt: str,
    out: TextIO,
) -> int:
    rows = audit_rows(target, since, until, pipeline=pipeline, outcome=outcome)
    write_rows(rows, fmt, out, COLUMNS, fields())
    return 0
