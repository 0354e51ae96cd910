"""How a request ends: the policy's outcome at the deadline, and the closing step.

`at_deadline` decides a request nobody decided in time (unless a decision just won the
race); `close` records the final status, takes the buttons off the Slack message and
returns the decision record, the workflow's output; when CodePipeline says the approval
was already completed, it first asks CodePipeline whether what it holds is the gate's own
decision (recorded, then its answer lost). `settle_elsewhere` closes the
approvals CodePipeline settled itself (approved or rejected in its console, superseded,
stopped, expired), which the pipeline_events function learns from CodePipeline's events,
so their workflows end now instead of at their deadline.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from approval_gate.clock import Clock
from approval_gate.closed_messages import closed_blocks, closed_text
from approval_gate.holds import Plan, plan
from approval_gate.i18n import tr
from approval_gate.posting import update_request
from approval_gate.reporting import codepipeline_status, decision, summary
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    HELD,
    PENDING,
    REJECTED,
    AlreadyDecided,
    Approval,
    ApprovalStore,
)
from approval_gate.text import human_duration

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


def at_deadline(approval_id: str, *, store: ApprovalStore, clock: Clock) -> dict[str, Any]:
    """The deadline passed: apply the policy's outcome, unless a decision just won the race.

    A click recorded an instant before the deadline whose SendTaskSuccess came too late is
    still the decision: the conditional write tells us so.
    """
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if approval.status == PENDING:
        language = approval.rules.language
        waited = human_duration(
            (approval.deadline_at - approval.requested_at).total_seconds(), language
        )
        approving = approval.rules.on_deadline == "approve"
        if approving:
            # Translators: the CodePipeline summary and the closed request; %(waited)s: a
            # duration such as "1h".
            note = tr(language, "No decision within %(waited)s: approved by policy", waited=waited)
        else:
            # Translators: the CodePipeline summary and the closed request; %(waited)s: a
            # duration such as "1h".
            note = tr(language, "No decision within %(waited)s: rejected by policy", waited=waited)
        now = clock()
        # An approval by policy waits for a deploy window like any other (holds.plan).
        verdict = (
            plan(approval._replace(note=note), now, then=EXPIRED) if approving else Plan(EXPIRED)
        )
        try:
            approval = store.decide(
                approval_id,
                status=verdict.status,
                decided_by=(),  # keeps the votes cast short of a quorum, for the audit
                reason=None,
                at=now,
                note=verdict.note or note,
                held=verdict.held,
            )
        except AlreadyDecided as already:
            approval = already.approval
    return decision(approval)


_ALREADY_COMPLETED = "CodePipeline.ApprovalAlreadyCompletedException"

_STALE_APPROVAL = "CodePipeline.InvalidApprovalTokenException"


def elsewhere_note(report_error: str, language: str) -> str:
    """The note of a request closed because CodePipeline did not take the gate's decision
    (PutApprovalResult's error): shown on the closed request, in the rule's language."""
    if report_error == _ALREADY_COMPLETED:
        # Translators: the closed request's note: someone decided in CodePipeline first.
        return tr(language, "Already decided in CodePipeline")
    if report_error == _STALE_APPROVAL:
        # Translators: the closed request's note.
        return tr(
            language,
            "CodePipeline no longer waits for this approval (expired, superseded or stopped)",
        )
    # Translators: the closed request's note: CodePipeline refused the gate's decision.
    return tr(language, "CodePipeline did not accept the decision")


#: How many pages of the execution's action executions (100 each) the check reads at most.
ACTION_EXECUTION_PAGES = 3


def close(
    approval_id: str,
    *,
    report_error: str | None,
    reported: bool = False,
    store: ApprovalStore,
    slack: Any,
    codepipeline: Any,
    clock: Clock,
) -> dict[str, Any]:
    """Close the request: final status in the table, buttons gone in Slack, the record out.

    `reported`: PutApprovalResult succeeded just before (the record's `reported_at`).
    `report_error` is the error CodePipeline gave to PutApprovalResult, if any: the
    decision then did not count, and the request closes as decided elsewhere. Unless the
    approval was already completed with the gate's own decision: a PutApprovalResult that
    took effect but whose answer was lost (timeout, reset) is retried and meets its own
    result; the request then closes as the gate decided it.
    """
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    own = report_error == _ALREADY_COMPLETED and holds_own_decision(codepipeline, approval)
    if report_error and not own:
        note = elsewhere_note(report_error, approval.rules.language)
        approval = store.close(approval_id, at=clock(), status=DECIDED_ELSEWHERE, note=note)
    else:
        approval = store.close(approval_id, at=clock(), reported=reported or own)
    if approval.rules.checks is not None and approval.rules.checks.alarms:
        store.unwatch_alarms(approval_id, approval.rules.checks.alarms)  # no more live updates
    update_request(
        slack,
        store,
        approval,
        text=closed_text(approval),
        blocks=closed_blocks(approval),
        find_lost=True,  # a message whose post went unanswered is closed too
    )
    return approval.decision_record()


def holds_own_decision(codepipeline: Any, approval: Approval) -> bool:
    """Whether CodePipeline's latest execution of the approval action holds the decision
    the gate sent (its status and summary). False when it holds another, or cannot say:
    the request then closes as decided elsewhere, as it would without this check."""
    if approval.status not in (APPROVED, REJECTED, EXPIRED):
        return False  # the gate sent no decision of its own
    try:
        detail = _approval_execution(codepipeline, approval)
    except (ClientError, BotoCoreError) as exc:
        LOG.warning(
            "could not read CodePipeline's record of the approval",
            extra={"approval_id": approval.approval_id, "error": _error_code(exc)},
        )
        return False
    if detail is None:
        return False
    result = (detail.get("output") or {}).get("executionResult") or {}
    sent = "Succeeded" if codepipeline_status(approval) == "Approved" else "Failed"
    own = detail.get("status") == sent and result.get("externalExecutionSummary") == summary(
        approval
    )
    if own:
        LOG.info(
            "CodePipeline already holds the gate's own decision",
            extra={"approval_id": approval.approval_id},
        )
    return own


def _approval_execution(codepipeline: Any, approval: Approval) -> dict[str, Any] | None:
    """The approval action's execution that carries this approval's token (its
    externalExecutionId), else the newest one of its pipeline execution; None if none."""
    if not approval.pipeline_execution_id:
        return None  # nothing narrows the listing to this approval's run
    # Filtered to one pipeline execution, the first page holds every action execution of
    # most runs; follow nextToken for ACTION_EXECUTION_PAGES pages at most (bounded time).
    kwargs: dict[str, Any] = {
        "pipelineName": approval.pipeline,
        "filter": {"pipelineExecutionId": approval.pipeline_execution_id},
    }
    mine: list[dict[str, Any]] = []
    for _ in range(ACTION_EXECUTION_PAGES):
        response = codepipeline.list_action_executions(**kwargs)
        mine += [
            d
            for d in response.get("actionExecutionDetails", [])
            if d.get("stageName") == approval.stage and d.get("actionName") == approval.action
        ]
        if not response.get("nextToken"):
            break
        kwargs["nextToken"] = response["nextToken"]
    for detail in mine:
        result = (detail.get("output") or {}).get("executionResult") or {}
        if result.get("externalExecutionId") == approval.token:
            return detail
    # ListActionExecutions names no order: the newest is the one updated last.
    return max(mine, key=_updated_at, default=None)


def _updated_at(detail: dict[str, Any]) -> float:
    updated = detail.get("lastUpdateTime")
    return updated.timestamp() if isinstance(updated, datetime) else 0.0


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return type(exc).__name__


#: The error a workflow's waiting task fails with when its approval was settled outside
#: Slack; the workflow catches it and closes the request without PutApprovalResult.
DECIDED_ELSEWHERE_ERROR = "DecidedElsewhere"


#: How long to wait before each new look for the approval an approval action's event names
#: (seconds, about 3 in all). The execution index is a global secondary index: eventually
#: consistent, it can miss an item written a moment ago, and a console decision can come
#: within a second of the request.
INDEX_LAG_WAITS = (0.2, 0.4, 0.8, 1.6)


def _approvals_of(
    store: ApprovalStore,
    pipeline_execution_id: str,
    stage: str | None,
    action: str | None,
    sleep: Callable[[float], None],
) -> list[Approval]:
    """The execution's approvals. For an approval action's event (``stage`` given), look
    again a few times while that action's approval is not among them: the index may not
    show it yet. An event of an approval action the gate never asked about costs those
    waits, once per console decision; a pipeline-level event (superseded, stopped) looks
    once."""
    found = store.by_pipeline_execution(pipeline_execution_id)
    if stage is None:
        return found
    for wait in INDEX_LAG_WAITS:
        if any((a.stage, a.action) == (stage, action) for a in found):
            break
        sleep(wait)
        found = store.by_pipeline_execution(pipeline_execution_id)
    return found


def settle_elsewhere(
    *,
    pipeline_execution_id: str,
    stage: str | None,
    action: str | None,
    note: str,
    store: ApprovalStore,
    sfn: Any,
    clock: Clock,
    decided_by: tuple[str, ...] = (),
    reason: str | None = None,
    decider: Callable[[], tuple[str, tuple[str, ...], str | None]] | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> list[str]:
    """Close the open (or held) approvals of a pipeline execution that CodePipeline settled
    itself (approved or rejected in the console, superseded, stopped, expired).

    `decided_by` and `reason`: who decided in the console (their IAM principal's ARN) and
    the comment typed there, when CodePipeline named them; recorded in the same write.
    `decider`, when given, says (note, decided_by, reason) instead, asked once and only when
    an open approval is found: reading who decided costs a CodePipeline call, which an
    approval the gate itself decided (the common case) does not need.

    Found through the pipeline execution id start_approval stored (CodePipeline's events
    carry no approval token), in an index that lags the table (`_approvals_of`). Each is
    marked DECIDED_ELSEWHERE by conditional write, so a
    click racing it cannot also win, and its waiting task fails with DecidedElsewhere,
    so the workflow ends now instead of at its deadline. Returns the approval ids closed.
    """
    closed = []
    for approval in _approvals_of(store, pipeline_execution_id, stage, action, sleep):
        if approval.status not in (PENDING, HELD):
            continue
        if stage is not None and (approval.stage, approval.action) != (stage, action):
            continue
        if decider is not None:
            note, decided_by, reason = decider()
            decider = None
        try:
            settled = store.decide(
                approval.approval_id,
                status=DECIDED_ELSEWHERE,
                decided_by=decided_by,
                reason=reason,
                at=clock(),
                note=note,
                was=approval.status,
            )
        except AlreadyDecided:
            continue
        closed.append(settled.approval_id)
        # A held approval's workflow waits on the hold's token, an open one's on the ask's.
        token = settled.hold_token if approval.status == HELD else settled.task_token
        if token:
            try:
                sfn.send_task_failure(
                    taskToken=token, error=DECIDED_ELSEWHERE_ERROR, cause=note[:256]
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
