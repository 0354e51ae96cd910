"""How a request ends: the policy's outcome at the deadline, and the closing step.

`at_deadline` decides a request nobody decided in time (unless a decision just won the
race); `close` records the final status, takes the buttons off the Slack message and
returns the decision record, the workflow's output. Approvals CodePipeline settled itself
are closed by approval_gate.approvals.
"""

from __future__ import annotations

from typing import Any

from approval_gate.clock import Clock
from approval_gate.messages import closed_blocks, closed_text
from approval_gate.posting import update_request
from approval_gate.store import (
    DECIDED_ELSEWHERE,
    EXPIRED,
    PENDING,
    AlreadyDecided,
    ApprovalStore,
    decision,
)
from approval_gate.text import human_duration


def at_deadline(approval_id: str, *, store: ApprovalStore, clock: Clock) -> dict[str, Any]:
    """The deadline passed: apply the policy's outcome, unless a decision just won the race.

    A click recorded an instant before the deadline whose SendTaskSuccess came too late is
    still the decision: the conditional write tells us so.
    """
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if approval.status == PENDING:
        waited = human_duration((approval.deadline_at - approval.requested_at).total_seconds())
        verb = "approved" if approval.rules.on_deadline == "approve" else "rejected"
        try:
            approval = store.decide(
                approval_id,
                status=EXPIRED,
                decided_by=(),  # keeps the votes cast short of a quorum, for the audit
                reason=None,
                at=clock(),
                note=f"No decision within {waited}: {verb} by policy",
            )
        except AlreadyDecided as already:
            approval = already.approval
    return decision(approval)


_ELSEWHERE_NOTES = {
    "CodePipeline.ApprovalAlreadyCompletedException": "Already decided in CodePipeline",
    "CodePipeline.InvalidApprovalTokenException": (
        "CodePipeline no longer waits for this approval (expired, superseded or stopped)"
    ),
}


def close(
    approval_id: str,
    *,
    report_error: str | None,
    store: ApprovalStore,
    slack: Any,
    clock: Clock,
) -> dict[str, Any]:
    """Close the request: final status in the table, buttons gone in Slack, the record out.

    `report_error` is the error CodePipeline gave to PutApprovalResult, if any: the
    decision then did not count, and the request closes as decided elsewhere.
    """
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if report_error:
        note = _ELSEWHERE_NOTES.get(report_error, "CodePipeline did not accept the decision")
        approval = store.close(approval_id, at=clock(), status=DECIDED_ELSEWHERE, note=note)
    else:
        approval = store.close(approval_id, at=clock())
    update_request(
        slack, store, approval, text=closed_text(approval), blocks=closed_blocks(approval)
    )
    return approval.decision_record()
