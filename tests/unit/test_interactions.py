"""Slack interactivity: from API Gateway's event to exactly one recorded decision."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any
from urllib.parse import urlencode

import pytest
from approval_gate.answers import tell
from approval_gate.groups import GroupDirectory
from approval_gate.interactions import (
    MAX_BODY,
    BadRequest,
    http_request,
    parse_click,
    parse_interaction,
    record_click,
)
from approval_gate.messages import (
    slack_date,
)
from approval_gate.policy import Approvers
from approval_gate.slack import signature_is_valid
from approval_gate.store import APPROVED, PENDING, REJECTED, ApprovalStore, Vote
from approval_gate.votes import Click, unknown_approval_text
from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError

from tests.unit.events import SAMPLE_APPROVAL_ID, SIGNING_SECRET, load_event
from tests.unit.fakes import (
    FIXED,
    TASK_TOKEN,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)

CLICKED_AT = FIXED + timedelta(minutes=5)


def form(payload: Any) -> bytes:
    return urlencode({"payload": json.dumps(payload)}).encode()


def click_payload(**changes: Any) -> dict[str, Any]:
    payload = load_event("block_actions_approve")
    payload.update(changes)
    return payload


def click(action: str = "approve", user: str = "U0ALICE", name: str = "alice") -> Click:
    return Click(
        action=action,
        approval_id=SAMPLE_APPROVAL_ID,
        user_id=user,
        user_name=name,
        team_id="T0SANDBOX",
        app_id="A0SANDBOX",
        channel="C0DEPLOYS",
    )


# --------------------------------------------------------------------------- HTTP


def test_the_sample_event_is_a_correctly_signed_slack_request() -> None:
    event = load_event("http_api_slack_interaction")
    request = http_request(event)
    timestamp = int(request.headers["x-slack-request-timestamp"])

    assert request.body.startswith(b"payload=")
    assert signature_is_valid(SIGNING_SECRET, request.headers, request.body, now=lambda: timestamp)


def test_a_base64_body_is_decoded_before_anything_else() -> None:
    event = load_event("http_api_slack_interaction")
    request = http_request(event)

    assert request.body == base64.b64decode(event["body"])
    assert parse_interaction(request.body) == load_event("block_actions_approve")


def test_a_plain_body_is_taken_as_is_and_header_names_are_lowered() -> None:
    request = http_request(
        {
            "headers": {"X-Slack-Signature": "v0=abc"},
            "body": "payload=%7B%7D",
            "isBase64Encoded": False,
        }
    )
    assert request.headers == {"x-slack-signature": "v0=abc"}
    assert request.body == b"payload=%7B%7D"


def test_an_event_without_body_or_headers_gives_an_empty_request() -> None:
    request = http_request({"isBase64Encoded": False})
    assert (request.headers, request.body) == ({}, b"")


@pytest.mark.parametrize(
    "event",
    [
        {"body": "not base64!", "isBase64Encoded": True},
        {"body": "cGF5bG9hZA=", "isBase64Encoded": True},
        {"body": "cGF5\nbG9hZA==", "isBase64Encoded": True},
    ],
    ids=["characters", "padding", "newline"],
)
def test_invalid_base64_is_a_bad_request(event: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="base64"):
        http_request(event)


@pytest.mark.parametrize(
    "event",
    [
        None,
        [],
        "POST",
        {"headers": ["x-slack-signature", "v0=abc"], "body": ""},
        {"headers": "x-slack-signature: v0=abc", "body": ""},
        {"headers": {}, "body": {"payload": "{}"}},
    ],
    ids=["none", "list", "text", "header-list", "header-text", "body-object"],
)
def test_a_malformed_event_is_a_bad_request(event: Any) -> None:
    with pytest.raises(BadRequest):
        http_request(event)


@pytest.mark.parametrize(
    "event",
    [
        {"body": "a" * (MAX_BODY + 1), "isBase64Encoded": False},
        {"body": base64.b64encode(b"a" * (MAX_BODY + 1)).decode(), "isBase64Encoded": True},
        {"body": "a" * (MAX_BODY * 2 + 1), "isBase64Encoded": True},
    ],
    ids=["plain", "decoded", "encoded"],
)
def test_an_oversize_body_is_a_bad_request(event: dict[str, Any]) -> None:
    with pytest.raises(BadRequest, match="too large"):
        http_request(event)


# --------------------------------------------------------------------------- payload


@pytest.mark.parametrize(
    ("body", "says"),
    [
        (b'{"type": "block_actions"}', "form"),
        (b"payload", "form"),
        (b"user=U0ALICE", "payload"),
        (b"", "payload"),
        (b"payload=1&payload=2", "payload"),
        (b"payload=%7Bnot+json", "not JSON"),
        (form([1, 2]), "not an object"),
        (form("block_actions"), "not an object"),
        (b"payload=\xff\xfe", "UTF-8"),
    ],
    ids=["json", "bare", "no-payload", "empty", "twice", "bad-json", "array", "string", "bytes"],
)
def test_a_body_that_is_not_an_interaction_is_a_bad_request(body: bytes, says: str) -> None:
    with pytest.raises(BadRequest, match=says):
        parse_interaction(body)


def test_the_sample_click_parses() -> None:
    parsed = parse_click(load_event("block_actions_approve"))
    assert parsed == Click(
        action="approve",
        approval_id=SAMPLE_APPROVAL_ID,
        user_id="U0ALICE",
        user_name="alice",
        team_id="T0SANDBOX",
        app_id="A0SANDBOX",
        channel="C0DEPLOYS",
        trigger_id="9876543210123.1234567890123.0a1b2c3d4e5f60718293a4b5c6d7e8f9",
    )


@pytest.mark.parametrize(
    "payload",
    [
        click_payload(type="view_submission"),
        click_payload(type="shortcut"),
        click_payload(actions=[]),
        click_payload(actions="approve"),
        click_payload(actions=[{"action_id": "overflow", "value": SAMPLE_APPROVAL_ID}]),
        click_payload(actions=[{"action_id": "approve_all", "value": SAMPLE_APPROVAL_ID}]),
    ],
    ids=["view", "shortcut", "no-actions", "actions-text", "other-action", "similar-action"],
)
def test_other_interactions_are_not_clicks(payload: dict[str, Any]) -> None:
    assert parse_click(payload) is None


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        SAMPLE_APPROVAL_ID[:-1],
        SAMPLE_APPROVAL_ID + "0",
        SAMPLE_APPROVAL_ID[:-1] + "-",
        SAMPLE_APPROVAL_ID[:-1] + " ",
        "5f2c8e1a-9b3d-4c7e-8a1f-2d6b9e0c4a71",
        "x" * 2000,
        42,
    ],
    ids=["none", "empty", "short", "long", "dash", "space", "uuid", "huge", "number"],
)
def test_a_tampered_button_value_is_a_bad_request(value: Any) -> None:
    payload = click_payload()
    payload["actions"][0]["value"] = value
    with pytest.raises(BadRequest, match="approval id"):
        parse_click(payload)


@pytest.mark.parametrize(
    "user", [None, {}, {"id": ""}, {"id": 42}, "U0ALICE"], ids=["none", "empty", "blank", "n", "s"]
)
def test_a_click_without_a_user_is_a_bad_request(user: Any) -> None:
    with pytest.raises(BadRequest, match="user"):
        parse_click(click_payload(user=user))


def test_a_click_from_a_message_without_channel_uses_the_container() -> None:
    payload = click_payload()
    del payload["channel"]
    parsed = parse_click(payload)
    assert parsed is not None
    assert parsed.channel == "C0DEPLOYS"


# --------------------------------------------------------------------------- record_click


@pytest.fixture
def asked(store: ApprovalStore) -> ApprovalStore:
    """The sample request, open in Slack and waiting with a task token."""
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)
    return store


def test_an_approvers_click_is_recorded_and_resumes_the_workflow_once(
    asked: ApprovalStore,
) -> None:
    sfn = RecordingSfn()

    result = record_click(click(), store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))

    assert (result.outcome, result.ephemeral) == ("recorded", None)
    (success,) = sfn.task_successes
    assert success["taskToken"] == TASK_TOKEN
    assert json.loads(success["output"]) == {
        "outcome": "approved",
        "status": "Approved",
        "summary": "Approved in Slack by alice (U0ALICE)",
        "steps": [
            {
                "name": "Approvers",
                "required": 1,
                "approved_by": ["U0ALICE"],
                "completed_at": "2026-12-01T17:05:00.000Z",
            }
        ],
        "held": None,
        "wait": None,
    }
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.decided_by, stored.decided_at) == (
        APPROVED,
        ("U0ALICE",),
        CLICKED_AT,
    )
    assert stored.votes == (Vote("U0ALICE", "alice", "approve", CLICKED_AT),)


def test_a_reject_click_is_recorded_as_a_rejection(asked: ApprovalStore) -> None:
    sfn = RecordingSfn()

    reject = click("reject", "U0BOB", "bob")._replace(submitted=True, reason="canary is red")

    record_click(reject, store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))

    output = json.loads(sfn.task_successes[0]["output"])
    assert (output["outcome"], output["status"]) == ("rejected", "Rejected")
    assert output["summary"] == "Rejected in Slack by bob (U0BOB): canary is red"
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert stored.status == REJECTED


def test_a_click_by_someone_else_changes_nothing_and_names_the_approvers(
    asked: ApprovalStore,
) -> None:
    sfn = RecordingSfn()

    result = record_click(
        click(user="U0MALLORY", name="mallory"), store=asked, sfn=sfn, clock=clock_at(CLICKED_AT)
    )

    assert result.outcome == "not_approver"
    assert result.ephemeral == (
        "You are not an approver for prod-web / Approve. "
        "Approvers: <@U0ALICE>, <@U0BOB>. Nothing was recorded."
    )
    assert sfn.task_successes == []
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.votes) == (PENDING, ())


def test_the_refusal_names_approver_groups_as_slack_renders_them(store: ApprovalStore) -> None:
    rules = make_rules(approvers=Approvers(users=("U0ALICE",), groups=("S0RELEASE",)))
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, rules=rules))

    result = record_click(
        click(user="U0MALLORY"), store=store, sfn=RecordingSfn(), clock=clock_at(CLICKED_AT)
    )

    assert result.ephemeral is not None
    assert "Approvers: <@U0ALICE>, <!subteam^S0RELEASE>." in result.ephemeral


def test_a_click_on_an_unknown_request_is_answered_and_changes_nothing(
    store: ApprovalStore,
) -> None:
    sfn = RecordingSfn()

    result = record_click(click(), store=store, sfn=sfn, clock=clock_at(CLICKED_AT))

    assert (result.outcome, result.ephemeral) == ("unknown", unknown_approval_text("en"))
    assert sfn.task_successes == []
    assert store.get(SAMPLE_APPROVAL_ID) is None


def test_a_click_after_the_decision_says_who_decided(asked: ApprovalStore) -> None:
    sfn = RecordingSfn()
    record_click(click(), store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))

    late = record_click(
        click("reject", "U0BOB", "bob"),
        store=asked,
        sfn=sfn,
        clock=clock_at(CLICKED_AT + timedelta(seconds=1)),
    )

    assert late.outcome == "already_decided"
    assert late.ephemeral == (
        f"Already approved by <@U0ALICE> {slack_date(CLICKED_AT, 'en')}. "
        "Your click changed nothing."
    )
    assert len(sfn.task_successes) == 1
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.decided_by) == (APPROVED, ("U0ALICE",))


def test_a_click_after_the_deadline_says_it_expired(asked: ApprovalStore) -> None:
    asked.decide(
        SAMPLE_APPROVAL_ID,
        status="EXPIRED",
        votes=(),
        reason=None,
        at=FIXED + timedelta(hours=1),
        note="No decision within 1h: rejected by policy",
    )

    result = record_click(click(), store=asked, sfn=RecordingSfn(), clock=clock_at(FIXED))

    assert result.outcome == "already_decided"
    assert result.ephemeral is not None
    assert result.ephemeral.startswith("This request already expired")
    assert result.ephemeral.endswith(": No decision within 1h: rejected by policy.")


@pytest.mark.parametrize("code", ["TaskTimedOut", "InvalidToken", "TaskDoesNotExist"])
def test_a_decision_stands_when_the_workflow_no_longer_waits(
    asked: ApprovalStore, code: str
) -> None:
    sfn = RecordingSfn(error_code=code)

    result = record_click(click(), store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))

    assert result.outcome == "recorded"
    assert len(sfn.task_successes) == 1
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert stored.status == APPROVED


def test_an_unexpected_step_functions_error_is_not_swallowed(asked: ApprovalStore) -> None:
    with pytest.raises(ClientError):
        record_click(
            click(), store=asked, sfn=RecordingSfn("ThrottlingException"), clock=clock_at(FIXED)
        )
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert stored.status == APPROVED  # recorded; the reminder cycle will deliver it


def test_one_click_does_not_approve_when_two_approvals_are_required(store: ApprovalStore) -> None:
    rules = make_rules(required_approvals=2)
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, rules=rules))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)
    sfn = RecordingSfn()

    record_click(click(), store=store, sfn=sfn, clock=clock_at(CLICKED_AT))

    stored = store.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert stored.status == PENDING
    assert sfn.task_successes == []


def test_a_member_of_an_approver_group_may_decide(store: ApprovalStore) -> None:
    rules = make_rules(approvers=Approvers(groups=("S0RELEASE",)))
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, rules=rules))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)

    class Members:  # Slack's usergroups.users.list: U0CAROL is in S0RELEASE
        def usergroups_users_list(self, usergroup: str) -> dict[str, Any]:
            return {"ok": True, "users": ["U0CAROL"] if usergroup == "S0RELEASE" else []}

    result = record_click(
        click(user="U0CAROL"),
        store=store,
        sfn=RecordingSfn(),
        clock=clock_at(CLICKED_AT),
        groups=GroupDirectory(Members()),
    )

    assert result.outcome == "recorded"


# --------------------------------------------------------------------------- tell


def test_the_clicker_is_told_privately() -> None:
    slack = RecordingSlack()
    tell(slack, click(), "Nothing was recorded.")
    assert slack.calls == [
        (
            "chat_postEphemeral",
            {"channel": "C0DEPLOYS", "user": "U0ALICE", "text": "Nothing was recorded."},
        )
    ]


def test_a_slack_failure_while_telling_is_not_raised() -> None:
    class FailingSlack:
        def chat_postEphemeral(self, **kwargs: Any) -> None:
            raise SlackApiError("channel_not_found", {"ok": False, "error": "channel_not_found"})

    tell(FailingSlack(), click(), "text")
