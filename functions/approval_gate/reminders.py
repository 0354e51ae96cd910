"""The reminder cycle: while a request waits, remind the approvers and escalate once.

Each time the waiting task's heartbeat runs out, the workflow calls `remind`: a reminder
in the request's thread, an escalation once enough reminders went unanswered, and the next
heartbeat (the intervals stretch on a long wait, so the workflow's history stays bounded).
The collaborators (table, Slack client, clock) are arguments, as everywhere in the domain.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.clock import Clock
from approval_gate.reminder_messages import escalation_note, escalation_text, reminder_text
from approval_gate.reporting import decision
from approval_gate.store import DECIDED_ELSEWHERE, PENDING, AlreadyDecided, Approval, ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

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
    approval = approval._replace(escalated=True)
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
