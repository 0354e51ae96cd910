"""Health checks just before an approval is reported (issue 21 point 4, DESIGN §8.3): the
decision's `wait` and `wake`, the check step's three outcomes, a hold on failing checks
that ends approved, held again or rejected, and Deploy now refused on such a hold. No
network: a stub checker, moto's DynamoDB."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from approval_gate.checks import CheckResult
from approval_gate.clicks import Click
from approval_gate.clock import iso
from approval_gate.closed_messages import (
    closed_blocks,
)
from approval_gate.closing import at_deadline
from approval_gate.hold_messages import held_blocks
from approval_gate.hold_steps import check_before_report, end_hold
from approval_gate.interactions import record_click
from approval_gate.policy import Approvers
from approval_gate.reporting import decision, hold_limit
from approval_gate.rules import Checks, Freeze, FreezeOverride
from approval_gate.store import APPROVED, EXPIRED, HELD, PENDING, REJECTED, ApprovalStore, Hold

from tests.unit.fakes import APPROVAL_ID, FIXED, RecordingSfn, clock_at, make_approval, make_rules

ALARM_NAME = "prod-api-5xx"
TICKET = "change-ticket-check"
TICKET_ARN = f"arn:aws:lambda:us-east-1:123456789012:function:{TICKET}"
BOTH = Checks(alarms=(ALARM_NAME,), functions=(TICKET_ARN,))
ALARMS_ONLY = Checks(alarms=(ALARM_NAME,))
CLICKED = FIXED + timedelta(minutes=5)
HOUR = 3600


class StubChecker:
    """The two checks as they stand (`alarm_ok`, `ticket_ok`), read at `now`; counts runs."""

    def __init__(self, now: datetime, *, alarm_ok: bool = True, ticket_ok: bool = True) -> None:
        self.now, self.alarm_ok, self.ticket_ok = now, alarm_ok, ticket_ok
        self.runs = 0

    def __call__(self, approval: Any) -> tuple[CheckResult, ...]:
        self.runs += 1
        alarm = "OK" if self.alarm_ok else "ALARM"
        why = "Threshold no longer crossed" if self.alarm_ok else "Threshold Crossed: 5xx at 7%"
        ticket = "CHG-1042 approved" if self.ticket_ok else "no change ticket for this release"
        return (
            CheckResult(ALARM_NAME, "alarm", self.alarm_ok, alarm, why, self.now),
            CheckResult(
                TICKET,
                "function",
                self.ticket_ok,
                "PASSED" if self.ticket_ok else "FAILED",
                ticket,
                self.now,
            ),
        )


def _buttons(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["action_id"] for b in blocks if b["type"] == "actions" for e in b["elements"]]


def _click(user: str, action: str, **more: Any) -> Click:
    return Click(action, APPROVAL_ID, user, user[2:].lower(), None, None, "C0DEPLOYS", **more)


def _approved(store: ApprovalStore, checks: Checks = BOTH, **rules: Any) -> dict[str, Any]:
    """A request approved by U0ALICE (its checks passed when asked): the decision the click
    handed to the workflow."""
    store.create(make_approval(rules=make_rules(checks=checks, **rules)))
    store.save_task_token(APPROVAL_ID, "ask-token")
    sfn = RecordingSfn()
    result = record_click(
        _click("U0ALICE", "approve"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )
    assert result.outcome == "recorded"
    (handed,) = sfn.task_successes
    return dict(json.loads(handed["output"]))


def _held_for_checks(store: ApprovalStore, **rules: Any) -> dict[str, Any]:
    """Approved, then held by the check before the report (the ticket check fails), its
    hold task waiting: the decision the check step answered."""
    _approved(store, **rules)
    held = check_before_report(
        APPROVAL_ID,
        store=store,
        checker=StubChecker(CLICKED, ticket_ok=False),
        clock=clock_at(CLICKED),
    )
    store.save_hold_token(APPROVAL_ID, "hold-token")
    return held


# --------------------------------------------------------------------------- wait, wake


def test_only_an_approval_about_to_be_reported_approved_waits_for_the_checks() -> None:
    checked = make_rules(checks=BOTH)
    approved = make_approval(rules=checked, status=APPROVED)
    by_policy = make_approval(rules=checked._replace(on_deadline="approve"), status=EXPIRED)

    assert decision(approved, FIXED)["wait"] == "check"
    assert decision(by_policy, FIXED)["wait"] == "check"
    assert decision(approved._replace(checked_at_report=True), FIXED)["wait"] is None
    assert decision(make_approval(status=APPROVED), FIXED)["wait"] is None  # no checks
    assert decision(make_approval(rules=checked, status=REJECTED), FIXED)["wait"] is None
    assert decision(make_approval(rules=checked, status=EXPIRED), FIXED)["wait"] is None
    assert "wake" not in decision(approved, FIXED)


def test_a_hold_wakes_at_its_end_but_a_checks_hold_with_functions_every_reminder() -> None:
    until = FIXED + timedelta(hours=6)
    rules = make_rules(checks=BOTH, reminder_every=HOUR)

    def held(why: str, **more: Any) -> dict[str, Any]:
        approval = make_approval(status=HELD, held=Hold(until, why), **more)
        return decision(approval, FIXED)

    assert held("freeze", rules=rules)["wake"] == iso(until)
    assert held("checks", rules=rules)["wake"] == iso(FIXED + timedelta(hours=1))
    assert held("checks", rules=rules._replace(reminder_every=7 * HOUR))["wake"] == iso(until)
    # Alarms are not polled: their state-change event ends the wait.
    assert held("checks", rules=make_rules(checks=ALARMS_ONLY))["wake"] == iso(until)
    decided = held("checks", rules=rules)
    assert (decided["wait"], decided["held"]["until"]) == ("hold", iso(until))  # keys kept


# --------------------------------------------------------------------------- the check step


def test_checks_that_pass_before_the_report_let_it_be_reported(store: ApprovalStore) -> None:
    handed = _approved(store)
    assert handed["wait"] == "check"
    checker = StubChecker(CLICKED)

    answer = check_before_report(APPROVAL_ID, store=store, checker=checker, clock=clock_at(CLICKED))

    assert (answer["wait"], answer["status"], answer["outcome"]) == (None, "Approved", "approved")
    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == APPROVED
    assert approval.checked_at_report and approval.held is None
    assert [(c["name"], c["passed"]) for c in approval.decision_record()["checks"]] == [
        (ALARM_NAME, True),
        (TICKET, True),
    ]
    # A retried step runs nothing again.
    again = check_before_report(APPROVAL_ID, store=store, checker=checker, clock=clock_at(CLICKED))
    assert (again["wait"], checker.runs) == (None, 1)


def test_a_failing_check_holds_the_approval_until_they_pass(store: ApprovalStore) -> None:
    answer = _held_for_checks(store, reminder_every=HOUR)

    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == HELD and approval.held is not None
    assert approval.held.why == "checks" and approval.held.then == APPROVED
    assert approval.held.until == hold_limit(approval)
    assert TICKET in (approval.held.reason or "") and not approval.checked_at_report
    assert (answer["wait"], answer["outcome"]) == ("hold", None)
    assert answer["wake"] == iso(CLICKED + timedelta(hours=1))  # the function runs again then
    blocks = json.dumps(held_blocks(approval))
    assert "waiting for the health checks to pass" in blocks
    assert "change-ticket-check FAILED: no change ticket" in blocks
    assert _buttons(held_blocks(approval)) == ["cancel_hold"]


def test_on_failing_reject_reports_rejected_at_once_naming_the_failing_check(
    store: ApprovalStore,
) -> None:
    _approved(store, BOTH._replace(on_failing="reject"))

    answer = check_before_report(
        APPROVAL_ID,
        store=store,
        checker=StubChecker(CLICKED, alarm_ok=False),
        clock=clock_at(CLICKED),
    )

    assert (answer["wait"], answer["status"], answer["outcome"]) == (None, "Rejected", "rejected")
    assert answer["summary"] == (
        "Approved in Slack by alice (U0ALICE), but health checks failed: prod-api-5xx ALARM: "
        "Threshold Crossed: 5xx at 7%: rejected by policy (on_failing: reject)"
    )
    approval = store.get(APPROVAL_ID)
    assert approval is not None and (approval.status, approval.held) == (REJECTED, None)


def test_a_failing_check_at_codepipelines_deadline_is_rejected(store: ApprovalStore) -> None:
    _approved(store)
    limit = hold_limit(store.get(APPROVAL_ID))  # type: ignore[arg-type]

    answer = check_before_report(
        APPROVAL_ID,
        store=store,
        checker=StubChecker(limit, ticket_ok=False),
        clock=clock_at(limit),
    )

    assert answer["status"] == "Rejected" and answer["wait"] is None
    assert (
        "health checks failed at CodePipeline's deadline: change-ticket-check"
        in (answer["summary"])
    )


# --------------------------------------------------------------------------- the checks hold


def test_a_checks_hold_whose_checks_pass_is_approved_and_says_how_long_it_waited(
    store: ApprovalStore,
) -> None:
    _held_for_checks(store)
    passed = CLICKED + timedelta(minutes=12)  # long before the hold's `until`, its limit

    answer = end_hold(APPROVAL_ID, store=store, clock=clock_at(passed), checker=StubChecker(passed))

    assert (answer["wait"], answer["status"]) == (None, "Approved")
    assert answer["summary"].endswith("; held 12m for the health checks")
    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == APPROVED and approval.checked_at_report
    assert approval.held is not None and approval.held.why == "checks"  # kept for the audit
    assert all(result.passed and result.at == passed for result in approval.checks)
    assert "Held 12m for the health checks" in json.dumps(closed_blocks(approval))


def test_a_checks_hold_whose_check_still_fails_is_held_again(store: ApprovalStore) -> None:
    first = _held_for_checks(store, reminder_every=HOUR)
    later = CLICKED + timedelta(hours=1)
    checker = StubChecker(later, alarm_ok=False, ticket_ok=False)

    answer = end_hold(APPROVAL_ID, store=store, clock=clock_at(later), checker=checker)

    assert (answer["wait"], answer["held"]["until"]) == ("hold", first["held"]["until"])
    assert answer["wake"] == iso(later + timedelta(hours=1))
    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == HELD and checker.runs == 1
    assert approval.held is not None and ALARM_NAME in (approval.held.reason or "")
    assert not any(result.passed for result in approval.checks)


def test_a_checks_hold_still_failing_at_its_limit_is_rejected(store: ApprovalStore) -> None:
    _held_for_checks(store)
    limit = hold_limit(store.get(APPROVAL_ID))  # type: ignore[arg-type]

    answer = end_hold(
        APPROVAL_ID,
        store=store,
        clock=clock_at(limit),
        checker=StubChecker(limit, ticket_ok=False),
    )

    assert answer["status"] == "Rejected"
    assert answer["summary"] == (
        "Approved in Slack by alice (U0ALICE), but health checks still failed at "
        "CodePipeline's deadline: change-ticket-check: no change ticket for this release: "
        "rejected"
    )
    assert store.get(APPROVAL_ID).status == REJECTED  # type: ignore[union-attr]


def test_checks_that_pass_during_a_freeze_leave_it_held_for_the_freeze(
    store: ApprovalStore,
) -> None:
    passed = CLICKED + timedelta(minutes=12)
    # The freeze begins after the approval, while the hold waits for the checks.
    freeze = Freeze(
        reason="Year-end freeze",
        begins=passed - timedelta(minutes=2),
        ends=passed + timedelta(hours=1),
    )
    _held_for_checks(store, freezes=(freeze,))

    answer = end_hold(APPROVAL_ID, store=store, clock=clock_at(passed), checker=StubChecker(passed))

    assert (answer["wait"], answer["held"]["why"]) == ("hold", "freeze")
    assert answer["wake"] == iso(freeze.ends)
    held = store.get(APPROVAL_ID)
    assert held is not None and held.status == HELD
    assert not held.checked_at_report  # checked again when the freeze ends


def test_cancel_works_on_a_checks_hold_and_deploy_now_is_refused(store: ApprovalStore) -> None:
    sre = FreezeOverride(approvers=Approvers(users=("U0SRE1",)), required_approvals=1)
    _held_for_checks(store, freeze_override=sre)
    sfn = RecordingSfn()
    held = store.get(APPROVAL_ID)
    assert held is not None and _buttons(held_blocks(held)) == ["cancel_hold"]

    opened = record_click(
        _click("U0SRE1", "deploy_now"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )
    submitted = record_click(
        _click("U0SRE1", "deploy_now", reason="hotfix", submitted=True),
        store=store,
        sfn=sfn,
        clock=clock_at(CLICKED),
    )

    for refused in (opened, submitted):
        assert refused.outcome == "not_override" and refused.view is None
        assert "health checks" in (refused.ephemeral or "")
    approval = store.get(APPROVAL_ID)
    assert approval is not None and approval.status == HELD and approval.override is None
    assert sfn.task_successes == []  # the hold still waits

    cancelled = record_click(
        _click("U0BOB", "cancel_hold"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )

    assert cancelled.outcome == "hold_cancelled"
    assert store.get(APPROVAL_ID).status == PENDING  # type: ignore[union-attr]
    assert sfn.task_successes[-1]["taskToken"] == "hold-token"
    assert end_hold(APPROVAL_ID, store=store, clock=clock_at(CLICKED))["wait"] == "ask"


def test_an_approval_by_policy_at_the_deadline_waits_for_the_checks_too(
    store: ApprovalStore,
) -> None:
    rules = make_rules(checks=BOTH, on_deadline="approve")
    store.create(make_approval(rules=rules))
    deadline = FIXED + timedelta(hours=1)
    handed = at_deadline(APPROVAL_ID, store=store, clock=clock_at(deadline))
    assert (handed["wait"], handed["status"]) == ("check", "Approved")

    held = check_before_report(
        APPROVAL_ID,
        store=store,
        checker=StubChecker(deadline, alarm_ok=False),
        clock=clock_at(deadline),
    )
    approval = store.get(APPROVAL_ID)
    assert held["wait"] == "hold" and approval is not None and approval.held is not None
    assert approval.held.then == EXPIRED
    assert "policy at the deadline" in json.dumps(held_blocks(approval))

    passed = deadline + timedelta(minutes=12)
    answer = end_hold(APPROVAL_ID, store=store, clock=clock_at(passed), checker=StubChecker(passed))

    assert (answer["wait"], answer["status"], answer["outcome"]) == (None, "Approved", "expired")
    assert answer["summary"] == (
        "No decision within 1h: approved by policy; held 12m for the health checks"
    )
