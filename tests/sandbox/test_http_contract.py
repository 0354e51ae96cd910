"""The sandbox's HTTP paths (DESIGN §6) as a user scripts against them."""

from __future__ import annotations

import base64
import json
import time
import urllib.request

from sandbox import patches
from sandbox.client import has_buttons, wait_for
from sandbox.fake_slack import form_body, signed_request


def test_health_answers_once_ready(gate):
    assert gate.client.get("/_sandbox/health") == {"ok": True}


def test_workspace_knows_every_user_the_policy_names(gate):
    workspace = gate.client.get("/_sandbox/slack/workspace")

    assert {"team_id", "app_id", "bot_user_id", "users", "groups"} <= set(workspace)
    ids = {user["id"] for user in workspace["users"]}
    assert {"U0ALICE", "U0BOB", "U0MALLORY"} <= ids


def test_a_run_answers_with_its_execution_and_token_once_slack_is_asked(gate):
    run = gate.start_run(
        "web-app", customData="Ship it?", externalEntityLink="https://example.com/r/1"
    )

    assert set(run) == {"pipelineExecutionId", "approvalToken"}
    approval = gate.approval_for(run["approvalToken"])
    message = gate.request_message(approval["approval_id"])
    assert set(message) == {"channel", "ts", "thread_ts", "text", "blocks", "ephemeral_user"}
    assert message["channel"] == "C0DEPLOYS"
    assert message["thread_ts"] is None and message["ephemeral_user"] is None
    assert "Ship it?" in json.dumps(message["blocks"])
    assert run["approvalToken"] not in json.dumps(message)
    gate.click(message, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])


def test_calls_are_recorded_with_tokens_redacted(gate):
    _run, approval, message = gate.open_approval()
    gate.click(message, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])

    calls = gate.client.calls()

    methods = [call["method"] for call in calls]
    assert "chat.postMessage" in methods and "chat.update" in methods
    assert all({"method", "args", "at"} <= set(call) for call in calls)
    assert gate.server.sandbox.slack.bot_token not in json.dumps(calls)


def test_approval_results_and_approvals_show_the_decision(gate):
    run, approval, message = gate.open_approval()
    gate.click(message, "U0BOB", "approve")
    gate.wait_execution(approval["approval_id"])

    (result,) = gate.results_for(run["approvalToken"])
    assert result["source"] == "gate"
    assert result["result"]["status"] == "Approved"
    record = next(a for a in gate.client.approvals() if a["approval_id"] == approval["approval_id"])
    assert record["outcome"] == "approved"
    assert record["decided_by"] == ["U0BOB"]


def test_the_response_url_applies_what_arrives_like_slack(gate):
    _run, approval, message = gate.open_approval()
    payload = gate.click_payload(message, "U0MALLORY", "approve")

    status, _ = gate.client.request(
        "POST",
        payload["response_url"].removeprefix(gate.url),
        {"response_type": "ephemeral", "text": "only for you", "replace_original": False},
    )

    assert status == 200
    assert any(m["text"] == "only for you" for m in gate.ephemerals("U0MALLORY"))
    gate.click(message, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])


def test_a_signed_click_decides_and_a_bad_signature_or_old_timestamp_gets_401(gate):
    run, approval, message = gate.open_approval()
    body = form_body(gate.click_payload(message, "U0ALICE", "approve"))

    wrong = signed_request(body, "wrong-secret")
    old = signed_request(body, gate.secret, int(time.time()) - 301)
    assert gate.post_interaction({}, body=body, headers=wrong)[0] == 401
    assert gate.post_interaction({}, body=body, headers=old)[0] == 401
    assert gate.post_interaction({}, body=body, headers={"Content-Type": "text/plain"})[0] == 401
    garbage = {**signed_request(body, gate.secret), "X-Slack-Request-Timestamp": "soon"}
    assert gate.post_interaction({}, body=body, headers=garbage)[0] == 401
    assert gate.results_for(run["approvalToken"]) == []
    assert has_buttons(gate.message_at(message["channel"], message["ts"]))

    assert gate.post_interaction({}, body=body, headers=signed_request(body, gate.secret))[0] == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])


