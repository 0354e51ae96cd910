"""Reminders, escalation and the deadline, with the policy set to seconds."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.client import wait_for

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "reminders.yaml"


def _thread(gate, message):
    return [
        m
        for m in gate.client.messages()
        if m["thread_ts"] == message["ts"] and m["ts"] != message["ts"]
    ]


def _escalations(gate, message):
    """Escalation posts that link (by permalink) to this request."""
    link = message["ts"].replace(".", "")
    return [m for m in gate.client.messages() if m["channel"] == "C0ONCALL" and link in m["text"]]


def _reminders(gate, message):
    return [m for m in _thread(gate, message) if m["text"].startswith(":bell: Reminder")]


def test_reminders_escalation_and_expiry_when_nobody_decides(gate):
    run, approval, message = gate.open_approval("web-app")

    result = gate.wait_result(run["approvalToken"], timeout=20)
    execution = gate.wait_execution(approval["approval_id"])

    assert result["result"] == {
        "status": "Rejected",
        "summary": "No decision within 6s: rejected by policy",
    }
    record = json.loads(execution["output"])
    assert record["outcome"] == "expired"
    assert record["escalated"] is True
    reminders = _reminders(gate, message)
    assert 3 <= len(reminders) == record["reminders"] <= 6
    for reminder in reminders:
        assert "<@U0ALICE>" in reminder["text"] and "<!subteam^S0RELEASE>" in reminder["text"]
        assert "rejected* by policy" in reminder["text"]
        assert "left" in reminder["text"]
    escalations = _escalations(gate, message)
    assert len(escalations) == 1
    assert "<!subteam^S0ONCALL>" in escalations[0]["text"]
    notes = [m for m in _thread(gate, message) if "Escalated to <#C0ONCALL>" in m["text"]]
    assert len(notes) == 1 and "<@U0CAROL>" in notes[0]["text"]
    closed = gate.wait_closed(message)
    assert closed["text"].startswith("Expired")
    assert "No decision within 6s: rejected by policy" in json.dumps(closed["blocks"])
    history = gate.history(approval["approval_id"])
    heartbeats = [
        e
        for e in history
        if e["type"] == "TaskTimedOut"
        and e["taskTimedOutEventDetails"]["error"] == "States.HeartbeatTimeout"
    ]
    assert len(heartbeats) >= record["reminders"]


def test_a_click_before_the_deadline_stops_the_reminders_at_once(gate):
    run, approval, message = gate.open_approval("web-app")
    wait_for(lambda: _reminders(gate, message), timeout=10, what="a first reminder")

    assert gate.click(message, "U0BOB", "approve") == 200

    execution = gate.wait_execution(approval["approval_id"])
    record = json.loads(execution["output"])
    assert record["outcome"] == "approved"
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    # The workflow has ended: no reminder can follow the decision.
    assert len(_reminders(gate, message)) == record["reminders"] >= 1


def test_the_request_message_counts_reminders_and_time_left(gate):
    _, approval, message = gate.open_approval("web-app")
    wait_for(lambda: len(_reminders(gate, message)) >= 2, timeout=10, what="two reminders")

    def counted():
        current = gate.message_at(message["channel"], message["ts"])
        return current if "reminders sent" in json.dumps(current["blocks"]) else None

    current = wait_for(counted, what="the context line")

    context = json.dumps(current["blocks"])
    assert "left" in context
    assert "<!date^" in context
    gate.click(current, "U0ALICE", "approve")
    gate.wait_execution(approval["approval_id"])


def test_escalation_approvers_may_decide_only_after_escalation(gate):
    run, approval, message = gate.open_approval("slow-web-app")

    assert gate.click(message, "U0CAROL", "approve") == 200
    told = wait_for(lambda: gate.ephemerals("U0CAROL"), what="the refusal")
    assert "not an approver" in told[-1]["text"]
    wait_for(lambda: _escalations(gate, message), timeout=10, what="the escalation")

    current = gate.message_at(message["channel"], message["ts"])
    assert gate.click(current, "U0CAROL", "approve") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Approved"
    assert "U0CAROL" in result["result"]["summary"]
    gate.wait_execution(approval["approval_id"])


def _token(scheduled):
    """The task token an ask (its TaskScheduled event) handed the AskApprovers function."""
    return json.loads(scheduled["taskScheduledEventDetails"]["parameters"])["Payload"]["task_token"]


def _asked_token(events, event):
    """The task token of the ask that `event` (one of its task's events) belongs to: walk
    back to the task's TaskScheduled."""
    by_id = {e["id"]: e for e in events}
    while event["type"] != "TaskScheduled":
        event = by_id[event["previousEventId"]]
    return _token(event)


def _asks(events):
    """The callback tasks' TaskScheduled events (each ask of the approvers), in order."""
    return [
        e
        for e in events
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"]["resource"] == "invoke.waitForTaskToken"
    ]


def test_a_click_after_a_reminder_uses_the_fresh_task_token(gate):
    """The click must resume the task waiting now. A click that sent the token of the ask
    before the reminder would fail (that task timed out), and the decision would still
    arrive, later, through the next reminder: so the test reads which task it resumed."""
    run, approval, message = gate.open_approval("slow-web-app")

    def asked_again():
        asks = _asks(gate.history(approval["approval_id"]))
        return asks if len(asks) >= 2 else None

    first, second = map(_token, wait_for(asked_again, timeout=10, what="a second ask")[:2])
    assert first != second

    assert gate.reject(message, "U0ALICE", "not today") == 200

    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
    gate.wait_execution(approval["approval_id"])
    events = gate.history(approval["approval_id"])
    resumed = [
        e
        for e in events
        if e["type"] == "TaskSucceeded"
        and e["taskSucceededEventDetails"]["resource"] == "invoke.waitForTaskToken"
    ]
    # One ask was resumed by SendTaskSuccess with the decision (not by a reminder finding
    # it recorded), and it was an ask made after the first: its token was the fresh one.
    assert len(resumed) == 1, "the click's SendTaskSuccess resumed no waiting task"
    assert json.loads(resumed[0]["taskSucceededEventDetails"]["output"])["outcome"] == "rejected"
    token = _asked_token(events, resumed[0])
    assert token != first
    assert token == _token(_asks(events)[-1])  # the last ask: the task waiting


def test_votes_cast_before_a_reminder_still_count_after_it(gate):
    run, approval, message = gate.open_approval("quorum-web-app")

    assert gate.click(message, "U0ALICE", "approve") == 200
    tally = wait_for(lambda: gate.ephemerals("U0ALICE"), what="the tally")
    assert "1 more approval needed" in tally[-1]["text"]
    wait_for(lambda: _reminders(gate, message), timeout=10, what="a reminder after the vote")
    assert gate.results_for(run["approvalToken"]) == []

    assert gate.click(message, "U0ALICE", "approve") == 200  # a second click counts once
    assert gate.click(message, "U0BOB", "approve") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Approved"
    assert "U0ALICE" in result["result"]["summary"] and "U0BOB" in result["result"]["summary"]
    record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
    assert record["decided_by"] == ["U0ALICE", "U0BOB"]
    assert record["reminders"] >= 1
    assert len(gate.results_for(run["approvalToken"])) == 1
