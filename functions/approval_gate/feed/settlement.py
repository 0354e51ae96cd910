"""Approvals that CodePipeline settled itself, and the note that says why.

An approval approved or rejected in the CodePipeline console, or whose run was superseded,
stopped or ended before a decision, can no longer be decided in Slack. The execution's
events say why, and `handle_event` closes it with that note through
`closing.settle_elsewhere`.
"""

from __future__ import annotations

from approval_gate.feed.details import ActionDetails
from approval_gate.feed.events import PIPELINE, PipelineEvent, is_approval

APPROVED_IN_CONSOLE = "Approved in the CodePipeline console"
REJECTED_IN_CONSOLE = "Rejected in the CodePipeline console, or expired there"
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
