"""When deploys may go on (issue 20, DESIGN §8.2), over HTTP with signed clicks as Slack
sends them: approvals held by a freeze, a closed window and an approver's requested time,
and reported when the hold ends; `outside_window: reject`; Cancel; Deploy now; a hold cut
off by CodePipeline's expiry; no reminders while held. Windows and freezes are a few
seconds from now, set through `POST /_sandbox/policy` for each test."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from sandbox.client import wait_for
from sandbox.fake_slack import view_submission_payload

APPROVERS = {"users": ["U0ALICE", "U0BOB"]}


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _use_policy(gate, **rule: Any) -> None:
    """The standard approvers, with the hold keys of `rule`, for every pipeline."""
    policy = {
        "defaults": {"channel": "C0DEPLOYS", "approvers": APPROVERS, "deadline": "1h", **rule},
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer


def _freeze(seconds: float, reason: str = "Release freeze") -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "from": _iso(now - timedelta(seconds=2)),
        "to": _iso(now + timedelta(seconds=seconds)),
        "reason": reason,
    }


def _record(gate, token: str) -> dict[str, Any]:
    return gate.approval_for(token)


def _wait_held(gate, token: str) -> dict[str, Any]:
    return wait_for(
        lambda: (record := _record(gate, token))["held"] and record,
        what="the approval to be held",
    )


def _wait_buttons(gate, message, wanted: list[str]) -> None:
    wait_for(lambda: gate.buttons(message) == wanted, what=f"the buttons {wanted}")


def _text(gate, message) -> str:
    return json.dumps(gate.message_at(message["channel"], message["ts"])["blocks"])


def _told(gate, user: str) -> str:
    return str(wait_for(lambda: gate.ephemerals(user), what=f"an answer to {user}")[-1]["text"])


def _submit(gate, view, user: str, values: dict[str, Any]) -> tuple[int, str]:
    payload = view_submission_payload(
        gate.server.sandbox.slack, view_id=view["id"], user_id=user, values=values
    )
    return gate.post_interaction(payload)


def _held_in_a_freeze(gate, **rule: Any) -> tuple[dict[str, Any], ...]:
    """A request approved by U0ALICE in a two-minute freeze, held and shown held."""
    _use_policy(gate, freezes=[_freeze(120)], **rule)
    run, approval, message = gate.open_approval()
    assert gate.click(message, "U0ALICE", "approve") == 200
    _wait_held(gate, run["approvalToken"])
    _wait_buttons(gate, message, ["cancel_hold"])
    return run, approval, message


def _finished(gate, approval) -> dict[str, Any]:
    return json.loads(gate.wait_execution(approval["approval_id"], timeout=30)["output"])


def test_an_approval_in_a_freeze_is_held_and_reported_when_it_ends(gate):
    # Long enough for every look at the held request below, even on a busy machine.
    _use_policy(gate, freezes=[_freeze(10)])
    run, approval, message = gate.open_approval()
    token = run["approvalToken"]
    assert "Frozen until" in _text(gate, message)
    assert "Release freeze" in _text(gate, message)

    assert gate.click(message, "U0ALICE", "approve") == 200

    held = _wait_held(gate, token)
    assert held["outcome"] is None and held["reported_at"] is None
    assert held["held"]["why"] == "freeze" and held["held"]["reason"] == "Release freeze"
    _wait_buttons(gate, message, ["cancel_hold"])  # no override approvers: no Deploy now
    assert "deploys at" in _text(gate, message)
    assert gate.results_for(token) == []  # CodePipeline hears nothing while held
    # The run's status message shows the approval held, not waiting for people.
    wait_for(
        lambda: any(
            "approved, deploys at" in json.dumps(m["blocks"])
            for m in gate.client.messages()
            if m.get("blocks") and m["ts"] != message["ts"]
        ),
        what="the run's message to show the hold",
    )

    result = gate.wait_result(token, timeout=25)
    assert result["result"]["status"] == "Approved"
    summary = result["result"]["summary"]
    assert summary.startswith("Approved in Slack by alice (U0ALICE)")
    assert "held" in summary and "Release freeze" in summary
    record = _finished(gate, approval)
    assert record["outcome"] == "approved"
    assert record["held"]["until"] <= record["reported_at"]
    assert record["override"] is None
    closed = gate.wait_closed(message)
    assert "held" in json.dumps(closed["blocks"]).lower()


def test_outside_every_window_the_approval_waits_for_the_next_one(gate):
    now = datetime.now(UTC)
    opens = now + timedelta(seconds=8)  # later than every look below, on a busy machine
    closes = now + timedelta(hours=1)
    window = {
        "days": [opens.strftime("%a").lower()],
        "from": opens.strftime("%H:%M:%S"),
        "to": closes.strftime("%H:%M:%S"),
    }
    _use_policy(gate, deploy_windows=[window])
    run, approval, message = gate.open_approval()
    assert "Outside the deploy windows until" in _text(gate, message)

    assert gate.click(message, "U0BOB", "approve") == 200

    held = _wait_held(gate, run["approvalToken"])
    assert held["held"]["why"] == "window"
    result = gate.wait_result(run["approvalToken"], timeout=25)
    assert result["result"]["status"] == "Approved"
    record = _finished(gate, approval)
    assert record["reported_at"] >= _iso(opens.replace(microsecond=0))


def test_outside_window_reject_reports_rejected_at_once_saying_why(gate):
    _use_policy(gate, freezes=[_freeze(120, "Year-end freeze")], outside_window="reject")
    run, approval, message = gate.open_approval()

    assert gate.click(message, "U0ALICE", "approve") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Rejected"
    summary = result["result"]["summary"]
    assert "Approved in Slack by alice (U0ALICE)" in summary
    assert "Year-end freeze" in summary and "outside_window: reject" in summary
    record = _finished(gate, approval)
    assert (record["outcome"], record["held"]) == ("rejected", None)


def test_a_rejection_in_a_freeze_is_never_held(gate):
    _use_policy(gate, freezes=[_freeze(120)])
    run, approval, message = gate.open_approval()

    assert gate.reject(message, "U0BOB", "Not during the freeze.") == 200

    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
    assert _finished(gate, approval)["held"] is None


def test_approve_for_later_holds_until_the_requested_time(gate):
    _use_policy(gate, allow_scheduling=True)
    run, approval, message = gate.open_approval()
    assert gate.buttons(message) == ["approve", "approve_later", "reject"]

    assert gate.click(message, "U0ALICE", "approve_later") == 200
    view = gate.opened_view(approval["approval_id"], "U0ALICE")
    past = int((datetime.now(UTC) - timedelta(minutes=5)).timestamp())
    status, body = _submit(gate, view, "U0ALICE", {"deploy_at": {"deploy_at": past}})
    assert status == 200 and "passed" in json.loads(body)["errors"]["deploy_at"]
    assert _record(gate, run["approvalToken"])["outcome"] is None  # nothing recorded

    at = math.ceil((datetime.now(UTC) + timedelta(seconds=4)).timestamp())
    status, body = _submit(gate, view, "U0ALICE", {"deploy_at": {"deploy_at": at}})
    assert status == 200 and not body  # the modal closes

    held = _wait_held(gate, run["approvalToken"])
    assert held["held"]["why"] == "schedule"
    assert held["held"]["until"] == _iso(datetime.fromtimestamp(at, UTC)).replace("+00:00", ".000Z")
    result = gate.wait_result(run["approvalToken"], timeout=25)
    assert result["result"]["status"] == "Approved"
    record = _finished(gate, approval)
    assert record["reported_at"] >= held["held"]["until"]


def test_cancel_opens_the_request_again_without_its_approvals(gate):
    run, approval, message = _held_in_a_freeze(gate)
    token = run["approvalToken"]
    fresh = gate.message_at(message["channel"], message["ts"])

    assert gate.click(fresh, "U0BOB", "cancel_hold") == 200

    record = wait_for(
        lambda: (r := _record(gate, token))["held"] is None and r, what="the hold cancelled"
    )
    assert record["outcome"] is None and record["decided_by"] == []
    _wait_buttons(gate, message, ["approve", "reject"])  # asked again
    assert "cancelled the hold" in json.dumps(gate.client.messages())
    assert gate.results_for(token) == []
    again = gate.message_at(message["channel"], message["ts"])
    assert gate.reject(again, "U0BOB", "Wait for the freeze to end.") == 200
    assert gate.wait_result(token)["result"]["status"] == "Rejected"
    _finished(gate, approval)


def test_deploy_now_needs_an_override_approver_and_a_reason(gate):
    _use_policy(
        gate,
        freezes=[_freeze(120, "Year-end freeze")],
        freeze_override={"approvers": {"users": ["U0CAROL"]}, "required_approvals": 1},
    )
    run, approval, message = gate.open_approval()
    token = run["approvalToken"]
    assert gate.click(message, "U0ALICE", "approve") == 200
    _wait_held(gate, token)
    _wait_buttons(gate, message, ["cancel_hold", "deploy_now"])
    held = gate.message_at(message["channel"], message["ts"])

    assert gate.click(held, "U0BOB", "deploy_now") == 200  # an approver, not an override one
    assert "freeze_override" in _told(gate, "U0BOB")
    assert gate.click(held, "U0CAROL", "deploy_now") == 200
    view = gate.opened_view(approval["approval_id"], "U0CAROL")
    status, body = _submit(gate, view, "U0CAROL", {})
    assert status == 200 and "Say why" in json.loads(body)["errors"]["reason"]
    assert _record(gate, token)["outcome"] is None

    reason = "Hotfix for the payment outage"
    status, _ = _submit(gate, view, "U0CAROL", {"reason": {"reason": reason}})
    assert status == 200, gate.logs()[-3000:]

    result = gate.wait_result(token)
    assert result["result"]["status"] == "Approved"
    assert "override" in result["result"]["summary"] and reason in result["result"]["summary"]
    record = _finished(gate, approval)
    assert record["override"] == {"by": ["U0CAROL"], "reason": reason}
    assert record["held"]["why"] == "freeze"
    closed = gate.wait_closed(message)
    assert "U0CAROL" in json.dumps(closed["blocks"])


def test_a_hold_never_outlasts_codepipelines_expiry(gate):
    now = datetime.now(UTC)
    # CodePipeline's expiry has minute precision: the margin puts the limit ~5 s away.
    expires = (now + timedelta(minutes=2)).replace(second=0, microsecond=0)
    margin = int((expires - now).total_seconds()) - 5
    _use_policy(gate, freezes=[_freeze(3600)], deadline_margin=f"{margin}s")
    run, approval, message = gate.open_approval(expires=_iso(expires))

    assert gate.click(message, "U0ALICE", "approve") == 200

    _wait_held(gate, run["approvalToken"])
    result = gate.wait_result(run["approvalToken"], timeout=20)
    assert result["result"]["status"] == "Rejected"
    assert "no deploy window opened before CodePipeline's deadline" in result["result"]["summary"]
    record = _finished(gate, approval)
    assert record["outcome"] == "rejected" and record["held"]["why"] == "freeze"


def test_no_reminder_goes_out_while_held(gate):
    _use_policy(gate, freezes=[_freeze(5)], reminder_every="1s", escalate_after_reminders=0)
    run, approval, message = gate.open_approval()
    assert gate.click(message, "U0ALICE", "approve") == 200
    held = _wait_held(gate, run["approvalToken"])

    gate.wait_result(run["approvalToken"], timeout=25)

    record = _finished(gate, approval)
    assert record["reminders"] == held["reminders"]
    thread = [
        m
        for m in gate.client.messages()
        if m.get("thread_ts") == message["ts"] and "remind" in m.get("text", "").lower()
    ]
    assert thread == []


def test_an_approval_by_policy_at_the_deadline_waits_for_the_freeze_too(gate):
    _use_policy(gate, freezes=[_freeze(9)], deadline="2s", on_deadline="approve")
    run, approval, message = gate.open_approval()

    held = _wait_held(gate, run["approvalToken"])  # nobody clicked: the deadline approved

    assert held["outcome"] is None and held["decided_by"] == []
    assert gate.results_for(run["approvalToken"]) == []
    wait_for(
        lambda: "policy at the deadline" in _text(gate, message), what="the held request shown"
    )
    result = gate.wait_result(run["approvalToken"], timeout=25)
    assert result["result"]["status"] == "Approved"
    assert "approved by policy" in result["result"]["summary"]
    assert "held" in result["result"]["summary"]
    record = _finished(gate, approval)
    assert record["outcome"] == "expired" and record["held"]["why"] == "freeze"
    assert record["reported_at"] >= record["held"]["until"]


def test_a_console_decision_during_a_hold_closes_it_without_a_report(gate):
    run, approval, message = _held_in_a_freeze(gate)
    token = run["approvalToken"]

    gate.client.post(
        f"/_sandbox/pipelines/web-app/approvals/{token}",
        {"status": "Approved", "summary": "shipped the hotfix by hand", "by": "ops@example.com"},
    )

    record = _finished(gate, approval)  # long before the freeze ends
    assert record["outcome"] == "decided_elsewhere" and record["decided_by"] == []
    assert record["held"]["why"] == "freeze"  # the audit keeps that it was held
    assert [r["source"] for r in gate.results_for(token)] == ["console"]
    gate.wait_closed(message)
