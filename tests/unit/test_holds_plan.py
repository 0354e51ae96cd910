"""What an approval becomes when deploys may not go on, and what people read about it
(issue 20, DESIGN §8.2): holds.plan / at_hold_end / forecast, the summary CodePipeline
hears, and the held request's message. Pure: no table, no Slack."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from approval_gate.hold_messages import held_blocks
from approval_gate.holds import at_hold_end, forecast, plan
from approval_gate.policy import Approvers
from approval_gate.reporting import decision, summary
from approval_gate.rules import DeployWindow, Freeze, FreezeOverride
from approval_gate.store import (
    APPROVED,
    EXPIRED,
    HELD,
    REJECTED,
    Approval,
    Hold,
    Override,
    Vote,
)

from tests.unit.fakes import FIXED, make_approval, make_rules

# FIXED is Tuesday 1 Dec 2026 17:00 UTC = Wednesday 00:00 in Ho Chi Minh City (+07).
ZONE = "Asia/Ho_Chi_Minh"
WEEKDAY_WINDOW = DeployWindow(
    days=("mon", "tue", "wed", "thu", "fri"), start=9 * 3600, end=17 * 3600
)
FREEZE = Freeze(
    reason="Year-end freeze",
    begins=FIXED - timedelta(days=1),
    ends=datetime(2026, 12, 3, 2, tzinfo=UTC),  # Thu 3 Dec 09:00 +07
)
ALICE = Vote("U0ALICE", "alice", "approve", FIXED)


def approved(**rules: object) -> Approval:
    return make_approval(rules=make_rules(timezone=ZONE, **rules), votes=(ALICE,))


def test_inside_a_window_with_no_freeze_the_approval_is_reported_at_once() -> None:
    approval = approved(deploy_windows=(WEEKDAY_WINDOW,))
    at = datetime(2026, 12, 2, 3, tzinfo=UTC)  # Wed 10:00 +07

    assert plan(approval, at).status == APPROVED


def test_outside_the_windows_the_approval_is_held_until_the_next_one_opens() -> None:
    verdict = plan(approved(deploy_windows=(WEEKDAY_WINDOW,)), FIXED)  # Wed 00:00 +07

    assert verdict.status == HELD
    assert verdict.held == Hold(datetime(2026, 12, 2, 2, tzinfo=UTC), "window", None)
    assert verdict.held.until.tzinfo is UTC


def test_a_freeze_holds_until_it_ends_and_names_itself() -> None:
    verdict = plan(approved(freezes=(FREEZE,)), FIXED)

    assert verdict.held == Hold(FREEZE.ends, "freeze", "Year-end freeze")


def test_a_requested_time_holds_until_then_and_then_until_a_window() -> None:
    later = ALICE._replace(deploy_at=datetime(2026, 12, 2, 12, tzinfo=UTC))  # Wed 19:00 +07
    scheduled = make_approval(
        rules=make_rules(timezone=ZONE, deploy_windows=(WEEKDAY_WINDOW,)), votes=(later,)
    )
    any_time = make_approval(rules=make_rules(timezone=ZONE), votes=(later,))

    assert plan(any_time, FIXED).held == Hold(later.deploy_at, "schedule", None)  # type: ignore[arg-type]
    # 19:00 is after the window: the deploy waits for Thursday 09:00 +07.
    assert plan(scheduled, FIXED).held == Hold(datetime(2026, 12, 3, 2, tzinfo=UTC), "window")


def test_outside_window_reject_rejects_at_once_and_says_why() -> None:
    verdict = plan(approved(freezes=(FREEZE,), outside_window="reject"), FIXED)

    assert verdict.status == REJECTED and verdict.held is None
    assert verdict.note == (
        "Approved in Slack by alice (U0ALICE), but deploys may not go on until Thu 3 Dec 09:00 "
        "+07 (Year-end freeze): rejected by policy (outside_window: reject)"
    )


def test_no_window_before_codepipelines_expiry_holds_to_the_limit_then_rejects() -> None:
    approval = make_approval(
        rules=make_rules(timezone=ZONE, freezes=(FREEZE,)),
        votes=(ALICE,),
        expires=datetime(2026, 12, 2, 12, tzinfo=UTC),
    )
    limit = datetime(2026, 12, 2, 12, tzinfo=UTC) - timedelta(seconds=600)

    verdict = plan(approval, FIXED)
    assert verdict.held == Hold(limit, "freeze", "Year-end freeze")
    held = approval._replace(status=HELD, held=verdict.held, decided_by=("U0ALICE",))
    ended = at_hold_end(held, limit)
    assert ended.status == REJECTED
    assert "no deploy window opened before CodePipeline's deadline (Year-end freeze)" in str(
        ended.note
    )


def test_a_hold_ends_in_the_status_it_was_held_for() -> None:
    by_policy = Hold(FREEZE.ends, "freeze", "Year-end freeze", then=EXPIRED)
    approval = make_approval(
        rules=make_rules(timezone=ZONE, freezes=(FREEZE,)), status=HELD, held=by_policy
    )

    assert at_hold_end(approval, FIXED).status == HELD  # early: hold the rest
    assert at_hold_end(approval, FREEZE.ends).status == EXPIRED


def test_the_request_says_before_any_click_when_an_approval_would_deploy() -> None:
    frozen = approved(freezes=(FREEZE,))
    closed = approved(deploy_windows=(WEEKDAY_WINDOW,))
    rejecting = approved(freezes=(FREEZE,), outside_window="reject")

    assert forecast(frozen, FIXED) == (
        "Frozen until Thu 3 Dec 09:00 +07 (Year-end freeze): an approval now deploys then"
    )
    assert forecast(closed, FIXED) == (
        "Outside the deploy windows until Wed 2 Dec 09:00 +07: an approval now deploys then"
    )
    assert "an approval now is rejected by policy" in str(forecast(rejecting, FIXED))
    assert forecast(approved(), FIXED) is None


def test_the_summary_says_how_long_and_why_or_who_overrode() -> None:
    held = make_approval(
        rules=make_rules(timezone=ZONE),
        status=APPROVED,
        votes=(ALICE,),
        decided_by=("U0ALICE",),
        decided_at=FIXED,
        held=Hold(FIXED + timedelta(hours=2, minutes=5), "freeze", "Year-end freeze"),
    )
    carol = Vote("U0CAROL", "carol", "deploy_now", FIXED + timedelta(minutes=30), "Outage fix")
    overridden = held._replace(overrides=(carol,), override=Override(("U0CAROL",), "Outage fix"))

    assert summary(held) == "Approved in Slack by alice (U0ALICE); held 2h 5m for Year-end freeze"
    assert summary(overridden) == (
        "Approved in Slack by alice (U0ALICE); deployed now on override by carol (U0CAROL): "
        "Outage fix"
    )
    assert decision(overridden)["wait"] is None


def test_the_held_request_offers_cancel_and_deploy_now_only_when_it_may() -> None:
    override = FreezeOverride(approvers=Approvers(users=("U0CAROL",)))
    base = {"status": HELD, "decided_by": ("U0ALICE",), "votes": (ALICE,)}
    frozen = make_approval(
        rules=make_rules(freeze_override=override),
        held=Hold(FREEZE.ends, "freeze", "Year-end freeze"),
        **base,
    )
    scheduled = make_approval(
        rules=make_rules(freeze_override=override), held=Hold(FREEZE.ends, "schedule"), **base
    )

    def buttons(approval: Approval) -> list[str]:
        return [
            element["action_id"]
            for block in held_blocks(approval)
            if block["type"] == "actions"
            for element in block["elements"]
        ]

    assert buttons(frozen) == ["cancel_hold", "deploy_now"]
    assert buttons(scheduled) == ["cancel_hold"]  # the approvers' own time: no override
    assert "deploys at" in str(held_blocks(frozen))
    assert decision(frozen)["wait"] == "hold"
