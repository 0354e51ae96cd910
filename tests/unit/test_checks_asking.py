"""Health checks when asking (issue 21 point 2): the ask step reads them and keeps them on
the item, the request shows them and offers no Approve while one fails, and a click is
judged by the results as last recorded. No network: a stub checker, moto's DynamoDB."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from approval_gate import asking
from approval_gate.checks import CheckResult
from approval_gate.clicks import Click
from approval_gate.messages import request_blocks
from approval_gate.rules import Checks
from approval_gate.store import PENDING, REJECTED, ApprovalStore
from approval_gate.votes import record_vote

from tests.unit.fakes import APPROVAL_ID, FIXED, RecordingSlack, clock_at, make_approval, make_rules

CHECKS = Checks(alarms=("prod-api-5xx",), functions=("arn:aws:lambda:us-east-1:1:function:t",))
BURNING = CheckResult(
    "prod-api-5xx", "alarm", False, "ALARM", "Threshold Crossed", FIXED, "https://console/x"
)
TICKET = CheckResult("change-ticket-check", "function", True, "PASSED", "CHG-1 approved", FIXED)


def _buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _ask(store: ApprovalStore, checker: Any) -> None:
    asking.ask(APPROVAL_ID, "task-token", store=store, slack=RecordingSlack(), checker=checker)


def test_the_ask_step_reads_the_checks_and_keeps_them_with_their_links(
    store: ApprovalStore,
) -> None:
    store.create(make_approval(rules=make_rules(checks=CHECKS)))
    asked: list[str] = []

    _ask(store, lambda approval: asked.append(approval.approval_id) or (BURNING, TICKET))

    approval = store.get(APPROVAL_ID)
    assert approval is not None and asked == [APPROVAL_ID]
    assert approval.checks == (BURNING, TICKET)  # the url survives the round trip
    assert [c["name"] for c in approval.decision_record()["checks"]] == [
        "prod-api-5xx",
        "change-ticket-check",
    ]
    assert "url" not in approval.decision_record()["checks"][0]


def test_a_policy_without_checks_reads_none(store: ApprovalStore) -> None:
    store.create(make_approval())

    _ask(store, lambda approval: (_ for _ in ()).throw(AssertionError("no checks to read")))

    assert store.get(APPROVAL_ID).checks == ()  # type: ignore[union-attr]


def test_while_a_check_fails_the_request_offers_only_reject_and_says_why() -> None:
    rules = make_rules(checks=CHECKS, allow_scheduling=True)
    failing = make_approval(rules=rules, checks=(BURNING, TICKET))
    passing = make_approval(rules=rules, checks=(TICKET,))

    blocked = request_blocks(failing, FIXED)
    text = str(blocked)

    assert _buttons(blocked) == ["reject"]
    assert "Approve is blocked while *prod-api-5xx* is ALARM" in text
    assert "<https://console/x|prod-api-5xx> ALARM: Threshold Crossed" in text
    assert ":white_check_mark: change-ticket-check PASSED: CHG-1 approved" in text
    assert _buttons(request_blocks(passing, FIXED)) == ["approve", "approve_later", "reject"]


def _click(action: str, **more: Any) -> Click:
    return Click(action, APPROVAL_ID, "U0ALICE", "alice", None, None, "C0DEPLOYS", **more)


def test_a_click_is_judged_by_the_last_recorded_results(store: ApprovalStore) -> None:
    store.create(make_approval(rules=make_rules(checks=CHECKS, require_reason_on_reject=False)))
    store.save_checks(APPROVAL_ID, (BURNING, TICKET))
    later = clock_at(FIXED + timedelta(minutes=1))

    approve = record_vote(_click("approve"), store=store, clock=later)
    assert approve.outcome == "check_failing"
    assert "prod-api-5xx ALARM: Threshold Crossed" in str(approve.ephemeral)
    assert store.get(APPROVAL_ID).status == PENDING  # type: ignore[union-attr]

    reject = record_vote(_click("reject"), store=store, clock=later)
    assert reject.outcome == "recorded"
    assert store.get(APPROVAL_ID).status == REJECTED  # type: ignore[union-attr]


def test_each_state_has_its_symbol_and_an_alarm_blocks_since_its_state_changed() -> None:
    from approval_gate.check_messages import check_line, checks_text

    no_data = CheckResult("prod-db-cpu", "alarm", True, "INSUFFICIENT_DATA", "no data", FIXED)
    assert check_line(no_data, "en").startswith(":warning: prod-db-cpu INSUFFICIENT_DATA")  # passes
    blocking = no_data._replace(passed=False)
    assert check_line(blocking, "en").startswith(":warning: ")
    assert check_line(TICKET, "en").startswith(":white_check_mark: change-ticket-check PASSED")
    assert check_line(BURNING, "en").startswith(":x: <https://console/x|prod-api-5xx> ALARM")

    since = FIXED - timedelta(minutes=42)
    alarm_first = make_approval(checks=(BURNING._replace(at=since), TICKET))
    assert f"is ALARM (since <!date^{int(since.timestamp())}^" in checks_text(alarm_first)
    failing_ticket = TICKET._replace(passed=False, state="FAILED")
    function_first = make_approval(checks=(failing_ticket,))
    assert "is FAILED (checked <!date^" in checks_text(function_first)


def test_a_check_functions_link_cannot_end_early_and_add_markup() -> None:
    from approval_gate.check_messages import check_line

    sly = TICKET._replace(url="https://tickets.example/x>|<!channel> look")
    line = check_line(sly, "en")
    assert "<!channel>" not in line
    assert line.startswith(
        ":white_check_mark: <https://tickets.example/x&gt;%7C&lt;!channel&gt; look|"
        "change-ticket-check> PASSED"
    )
