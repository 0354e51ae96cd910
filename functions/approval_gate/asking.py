"""Asking the approvers: the request posted in Slack, or sent by the fallback topic.

The workflow's Ask step calls `ask` with its task token, first and after each reminder.
A Slack failure that may pass is left to the step's Retry (SlackUnavailable); a lasting
one, or one still failing on the last retry, sends the request by SNS instead, once per
approval, and the request stays open.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.checks import Checker
from approval_gate.clock import Clock, utc_now
from approval_gate.fallback_messages import fallback_subject, fallback_text
from approval_gate.messages import request_blocks, request_text
from approval_gate.posting import post_request, update_request
from approval_gate.store import Approval, ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

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


def topic_notifier(sns: Any, topic_arn: str | None) -> Notify | None:
    """The fallback that publishes to the SNS topic; None when there is no topic, and then
    Slack's errors reach the workflow (to retry, and in the end to fail the step)."""
    if not topic_arn:
        return None

    def notify(subject: str, text: str) -> None:
        sns.publish(TopicArn=topic_arn, Subject=subject, Message=text)

    return notify


def ask(
    approval_id: str,
    task_token: str,
    *,
    store: ApprovalStore,
    slack: Any,
    clock: Clock = utc_now,
    retries_left: int = 0,
    fallback: Notify | None = None,
    checker: Checker | None = None,
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
    if checker is not None and approval.rules.checks is not None:
        # Read at every ask, so at every reminder too (DESIGN §8.3): the request shows them,
        # and a click is judged by them.
        approval = store.save_checks(approval_id, checker(approval))
        # Their alarms' state changes update the request live (live_checks).
        store.watch_alarms(approval, clock())
    blocks = request_blocks(approval, clock())
    text = request_text(approval)
    try:
        updated = update_request(slack, store, approval, text=text, blocks=blocks)
        if updated is not None:
            posted = updated != (approval.channel, approval.message_ts)
            asked = {"channel": updated[0], "ts": updated[1], "posted": posted}
        else:
            # An earlier post went unanswered (posting.MAYBE_POSTED), or the request went
            # by the fallback: Slack may have posted it; adopt it rather than post twice.
            look_first = bool(approval.channel) or approval.fallback_at is not None
            channel, ts = post_request(
                slack, store, approval, text=text, blocks=blocks, look_first=look_first
            )
            asked = {"channel": channel, "ts": ts, "posted": True}
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
    LOG.info(
        "asked approvers in Slack", extra={"channel": asked["channel"], "posted": asked["posted"]}
    )
    return asked


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
