"""Holds in the domain (issue 20, DESIGN §8.2): what an approval becomes when deploys may
not go on, and Cancel / Deploy now on a held request, with the races between them and
the end of the hold decided by conditional writes (exactly one wins)."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from typing import Any

from approval_gate.clicks import Click
from approval_gate.groups import GroupDirectory
from approval_gate.hold_steps import end_hold
from approval_gate.interactions import record_click
from approval_gate.policy import Approvers
from approval_gate.rules import Freeze, FreezeOverride
from approval_gate.store import APPROVED, HELD, PENDING, REJECTED, ApprovalStore

from tests.unit.fakes import FIXED, GroupSlack, RecordingSfn, clock_at, make_approval, make_rules

APPROVAL = "0123456789abcdef0123456789abcdef"
FREEZE = Freeze(
    reason="Year-end freeze", begins=FIXED - timedelta(hours=1), ends=FIXED + timedelta(hours=2)
)
SRE = FreezeOverride(approvers=Approvers(users=("U0SRE1", "U0SRE2")), required_approvals=2)
CLICKED = FIXED + timedelta(minutes=5)


def _click(user: str, action: str, **more: Any) -> Click:
    return Click(action, APPROVAL, user, user.lower(), None, None, "C0DEPLOYS", **more)


def _held(store: ApprovalStore, **rules: Any) -> RecordingSfn:
    """A request approved by U0ALICE during the freeze: held, its hold task waiting."""
    store.create(make_approval(approval_id=APPROVAL, rules=make_rules(freezes=(FREEZE,), **rules)))
    store.save_task_token(APPROVAL, "ask-token")
    sfn = RecordingSfn()
    result = record_click(
        _click("U0ALICE", "approve"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )
    assert result.outcome == "recorded"
    store.save_hold_token(APPROVAL, "hold-token")
    return sfn


def test_an_approval_during_a_freeze_is_held_until_it_ends(store: ApprovalStore) -> None:
    sfn = _held(store)

    approval = store.get(APPROVAL)
    assert approval is not None and approval.status == HELD
    assert approval.outcome is None
    assert approval.held is not None
    assert (approval.held.until, approval.held.why) == (FREEZE.ends, "freeze")
    (handed,) = sfn.task_successes
    decision = json.loads(handed["output"])
    assert (decision["wait"], decision["held"]["why"]) == ("hold", "freeze")


def test_cancel_opens_the_request_again_and_clears_the_approvals(store: ApprovalStore) -> None:
    sfn = _held(store)

    result = record_click(
        _click("U0BOB", "cancel_hold"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )

    assert result.outcome == "hold_cancelled"
    approval = store.get(APPROVAL)
    assert approval is not None
    assert (approval.status, approval.held, approval.votes, approval.decided_by) == (
        PENDING,
        None,
        (),
        (),
    )
    assert sfn.task_successes[-1]["taskToken"] == "hold-token"
    assert end_hold(APPROVAL, store=store, clock=clock_at(CLICKED))["wait"] == "ask"


def test_only_an_approver_may_cancel(store: ApprovalStore) -> None:
    sfn = _held(store)

    result = record_click(
        _click("U0MALLORY", "cancel_hold"), store=store, sfn=sfn, clock=clock_at(CLICKED)
    )

    assert result.outcome == "not_approver"
    assert store.get(APPROVAL).status == HELD  # type: ignore[union-attr]


def _deploy_now(store, sfn, user: str, reason: str | None) -> Any:
    return record_click(
        _click(user, "deploy_now", reason=reason, submitted=True),
        store=store,
        sfn=sfn,
        clock=clock_at(CLICKED),
    )


def test_deploy_now_needs_override_approvers_a_reason_and_two_people(store: ApprovalStore) -> None:
    sfn = _held(store, freeze_override=SRE)
    hold_ends = len(sfn.task_successes)

    forged = _deploy_now(store, sfn, "U0BOB", "I am in a hurry")
    empty = _deploy_now(store, sfn, "U0SRE1", None)
    first = _deploy_now(store, sfn, "U0SRE1", "Payment outage hotfix")
    again = _deploy_now(store, sfn, "U0SRE1", "once more")
    assert (forged.outcome, empty.outcome, first.outcome, again.outcome) == (
        "not_approver",
        "reason_required",
        "override_recorded",
        "already_voted",
    )
    assert store.get(APPROVAL).status == HELD  # type: ignore[union-attr]
    assert len(sfn.task_successes) == hold_ends  # the hold still waits

    second = _deploy_now(store, sfn, "U0SRE2", "Agreed: outage")

    assert second.outcome == "overridden"
    approval = store.get(APPROVAL)
    assert approval is not None and approval.status == APPROVED
    assert approval.override is not None
    assert approval.override.by == ("U0SRE1", "U0SRE2")
    assert approval.override.reason == "Payment outage hotfix; Agreed: outage"
    assert sfn.task_successes[-1]["taskToken"] == "hold-token"
    decision = end_hold(APPROVAL, store=store, clock=clock_at(CLICKED))
    assert decision["wait"] is None and decision["status"] == "Approved"
    assert "deployed now on override by" in decision["summary"]


def test_the_end_of_the_hold_approves_and_a_late_cancel_changes_nothing(
    store: ApprovalStore,
) -> None:
    sfn = _held(store)

    decision = end_hold(APPROVAL, store=store, clock=clock_at(FREEZE.ends))
    late = record_click(
        _click("U0BOB", "cancel_hold"), store=store, sfn=sfn, clock=clock_at(FREEZE.ends)
    )

    assert (decision["status"], decision["wait"]) == ("Approved", None)
    assert late.outcome == "not_held"
    assert store.get(APPROVAL).status == APPROVED  # type: ignore[union-attr]


def test_a_hold_cut_off_by_codepipelines_expiry_is_rejected(store: ApprovalStore) -> None:
    store.create(
        make_approval(
            approval_id=APPROVAL,
            rules=make_rules(freezes=(FREEZE,)),
            expires=FIXED + timedelta(hours=1),
        )
    )
    store.save_task_token(APPROVAL, "ask-token")
    record_click(
        _click("U0ALICE", "approve"), store=store, sfn=RecordingSfn(), clock=clock_at(CLICKED)
    )
    approval = store.get(APPROVAL)
    assert approval is not None and approval.held is not None
    limit = FIXED + timedelta(hours=1) - timedelta(seconds=approval.rules.deadline_margin)
    assert approval.held.until == limit

    decision = end_hold(APPROVAL, store=store, clock=clock_at(limit))

    assert decision["status"] == "Rejected"
    assert "no deploy window opened before CodePipeline's deadline" in decision["summary"]
    assert store.get(APPROVAL).status == REJECTED  # type: ignore[union-attr]


def _race_once(store: ApprovalStore) -> list[str]:
    """Cancel, Deploy now and the end of the hold at the same instant; their outcomes."""
    store._client.delete_item(TableName=store._table, Key={"approval_id": {"S": APPROVAL}})
    sfn = _held(store, freeze_override=SRE._replace(required_approvals=1))
    outcomes: list[str] = []
    barrier = threading.Barrier(3)

    def cancel() -> None:
        barrier.wait()
        clicked = _click("U0BOB", "cancel_hold")
        outcomes.append(
            record_click(clicked, store=store, sfn=sfn, clock=clock_at(CLICKED)).outcome
        )

    def override() -> None:
        barrier.wait()
        outcomes.append(_deploy_now(store, sfn, "U0SRE1", "outage").outcome)

    def end() -> None:
        barrier.wait()
        decision = end_hold(APPROVAL, store=store, clock=clock_at(FREEZE.ends))
        outcomes.append("end:" + str(decision["wait"] or decision["status"]))

    threads = [threading.Thread(target=f) for f in (cancel, override, end)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    return outcomes


def test_cancel_override_and_the_end_of_the_hold_race_and_one_wins(store: ApprovalStore) -> None:
    for _ in range(8):
        outcomes = _race_once(store)
        final = store.get(APPROVAL)
        assert final is not None
        cancelled, overridden = "hold_cancelled" in outcomes, "overridden" in outcomes
        if final.status == PENDING:  # the cancel won
            assert (cancelled, overridden, final.override) == (True, False, None), outcomes
        elif final.override is not None:  # the override won
            assert (cancelled, overridden) == (False, True), outcomes
        else:  # the end of the hold won
            assert final.status == APPROVED, outcomes
            assert (cancelled, overridden) == (False, False), outcomes


def test_a_cancel_between_the_end_steps_read_and_its_write_wins(store: ApprovalStore) -> None:
    """The end of the hold reads HELD, then a cancel lands before it writes: the write is
    conditional on the hold, so the request stays open and nothing is reported."""
    sfn = _held(store)
    read = store.get
    cancelled: list[str] = []

    def read_then_cancel(approval_id: str) -> Any:
        approval = read(approval_id)
        if not cancelled:
            cancelled.append("once")
            clicked = _click("U0BOB", "cancel_hold")
            record_click(clicked, store=store, sfn=sfn, clock=clock_at(FREEZE.ends))
        return approval

    store.get = read_then_cancel  # type: ignore[method-assign]
    decision = end_hold(APPROVAL, store=store, clock=clock_at(FREEZE.ends))

    assert (decision["wait"], decision["outcome"]) == ("ask", None)
    final = read(APPROVAL)
    assert final is not None and final.status == PENDING


def test_a_click_on_a_held_request_hands_the_hold_to_the_workflow_again(
    store: ApprovalStore,
) -> None:
    """The deciding click's SendTaskSuccess was lost: the next click on the old buttons
    hands the held decision to the asking task again (never to the hold's own token)."""
    _held(store)
    sfn = RecordingSfn()

    again = record_click(_click("U0BOB", "approve"), store=store, sfn=sfn, clock=clock_at(CLICKED))

    assert again.outcome == "already_decided"
    (handed,) = sfn.task_successes
    assert handed["taskToken"] == "ask-token"
    assert json.loads(handed["output"])["wait"] == "hold"


def test_an_override_group_member_may_deploy_now_and_an_unreadable_group_refuses(
    store: ApprovalStore,
) -> None:
    """freeze_override approvers named by group: Slack says who is in it; when Slack cannot
    say, the override is refused (fail closed) and the hold goes on."""
    sre = FreezeOverride(approvers=Approvers(groups=("S0SRE",)))
    sfn = _held(store, freeze_override=sre)

    def deploy_now(slack: GroupSlack) -> str:
        clicked = _click("U0SRE1", "deploy_now", reason="outage", submitted=True)
        groups = GroupDirectory(slack)
        return record_click(
            clicked, store=store, sfn=sfn, clock=clock_at(CLICKED), groups=groups
        ).outcome

    assert deploy_now(GroupSlack(error="ratelimited")) == "group_lookup_failed"
    assert deploy_now(GroupSlack({"S0SRE": ["U0OTHER"]})) == "not_approver"
    assert store.get(APPROVAL).status == HELD  # type: ignore[union-attr]
    assert deploy_now(GroupSlack({"S0SRE": ["U0SRE1"]})) == "overridden"
    assert store.get(APPROVAL).status == APPROVED  # type: ignore[union-attr]
