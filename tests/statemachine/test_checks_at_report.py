"""Health checks just before an approval is reported (issue 21 point 4, DESIGN §8.3), over
HTTP with signed clicks: an approval reached while a check function fails is held, and
reported when it passes; `on_failing: reject` reports Rejected at once; a hold cut off at
`expires - deadline_margin` is Rejected; the decision record keeps the checks as of the
report. Each request is posted with every check passing (a failing check hides Approve),
then the check function is made to fail before the click."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.client import wait_for

ACCOUNT_REGION = "arn:aws:lambda:us-east-1:123456789012:function:"
TICKET_CHECK = "change-ticket-check"
ALARM = "prod-api-5xx"
#: While held, the check function runs again this often (the rule's reminder_every).
RERUN_SECONDS = 5
#: How long a step of the workflow may take on a busy machine, beyond its own timing.
BOUND = 10


def _use_policy(gate, on_failing: str = "hold", **rule: Any) -> None:
    checks = {
        "alarms": [ALARM],
        "functions": [ACCOUNT_REGION + TICKET_CHECK],
        "on_failing": on_failing,
    }
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            "checks": checks,
            **rule,
        }
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer


def _set_check(gate, **answer: Any) -> None:
    status, body = gate.client.request("POST", f"/_sandbox/checks/{TICKET_CHECK}", answer)
    assert status == 200, body


def _set_alarm_ok(gate) -> None:
    status, body = gate.client.request(
        "POST", f"/_sandbox/alarms/{ALARM}", {"state": "OK", "reason": "Threshold not crossed"}
    )
    assert status == 200, body


def _approved_while_the_ticket_check_fails(gate, **body: Any) -> tuple[dict[str, Any], ...]:
    """A request posted with every check passing; then the ticket check fails and U0ALICE
    approves, judged by the results recorded when asked (nothing runs while Slack waits)."""
    _set_alarm_ok(gate)
    _set_check(gate, passed=True, summary="CHG-1042 approved")
    run, approval, message = gate.open_approval(**body)
    assert gate.buttons(message) == ["approve", "reject"]
    _set_check(gate, passed=False, summary="no change ticket for this release")
    assert gate.click(message, "U0ALICE", "approve") == 200
    return run, approval, message


def _wait_held_for_checks(gate, token: str) -> dict[str, Any]:
    return wait_for(
        lambda: (
            (record := gate.approval_for(token))["held"]
            and record["held"]["why"] == "checks"
            and record
        ),
        what="the approval held for the health checks",
    )


def _text(gate, message) -> str:
    return json.dumps(gate.message_at(message["channel"], message["ts"])["blocks"])


def _finished(gate, approval) -> dict[str, Any]:
    return json.loads(gate.wait_execution(approval["approval_id"], timeout=30)["output"])


def test_an_approval_held_by_a_failing_check_is_reported_once_it_passes(gate):
    _use_policy(gate, reminder_every=f"{RERUN_SECONDS}s", escalate_after_reminders=0)
    run, approval, message = _approved_while_the_ticket_check_fails(gate)
    token = run["approvalToken"]

    held = _wait_held_for_checks(gate, token)
    assert held["outcome"] is None and held["reported_at"] is None
    assert "no change ticket" in held["held"]["reason"]
    wait_for(
        lambda: "waiting for the health checks to pass" in _text(gate, message),
        what="the held request in Slack",
    )
    assert gate.buttons(message) == ["cancel_hold"]  # no Deploy now for failing health
    # The run's status message says what it waits for, not a deploy time it cannot know.
    wait_for(
        lambda: any(
            "approved, waiting for the health checks to pass" in json.dumps(m["blocks"])
            for m in gate.client.messages()
            if m.get("blocks") and m["ts"] != message["ts"]
        ),
        what="the run's message to show the checks hold",
    )
    assert "no change ticket for this release" in _text(gate, message)
    # While held, the check function runs again every reminder_every (no reminder posted).
    first_run = next(c["at"] for c in held["checks"] if c["kind"] == "function")
    again = wait_for(
        lambda: (
            (record := gate.approval_for(token))["checks"]
            and any(c["kind"] == "function" and c["at"] > first_run for c in record["checks"])
            and record
        ),
        timeout=RERUN_SECONDS + BOUND,
        what="the check function run again while held",
    )
    assert again["held"]["why"] == "checks" and again["outcome"] is None
    assert gate.results_for(token) == []  # CodePipeline hears nothing while held

    _set_check(gate, passed=True, summary="CHG-1043 approved")

    result = gate.wait_result(token, timeout=RERUN_SECONDS + BOUND)  # at the next run
    assert result["result"]["status"] == "Approved"
    summary = result["result"]["summary"]
    assert summary.startswith("Approved in Slack by alice (U0ALICE)")
    assert summary.endswith("for the health checks")
    record = _finished(gate, approval)
    assert record["outcome"] == "approved" and record["held"]["why"] == "checks"
    assert record["reminders"] == held["reminders"]  # checks re-run, no reminder posted
    assert {c["name"]: (c["passed"], c["summary"]) for c in record["checks"]} == {
        ALARM: (True, "Threshold not crossed"),
        TICKET_CHECK: (True, "CHG-1043 approved"),
    }
    assert all(c["at"] <= record["reported_at"] for c in record["checks"])
    closed = gate.wait_closed(message)
    assert "for the health checks" in json.dumps(closed["blocks"])


def test_on_failing_reject_reports_rejected_at_once_naming_the_failing_check(gate):
    _use_policy(gate, on_failing="reject")
    run, approval, message = _approved_while_the_ticket_check_fails(gate)

    result = gate.wait_result(run["approvalToken"], timeout=BOUND)

    assert result["result"]["status"] == "Rejected"
    summary = result["result"]["summary"]
    assert summary.startswith("Approved in Slack by alice (U0ALICE), but health checks failed")
    assert "change-ticket-check: no change ticket for this release" in summary
    assert "on_failing: reject" in summary
    record = _finished(gate, approval)
    assert (record["outcome"], record["held"]) == ("rejected", None)
    assert [c["passed"] for c in record["checks"] if c["name"] == TICKET_CHECK] == [False]
    closed = json.dumps(gate.wait_closed(message)["blocks"])
    assert "Rejected" in closed and "on_failing: reject" in closed


def test_a_hold_on_failing_checks_is_cut_off_at_codepipelines_expiry(gate):
    now = datetime.now(UTC)
    # CodePipeline's expiry has minute precision: the margin puts the limit ~8 s away.
    expires = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    margin = int((expires - now).total_seconds()) - 8
    _use_policy(gate, deadline_margin=f"{margin}s")
    expiry = expires.isoformat(timespec="seconds")
    run, approval, message = _approved_while_the_ticket_check_fails(gate, expires=expiry)
    token = run["approvalToken"]

    held = _wait_held_for_checks(gate, token)
    limit = held["held"]["until"]

    result = gate.wait_result(token, timeout=8 + BOUND)
    assert result["result"]["status"] == "Rejected"
    summary = result["result"]["summary"]
    assert "health checks still failed at CodePipeline's deadline" in summary
    assert "change-ticket-check: no change ticket for this release" in summary
    record = _finished(gate, approval)
    assert record["outcome"] == "rejected" and record["held"]["why"] == "checks"
    assert record["held"]["until"] == limit
    assert [c["passed"] for c in record["checks"] if c["name"] == TICKET_CHECK] == [False]
    assert "still failed" in json.dumps(gate.wait_closed(message)["blocks"])
