"""The approval's life, one function per step of the workflow.

Each function takes its collaborators (table, clients, clock) as arguments, so it runs the
same in Lambda, in the sandbox and in a unit test.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.authors import ChangeAuthors
from approval_gate.clock import Clock, iso, utc_now
from approval_gate.messages import (
    closed_blocks,
    closed_text,
    escalation_note,
    escalation_text,
    fallback_subject,
    fallback_text,
    reminder_text,
    request_blocks,
    request_text,
)
from approval_gate.policy import Policy
from approval_gate.posting import post_request, update_request
from approval_gate.request import ApprovalRequest
from approval_gate.store import (
    DECIDED_ELSEWHERE,
    EXPIRED,
    PENDING,
    AlreadyDecided,
    Approval,
    ApprovalStore,
    decision,
)
from approval_gate.text import human_duration

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


# --- start ------------------------------------------------------------------------------


def decision_deadline(
    requested_at: datetime, expires: datetime, deadline: int, margin: int
) -> datetime:
    """The policy's deadline, capped by CodePipeline's expiry less the safety margin.

    So the gate always decides before CodePipeline fails the action by itself. Never
    earlier than the request itself.
    """
    by_policy = requested_at + timedelta(seconds=deadline)
    by_codepipeline = expires - timedelta(seconds=margin)
    return max(requested_at, min(by_policy, by_codepipeline))


def find_pipeline_execution_id(codepipeline: Any, request: ApprovalRequest) -> str | None:
    """The pipeline execution waiting on this approval (the SNS message does not say).

    GetPipelineState names the token of the latest execution of each action; in PARALLEL
    execution mode several executions wait at once, and the token is the action
    execution's externalExecutionId in ListActionExecutions.
    """
    state = codepipeline.get_pipeline_state(name=request.pipeline)
    for stage in state.get("stageStates", []):
        if stage.get("stageName") != request.stage:
            continue
        for action in stage.get("actionStates", []):
            latest = action.get("latestExecution") or {}
            if action.get("actionName") == request.action and latest.get("token") == request.token:
                execution = (stage.get("latestExecution") or {}).get("pipelineExecutionId")
                if execution:
                    return str(execution)
    paginator_kwargs: dict[str, Any] = {"pipelineName": request.pipeline}
    response = codepipeline.list_action_executions(**paginator_kwargs)
    for detail in response.get("actionExecutionDetails", []):
        if detail.get("stageName") != request.stage or detail.get("actionName") != request.action:
            continue
        result = (detail.get("output") or {}).get("executionResult") or {}
        if result.get("externalExecutionId") == request.token:
            return str(detail.get("pipelineExecutionId"))
    return None


@dataclass(frozen=True)
class Started:
    approval_id: str
    execution_name: str
    duplicate: bool


def workflow_input(approval: Approval) -> dict[str, Any]:
    """The workflow's input: what the states need, the same for every delivery."""
    return {
        "approval_id": approval.approval_id,
        "pipeline": approval.pipeline,
        "stage": approval.stage,
        "action": approval.action,
        "token": approval.token,
        "deadline": iso(approval.deadline_at),
        "heartbeat": next_reminder_in(approval.rules.reminder_every, 0, None),
    }


def start(
    request: ApprovalRequest,
    *,
    notified_at: datetime | None,
    policy: Policy,
    store: ApprovalStore,
    codepipeline: Any,
    sfn: Any,
    state_machine_arn: str,
    clock: Clock,
    find_authors: Callable[[str | None], ChangeAuthors] | None = None,
) -> Started:
    """Record the request and start its workflow, exactly once per request.

    A duplicate SNS delivery finds the stored item, sends the same input under the same
    execution name, and Step Functions answers with the execution that already runs. A
    retry after a crash between the two steps starts the workflow it missed.
    """
    approval_id = request.approval_id
    existing = store.get(approval_id)
    duplicate = existing is not None
    if existing is None:
        rules = policy.resolve(request.pipeline, request.stage, request.action)
        requested_at = notified_at or clock()
        try:
            execution_id = find_pipeline_execution_id(codepipeline, request)
        except ClientError as exc:
            LOG.warning(
                "could not find the pipeline execution; closing from CodePipeline events "
                "will not work for this approval",
                extra={"error": exc.response.get("Error", {}).get("Code")},
            )
            execution_id = None
        authors = find_authors(execution_id) if find_authors else ChangeAuthors()
        approval = Approval(
            approval_id=approval_id,
            pipeline=request.pipeline,
            stage=request.stage,
            action=request.action,
            pipeline_execution_id=execution_id,
            region=request.region,
            token=request.token,
            rules=rules,
            requested_at=requested_at,
            deadline_at=decision_deadline(
                requested_at, request.expires, rules.deadline, rules.deadline_margin
            ),
            expires=request.expires,
            custom_data=request.custom_data,
            external_entity_link=request.external_entity_link,
            console_link=request.console_link,
            authors=authors.identities,
            author_users=authors.slack_users,
            change=authors.change,
        )
        if approval.deadline_at - requested_at < timedelta(seconds=rules.deadline):
            LOG.warning(
                "CodePipeline's own expiry, less deadline_margin, comes before the policy's "
                "deadline: the gate decides earlier",
                extra={"approval_id": approval_id, "deadline": iso(approval.deadline_at)},
            )
        if not store.create(approval):
            duplicate = True
            existing = store.get(approval_id)
        else:
            existing = approval
    assert existing is not None
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=request.execution_name,
            input=json.dumps(workflow_input(existing)),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        duplicate = True
    return Started(
        approval_id=approval_id, execution_name=request.execution_name, duplicate=duplicate
    )


