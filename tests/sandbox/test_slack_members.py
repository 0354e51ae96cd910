"""The fake Slack against Slack's own specifications (tests/sandbox/slack_members.json).

Every Web API method the fake answers and every interaction payload the sandbox sends
carries each member Slack's OpenAPI spec marks required, and each member Slack's SDK types
and docs show in Slack's current answers, with that JSON type. Checked in process, and
over HTTP from what a sandbox recorded (GET /_sandbox/slack/calls and /interactions), as
anyone could check it without importing the sandbox.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.fake_slack import FakeSlack, block_actions_payload, view_submission_payload
from sandbox.services import SLACK_METHODS
from tests.conftest import Gate, button_value

MEMBERS: dict[str, Any] = json.loads(
    Path(__file__).with_name("slack_members.json").read_text(encoding="utf-8")
)
TOKEN = "xoxb-sandbox-bot-token"
_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "null": lambda v: v is None,
}
_MISSING = object()


def _found(node: Any, parts: list[str], where: str) -> Iterator[tuple[str, Any]]:
    """(location, value) of every member a path names; _MISSING where one is absent."""
    if not parts:
        yield where, node
        return
    if node is None:
        return  # a member under a null parent is not looked for
    part, rest = parts[0], parts[1:]
    name = part.removesuffix("[]")
    here = f"{where}.{name}" if where else name
    if not isinstance(node, dict) or name not in node:
        yield here, _MISSING
        return
    child = node[name]
    if not part.endswith("[]"):
        yield from _found(child, rest, here)
    elif not isinstance(child, list):
        yield here, _MISSING
    else:
        for index, item in enumerate(child):
            yield from _found(item, rest, f"{here}[{index}]")


def problems(value: Any, listed: dict[str, dict[str, str]]) -> list[str]:
    """What in `value` differs from the members listed (by source): absent or mistyped."""
    found: list[str] = []
    for source, members in listed.items():
        for path, wanted in members.items():
            for where, member in _found(value, path.split("."), ""):
                if member is _MISSING:
                    found.append(f"{where}: missing ({source})")
                elif not any(_TYPES[t](member) for t in wanted.split("|")):
                    found.append(f"{where}: {json.dumps(member)[:60]} is not {wanted} ({source})")
    return found


# ---------------------------------------------------------------------- the list itself


def test_the_list_names_its_sources_and_covers_every_method_the_fake_answers() -> None:
    for source in ("openapi", "sdk", "bolt"):
        assert len(MEMBERS["sources"][source]["commit"]) == 40
    assert set(MEMBERS["methods"]) == SLACK_METHODS
    assert set(MEMBERS["payloads"]) == {"block_actions", "view_submission"}
    for entry in (*MEMBERS["methods"].values(), *MEMBERS["payloads"].values()):
        assert set(entry) <= set(MEMBERS["sources"])
        for members in entry.values():
            for wanted in members.values():
                assert set(wanted.split("|")) <= set(_TYPES)


def test_the_check_finds_a_missing_member_a_wrong_type_and_looks_into_arrays() -> None:
    listed = {"openapi": {"ok": "boolean", "user.id": "string", "users[]": "string"}}
    assert problems({"ok": True, "user": {"id": "U1"}, "users": ["U1"]}, listed) == []
    assert problems({"ok": "yes", "user": {}, "users": ["U1", 2]}, listed) == [
        'ok: "yes" is not boolean (openapi)',
        "user.id: missing (openapi)",
        "users[1]: 2 is not string (openapi)",
    ]
    # under a null parent nothing is looked for; the parent's own type says if null is fine
    assert problems({"view": {"close": None}}, {"docs": {"view.close.emoji": "boolean"}}) == []


# ---------------------------------------------------------------------- in process


MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "reason",
    "private_metadata": "a-1",
    "title": {"type": "plain_text", "text": "Reject deployment"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "reason"},
        }
    ],
}
BUTTONS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*web* waits"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "a-1",
            }
        ],
    },
]


@pytest.fixture
def fake() -> FakeSlack:
    slack = FakeSlack(bot_token=TOKEN)
    slack.add_user("U0ALICE")
    slack.add_group("S0RELEASE", users=["U0ALICE"])
    slack.add_channel("G0PRIVATE")
    return slack


def _answer(fake: FakeSlack, method: str, **args: Any) -> dict[str, Any]:
    status, _, body = fake.api(method, args, f"Bearer {TOKEN}")
    assert status == 200 and body["ok"] is True, body
    return body


def _answers(fake: FakeSlack) -> dict[str, dict[str, Any]]:
    """One successful answer of every method, as the gate calls them."""
    posted = _answer(fake, "chat.postMessage", channel="C0DEPLOYS", text="waits", blocks=BUTTONS)
    [message] = fake.messages()
    return {
        "chat.postMessage": posted,
        "chat.update": _answer(fake, "chat.update", channel="C0DEPLOYS", ts=posted["ts"], text="x"),
        "chat.postEphemeral": _answer(
            fake, "chat.postEphemeral", channel="C0DEPLOYS", user="U0ALICE", text="only you"
        ),
        "chat.getPermalink": _answer(
            fake, "chat.getPermalink", channel="C0DEPLOYS", message_ts=posted["ts"]
        ),
        "views.open": _answer(
            fake,
            "views.open",
            trigger_id=block_actions_payload(
                fake, message=message, user_id="U0ALICE", action_id="reject", response_url="x"
            )["trigger_id"],
            view=json.dumps(MODAL),
        ),
        "usergroups.users.list": _answer(fake, "usergroups.users.list", usergroup="S0RELEASE"),
        "users.info": _answer(fake, "users.info", user="U0ALICE"),
        "users.lookupByEmail": _answer(fake, "users.lookupByEmail", email="alice@example.com"),
        "auth.test": _answer(fake, "auth.test"),
        "conversations.list": _answer(
            fake, "conversations.list", types="public_channel,private_channel"
        ),
        "conversations.info": _answer(fake, "conversations.info", channel="C0DEPLOYS"),
        "conversations.history": _answer(
            fake, "conversations.history", channel="C0DEPLOYS", include_all_metadata="true"
        ),
    }


def test_every_method_answers_with_every_member_slack_sends(fake: FakeSlack) -> None:
    answers = _answers(fake)
    assert set(answers) == set(MEMBERS["methods"])
    assert len(answers["conversations.list"]["channels"]) == 2  # arrays are looked into
    found = {m: problems(answers[m], MEMBERS["methods"][m]) for m in answers}
    assert found == {m: [] for m in answers}


def test_every_payload_carries_every_member_slack_sends(fake: FakeSlack) -> None:
    _answer(fake, "chat.postMessage", channel="C0DEPLOYS", text="waits", blocks=BUTTONS)
    [message] = fake.messages()
    click = block_actions_payload(
        fake, message=message, user_id="U0ALICE", action_id="reject", response_url="x"
    )
    view = _answer(fake, "views.open", trigger_id=click["trigger_id"], view=MODAL)["view"]
    submission = view_submission_payload(
        fake, view_id=view["id"], user_id="U0ALICE", values={"reason": {"reason": "red"}}
    )

    assert problems(click, MEMBERS["payloads"]["block_actions"]) == []
    assert problems(submission, MEMBERS["payloads"]["view_submission"]) == []


# ---------------------------------------------------------------------- over HTTP


def test_what_a_sandbox_answered_and_sent_matches_slack(gate: Gate) -> None:
    """A run whose author Slack finds by email, rejected with a reason through the page's
    paths: every call's answer and every payload, read back over HTTP, is as Slack's."""
    gate.client.reset()
    run = gate.start_run(author="alice@example.com")  # U0ALICE made it: U0BOB decides
    approval = gate.approval_for(run["approvalToken"])
    message = gate.request_message(approval["approval_id"])
    clicked = gate.client.post(
        "/_sandbox/slack/click",
        {
            "channel": message["channel"],
            "ts": message["ts"],
            "action_id": "reject",
            "user": "U0BOB",
        },
    )
    assert clicked["status"] == 200
    view = gate.opened_view(button_value(message), "U0BOB")
    submitted = gate.client.post(
        "/_sandbox/slack/submit",
        {"view_id": view["id"], "user": "U0BOB", "values": {"reason": {"reason": "Too risky"}}},
    )
    assert submitted == {"status": 200, "errors": None}
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
    gate.wait_execution(approval["approval_id"])

    calls = [c for c in gate.client.calls() if c.get("response", {}).get("ok") is True]
    methods = {c["method"] for c in calls}
    assert {"chat.postMessage", "chat.update", "views.open", "users.lookupByEmail"} <= methods
    found = [
        f"{c['method']} {problem}"
        for c in calls
        for problem in problems(c["response"], MEMBERS["methods"][c["method"]])
    ]
    assert found == []
    sent = gate.client.get("/_sandbox/slack/interactions")
    assert [i["type"] for i in sent] == ["block_actions", "view_submission"]
    found = [
        f"{i['type']} {problem}"
        for i in sent
        for problem in problems(i["payload"], MEMBERS["payloads"][i["type"]])
    ]
    assert found == []
