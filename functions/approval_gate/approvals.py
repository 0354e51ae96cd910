"""Approvals CodePipeline settled itself: closed by the pipeline's own events.

Approved or rejected in CodePipeline's console, superseded, stopped or expired: the
pipeline_events function learns it from CodePipeline's events and closes the approvals of
that pipeline execution here, so their workflows end now instead of at their deadline.
"""

from __future__ import annotations

import logging
from typing import Any

from botocore.exceptions import ClientError

from approval_gate.clock import Clock
from approval_gate.store import DECIDED_ELSEWHERE, PENDING, AlreadyDecided, ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: The error a workflow's waiting task fails with when its approval was settled outside
#: Slack; the workflow catches it and closes the request without PutApprovalResult.
DECIDED_ELSEWHERE_ERROR = "DecidedElsewhere"


def settle_elsewhere(
    *,
    pipeline_execution_id: str,
    stage: str | None,
    action: str | None,
    note: str,
    store: ApprovalStore,
    sfn: Any,
    clock: Clock,
) -> list[str]:
    """Close the open approvals of a pipeline execution that CodePipeline settled itself
    (approved or rejected in the console, superseded, stopped, expired).

    Found through the pipeline execution id start_approval stored (CodePipeline's events
    carry no approval token). Each is marked DECIDED_ELSEWHERE by conditional write, so a
    click racing it cannot also win, and its waiting task fails with DecidedElsewhere,
    so the workflow ends now instead of at its deadline. Returns the approval ids closed.
    """
    closed = []
    for approval in store.by_pipeline_execution(pipeline_execution_id):
        if approval.status != PENDING:
            continue
        if stage is not None and (approval.stage, approval.action) != (stage, action):
            continue
        try:
            settled = store.decide(
                approval.approval_id,
                status=DECIDED_ELSEWHERE,
                decided_by=(),
                reason=None,
                at=clock(),
                note=note,
            )
        except AlreadyDecided:
            continue
        closed.append(settled.approval_id)
        if settled.task_token:
            try:
                sfn.send_task_failure(
                    taskToken=settled.task_token, error=DECIDED_ELSEWHERE_ERROR, cause=note[:256]
                )
            except ClientError as exc:
                # Between two asks no task waits: the next ask finds the request settled.
                LOG.info(
                    "no task waited for the approval settled elsewhere",
                    extra={
                        "approval_id": settled.approval_id,
                        "error": exc.response.get("Error", {}).get("Code"),
                    },
                )
        LOG.info("approval settled outside Slack", extra={"approval_id": settled.approval_id})
    return closed