# --- ask ---------------------------------------------------------------------------------


#: Slack errors worth another try: rate limits, Slack's own trouble and timeouts. Anything
#: else (channel_not_found, not_in_channel, invalid_auth, ...) will fail again as it is.
TRANSIENT_SLACK_ERRORS = frozenset(
    {"ratelimited", "service_unavailable", "internal_error", "fatal_error", "request_timeout"}
)


def slack_failure(exc: Exception) -> tuple[str, bool]:
    """What went wrong talking to Slack, and whether trying again may help."""
    if isinstance(exc, SlackApiError):
        status = int(getattr(exc.response, "status_code", 200) or 200)
        error = str(exc.response.get("error") or f"HTTP {status}")
        return error, status == 429 or status >= 500 or error in TRANSIENT_SLACK_ERRORS
    return type(exc).__name__, True  # no answer: timeouts, dropped connections


class SlackUnavailable(Exception):
    """Slack failed in a way that may pass (rate limit, its own trouble, timeout, dropped
    connection): the workflow's Retry on the Ask step catches this name and asks again."""


#: Sends the fallback notification: notify(subject, text).
Notify = Callable[[str, str], None]


def ask(
    approval_id: str,
    task_token: str,
    *,
    store: ApprovalStore,
    slack: Any,
    clock: Clock = utc_now,
    retries_left: int = 0,
    fallback: Notify | None = None,
) -> dict[str, Any]:
    """Post the request to Slack (or refresh it, on a retry or after a reminder) and keep
    the task token.

    The token is stored before the message is posted, so no button exists whose click
    could find no token. Asking again updates the message it posted before (a deleted one
    is replaced). When Slack fails for good (`channel_not_found`, ...) or still fails on
    the workflow's last retry, the request goes out through `fallback` (the SNS topic)
    and stays open: the task keeps waiting, CodePipeline's console can decide, and the
    next reminder cycle asks Slack again.
    """
    approval = store.save_task_token(approval_id, task_token)
    blocks = request_blocks(approval, clock())
    text = request_text(approval)
    try:
        updated = update_request(slack, store, approval, text=text, blocks=blocks)
        if updated is not None:
            posted = updated != (approval.channel, approval.message_ts)
            return {"channel": updated[0], "ts": updated[1], "posted": posted}
        channel, ts = post_request(slack, store, approval, text=text, blocks=blocks)
        return {"channel": channel, "ts": ts, "posted": True}
    except (SlackApiError, SlackClientError, OSError) as exc:
        error, transient = slack_failure(exc)
        if transient and (retries_left > 0 or fallback is None):
            # One error name for the workflow's Retry, whatever the exception class was.
            raise SlackUnavailable(f"Slack could not be asked: {error}") from exc
        if fallback is None:
            raise
        notified = fall_back(approval, error, store=store, notify=fallback, clock=clock)
        return {
            "channel": approval.channel,
            "ts": approval.message_ts,
            "posted": False,
            "fallback": error,
            "notified": notified,
        }


def fall_back(
    approval: Approval, slack_error: str, *, store: ApprovalStore, notify: Notify, clock: Clock
) -> bool:
    """Send the request by the fallback topic, once per approval; True if sent now."""
    if not store.mark_fallback(approval.approval_id, at=clock(), reason=slack_error):
        LOG.error(
            "still cannot ask in Slack; the fallback notification went out before",
            extra={"approval_id": approval.approval_id, "slack_error": slack_error},
        )
        return False
    try:
        notify(fallback_subject(approval), fallback_text(approval, slack_error))
    except Exception:
        store.clear_fallback(approval.approval_id)
        raise
    LOG.error(
        "could not ask in Slack; sent the request to the fallback topic and kept it open",
        extra={"approval_id": approval.approval_id, "slack_error": slack_error},
    )
    return True


# --- reminders and escalation -----------------------------------------------------------

