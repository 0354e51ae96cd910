"""Resuming the waiting workflow with a decision recorded in Slack, or ending a hold.

The fourth step of a click's path (docs/architecture.md, "The path of a click"): the
workflow waits on a task token kept in the approvals table; `SendTaskSuccess` hands it the
decision record. A token that no longer waits is not an error: the decision is recorded,
and the deadline step reads and reports it.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from botocore.exceptions import ClientError

from approval_gate.reporting import decision
from approval_gate.store import APPROVED, HELD, REJECTED, Approval

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


def redeliver(approval: Approval, sfn: Any) -> None:
    """A click on a request decided (or held) in Slack but not yet closed: hand the
    decision to the workflow again, in case the first SendTaskSuccess was lost (Lambda
    died, Step Functions unreachable). Harmless when it arrived: the task no longer waits,
    and that is ignored (a hold waits on a token of its own, never this one)."""
    if approval.status in (APPROVED, REJECTED, HELD) and approval.closed_at is None:
        try:
            resume_workflow(approval, sfn)
        except ClientError as exc:
            LOG.warning(
                "could not hand the recorded decision to the workflow again",
                extra={"approval_id": approval.approval_id, "error": exc.response.get("Error")},
            )


def resume_workflow(approval: Approval, sfn: Any) -> bool:
    """SendTaskSuccess with the decision; False if the task no longer waits.

    The decision is recorded already, so a task that timed out meanwhile is not an error:
    the deadline step reads the recorded decision and reports it.
    """
    if not approval.task_token:
        LOG.error(
            "decided an approval that has no task token",
            extra={"approval_id": approval.approval_id},
        )
        return False
    try:
        sfn.send_task_success(taskToken=approval.task_token, output=json.dumps(decision(approval)))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            LOG.warning(
                "the workflow no longer waits for this decision; the deadline step will report it",
                extra={"approval_id": approval.approval_id, "error": code},
            )
            return False
        raise
    return True


def end_hold_wait(approval: Approval, sfn: Any) -> None:
    """End a hold's wait with its token (DESIGN §8.2): the "End Hold" step then reads what
    a cancel or an override recorded. A hold whose wait has not begun, or has ended, needs
    nothing: its own steps read the item too."""
    if not approval.hold_token:
        return
    try:
        sfn.send_task_success(taskToken=approval.hold_token, output=json.dumps({}))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code not in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            raise
        LOG.info("the hold no longer waited", extra={"approval_id": approval.approval_id})
