"""A request post whose answer was lost (functions/approval_gate/posting.py): Slack may have
posted it, so the gate adopts the message it finds by its metadata instead of posting a
second live request, remembers a loss it could not resolve, and never lets the SDK repeat a
post on a dropped connection."""

from __future__ import annotations

import logging
from typing import Any

import pytest
from approval_gate import asking, closing, posting
from approval_gate.store import Approval, ApprovalStore
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.web.slack_response import SlackResponse

from tests.unit.fakes import (
    APPROVAL_ID,
    FIXED,
    TASK_TOKEN,
    RecordingSlack,
    clock_at,
    make_approval,
)


class LosingSlack(RecordingSlack):
    """Posts every message (kept with its metadata, newest last) and loses the answers of
    the first `lose` posts, as a timeout after Slack did the work; `history_error` makes
    conversations.history answer that error."""

    def __init__(
        self, lose: int = 0, *, keep: bool = True, history_error: str | None = None
    ) -> None:
        super().__init__()
        self.lose = lose
        self.keep = keep
        self.history_error = history_error
        self.posted: list[dict[str, Any]] = []

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        answer = super().chat_postMessage(**kwargs)
        if self.keep:
            self.posted.append({"ts": answer["ts"], "metadata": kwargs.get("metadata")})
        if self.lose > 0:
            self.lose -= 1
            raise TimeoutError("timed out")
        return answer

    def conversations_history(self, **kwargs: Any) -> dict[str, Any]:
        self._record("conversations_history", kwargs)
        if self.history_error:
            response = SlackResponse(
                client=None,
                http_verb="POST",
                api_url="https://slack.com/api/conversations.history",
                req_args={},
                data={"ok": False, "error": self.history_error},
                headers={},
                status_code=200,
            )
            raise SlackApiError(self.history_error, response)
        shown = [dict(m) for m in reversed(self.posted)] if kwargs["include_all_metadata"] else []
        return {"ok": True, "messages": shown, "response_metadata": {"next_cursor": ""}}


def stored(store: ApprovalStore) -> Approval:
    approval = store.get(APPROVAL_ID)
    assert approval is not None
    return approval


def ask(store: ApprovalStore, slack: Any, retries_left: int = 3) -> dict[str, Any]:
    return asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack, retries_left=retries_left)


def test_a_post_whose_answer_was_lost_adopts_the_message_slack_posted(
    store: ApprovalStore,
) -> None:
    store.create(make_approval())
    slack = LosingSlack(lose=1)

    asked = ask(store, slack)

    (posted,) = slack.posted
    assert posted["metadata"] == {
        "event_type": posting.REQUEST_EVENT,
        "event_payload": {"approval_id": APPROVAL_ID},
    }
    assert asked == {"channel": "C0DEPLOYS", "ts": posted["ts"], "posted": True}
    assert stored(store).message_ts == posted["ts"]
    assert slack.methods() == ["chat_postMessage", "conversations_history"]


def test_a_loss_not_resolved_at_once_makes_the_retry_look_before_posting(
    store: ApprovalStore,
) -> None:
    store.create(make_approval())
    slack = LosingSlack(lose=1, keep=False)  # not in the history yet when looked for

    with pytest.raises(asking.SlackUnavailable):
        ask(store, slack)
    remembered = stored(store)
    assert (remembered.channel, remembered.message_ts) == ("C0DEPLOYS", posting.MAYBE_POSTED)

    slack.keep = True  # now it shows up: the message Slack had posted
    slack.posted.append({"ts": "1796144403.000100", "metadata": slack.calls[0][1]["metadata"]})
    asked = ask(store, slack)

    assert asked["ts"] == "1796144403.000100"
    assert [m for m in slack.methods() if m == "chat_postMessage"] == ["chat_postMessage"]


def test_without_the_history_scope_the_gate_posts_as_before_and_warns(
    store: ApprovalStore, caplog: pytest.LogCaptureFixture
) -> None:
    store.create(make_approval())
    store.save_message(APPROVAL_ID, "C0DEPLOYS", posting.MAYBE_POSTED)
    slack = LosingSlack(history_error="missing_scope")

    with caplog.at_level(logging.WARNING, logger="approval-gate"):
        asked = ask(store, slack)

    assert asked["posted"] is True and len(slack.posted) == 1
    assert "could not look for the request message" in caplog.text


def test_a_first_post_does_not_read_the_history(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = LosingSlack()

    ask(store, slack)

    assert slack.methods() == ["chat_postMessage"]


def test_the_sdk_never_repeats_a_post_on_a_dropped_connection() -> None:
    limits = RateLimitErrorRetryHandler()
    client = WebClient(
        token="xoxb-test",
        base_url="http://127.0.0.1:9/api/",
        timeout=3,
        retry_handlers=[ConnectionErrorRetryHandler(max_retry_count=1), limits],
    )

    posting_client = posting._without_connection_retry(client)

    assert posting_client.retry_handlers == [limits]
    assert (posting_client.token, posting_client.base_url, posting_client.timeout) == (
        "xoxb-test",
        "http://127.0.0.1:9/api/",
        3,
    )
    assert client.retry_handlers[0].__class__ is ConnectionErrorRetryHandler  # left as it was


def _decide_after_a_lost_post(store: ApprovalStore, slack: LosingSlack) -> None:
    """The post's answer was lost and the history could not show it at the time: the item
    says MAYBE_POSTED. A click on the message Slack did post then decides it."""
    store.create(make_approval())
    store.save_message(APPROVAL_ID, "C0DEPLOYS", posting.MAYBE_POSTED)
    slack.posted.append(
        {
            "ts": "1796144403.000100",
            "metadata": {
                "event_type": posting.REQUEST_EVENT,
                "event_payload": {"approval_id": APPROVAL_ID},
            },
        }
    )
    store.decide(APPROVAL_ID, status="APPROVED", decided_by=("U0ALICE",), reason=None, at=FIXED)


def test_closing_finds_the_message_a_lost_post_left_and_closes_it(store: ApprovalStore) -> None:
    """Found by the soak with platform faults: the close step updated nothing (no ts kept),
    and the decided request kept its live buttons."""
    slack = LosingSlack()
    _decide_after_a_lost_post(store, slack)

    closing.close(
        APPROVAL_ID,
        report_error=None,
        store=store,
        slack=slack,
        codepipeline=None,
        clock=clock_at(FIXED),
    )

    (update,) = [kw for method, kw in slack.calls if method == "chat_update"]
    assert update["ts"] == "1796144403.000100"
    assert not any(block.get("type") == "actions" for block in update["blocks"])
    assert stored(store).message_ts == "1796144403.000100"


def test_closing_retries_when_the_history_cannot_be_read(store: ApprovalStore) -> None:
    slack = LosingSlack(history_error="ratelimited")
    _decide_after_a_lost_post(store, slack)

    with pytest.raises(SlackApiError):
        closing.close(
            APPROVAL_ID,
            report_error=None,
            store=store,
            slack=slack,
            codepipeline=None,
            clock=clock_at(FIXED),
        )

    assert not any(method == "chat_update" for method, _ in slack.calls)
