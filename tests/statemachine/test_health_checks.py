"""Health checks when asking (issue 21 point 2, DESIGN §8.3), over HTTP with signed clicks:
the request lists every check with its state; while one fails it offers no Approve and
says which check blocks; an old Approve is refused with the reason and records nothing;
Reject works; check functions are read again at each reminder, and Approve comes back
when they pass; the decision record keeps the checks."""

from __future__ import annotations

import json
from typing import Any

from sandbox.client import wait_for

ACCOUNT_REGION = "arn:aws:lambda:us-east-1:123456789012:function:"
TICKET_CHECK = "change-ticket-check"
ALARM = "prod-api-5xx"


def _use_policy(gate, **rule: Any) -> None:
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            "checks": {"alarms": [ALARM], "functions": [ACCOUNT_REGION + TICKET_CHECK]},
            **rule,
        }
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer


def _set_alarm(gate, state: str, reason: str = "Threshold no longer crossed") -> None:
    status, answer = gate.client.request(
        "POST", f"/_sandbox/alarms/{ALARM}", {"state": state, "reason": reason}
    )
    assert status == 200, answer


def _set_check(gate, **answer: Any) -> None:
    status, body = gate.client.request("POST", f"/_sandbox/checks/{TICKET_CHECK}", answer)
    assert status == 200, body


def _text(gate, message) -> str:
    return json.dumps(gate.message_at(message["channel"], message["ts"])["blocks"])


def _request(gate) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A run's request as first posted (with or without Approve)."""
    run = gate.start_run("web-app")
    approval = gate.approval_for(run["approvalToken"])
    message = wait_for(
        lambda: next(
            (
                m
                for m in gate.client.messages()
                if approval["approval_id"] in json.dumps(m.get("blocks") or [])
                and any(b["type"] == "actions" for b in m.get("blocks") or [])
            ),
            None,
        ),
        what="the request in Slack",
    )
    return run, approval, message


def test_an_alarm_in_alarm_blocks_approve_and_says_why_and_reject_still_works(gate):
    _use_policy(gate)
    _set_check(gate, passed=True, summary="ok")
    _set_alarm(gate, "ALARM", "Threshold Crossed: 5xx rate 7% > 2%")
    try:
        run, approval, message = _request(gate)

        assert gate.buttons(message) == ["reject"]
        shown = _text(gate, message)
        assert "Health checks" in shown and "prod-api-5xx> ALARM" in shown  # linked
        assert "5xx rate 7%" in shown and "Approve is blocked while *prod-api-5xx*" in shown
        assert "change-ticket-check" in shown

        assert gate.reject(message, "U0BOB", "Production is on fire.") == 200
        assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
        record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
        assert {c["name"]: (c["kind"], c["passed"], c["state"]) for c in record["checks"]} == {
            ALARM: ("alarm", False, "ALARM"),
            TICKET_CHECK: ("function", True, "PASSED"),
        }
    finally:
        _set_alarm(gate, "OK")


def test_a_failing_check_function_blocks_an_old_approve_then_passes_at_a_reminder(gate):
    _use_policy(gate, reminder_every="1s", escalate_after_reminders=0)
    _set_alarm(gate, "OK")
    _set_check(gate, passed=True, summary="CHG-1042 approved")
    run, approval, message = _request(gate)
    assert gate.buttons(message) == ["approve", "reject"]
    old = gate.message_at(message["channel"], message["ts"])  # Approve on it
    _set_check(gate, passed=False, summary="no change ticket for this release")

    # The next reminder reads the check again: Approve goes, the reason shows.
    wait_for(lambda: gate.buttons(message) == ["reject"], what="Approve to go")
    assert "no change ticket" in _text(gate, message)
    assert gate.click(old, "U0ALICE", "approve") == 200
    told = wait_for(lambda: gate.ephemerals("U0ALICE"), what="an answer to alice")[-1]["text"]
    assert "Approve is blocked" in told and "no change ticket" in told
    assert gate.approval_for(run["approvalToken"])["outcome"] is None  # nothing recorded

    _set_check(gate, passed=True, summary="CHG-1043 approved")
    wait_for(lambda: gate.buttons(message) == ["approve", "reject"], what="Approve back")
    fresh = gate.message_at(message["channel"], message["ts"])
    assert gate.click(fresh, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
    assert [c["summary"] for c in record["checks"] if c["kind"] == "function"] == [
        "CHG-1043 approved"
    ]
