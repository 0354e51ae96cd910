"""When Slack fails while asking: retry, fall back to SNS (once), replace a lost message;
a 429's Retry-After waited out only within the function's time; a lost SendTaskSuccess
handed on again by the next click."""

from __future__ import annotations

from typing import Any

import pytest
from approval_gate import asking
from approval_gate.interactions import record_click
from approval_gate.slack import RateLimitWithinTime
from approval_gate.store import APPROVED, ApprovalStore
from approval_gate.votes import Click
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.web.slack_response import SlackResponse

from tests.unit.fakes import (
    APPROVAL_ID,
    FIXED,
    TASK_TOKEN,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
)


def slack_error(error: str, status: int = 200) -> SlackApiError:
    response = SlackResponse(
        client=None,
        http_verb="POST",
        api_url="https://slack.com/api/chat.postMessage",
        req_args={},
        data={"ok": False, "error": error},
        headers={},
        status_code=status,
    )
    return SlackApiError(f"The request failed: {error}", response)


class FailingSlack(RecordingSlack):
    """Fails chat.postMessage / chat.update with the given errors, one per call, then works."""

    def __init__(self, post: list[Exception] | None = None, update: list[Exception] | None = None):
        super().__init__()
        self.post_failures = list(post or [])
        self.update_failures = list(update or [])

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        if self.post_failures:
            self._record("chat_postMessage!", kwargs)
            raise self.post_failures.pop(0)
        return super().chat_postMessage(**kwargs)

    def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        if self.update_failures:
            self._record("chat_update!", kwargs)
            raise self.update_failures.pop(0)
        return super().chat_update(**kwargs)


class Notices:
    def __init__(self, fail: bool = False) -> None:
        self.sent: list[tuple[str, str]] = []
        self.fail = fail

    def __call__(self, subject: str, text: str) -> None:
        if self.fail:
            raise ConnectionError("SNS unreachable")
        self.sent.append((subject, text))


@pytest.mark.parametrize(
    "failure",
    [
        slack_error("ratelimited", 429),
        slack_error("service_unavailable", 503),
        slack_error("internal_error", 500),
        TimeoutError("timed out"),
        ConnectionResetError("reset"),
    ],
    ids=["429", "503", "500", "timeout", "reset"],
)
def test_a_passing_slack_failure_is_left_to_the_workflows_retry(
    store: ApprovalStore, failure: Exception
) -> None:
    store.create(make_approval())
    notices = Notices()

    # One error name for the Ask step's Retry, whatever the exception was.
    with pytest.raises(asking.SlackUnavailable):
        asking.ask(
            APPROVAL_ID,
            TASK_TOKEN,
            store=store,
            slack=FailingSlack(post=[failure]),
            retries_left=2,
            fallback=notices,
        )

    assert notices.sent == []
    assert store.get(APPROVAL_ID).fallback_at is None


def test_on_the_last_retry_the_request_goes_by_sns_and_stays_open(store: ApprovalStore) -> None:
    store.create(make_approval())
    notices = Notices()

    answer = asking.ask(
        APPROVAL_ID,
        TASK_TOKEN,
        store=store,
        slack=FailingSlack(post=[slack_error("service_unavailable", 503)]),
        retries_left=0,
        fallback=notices,
        clock=clock_at(FIXED),
    )

    assert answer["fallback"] == "service_unavailable"
    ((subject, text),) = notices.sent
    assert subject == "Approval needed (Slack unavailable): prod-web/Approve"
    assert "service_unavailable" in text
    assert f"/approve/{make_approval().token}" in text  # CodePipeline's review link
    stored = store.get(APPROVAL_ID)
    assert stored.status == "PENDING"
    assert stored.task_token == TASK_TOKEN  # the task keeps waiting on it
    assert stored.fallback_reason == "service_unavailable"


def test_a_lasting_slack_error_falls_back_at_once_and_only_once(store: ApprovalStore) -> None:
    store.create(make_approval())
    notices = Notices()
    gone = FailingSlack(post=[slack_error("channel_not_found"), slack_error("channel_not_found")])

    for _ in range(2):  # the first ask, then the next reminder cycle's
        asking.ask(
            APPROVAL_ID, TASK_TOKEN, store=store, slack=gone, retries_left=4, fallback=notices
        )

    assert len(notices.sent) == 1
    assert gone.methods() == ["chat_postMessage!", "chat_postMessage!"]


def test_slack_back_at_the_next_cycle_posts_the_request(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = FailingSlack(post=[slack_error("channel_not_found")])
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack, fallback=Notices())

    answer = asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack, fallback=Notices())

    assert answer["posted"] is True
    assert store.get(APPROVAL_ID).message_ts == answer["ts"]


def test_a_failed_sns_publish_leaves_the_fallback_to_try_again(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = FailingSlack(post=[slack_error("channel_not_found")] * 2)

    with pytest.raises(ConnectionError):
        asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack, fallback=Notices(True))
    assert store.get(APPROVAL_ID).fallback_at is None

    notices = Notices()
    asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack, fallback=notices)
    assert len(notices.sent) == 1


