"""The real approval.asl.json, executed by moto's interpreter with the real handlers.

Every test drives the sandbox the way its users do (a pipeline run, a signed Slack click,
a console decision) and finishes every execution it starts.
"""

from __future__ import annotations

import json
import threading
import time

from reliability.observed import run_attempts
from sandbox.client import has_buttons, wait_for


def attempts(gate, token):
    """The gate's PutApprovalResult attempts for this token (reliability.observed), from
    the fake's call log: a second attempt the fake refused counts too."""
    return run_attempts(
        gate.client.codepipeline_calls(), gate.server.sandbox.codepipeline.run_by_token(token)
    )


def test_an_approver_clicks_approve_and_codepipeline_hears_approved(gate):
    run, approval, message = gate.open_approval()

    assert gate.click(message, "U0ALICE", "approve") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Approved"
    assert result["source"] == "gate"
    assert "U0ALICE" in result["result"]["summary"]
    closed = gate.wait_closed(message)
    assert "Approved" in closed["text"]
    assert "U0ALICE" in json.dumps(closed["blocks"])
    execution = gate.wait_execution(approval["approval_id"])
    assert execution["status"] == "SUCCEEDED"
    record = json.loads(execution["output"])
    assert record["outcome"] == "approved"
    assert record["decided_by"] == ["U0ALICE"]
    assert record["pipeline_execution_id"] == run["pipelineExecutionId"]
    assert len(attempts(gate, run["approvalToken"])) == 1
    assert set(record) == {
        "approval_id",
        "pipeline",
        "stage",
        "action",
        "pipeline_execution_id",
        "outcome",
        "decided_by",
        "reason",
        "requested_at",
        "decided_at",
        "reminders",
        "escalated",
    }


def test_an_approver_clicks_reject_and_the_deploy_stops(gate):
    run, approval, message = gate.open_approval()

    assert gate.reject(message, "U0BOB", "The canary's error rate doubled.") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Rejected"
    assert result["result"]["summary"] == (
        "Rejected in Slack by bob (U0BOB): The canary's error rate doubled."
    )
    assert "Rejected" in gate.wait_closed(message)["text"]
    assert (
        json.loads(gate.wait_execution(approval["approval_id"])["output"])["outcome"] == "rejected"
    )


def test_a_forged_click_gets_401_and_decides_nothing(gate):
    run, approval, message = gate.open_approval()

    assert gate.click(message, "U0ALICE", "approve", secret="not-the-signing-secret") == 401
    stale = int(time.time()) - 6 * 60
    assert gate.click(message, "U0ALICE", "approve", timestamp=stale) == 401

    assert gate.results_for(run["approvalToken"]) == []
    assert has_buttons(gate.message_at(message["channel"], message["ts"]))
    assert gate.approval_for(run["approvalToken"])["outcome"] is None
    # finish the execution this test started
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])


def test_a_non_approver_is_told_so_and_changes_nothing(gate):
    run, approval, message = gate.open_approval()

    assert gate.click(message, "U0MALLORY", "approve") == 200

    told = wait_for(lambda: gate.ephemerals("U0MALLORY"), what="an ephemeral answer")
    assert "not an approver" in told[-1]["text"]
    assert "<@U0ALICE>" in told[-1]["text"]
    assert gate.results_for(run["approvalToken"]) == []
    assert gate.approval_for(run["approvalToken"])["outcome"] is None
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])


def test_a_click_on_an_unknown_approval_gets_a_clear_answer(gate):
    run, approval, message = gate.open_approval()
    payload = gate.click_payload(message, "U0ALICE", "approve")
    payload["actions"][0]["value"] = "0" * 32

    status, _ = gate.post_interaction(payload)

    assert status == 200
    told = wait_for(lambda: gate.ephemerals("U0ALICE"), what="an ephemeral answer")
    assert "does not know this request" in told[-1]["text"]
    assert gate.results_for(run["approvalToken"]) == []
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])


def test_twenty_concurrent_clicks_give_exactly_one_decision(gate):
    run, approval, message = gate.open_approval()
    payloads = [
        gate.click_payload(message, user, action)
        for user, action in [("U0ALICE", "approve"), ("U0BOB", "reject")] * 10
    ]
    statuses: list[int] = []
    barrier = threading.Barrier(len(payloads))

    def click(payload):
        barrier.wait()
        statuses.append(gate.post_interaction(payload)[0])

    threads = [threading.Thread(target=click, args=(p,)) for p in payloads]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    assert statuses == [200] * 20
    execution = gate.wait_execution(approval["approval_id"])
    assert execution["status"] == "SUCCEEDED"
    results = gate.results_for(run["approvalToken"])
    assert len(results) == 1
    assert len(attempts(gate, run["approvalToken"])) == 1
    record = json.loads(execution["output"])
    assert record["outcome"] in ("approved", "rejected")
    assert len(record["decided_by"]) == 1
    already = [m for m in gate.client.messages() if "Already" in (m["text"] or "")]
    assert len(already) >= 1