#: Reminders go out every `reminder_every` for this many; after that the rest of the wait
#: is shared out so that no approval sends more than MAX_REMINDERS. One reminder cycle
#: costs 13 history events (docs/operations.md), so MAX_REMINDERS keeps the longest wait
#: CodePipeline allows (60 days) far below Step Functions' 25,000-event limit.
REMINDERS_AT_FULL_RATE = 100
MAX_REMINDERS = 500
#: A heartbeat cut short by the deadline leaves less than this: no reminder, and the
#: workflow decides at the deadline (at most this early) instead of waiting again.
LAST_CALL = 2.0


def next_reminder_in(reminder_every: int, reminders_sent: int, seconds_left: float | None) -> int:
    """Seconds until the next reminder (the waiting task's HeartbeatSeconds)."""
    if reminders_sent < REMINDERS_AT_FULL_RATE or seconds_left is None:
        return reminder_every
    remaining = max(1, MAX_REMINDERS - reminders_sent)
    return max(reminder_every, int(seconds_left / remaining) + 1)


def remind(approval_id: str, *, store: ApprovalStore, slack: Any, clock: Clock) -> dict[str, Any]:
    """The heartbeat ran out: remind the approvers in the thread, escalate once when due.

    Doubles as a reconciler: a decision recorded but never delivered to the workflow (its
    SendTaskSuccess failed) is found here and handed on (`decided`).
    """
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if approval.status == DECIDED_ELSEWHERE:  # settled by CodePipeline: close, report nothing
        return {"decided": False, "elsewhere": True, "out_of_time": False, "heartbeat": 1}
    if approval.status != PENDING:
        return {
            "decided": True,
            "out_of_time": False,
            "decision": decision(approval),
            "heartbeat": 1,
        }
    now = clock()
    left = (approval.deadline_at - now).total_seconds()
    rules = approval.rules
    if left <= LAST_CALL:
        return {"decided": False, "out_of_time": True, "heartbeat": 1, "reminded": False}
    heartbeat = next_reminder_in(rules.reminder_every, approval.reminders, left)
    if approval.reminders >= MAX_REMINDERS:
        return {"decided": False, "out_of_time": False, "heartbeat": heartbeat, "reminded": False}
    try:
        approval = store.record_reminder(approval_id)
    except AlreadyDecided as already:
        decided = decision(already.approval)
        return {"decided": True, "out_of_time": False, "decision": decided, "heartbeat": 1}
    if approval.channel and approval.message_ts:
        # The reminder is counted already: a failed post is logged, not retried, so a
        # retry of this step can never count one reminder twice.
        _post(
            slack,
            "reminder",
            channel=approval.channel,
            thread_ts=approval.message_ts,
            text=reminder_text(approval, now),
        )
    escalated = _escalate_if_due(approval, store=store, slack=slack, now=now)
    return {
        "decided": False,
        "out_of_time": False,
        "heartbeat": next_reminder_in(rules.reminder_every, approval.reminders, left),
        "reminded": True,
        "reminders": approval.reminders,
        "escalated": escalated,
    }


def _escalate_if_due(
    approval: Approval, *, store: ApprovalStore, slack: Any, now: datetime
) -> bool:
    """Escalate once, after `escalate_after_reminders` reminders (0 = never)."""
    rules = approval.rules
    after = rules.escalate_after_reminders
    escalation = rules.escalation
    configured = escalation.channel or escalation.mention_groups or escalation.approvers
    if approval.escalated or not after or approval.reminders < after or not configured:
        return approval.escalated
    if not store.mark_escalated(approval.approval_id):
        return True
    approval = replace(approval, escalated=True)
    permalink = None
    if approval.channel and approval.message_ts:
        try:
            permalink = slack.chat_getPermalink(
                channel=approval.channel, message_ts=approval.message_ts
            ).get("permalink")
        except (SlackApiError, SlackClientError, OSError):
            permalink = None  # the escalation still goes out, without the link
    if escalation.channel and not _post(
        slack,
        "escalation",
        channel=escalation.channel,
        text=escalation_text(approval, permalink, now),
    ):
        # Not escalated after all: the next reminder cycle tries again.
        store.clear_escalated(approval.approval_id)
        return False
    if approval.channel and approval.message_ts:
        _post(
            slack,
            "escalation note",
            channel=approval.channel,
            thread_ts=approval.message_ts,
            text=escalation_note(approval),
        )
    LOG.info("escalated", extra={"approval_id": approval.approval_id})
    return True


def _post(slack: Any, what: str, **message: Any) -> bool:
    """chat.postMessage; a failure is logged as an error, never raised."""
    try:
        slack.chat_postMessage(**message)
    except (SlackApiError, SlackClientError, OSError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        LOG.error(
            f"could not post the {what}", extra={"error": error, "channel": message.get("channel")}
        )
        return False
    return True


# --- decision ----------------------------------------------------------------------------


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


# --- decided outside Slack ----------------------------------------------------------------

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


# --- close -------------------------------------------------------------------------------

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
