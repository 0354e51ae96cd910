"""Live health checks (issue 21 point 3, DESIGN §8.3), over HTTP: an alarm's state change
reaches the open requests that list it through CloudWatch's event, in seconds; Approve is
hidden or back; a thread line says what changed; a flapping alarm leaves the request in its
last state with one thread line; a closed request is left alone."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox.client import wait_for

ALARM = "prod-api-5xx"
PREFIXED = "prod-db-sandbox"  # the sandbox's alarm for the policy's prefix "prod-db-*"


def _use_policy(gate, **rule: Any) -> None:
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            "checks": {"alarms": [ALARM, "prod-db-*"]},
            **rule,
        }
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer


def _set_alarm(gate, name: str, state: str, reason: str | None = None) -> None:
    body = {"state": state, **({"reason": reason} if reason else {})}
    status, answer = gate.client.request("POST", f"/_sandbox/alarms/{name}", body)
    assert status == 200, answer


def _request(gate) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    run = gate.start_run("web-app")
    approval = gate.approval_for(run["approvalToken"])
    message = gate.request_message(approval["approval_id"])
    wait_for(lambda: gate.buttons(message), what="the request's buttons")
    return run, approval, message


def _thread(gate, message: dict[str, Any]) -> list[str]:
    return [
        m["text"]
        for m in gate.client.messages(channel=message["channel"])
        if m.get("thread_ts") == message["ts"] and m["ts"] != message["ts"]
    ]


def _shown(gate, message: dict[str, Any]) -> str:
    return json.dumps(gate.message_at(message["channel"], message["ts"])["blocks"])


def test_an_alarm_going_ok_brings_approve_back_within_two_seconds_and_says_so(gate):
    _use_policy(gate)
    _set_alarm(gate, PREFIXED, "OK")
    _set_alarm(gate, ALARM, "ALARM", "Threshold Crossed: 5xx rate 7% > 2%")
    try:
        run, approval, message = _request(gate)
        assert gate.buttons(message) == ["reject"]
        assert "Approve is blocked while *prod-api-5xx*" in _shown(gate, message)

        changed = time.monotonic()
        _set_alarm(gate, ALARM, "OK", "Threshold no longer crossed")
        wait_for(
            lambda: gate.buttons(message) == ["approve", "reject"],
            timeout=2.0,
            what="Approve back within 2 s",
        )
        assert time.monotonic() - changed < 2.0
        assert "Approve is blocked" not in _shown(gate, message)
        line = wait_for(lambda: _thread(gate, message), what="a thread line")
        assert line == [":white_check_mark: *prod-api-5xx* is OK again: Approve is back"]

        # An alarm under a listed prefix blocks it again, live, and says so.
        _set_alarm(gate, PREFIXED, "ALARM", "CPU 97%")
        wait_for(lambda: gate.buttons(message) == ["reject"], timeout=2.0, what="Approve gone")
        assert "CPU 97%" in _shown(gate, message)

        told = _thread(gate, message)  # the OK line, edited to say the last change
        assert len(told) == 1 and told[0].startswith(":x: *prod-db-sandbox* is ALARM")
        assert "2 changes since" in told[0]
        assert gate.reject(message, "U0BOB", "The database is busy.") == 200
        assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
        record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
        states = {c["name"]: (c["passed"], c["state"]) for c in record["checks"]}
        assert states == {ALARM: (True, "OK"), PREFIXED: (False, "ALARM")}

        # Closed: a later change leaves the closed request as it is. Another open request
        # that lists the alarm shows when the change has been handled.
        closed = gate.message_at(message["channel"], message["ts"])
        other_run, _, other = _request(gate)
        assert gate.buttons(other) == ["reject"]
        _set_alarm(gate, PREFIXED, "OK")
        wait_for(lambda: gate.buttons(other) == ["approve", "reject"], what="the other one")
        assert gate.message_at(message["channel"], message["ts"]) == closed
        assert _thread(gate, message) == told
        assert gate.reject(other, "U0BOB", "Not today.") == 200
        gate.wait_result(other_run["approvalToken"])
    finally:
        _set_alarm(gate, ALARM, "OK")
        _set_alarm(gate, PREFIXED, "OK")


def test_a_flapping_alarm_leaves_the_last_state_and_one_thread_line(gate):
    _use_policy(gate)
    _set_alarm(gate, ALARM, "OK")
    _set_alarm(gate, PREFIXED, "OK")
    try:
        run, _, message = _request(gate)
        assert gate.buttons(message) == ["approve", "reject"]
        for change in range(10):  # ALARM, OK, ALARM, ... ends in OK then one more: ALARM
            _set_alarm(gate, ALARM, "ALARM" if change % 2 == 0 else "OK", f"flap {change}")
        _set_alarm(gate, ALARM, "ALARM", "flap 10")
        wait_for(
            lambda: any("11 changes since" in line for line in _thread(gate, message)),
            what="the last change told",
        )
        assert gate.buttons(message) == ["reject"]
        assert "flap 10" in _shown(gate, message)
        lines = _thread(gate, message)
        assert len(lines) == 1, lines
        assert lines[0].startswith(":x: *prod-api-5xx* is ALARM: Approve is hidden")
        assert "11 changes since" in lines[0]
        assert gate.reject(message, "U0BOB", "Flapping.") == 200
        gate.wait_result(run["approvalToken"])
    finally:
        _set_alarm(gate, ALARM, "OK")
