"""Approvals that CodePipeline settled itself, and the note that says why.

An approval approved or rejected in the CodePipeline console, or whose run was superseded,
stopped or ended before a decision, can no longer be decided in Slack. The execution's
events say why, and `handle_event` closes it with that note through
`closing.settle_elsewhere`. A console decision whose execution names the IAM principal who
made it (ListActionExecutions' `updatedBy`) is recorded as theirs, with the console's
comment as its reason, so the audit trail says who decided and why.

The note is kept with the approval and shown in Slack as it is, so it is written in the
language of the people who read it (`language`); the constants below are the English.
"""

from __future__ import annotations

from dataclasses import dataclass

from approval_gate.feed.details import ActionDetails
from approval_gate.feed.events import PIPELINE, PipelineEvent, is_approval
from approval_gate.i18n import tr

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


def notes(language: str) -> dict[str, str]:
    """Each note above (its English) in ``language``."""
    return {
        # Translators: why an approval request can no longer be decided in Slack, shown on
        # the request (as are the other notes of this list).
        APPROVED_IN_CONSOLE: tr(language, "Approved in the CodePipeline console"),
        REJECTED_IN_CONSOLE: tr(language, "Rejected in the CodePipeline console, or expired there"),
        REJECTED_BY_SOMEONE: tr(language, "Rejected in the CodePipeline console"),
        CANCELLED_IN_CODEPIPELINE: tr(language, "Cancelled in CodePipeline"),
        SUPERSEDED: tr(language, "Superseded by a newer run"),
        STOPPED: tr(language, "The pipeline run was stopped"),
        ENDED_BEFORE_DECISION: tr(language, "The pipeline run ended before a decision"),
    }


@dataclass(frozen=True)
class Settlement:
    """How CodePipeline settled the execution's open approvals: the note, and for a
    console decision that names its principal, who decided (their ARN) and the comment."""

    note: str
    decided_by: tuple[str, ...] = ()
    reason: str | None = None


def settlement_note(
    event: PipelineEvent, details: ActionDetails | None, language: str
) -> str | None:
    """Why CodePipeline settled the execution's open approvals itself, in ``language``, or
    None."""
    note = None
    if is_approval(event):
        if event.state == "SUCCEEDED":
            note = APPROVED_IN_CONSOLE
        elif event.state == "FAILED":
            summary = details.summary if details else None
            if summary:
                # Translators: %(summary)s is what CodePipeline says of the rejection (the
                # comment typed in the console).
                return tr(
                    language,
                    "Rejected in the CodePipeline console, or expired there: %(summary)s",
                    summary=summary,
                )
            note = REJECTED_IN_CONSOLE
        elif event.state in ("CANCELED", "ABANDONED"):
            note = CANCELLED_IN_CODEPIPELINE
    elif event.kind == PIPELINE:
        note = _PIPELINE_NOTES.get(event.state)
    return notes(language)[note] if note else None


def settlement(
    event: PipelineEvent, details: ActionDetails | None, language: str
) -> Settlement | None:
    """The settlement to record for this event (its note in ``language``), or None when it
    settles nothing.

    Only an approval's end whose execution names a principal (`details.updated_by`) is
    someone's decision; without one (CodePipeline could not say, or the approval
    expired) the request closes with the note alone, as before."""
    note = settlement_note(event, details, language)
    if note is None:
        return None
    decided = event.state in ("SUCCEEDED", "FAILED") and is_approval(event)
    if details is None or details.updated_by is None or not decided:
        return Settlement(note)
    said = APPROVED_IN_CONSOLE if event.state == "SUCCEEDED" else REJECTED_BY_SOMEONE
    return Settlement(
        notes(language)[said], decided_by=(details.updated_by,), reason=details.comment
    )