def test_a_deleted_request_message_is_replaced_and_the_new_one_kept(store: ApprovalStore) -> None:
    store.create(make_approval())
    slack = FailingSlack(update=[slack_error("message_not_found")])
    first = asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)

    again = asking.ask(APPROVAL_ID, TASK_TOKEN, store=store, slack=slack)

    assert slack.methods() == ["chat_postMessage", "chat_update!", "chat_postMessage"]
    replacement = slack.calls[-1][1]
    assert "replaces the earlier request message" in str(replacement["blocks"])
    assert again == {"channel": "C0DEPLOYS", "ts": again["ts"], "posted": True}
    assert again["ts"] != first["ts"]
    assert store.get(APPROVAL_ID).message_ts == again["ts"]


def _rate_limited(retry_after: str) -> HttpResponse:
    return HttpResponse(status_code=429, headers={"Retry-After": [retry_after]}, body={})


@pytest.mark.parametrize(
    ("retry_after", "seconds_left", "waits"),
    [("1", 25.0, True), ("30", 25.0, False), ("1", 3.0, False), ("junk", 25.0, True)],
)
def test_a_retry_after_is_waited_out_only_within_the_functions_time(
    retry_after: str, seconds_left: float, waits: bool
) -> None:
    handler = RateLimitWithinTime(lambda: seconds_left, timeout=1.0)
    request = HttpRequest(method="POST", url="https://slack.com/api/x", headers={}, body_params={})

    assert (
        handler.can_retry(state=RetryState(), request=request, response=_rate_limited(retry_after))
        is waits
    )


def test_a_fractional_retry_after_is_waited_out_without_crashing() -> None:
    handler = RateLimitWithinTime(lambda: 25.0, timeout=1.0)
    request = HttpRequest(method="POST", url="https://slack.com/api/x", headers={}, body_params={})
    state = RetryState()

    handler.prepare_for_next_attempt(state=state, request=request, response=_rate_limited("0.1"))

    assert state.next_attempt_requested
    assert state.current_attempt == 1


def test_the_ask_steps_retry_catches_what_ask_raises() -> None:
    import json
    from pathlib import Path

    definition = json.loads(
        (Path(__file__).parents[2] / "statemachine" / "approval.asl.json").read_text()
    )
    retriers = definition["States"]["Ask Approvers In Slack"]["Retry"]
    (retry,) = [r for r in retriers if asking.SlackUnavailable.__name__ in r["ErrorEquals"]]
    # A crash or a timeout of the function is retried too; a decision error never is.
    assert {"Lambda.Unknown", "States.TaskFailed"} <= set(retry["ErrorEquals"])
    never = [r for r in retriers if r.get("MaxAttempts") == 0]
    assert never == [{"ErrorEquals": ["AlreadyDecided", "DecidedElsewhere"], "MaxAttempts": 0}]
    assert retriers.index(never[0]) < retriers.index(retry)
    # The function is told how many retries are left; the count must match the Retry's.
    payload = definition["States"]["Ask Approvers In Slack"]["Arguments"]["Payload"]
    assert payload["retries_left"].startswith(f"{{% {retry['MaxAttempts']} - ")


def test_a_click_on_a_decided_request_hands_the_decision_to_the_workflow_again(
    store: ApprovalStore,
) -> None:
    """The deciding click's SendTaskSuccess was lost (the Lambda died after the write): the
    next click sends it, and a third changes nothing (the task no longer waits)."""
    store.create(make_approval())
    store.save_task_token(APPROVAL_ID, TASK_TOKEN)
    store.decide(APPROVAL_ID, status=APPROVED, decided_by=("U0ALICE",), reason=None, at=FIXED)
    sfn = RecordingSfn()

    def click() -> Any:
        return record_click(
            Click(
                action="approve",
                approval_id=APPROVAL_ID,
                user_id="U0BOB",
                user_name="bob",
                team_id="T0SANDBOX",
                app_id="A0SANDBOX",
                channel="C0DEPLOYS",
            ),
            store=store,
            sfn=sfn,
            clock=clock_at(FIXED),
        )

    assert click().outcome == "already_decided"
    assert click().outcome == "already_decided"

    (delivered,) = sfn.task_successes
    assert delivered["taskToken"] == TASK_TOKEN
    assert '"status": "Approved"' in delivered["output"]
    assert len(sfn.late) == 1


def test_the_fallback_topic_gets_the_subject_and_the_text_as_they_are() -> None:
    published: list[dict[str, Any]] = []

    class Sns:
        def publish(self, **kwargs: Any) -> dict[str, Any]:
            published.append(kwargs)
            return {"MessageId": "1"}

    topic = "arn:aws:sns:us-east-2:123456789012:approval-gate-FallbackTopic"
    notify = asking.topic_notifier(Sns(), topic)
    assert notify is not None
    notify("Approval needed: prod-web", "Slack could not be asked: channel_not_found")

    assert published == [
        {
            "TopicArn": topic,
            "Subject": "Approval needed: prod-web",
            "Message": "Slack could not be asked: channel_not_found",
        }
    ]


@pytest.mark.parametrize("topic", [None, ""])
def test_without_a_fallback_topic_there_is_no_fallback(topic: str | None) -> None:
    assert asking.topic_notifier(object(), topic) is None