def test_interactions_reach_the_function_as_a_base64_http_api_event(gate):
    seen = []
    original = gate.server.sandbox.invoke

    def spy(name, event):
        seen.append(event)
        return original(name, event)

    gate.server.sandbox.invoke = spy
    try:
        body = b"payload=%7B%7D"
        gate.post_interaction({}, body=body, headers=signed_request(body, gate.secret))
    finally:
        gate.server.sandbox.invoke = original

    (event,) = seen
    assert event["version"] == "2.0"
    assert event["routeKey"] == "POST /slack/interactions"
    assert event["isBase64Encoded"] is True
    assert base64.b64decode(event["body"]) == body


def test_the_page_lets_a_person_click_as_an_approver(gate):
    with urllib.request.urlopen(gate.url + "/", timeout=5) as response:
        page = response.read().decode()
    assert "/_sandbox/slack/click" in page and "Acting as" in page

    run, approval, message = gate.open_approval()
    answer = gate.client.post(
        "/_sandbox/slack/click",
        {
            "channel": message["channel"],
            "ts": message["ts"],
            "action_id": "approve",
            "user": "U0ALICE",
        },
    )

    assert answer["status"] == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])


def test_messages_can_be_read_by_channel_and_since_a_ts(gate):
    _run, approval, message = gate.open_approval()
    gate.click(message, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])
    assert patches.wait_for_events(timeout=10)  # the status feed has said all it will
    everything = gate.client.messages()
    assert message["ts"] in [m["ts"] for m in everything]

    assert gate.client.messages(channel=message["channel"]) == [
        m for m in everything if m["channel"] == message["channel"]
    ]
    assert gate.client.messages(channel="C0NOWHERE") == []
    later = gate.client.messages(oldest=message["ts"])
    assert later and message["ts"] not in [m["ts"] for m in later]
    assert later == [m for m in everything if float(m["ts"]) > float(message["ts"])]

    status, body = gate.client.request("GET", "/_sandbox/slack/messages?oldest=yesterday")
    assert status == 400
    assert body == {"error": "oldest must be a Slack ts, like 1795806333.000001"}


def test_reset_forgets_messages_calls_runs_and_results(gate):
    _run, approval, message = gate.open_approval()
    gate.click(message, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])

    gate.client.post("/_sandbox/reset")

    assert gate.client.messages() == []
    assert gate.client.calls() == []
    assert gate.client.approval_results() == []
    assert gate.server.sandbox.codepipeline.runs() == []
    assert wait_for(lambda: gate.client.get("/_sandbox/health"))["ok"] is True


def test_the_page_modal_path_asks_a_reason_and_closes_once_answered(gate):
    run, approval, message = gate.open_approval()
    where = {"channel": message["channel"], "ts": message["ts"], "user": "U0BOB"}
    gate.client.post("/_sandbox/slack/click", {**where, "action_id": "reject"})
    (view,) = [
        v
        for v in gate.client.get("/_sandbox/slack/views")
        if v["view"]["private_metadata"] == approval["approval_id"]
    ]

    empty = gate.client.post(
        "/_sandbox/slack/submit", {"view_id": view["id"], "user": "U0BOB", "values": {}}
    )
    assert empty["status"] == 200 and "reason" in empty["errors"]
    answered = gate.client.post(
        "/_sandbox/slack/submit",
        {"view_id": view["id"], "user": "U0BOB", "values": {"reason": {"reason": "Too risky"}}},
    )

    assert answered == {"status": 200, "errors": None}
    closed = [v for v in gate.client.get("/_sandbox/slack/views") if v["id"] == view["id"]]
    assert closed[0]["closed"] is True
    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["summary"] == "Rejected in Slack by bob (U0BOB): Too risky"
    gate.wait_execution(approval["approval_id"])
