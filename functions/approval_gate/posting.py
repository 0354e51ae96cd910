"""The request message in Slack: posted once, then updated; replaced if someone deleted it.

Slack answers `message_not_found` when the message to update is gone (deleted by a person
or by retention). The request then goes out again as a fresh message in the same channel
that says it replaces the lost one, and the table keeps the new ts, so every later update
(tally, reminder refresh, close) lands on the replacement.

A post whose answer is lost (a timeout, a dropped connection) may have been carried out:
Slack posted the message and the gate never learnt its ts. Posting again would leave a
second request with live buttons that nothing ever closes. So every request carries
Slack message metadata naming its approval (`REQUEST_EVENT`), the SDK never retries a
post on its own after a dropped connection, and after such a loss (at once, and again
before the next attempt posts: `MAYBE_POSTED`) the gate looks for the message it already
posted in the channel's recent history (`conversations.history`,
docs/security.md#slack-scopes) and adopts it.
"""

from __future__ import annotations

import logging
from typing import Any

from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.http_retry.builtin_handlers import ConnectionErrorRetryHandler

from approval_gate.i18n import tr
from approval_gate.store import Approval, ApprovalStore

LOG = logging.getLogger("approval-gate")


def replaces_text(language: str) -> str:
    """Said on a message that replaces a deleted request message."""
    # Translators: a note on a request message posted again because someone deleted it.
    said = tr(
        language,
        "This message replaces the earlier request message, which was deleted. Votes cast "
        "there still count.",
    )
    return f":information_source: {said}"


#: The metadata event type of a request message; its payload is `{"approval_id": ...}`.
REQUEST_EVENT = "approval_gate_request"
#: The message ts kept after a post whose answer was lost and whose message was not found
#: (yet): a channel but no ts, so every reader sees no message, and the next post looks
#: for it first.
MAYBE_POSTED = ""
#: How far before the approval was requested its message is looked for (clock skew).
LOOKBACK_SECONDS = 60
#: conversations.history pages read at most when looking (each up to `HISTORY_PAGE`).
HISTORY_PAGES = 3
HISTORY_PAGE = 200


def replacement_note(language: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": replaces_text(language)}]}


def post_request(
    slack: Any,
    store: ApprovalStore,
    approval: Approval,
    *,
    text: str,
    blocks: list[Any],
    look_first: bool = False,
) -> tuple[str, str]:
    """Post the request in the policy's channel and keep where it went: (channel, ts).

    `look_first`: an earlier attempt may have posted it (its answer was lost): adopt that
    message if the channel has it. A post whose own answer is lost is looked for at once;
    if it is not found the error goes up, and the caller's retry looks first.
    """
    channel = approval.channel or approval.rules.channel
    if look_first:
        found = find_request(slack, channel, approval)
        if found is not None:
            store.save_message(approval.approval_id, channel, found)
            return channel, found
    try:
        response = _without_connection_retry(slack).chat_postMessage(
            channel=channel,
            text=text,
            blocks=blocks,
            unfurl_links=False,
            metadata={
                "event_type": REQUEST_EVENT,
                "event_payload": {"approval_id": approval.approval_id},
            },
        )
    except SlackApiError:
        raise  # Slack answered: nothing was posted
    except (SlackClientError, OSError):
        found = find_request(slack, channel, approval)
        if found is None:
            # Remember that it may be in Slack all the same: the next attempt looks first.
            store.save_message(approval.approval_id, channel, MAYBE_POSTED)
            raise
        LOG.warning(
            "the request's post went unanswered but Slack had posted it; keeping that message",
            extra={"approval_id": approval.approval_id, "channel": channel},
        )
        store.save_message(approval.approval_id, channel, found)
        return channel, found
    channel, ts = str(response["channel"]), str(response["ts"])
    store.save_message(approval.approval_id, channel, ts)
    return channel, ts


def find_request(
    slack: Any, channel: str, approval: Approval, *, strict: bool = False
) -> str | None:
    """The ts of the request message the gate posted for `approval` in `channel`, found by
    its metadata in the history since the approval was requested; None if not there.

    Best effort: when the history cannot be read (no `channels:history` /
    `groups:history` scope, Slack's trouble) it is logged and None comes back, and the
    caller posts as it did before it looked; with `strict`, the error goes up after the
    log, for a caller that must not take "could not look" for "not there".
    """
    oldest = f"{approval.requested_at.timestamp() - LOOKBACK_SECONDS:.6f}"
    cursor: str | None = None
    try:
        for _ in range(HISTORY_PAGES):
            page = slack.conversations_history(
                channel=channel,
                oldest=oldest,
                limit=HISTORY_PAGE,
                include_all_metadata=True,
                **({"cursor": cursor} if cursor else {}),
            )
            for message in page.get("messages") or []:
                metadata = message.get("metadata") or {}
                payload = metadata.get("event_payload") or {}
                if (
                    metadata.get("event_type") == REQUEST_EVENT
                    and payload.get("approval_id") == approval.approval_id
                ):
                    return str(message["ts"])
            cursor = (page.get("response_metadata") or {}).get("next_cursor") or None
            if cursor is None:
                return None
    except Exception as exc:  # best effort: the caller goes on as it would without it
        LOG.warning(
            "could not look for the request message in the channel's history",
            extra={"approval_id": approval.approval_id, "error": repr(exc)},
        )
        if strict:
            raise
    return None


def _without_connection_retry(slack: Any) -> Any:
    """The client without the SDK's retry of a dropped connection: chat.postMessage is not
    idempotent, and a connection dropped after Slack posted would post the request twice."""
    handlers = getattr(slack, "retry_handlers", None)
    if not isinstance(slack, WebClient) or not handlers:
        return slack
    kept = [h for h in handlers if not isinstance(h, ConnectionErrorRetryHandler)]
    if len(kept) == len(handlers):
        return slack
    return WebClient(
        token=slack.token,
        base_url=slack.base_url,
        timeout=slack.timeout,
        headers=slack.headers,
        retry_handlers=kept,
    )


def update_request(
    slack: Any,
    store: ApprovalStore,
    approval: Approval,
    *,
    text: str,
    blocks: list[Any],
    find_lost: bool = False,
) -> tuple[str, str] | None:
    """Update the request message in place; if Slack lost it, post a replacement.

    None when there is no message to update (the request was never posted). Any other
    Slack error goes up to the caller. With `find_lost` (the tally, the close), a post
    whose answer was lost (`MAYBE_POSTED`) may have put the message in Slack all the same:
    it is looked for first and, when found, kept and updated, so a decided request never
    leaves live buttons behind; when the history cannot be read, that error goes up (the
    close step's retry looks again). The ask step looks for it itself (`post_request`).
    """
    if find_lost and approval.channel and approval.message_ts == MAYBE_POSTED:
        found = find_request(slack, approval.channel, approval, strict=True)
        if found is None:
            return None
        LOG.warning(
            "found the request message whose post went unanswered; updating it",
            extra={"approval_id": approval.approval_id, "channel": approval.channel},
        )
        store.save_message(approval.approval_id, approval.channel, found)
        approval = approval._replace(message_ts=found)
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
        return post_request(
            slack,
            store,
            approval,
            text=text,
            blocks=[*blocks, replacement_note(approval.rules.language)],
        )
    return approval.channel, approval.message_ts
