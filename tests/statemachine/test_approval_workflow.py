"""The real approval.asl.json, executed by moto's interpreter with the real handlers.

Every test drives the sandbox the way its users do (a pipeline run, a signed Slack click,
a console decision) and finishes every execution it starts.
"""

from __future__ import annotations

import json
import threading
import time

from approval_gate.store import Approval, ApprovalStore

from reliability.observed import run_attempts
from sandbox.client import has_buttons, wait_for
from sandbox.fake_slack import view_submission_payload


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
        "steps",
        "held",
        "reported_at",
        "override",
        "checks",
        "revisions",
        "previous_revisions",
        "compare_url",
        "votes",
    }
    assert [step["approved_by"] for step in record["steps"]] == [["U0ALICE"]]
    assert [(v["user"], v["vote"], v["inputs"]) for v in record["votes"]] == [
        ("U0ALICE", "approve", {})
    ]
    assert (record["held"], record["override"]) == (None, None)
    # Reported once CodePipeline took the result: after the decision, before the close.
    assert record["decided_at"] <= record["reported_at"]


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


class ReadsTogether:
    """Holds the first `parties` reads of one approval until all of them have read, so
    every racing click sees the request open before any of them writes: what twenty
    concurrent Lambdas may do on AWS, and what the in-process sandbox rarely interleaves
    by itself. Only the conditional write can then keep the decision single."""

    def __init__(self, approval_id: str, parties: int) -> None:
        self.approval_id = approval_id
        self.barrier = threading.Barrier(parties, timeout=10)
        self.left = parties
        self.lock = threading.Lock()
        self.read = ApprovalStore.get

    def get(self, store: ApprovalStore, approval_id: str) -> Approval | None:
        found = self.read(store, approval_id)
        with self.lock:
            held = approval_id == self.approval_id and self.left > 0
            self.left -= held
        if held:
            self.barrier.wait()  # BrokenBarrierError (an HTTP 500) if the race never formed
        return found


def test_twenty_concurrent_clicks_give_exactly_one_decision(gate, monkeypatch):
    """Ten Approve clicks race ten Reject modal submissions (the policy asks a reason for
    Reject, so a Reject click only opens the modal): both outcomes can win. Judged from
    what the clickers were answered and what CodePipeline was asked, not the gate's record."""
    run, approval, message = gate.open_approval()
    approval_id = approval["approval_id"]
    reasons = [f"Reject reason {n}: the canary is red." for n in range(10)]
    opened = len(_modals(gate, approval_id))
    for _ in reasons:
        assert gate.click(message, "U0BOB", "reject") == 200
    modals = _modals(gate, approval_id)[opened:]  # views.open is called within the click
    assert len(modals) == len(reasons)
    assert gate.results_for(run["approvalToken"]) == []  # opening a modal decides nothing
    submissions = [
        view_submission_payload(
            gate.server.sandbox.slack,
            view_id=modal["id"],
            user_id="U0BOB",
            values={"reason": {"reason": reason}},
        )
        for modal, reason in zip(modals, reasons, strict=True)
    ]
    clicks = [gate.click_payload(message, "U0ALICE", "approve") for _ in range(10)]
    told_before = len(gate.ephemerals("U0ALICE"))
    answers: dict[int, tuple[int, str]] = {}
    payloads = [p for pair in zip(clicks, submissions, strict=True) for p in pair]
    barrier = threading.Barrier(len(payloads))
    together = ReadsTogether(approval_id, len(payloads))
    monkeypatch.setattr(ApprovalStore, "get", lambda store, key: together.get(store, key))

    def send(n, payload):
        barrier.wait()
        answers[n] = gate.post_interaction(payload)

    threads = [threading.Thread(target=send, args=(n, p)) for n, p in enumerate(payloads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)

    monkeypatch.undo()
    assert sorted(answers) == list(range(20))
    assert together.left == 0 and not together.barrier.broken
    assert [status for status, _ in answers.values()] == [200] * 20
    # Each clicker got an answer: the losers are told "Already ..." (Approve clicks by an
    # ephemeral message, submissions under the modal's input); the one winner is not.
    submitted = [answers[n][1] for n in range(1, 20, 2)]
    refused_submissions = [_modal_error(body) for body in submitted if body]
    won_by_reason = [reason for reason, body in zip(reasons, submitted, strict=True) if not body]
    # chat.postEphemeral is called within the click, so every answer is in by now.
    refused_clicks = [m["text"] for m in gate.ephemerals("U0ALICE")[told_before:]]
    assert len(refused_clicks) in (9, 10)
    approve_won = len(refused_clicks) == 9
    assert approve_won + len(won_by_reason) == 1, (refused_clicks, submitted)
    refusals = refused_clicks + refused_submissions
    assert len(refusals) == 19
    already, winner = ("Already approved", "alice") if approve_won else ("Already rejected", "bob")
    # Ephemeral messages mention the winner (<@U0...>); a modal's error shows plain text.
    assert all(r.startswith(already) and winner in r.lower() for r in refusals), refusals

    execution = gate.wait_execution(approval_id)
    assert execution["status"] == "SUCCEEDED"
    # CodePipeline was asked once, with the decision of the one vote accepted.
    tried = attempts(gate, run["approvalToken"])
    assert len(tried) == 1, [c["args"]["result"] for c in tried]
    result = tried[0]["args"]["result"]
    if approve_won:
        assert result["status"] == "Approved"
        assert "U0ALICE" in result["summary"]
    else:
        assert result["status"] == "Rejected"
        assert result["summary"] == f"Rejected in Slack by bob (U0BOB): {won_by_reason[0]}"
    assert [r["result"] for r in gate.results_for(run["approvalToken"])] == [result]
    record = json.loads(execution["output"])
    assert record["outcome"] == ("approved" if approve_won else "rejected")
    assert record["decided_by"] == (["U0ALICE"] if approve_won else ["U0BOB"])


def _modals(gate, approval_id):
    """The modals the gate opened for this approval, oldest first."""
    return [
        v
        for v in gate.server.sandbox.slack.views()
        if v["view"].get("private_metadata") == approval_id
    ]


def _modal_error(body):
    """The words a modal submission's answer shows under the input."""
    answer = json.loads(body)
    assert answer["response_action"] == "errors"
    (words,) = answer["errors"].values()
    return words


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
