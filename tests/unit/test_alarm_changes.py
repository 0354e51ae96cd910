"""Live health checks (issue 21 point 3): an alarm's state-change event applied to the open
requests that list it. moto's DynamoDB for the table and the watch items; recording fakes
for Slack and Step Functions; events shaped as CloudWatch documents them."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from approval_gate import asking, closing, live_checks
from approval_gate.checks import CheckResult
from approval_gate.records import WHY_CHECKS, Hold
from approval_gate.rules import Checks
from approval_gate.store import APPROVED, HELD, ApprovalStore
from approval_gate.windows import WHY_FREEZE

from tests.unit.fakes import (
    APPROVAL_ID,
    FIXED,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)

CHECKS = Checks(alarms=("prod-api-5xx", "prod-db-*"))
OK_API = CheckResult("prod-api-5xx", "alarm", True, "OK", "fine", FIXED - timedelta(hours=1))
NO_DB = CheckResult("prod-db-*", "alarm", False, "MISSING", "no alarm starts with prod-db-", FIXED)


def _event(name: str, state: str, at: str = "2026-12-01T17:05:00.000+0000", **extra: Any) -> dict:
    return {
        "version": "0",
        "id": "c4c1c1c9-6542-e61b-6ef0-8c4d36933a92",
        "detail-type": "CloudWatch Alarm State Change",
        "source": "aws.cloudwatch",
        "account": "123456789012",
        "time": "2026-12-01T17:05:01Z",
        "region": "us-east-2",
        "resources": [f"arn:aws:cloudwatch:us-east-2:123456789012:alarm:{name}"],
        "detail": {
            "alarmName": name,
            "state": {"value": state, "reason": f"now {state}", "timestamp": at},
            "previousState": {"value": "OK", "reason": "", "timestamp": at},
            **extra,
        },
    }


def _asked(store: ApprovalStore, *results: CheckResult, **rules: Any) -> RecordingSlack:
    """A request asked with these results: posted, watched."""
    store.create(make_approval(rules=make_rules(checks=CHECKS, **rules)))
    slack = RecordingSlack()
    asking.ask(APPROVAL_ID, "task", store=store, slack=slack, checker=lambda a: results)
    return slack


def _apply(store: ApprovalStore, event: Any, slack: Any = None, sfn: Any = None) -> dict:
    return live_checks.on_alarm_change(
        event,
        store=store,
        slack=slack or RecordingSlack(),
        sfn=sfn or RecordingSfn(),
        clock=clock_at(FIXED + timedelta(minutes=6)),
    )


def _hold(store: ApprovalStore, hold: Hold) -> None:
    by = ("U0ALICE",)
    store.decide(APPROVAL_ID, status=HELD, decided_by=by, reason=None, at=FIXED, held=hold)


def _buttons(call: dict[str, Any]) -> list[str]:
    return [e["action_id"] for b in call["blocks"] if b["type"] == "actions" for e in b["elements"]]


def test_an_alarm_going_off_hides_approve_and_a_thread_line_says_so(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    slack = RecordingSlack()

    done = _apply(store, _event("prod-api-5xx", "ALARM"), slack)

    assert done["approvals"] == {APPROVAL_ID: "updated"}
    approval = store.get(APPROVAL_ID)
    assert approval is not None
    api = approval.checks[0]
    assert (api.name, api.passed, api.state) == ("prod-api-5xx", False, "ALARM")
    assert api.summary == "now ALARM"
    assert api.at.isoformat() == "2026-12-01T17:05:00+00:00"  # since when, as the event says
    assert "alarmsV2:alarm/prod-api-5xx" in (api.url or "")
    update, post = slack.calls
    assert update[0] == "chat_update" and _buttons(update[1]) == ["reject"]
    assert post[0] == "chat_postMessage" and post[1]["thread_ts"] == approval.message_ts
    assert post[1]["text"] == ":x: *prod-api-5xx* is ALARM too"  # prod-db-* already failed


def test_a_new_alarm_under_a_listed_prefix_takes_the_prefix_s_place(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    slack = RecordingSlack()

    _apply(store, _event("prod-db-cpu", "OK"), slack)

    approval = store.get(APPROVAL_ID)
    assert approval is not None
    assert [(c.name, c.passed) for c in approval.checks] == [
        ("prod-api-5xx", True),
        ("prod-db-cpu", True),
    ]
    assert _buttons(slack.calls[0][1]) == ["approve", "reject"]
    assert slack.calls[1][1]["text"] == ":white_check_mark: *prod-db-cpu* is OK: Approve is back"


def test_an_event_older_than_what_the_request_shows_changes_nothing(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    _apply(store, _event("prod-api-5xx", "ALARM", "2026-12-01T17:05:00.000+0000"))
    slack = RecordingSlack()

    late = _apply(store, _event("prod-api-5xx", "OK", "2026-12-01T17:04:00.000+0000"), slack)

    assert late["approvals"] == {APPROVAL_ID: "unchanged"}
    assert store.get(APPROVAL_ID).checks[0].state == "ALARM"  # type: ignore[union-attr]
    assert slack.calls == []


def test_an_unlisted_alarm_and_a_closed_request_are_left_alone(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    assert _apply(store, _event("staging-api-5xx", "ALARM"))["approvals"] == {}

    closing.close(
        APPROVAL_ID,
        report_error=None,
        store=store,
        slack=RecordingSlack(),
        codepipeline=None,
        clock=clock_at(FIXED),
    )
    slack = RecordingSlack()
    assert _apply(store, _event("prod-api-5xx", "ALARM"), slack)["approvals"] == {}
    assert slack.calls == []


def test_a_request_closed_without_unwatching_is_unwatched_by_the_next_event(
    store: ApprovalStore,
) -> None:
    _asked(store, OK_API, NO_DB)
    store.decide(APPROVAL_ID, status=APPROVED, decided_by=("U0ALICE",), reason=None, at=FIXED)

    assert _apply(store, _event("prod-api-5xx", "ALARM"))["approvals"] == {APPROVAL_ID: "closed"}
    assert store.alarm_watchers("prod-api-5xx") == {}


def test_a_write_lost_to_another_change_reads_again_and_keeps_both(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    real_save = store.save_checks
    raced: list[bool] = []

    def save_after_another_change(approval_id: str, results: Any, *, seen: Any = None) -> Any:
        if not raced:  # another alarm's event lands between the read and this write
            raced.append(True)
            db_ok = CheckResult("prod-db-cpu", "alarm", True, "OK", "ok", FIXED)
            real_save(approval_id, (OK_API, db_ok))
        return real_save(approval_id, results, seen=seen)

    store.save_checks = save_after_another_change  # type: ignore[method-assign]
    _apply(store, _event("prod-api-5xx", "ALARM"))

    approval = store.get(APPROVAL_ID)
    assert approval is not None
    assert [(c.name, c.state) for c in approval.checks] == [
        ("prod-api-5xx", "ALARM"),
        ("prod-db-cpu", "OK"),
    ]


def test_changes_within_a_minute_edit_one_thread_line(store: ApprovalStore) -> None:
    _asked(store, OK_API, NO_DB)
    first, second = RecordingSlack(), RecordingSlack()
    _apply(store, _event("prod-db-cpu", "OK", "2026-12-01T17:05:00.000+0000"), first)
    line = store.get(APPROVAL_ID).checks_line  # type: ignore[union-attr]
    assert line is not None and line.changes == 1
    _apply(store, _event("prod-db-cpu", "ALARM", "2026-12-01T17:05:01.000+0000"), second)

    posted = first.calls[1]
    assert posted[0] == "chat_postMessage"
    edit = second.calls[1]
    assert edit[0] == "chat_update" and edit[1]["ts"] == line.ts
    assert edit[1]["text"].startswith(":x: *prod-db-cpu* is ALARM: Approve is hidden until")
    assert "_(2 changes since <!date^" in edit[1]["text"]
    assert "chat_postMessage" not in second.methods()


def test_a_hold_waiting_for_the_checks_goes_on_when_they_all_pass(store: ApprovalStore) -> None:
    failing_api = OK_API._replace(passed=False, state="ALARM")
    _asked(store, failing_api, NO_DB._replace(name="prod-db-cpu", passed=True, state="OK"))
    hold = Hold(FIXED + timedelta(hours=2), WHY_CHECKS, "prod-api-5xx ALARM")
    _hold(store, hold)
    store.save_hold_token(APPROVAL_ID, "hold-token")
    sfn = RecordingSfn()

    _apply(store, _event("prod-api-5xx", "OK"), sfn=sfn)

    assert [call["taskToken"] for call in sfn.task_successes] == ["hold-token"]


def test_a_hold_for_a_freeze_is_not_ended_by_an_alarm(store: ApprovalStore) -> None:
    _asked(store, OK_API._replace(passed=False, state="ALARM"), NO_DB)
    hold = Hold(FIXED + timedelta(hours=2), WHY_FREEZE, "Year-end freeze")
    _hold(store, hold)
    store.save_hold_token(APPROVAL_ID, "hold-token")
    sfn = RecordingSfn()

    _apply(store, _event("prod-api-5xx", "OK"), sfn=sfn)

    assert sfn.task_successes == []
    assert store.get(APPROVAL_ID).checks[0].state == "OK"  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("event", "why"),
    [
        ("not an event", "not a CloudWatch Alarm State Change event"),
        ({**_event("a", "OK"), "detail-type": "EC2 Instance State-change"}, "not a CloudWatch"),
        ({**_event("a", "OK"), "detail": {"alarmName": "a"}}, "no detail.state"),
        (_event("", "OK"), "not an alarm name"),
        (_event("a", "BURNING"), "not an alarm state"),
        ({**_event("a", "OK", at="yesterday"), "time": None}, "says no time"),
    ],
)
def test_a_malformed_event_is_rejected_with_its_reason_and_changes_nothing(
    store: ApprovalStore, event: Any, why: str
) -> None:
    _asked(store, OK_API, NO_DB)
    before = store.get(APPROVAL_ID)
    with pytest.raises(live_checks.MalformedEvent, match=why):
        _apply(store, event)
    assert store.get(APPROVAL_ID) == before
