"""The fake Slack workspace over HTTP: its channels and the bot's place in them, what the
Slack stand-in sent the app, and each call's answer (DESIGN §8.6, docs/sandbox.md).

Slack answers only for channels the workspace has: the public channel ``deploys``
(C0DEPLOYS) and those the policy names. A public channel the bot is not in answers
``not_in_channel`` to a post, and the gate then sends the request by its fallback topic.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.client import wait_for
from tests.conftest import Gate

# A reminder cycle every 2 s: a request Slack could not take is asked again within seconds.
SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "faults.yaml"
TOKEN = "xoxb-sandbox-bot-token"


@pytest.fixture
def slack(gate: Gate) -> WebClient:
    gate.client.reset()
    return WebClient(token=TOKEN, base_url=f"{gate.url}/slack/api/")


def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as raised:
        call()
    return str(raised.value.response["error"])


def test_the_workspace_has_deploys_and_the_policys_channels(gate: Gate, slack: WebClient) -> None:
    listed = slack.conversations_list(types="public_channel,private_channel")
    assert [(c["id"], c["name"], c["is_member"]) for c in listed["channels"]] == [
        ("C0DEPLOYS", "deploys", True)
    ]
    assert listed["response_metadata"] == {"next_cursor": ""}
    info = slack.conversations_info(channel="C0DEPLOYS", include_num_members=True)["channel"]
    assert (info["name"], info["is_private"], info["is_channel"]) == ("deploys", False, True)
    assert info["num_members"] >= 1
    assert _error(lambda: slack.conversations_info(channel="C0NOWHERE")) == "channel_not_found"
    workspace = gate.client.get("/_sandbox/slack/workspace")
    assert [c["id"] for c in workspace["channels"]] == ["C0DEPLOYS"]


def test_a_post_to_a_channel_the_workspace_lacks_is_channel_not_found(slack: WebClient) -> None:
    assert _error(lambda: slack.chat_postMessage(channel="C0NOWHERE", text="x")) == (
        "channel_not_found"
    )
    assert slack.chat_postMessage(channel="C0DEPLOYS", text="here")["ok"] is True


def test_the_bot_leaves_a_channel_and_posting_there_is_not_in_channel(
    gate: Gate, slack: WebClient
) -> None:
    posted = slack.chat_postMessage(channel="C0DEPLOYS", text="before")
    left = gate.client.post("/_sandbox/slack/channels/C0DEPLOYS", {"bot_member": False})
    assert (left["id"], left["name"], left["is_member"]) == ("C0DEPLOYS", "deploys", False)

    assert _error(lambda: slack.chat_postMessage(channel="C0DEPLOYS", text="x")) == (
        "not_in_channel"
    )
    assert _error(
        lambda: slack.chat_postEphemeral(channel="C0DEPLOYS", user="U0ALICE", text="x")
    ) == ("not_in_channel")
    # A public channel stays visible to the bot
    assert slack.conversations_info(channel="C0DEPLOYS")["channel"]["is_member"] is False
    assert slack.chat_getPermalink(channel="C0DEPLOYS", message_ts=posted["ts"])["ok"] is True
    assert [m["text"] for m in gate.client.messages()] == ["before"]  # nothing else landed

    assert gate.client.request(
        "POST", "/_sandbox/slack/channels/C0NOWHERE", {"bot_member": False}
    ) == (404, {"error": "no such channel"})
    assert gate.client.request("POST", "/_sandbox/slack/channels/C0DEPLOYS", {}) == (
        400,
        {"error": "bot_member must be true or false"},
    )
    assert gate.client.request(
        "POST", "/_sandbox/slack/channels/C0DEPLOYS", {"bot_member": False, "x": 1}
    ) == (400, {"error": "unknown field: x"})
    gate.client.reset()  # the bot is back in every channel
    assert slack.chat_postMessage(channel="C0DEPLOYS", text="after")["ok"] is True


def test_the_gate_asks_by_its_fallback_topic_when_the_bot_is_not_in_the_channel(
    gate: Gate, slack: WebClient
) -> None:
    """not_in_channel will not pass by itself: the request goes to the fallback topic at
    once and stays open; once the bot is invited, the next reminder cycle asks in Slack."""
    gate.client.post("/_sandbox/slack/channels/C0DEPLOYS", {"bot_member": False})
    run = gate.start_run()
    approval = gate.approval_for(run["approvalToken"])

    note = wait_for(
        lambda: next(
            (n for n in gate.client.notifications() if run["approvalToken"] in n["message"]),
            None,
        ),
        timeout=15,
        what="the fallback notification",
    )
    assert "not_in_channel" in note["message"]
    assert gate.approval_for(run["approvalToken"])["outcome"] is None  # still open
    refused = [
        c
        for c in gate.client.calls()
        if c["method"] == "chat.postMessage" and "Approval needed" in str(c["args"].get("text"))
    ]
    assert refused and {c["response"]["error"] for c in refused} == {"not_in_channel"}

    gate.client.set_bot_member("C0DEPLOYS", True)
    message = gate.request_message(approval["approval_id"], timeout=20)
    assert gate.click(message, "U0BOB", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])


def test_each_call_keeps_the_answer_it_got(gate: Gate, slack: WebClient) -> None:
    posted = slack.chat_postMessage(channel="C0DEPLOYS", text="hello")
    with pytest.raises(SlackApiError):
        slack.chat_postMessage(channel="C0NOWHERE", text="x")

    first, second = gate.client.calls()
    assert (first["status"], first["response"]) == (200, posted.data)
    assert (second["status"], second["response"]) == (
        200,
        {"ok": False, "error": "channel_not_found"},
    )
    assert TOKEN not in str(gate.client.calls())


def test_interactions_lists_what_the_stand_in_sent_and_reset_forgets_it(gate: Gate) -> None:
    gate.client.reset()
    _run, approval, message = gate.open_approval()
    answered = gate.client.post(
        "/_sandbox/slack/click",
        {"channel": "C0DEPLOYS", "ts": message["ts"], "action_id": "approve", "user": "U0ALICE"},
    )
    assert answered == {"status": 200, "body": ""}
    gate.wait_execution(approval["approval_id"])

    [sent] = gate.client.interactions()
    assert set(sent) == {"type", "payload", "at"} and sent["type"] == "block_actions"
    payload = sent["payload"]
    assert payload["channel"] == {"id": "C0DEPLOYS", "name": "deploys"}
    assert payload["actions"][0]["action_id"] == "approve"
    assert payload["container"]["message_ts"] == message["ts"]
    assert sent["at"].endswith("Z")
    # what a test signs and posts itself is not the stand-in's
    _run, other, message = gate.open_approval()
    assert gate.click(message, "U0BOB", "approve") == 200
    gate.wait_execution(other["approval_id"])
    assert len(gate.client.get("/_sandbox/slack/interactions")) == 1
    gate.client.reset()
    assert gate.client.get("/_sandbox/slack/interactions") == []