def test_a_duplicate_sns_delivery_starts_nothing_new(gate):
    run, approval, message = gate.open_approval()
    pipeline = gate.server.sandbox.codepipeline
    notification = pipeline.notification(pipeline.run_by_token(run["approvalToken"]))

    gate.server.sandbox.client("sns").publish(
        TopicArn=gate.server.sandbox.topic_arn, Message=json.dumps(notification)
    )

    executions = [
        e for e in gate.server.sandbox.executions() if e["name"].endswith(approval["approval_id"])
    ]
    assert len(executions) == 1
    requests = [
        m
        for m in gate.client.messages()
        if approval["approval_id"] in json.dumps(m["blocks"]) and not m["thread_ts"]
    ]
    assert len(requests) == 1
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])
    assert len(gate.results_for(run["approvalToken"])) == 1
    assert len(attempts(gate, run["approvalToken"])) == 1


def test_a_decision_codepipeline_already_has_closes_as_decided_elsewhere(gate):
    """The console decision's events are late (EventBridge guarantees no timing), so the
    gate only learns of it from PutApprovalResult's ApprovalAlreadyCompleted."""
    run, approval, message = gate.open_approval()
    pipeline = gate.server.sandbox.codepipeline
    emit, pipeline.emit = pipeline.emit, None  # the events are still on their way
    try:
        gate.client.post(
            f"/_sandbox/pipelines/web-app/approvals/{run['approvalToken']}",
            {"status": "Rejected", "summary": "stopped by hand", "by": "ops@example.com"},
        )
    finally:
        pipeline.emit = emit

    assert gate.click(message, "U0ALICE", "approve") == 200

    execution = gate.wait_execution(approval["approval_id"])
    assert execution["status"] == "SUCCEEDED"
    assert json.loads(execution["output"])["outcome"] == "decided_elsewhere"
    assert [r["source"] for r in gate.results_for(run["approvalToken"])] == ["console"]
    closed = gate.wait_closed(message)
    assert "Already decided in CodePipeline" in json.dumps(closed["blocks"])


def test_no_decision_by_the_deadline_rejects_by_policy(gate):
    run, approval, message = gate.open_approval("short-web-app")

    result = gate.wait_result(run["approvalToken"], timeout=15)

    assert result["result"]["status"] == "Rejected"
    assert result["result"]["summary"] == "No decision within 2s: rejected by policy"
    closed = gate.wait_closed(message)
    assert "Expired" in closed["text"]
    assert "rejected by policy" in json.dumps(closed["blocks"])
    record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
    assert record["outcome"] == "expired"


def test_on_deadline_approve_approves_when_the_policy_says_so(gate):
    run, approval, _ = gate.open_approval("lenient-web-app")

    result = gate.wait_result(run["approvalToken"], timeout=15)

    assert result["result"]["status"] == "Approved"
    assert result["result"]["summary"] == "No decision within 2s: approved by policy"
    gate.wait_execution(approval["approval_id"])


def test_the_workflow_waits_for_the_time_left_it_is_given(gate):
    _, approval, _ = gate.open_approval("short-web-app")

    history = gate.history(approval["approval_id"])
    scheduled = next(e for e in history if e["type"] == "TaskScheduled")
    timeout = scheduled["taskScheduledEventDetails"]["timeoutInSeconds"]

    assert 1 <= timeout <= 2
    gate.wait_execution(approval["approval_id"], timeout=15)


def test_a_malformed_notification_starts_nothing_and_says_why(gate):
    before = len(gate.server.sandbox.executions())

    gate.server.sandbox.client("sns").publish(
        TopicArn=gate.server.sandbox.topic_arn, Message="hello from a test publish"
    )

    assert len(gate.server.sandbox.executions()) == before
    assert "rejected a notification that is not a CodePipeline approval request" in gate.logs()
    assert "the SNS message is not JSON" in gate.logs()


def test_no_secret_or_token_reaches_logs_or_slack(gate):
    run, approval, message = gate.open_approval()
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])
    task_tokens = [
        json.loads(e["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]
        for e in gate.history(approval["approval_id"])
        if e["type"] == "TaskScheduled"
        and "task_token" in e["taskScheduledEventDetails"]["parameters"]
    ]
    assert task_tokens
    secrets = [
        run["approvalToken"],
        gate.secret,
        gate.server.sandbox.slack.bot_token,
        *task_tokens,
    ]
    slack_seen = json.dumps(gate.client.messages()) + json.dumps(gate.client.calls())
    logs = gate.logs()

    for secret in secrets:
        assert secret not in logs
        assert secret not in slack_seen
