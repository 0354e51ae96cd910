"""The request message in Slack: posted once, then updated; replaced if someone deleted it.

Slack answers `message_not_found` when the message to update is gone (deleted by a person
or by retention). The request then goes out again as a fresh message in the same channel
that says it replaces the lost one, and the table keeps the new ts, so every later update
(tally, reminder refresh, close) lands on the replacement.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk.errors import SlackApiError

from approval_gate.store import Approval, ApprovalStore

LOG = logging.getLogger("approval-gate")

#: Said on a message that replaces a deleted request message.
REPLACES_TEXT = (
    ":information_source: This message replaces the earlier request message, "
    "which was deleted. Votes cast there still count."
)


def replacement_note() -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": REPLACES_TEXT}]}


def post_request(
    slack: Any, store: ApprovalStore, approval: Approval, *, text: str, blocks: list[Any]
) -> tuple[str, str]:
    """Post the request in the policy's channel and keep where it went: (channel, ts)."""
    response = slack.chat_postMessage(
        channel=approval.channel or approval.rules.channel,
        text=text,
        blocks=blocks,
        unfurl_links=False,
    )
    channel, ts = str(response["channel"]), str(response["ts"])
    store.save_message(approval.approval_id, channel, ts)
    return channel, ts


def update_request(
    slack: Any, store: ApprovalStore, approval: Approval, *, text: str, blocks: list[Any]
) -> tuple[str, str] | None:
    """Update the request message in place; if Slack lost it, post a replacement.

    None when there is no message to update (the request was never posted). Any other
    Slack error goes up to the caller.
    """
    if not (approval.channel and approval.message_ts):
        return None
    try:
        slack.chat_update(
            channel=approval.channel, ts=approval.message_ts, text=text, blocks=blocks
        )
    except SlackApiError as exc:
        if exc.response.get("error") != "message_not_found":
            raise
        LOG.warning(
            "the request message is gone from Slack; posting a replacement",
            extra={"approval_id": approval.approval_id, "channel": approval.channel},
        )
        return post_request(slack, store, approval, text=text, blocks=[*blocks, replacement_note()])
    return approval.channel, approval.message_ts
