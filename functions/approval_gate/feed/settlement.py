"""Approvals that CodePipeline settled itself, and the note that says why.

An approval approved or rejected in the CodePipeline console, or whose run was superseded,
stopped or ended before a decision, can no longer be decided in Slack. The execution's
events say why, and `handle_event` closes it with that note through
`closing.settle_elsewhere`. A console decision whose execution names the IAM principal who
made it (ListActionExecutions' `updatedBy`) is recorded as theirs, with the console's
comment as its reason, so the audit trail says who decided and why.
"""

from __future__ import annotations

from dataclasses import dataclass

from approval_gate.feed.details import ActionDetails
from approval_gate.feed.events import PIPELINE, PipelineEvent, is_approval

APPROVED_IN_CONSOLE = "Approved in the CodePipeline console"
REJECTED_IN_CONSOLE = "Rejected in the CodePipeline console, or expired there"
#: A rejection whose execution names who rejected it (an expiry names nobody).
REJECTED_BY_SOMEONE = "Rejected in the CodePipeline console"
CANCELLED_IN_CODEPIPELINE = "Cancelled in CodePipeline"
SUPERSEDED = "Superseded by a newer run"
STOPPED = "The pipeline run was stopped"
ENDED_BEFORE_DECISION = "The pipeline run ended before a decision"

_PIPELINE_NOTES = {
    "SUPERSEDED": SUPERSEDED,
    "STOPPED": STOPPED,
    "STOPPING": STOPPED,
    "FAILED": ENDED_BEFORE_DECISION,
    "CANCELED": ENDED_BEFORE_DECISION,
}


@dataclass(frozen=True)
class Settlement:
    """How CodePipeline settled the execution's open approvals: the note, and for a
    console decision that names its principal, who decided (their ARN) and the comment."""

    note: str
    decided_by: tuple[str, ...] = ()
    reason: str | None = None


def settlement_note(event: PipelineEvent, details: ActionDetails | None) -> str | None:
    """Why CodePipeline settled the execution's open approvals itself, or None."""
    if is_approval(event):
        if event.state == "SUCCEEDED":
            return APPROVED_IN_CONSOLE
        if event.state == "FAILED":
            summary = details.summary if details else None
            return f"{REJECTED_IN_CONSOLE}: {summary}" if summary else REJECTED_IN_CONSOLE
        if event.state in ("CANCELED", "ABANDONED"):
            return CANCELLED_IN_CODEPIPELINE
        return None
    if event.kind == PIPELINE:
        return _PIPELINE_NOTES.get(event.state)
    return None


def settlement(event: PipelineEvent, details: ActionDetails | None) -> Settlement | None:
    """The settlement to record for this event, or None when it settles nothing.

    Only an approval's end whose execution names a principal (`details.updated_by`) is
    someone's decision; without one (CodePipeline could not say, or the approval
    expired) the request closes with the note alone, as before."""
    note = settlement_note(event, details)
    if note is None:
        return None
    decided = event.state in ("SUCCEEDED", "FAILED") and is_approval(event)
    if details is None or details.updated_by is None or not decided:
        return Settlement(note)
    said = APPROVED_IN_CONSOLE if event.state == "SUCCEEDED" else REJECTED_BY_SOMEONE
    return Settlement(said, decided_by=(details.updated_by,), reason=details.comment)
