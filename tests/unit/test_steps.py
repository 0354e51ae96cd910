"""Approval steps (issue 19, DESIGN §8.1): where an approve vote counts, and recording it
exactly once per person with the conditional writes, under concurrent clicks too."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from approval_gate.groups import GroupDirectory
from approval_gate.rules import Approvers, Escalation, Step
from approval_gate.steps import open_steps, place, progress, progress_line, still_possible
from approval_gate.store import APPROVED, PENDING, REJECTED, ApprovalStore, Vote
from approval_gate.votes import Click, record_vote

from tests.unit.fakes import FIXED, GroupSlack, clock_at, make_approval, make_rules

APPROVAL = "5eb1c1c5a2e34c0b9d6f6b1f0e0c0a17"
QA = Step("QA", Approvers(users=("U0DAN",), groups=("S0QA",)), 1)
RELEASE = Step("Release", Approvers(users=("U0ALICE", "U0BOB", "U0CAROL")), 2)


def steps_rules(order: str = "sequence", *steps: Step, **overrides: Any) -> Any:
    steps = steps or (QA, RELEASE)
    users = tuple(dict.fromkeys(u for s in steps for u in s.approvers.users))
    groups = tuple(dict.fromkeys(g for s in steps for g in s.approvers.groups))
    return make_rules(
        approvers=Approvers(users=users, groups=groups),
        required_approvals=sum(s.required_approvals for s in steps),
        steps=steps,
        steps_order=order,
        **overrides,
    )


def vote(user: str, step: str | None, minutes: int = 0, kind: str = "approve") -> Vote:
    return Vote(user, user.lower(), kind, FIXED + timedelta(minutes=minutes), step=step)


def click(user: str, action: str = "approve", **more: Any) -> Click:
    return Click(action, APPROVAL, user, user.lower(), "T0", "A0", "C0DEPLOYS", **more)


def open_request(store: ApprovalStore, rules: Any, **approval: Any) -> None:
    store.create(make_approval(approval_id=APPROVAL, rules=rules, **approval))


GROUPS = GroupDirectory(GroupSlack({"S0QA": ["U0ERIN"], "S0ONCALL": ["U0DAVE"]}))


def cast(store: ApprovalStore, user: str, action: str = "approve", **more: Any) -> Any:
    return record_vote(
        click(user, action, **more), store=store, clock=clock_at(FIXED), groups=GROUPS
    )


# --------------------------------------------------------------------------- pure


def test_progress_counts_each_vote_in_its_step_and_when_each_completed() -> None:
    rules = steps_rules()
    votes = [vote("U0DAN", "QA", 1), vote("U0ALICE", "Release", 2), vote("U0BOB", "Release", 3)]

    qa, release = progress(rules, votes)

    assert (qa.approved_by, qa.completed_at) == (("U0DAN",), FIXED + timedelta(minutes=1))
    assert (release.approved_by, release.completed_at) == (
        ("U0ALICE", "U0BOB"),
        FIXED + timedelta(minutes=3),
    )
    assert release.record() == {
        "name": "Release",
        "required": 2,
        "approved_by": ["U0ALICE", "U0BOB"],
        "completed_at": "2026-12-01T17:03:00.000Z",
    }


def test_a_rule_without_steps_is_one_step_named_approvers() -> None:
    rules = make_rules(required_approvals=2)

    (only,) = progress(rules, [vote("U0ALICE", None), vote("U0BOB", None, kind="reject")])

    assert (only.name, only.step.required_approvals, only.approved_by) == (
        "Approvers",
        2,
        ("U0ALICE",),
    )
    assert not only.complete


def test_in_sequence_only_the_first_open_step_takes_approvals() -> None:
    rules = steps_rules()
    states = progress(rules, [])

    assert [s.name for s in open_steps(rules, states)] == ["QA"]
    early = place(rules, states, lambda step: step is RELEASE, voter="U0ALICE")
    assert (early.step, early.why, early.waiting.name) == (None, "later", "QA")
    assert place(rules, states, lambda step: step is QA, voter="U0DAN").step.name == "QA"


def test_in_any_order_a_vote_goes_to_the_first_open_step_listing_the_voter() -> None:
    rules = steps_rules("any")
    both = place(rules, progress(rules, []), lambda step: True, voter="U0ALICE")
    after_qa = place(
        rules, progress(rules, [vote("U0DAN", "QA")]), lambda step: True, voter="U0ALICE"
    )

    assert (both.step.name, after_qa.step.name) == ("QA", "Release")


def test_a_voter_listed_only_in_complete_steps_counts_nowhere() -> None:
    rules = steps_rules("any")

    placed = place(
        rules, progress(rules, [vote("U0DAN", "QA")]), lambda step: step is QA, voter="U0DAN"
    )

    assert (placed.step, placed.why) == (None, "done")


def test_the_progress_line_names_each_step_and_its_approvers() -> None:
    rules = steps_rules()
    states = progress(rules, [vote("U0DAN", "QA"), vote("U0ALICE", "Release", 1)])

    assert progress_line(states, "en") == "QA ✅ <@U0DAN> · Release 1 of 2 (<@U0ALICE>)"


# --------------------------------------------------------------------------- recording


def test_sequence_refuses_an_early_approve_and_records_nothing(store: ApprovalStore) -> None:
    open_request(store, steps_rules())

    early = cast(store, "U0ALICE")

    assert early.outcome == "not_your_turn"
    assert "*QA*" in early.ephemeral and "<@U0DAN>" in early.ephemeral
    assert "Nothing was recorded" in early.ephemeral
    assert store.get(APPROVAL).votes == ()


def test_sequence_decides_once_every_step_has_its_approvals(store: ApprovalStore) -> None:
    open_request(store, steps_rules())

    results = [cast(store, user).outcome for user in ("U0DAN", "U0ALICE", "U0BOB")]

    assert results == ["vote_recorded", "vote_recorded", "recorded"]
    decided = store.get(APPROVAL)
    assert decided.status == APPROVED
    assert decided.decided_by == ("U0DAN", "U0ALICE", "U0BOB")
    assert [s["approved_by"] for s in decided.decision_record()["steps"]] == [
        ["U0DAN"],
        ["U0ALICE", "U0BOB"],
    ]


def test_the_vote_that_completes_a_step_says_so(store: ApprovalStore) -> None:
    open_request(store, steps_rules())

    first = cast(store, "U0DAN")
    second = cast(store, "U0ALICE")

    assert (first.completed_step, second.completed_step) == ("QA", None)
    assert "QA ✅ <@U0DAN> · Release 1 of 2 (<@U0ALICE>)" in second.ephemeral


def test_a_group_member_approves_in_the_step_that_lists_the_group(store: ApprovalStore) -> None:
    open_request(store, steps_rules())

    cast(store, "U0ERIN")

    assert store.get(APPROVAL).steps[0].approved_by == ("U0ERIN",)


def test_any_order_completes_in_reverse(store: ApprovalStore) -> None:
    open_request(store, steps_rules("any"))

    outcomes = [cast(store, user).outcome for user in ("U0ALICE", "U0BOB", "U0DAN")]

    assert outcomes == ["vote_recorded", "vote_recorded", "recorded"]
    qa, release = store.get(APPROVAL).steps
    assert release.completed_at is not None and qa.completed_at is not None


def test_one_person_in_both_steps_counts_once(store: ApprovalStore) -> None:
    both = Step("Release", Approvers(users=("U0DAN", "U0ALICE")), 1)
    open_request(store, steps_rules("sequence", QA, both))

    first = cast(store, "U0DAN")
    again = cast(store, "U0DAN")
    other = cast(store, "U0ALICE")

    assert (first.outcome, again.outcome, other.outcome) == (
        "vote_recorded",
        "already_voted",
        "recorded",
    )
    assert [s.approved_by for s in store.get(APPROVAL).steps] == [("U0DAN",), ("U0ALICE",)]


def test_a_later_step_s_approver_may_reject_at_any_time(store: ApprovalStore) -> None:
    open_request(store, steps_rules(require_reason_on_reject=False))

    result = cast(store, "U0CAROL", "reject")

    assert result.outcome == "recorded"
    assert (store.get(APPROVAL).status, store.get(APPROVAL).decided_by) == (REJECTED, ("U0CAROL",))


def test_escalation_approvers_act_for_the_current_step_once_escalated(
    store: ApprovalStore,
) -> None:
    rules = steps_rules(
        escalation=Escalation(channel="C0ONCALL", approvers=Approvers(groups=("S0ONCALL",)))
    )
    open_request(store, rules)
    cast(store, "U0DAN")

    before = cast(store, "U0DAVE")
    store.mark_escalated(APPROVAL)
    after = cast(store, "U0DAVE")

    assert (before.outcome, after.outcome) == ("not_approver", "vote_recorded")
    assert store.get(APPROVAL).steps[1].approved_by == ("U0DAVE",)


def test_four_eyes_applies_in_every_step(store: ApprovalStore) -> None:
    open_request(store, steps_rules(), author_users=("U0ALICE",))
    cast(store, "U0DAN")

    assert cast(store, "U0ALICE").outcome == "self_approval"
    assert len(store.get(APPROVAL).votes) == 1


def race(store: ApprovalStore, users: list[str]) -> dict[str, str]:
    """The users click Approve at once, every one reading the open request before any
    writes (as many Lambdas can); their outcomes by user."""
    barrier = threading.Barrier(len(users))
    get = store.get
    reads = {"n": 0}
    lock = threading.Lock()

    def held_get(approval_id: str) -> Any:
        current = get(approval_id)
        with lock:
            reads["n"] += 1
            first = reads["n"] <= len(users)
        if first:
            barrier.wait(timeout=10)
        return current

    store.get = held_get  # type: ignore[method-assign]
    results: dict[str, str] = {}

    def go(user: str) -> None:
        results[user] = cast(store, user).outcome

    threads = [threading.Thread(target=go, args=(u,)) for u in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    store.get = get  # type: ignore[method-assign]
    assert reads["n"] >= len(users)
    return results


QA5 = Step("QA", Approvers(users=("U0Q1", "U0Q2", "U0Q3", "U0Q4", "U0Q5")), 1)
REL5 = Step("Release", Approvers(users=("U0R1", "U0R2", "U0R3", "U0R4", "U0R5")), 2)


def test_concurrent_clicks_in_sequence_fill_each_step_once_and_decide_once(
    store: ApprovalStore,
) -> None:
    """Five QA approvers click at once, then five Release approvers: each step gets exactly
    its required approvals, and one click decides. Without the votes-seen condition on the
    write, two clicks fill the same last place of a step."""
    open_request(store, steps_rules("sequence", QA5, REL5))

    qa_round = race(store, list(QA5.approvers.users))
    release_round = race(store, list(REL5.approvers.users))

    decided = store.get(APPROVAL)
    assert decided.status == APPROVED
    assert [len(s.approved_by) for s in decided.steps] == [1, 2]
    assert sorted(qa_round.values()) == ["steps_done"] * 4 + ["vote_recorded"]
    assert sorted(release_round.values()).count("recorded") == 1
    assert sorted(release_round.values()).count("vote_recorded") == 1


def test_concurrent_clicks_in_any_order_fill_each_step_once_and_decide_once(
    store: ApprovalStore,
) -> None:
    open_request(store, steps_rules("any", QA5, REL5))

    results = race(store, [*QA5.approvers.users, *REL5.approvers.users])

    decided = store.get(APPROVAL)
    assert decided.status == APPROVED
    qa_state, release_state = decided.steps
    assert len(qa_state.approved_by) == 1 and set(qa_state.approved_by) <= set(QA5.approvers.users)
    assert len(release_state.approved_by) == 2
    assert set(release_state.approved_by) <= set(REL5.approvers.users)
    assert list(results.values()).count("recorded") == 1
    assert decided.status != PENDING


# --------------------------------------------------------------------------- used up


ONLY_ALICE = Step("Release", Approvers(users=("U0ALICE",)), 1)
QA_WITH_ALICE = Step("QA", Approvers(users=("U0ALICE", "U0BOB")), 1)


def test_in_any_order_a_vote_goes_where_it_leaves_every_step_able_to_complete(
    store: ApprovalStore,
) -> None:
    """Alice is listed in QA and is the only Release approver: her approval counts in
    Release, not in QA (the first open step), or Release could never complete."""
    open_request(store, steps_rules("any", QA_WITH_ALICE, ONLY_ALICE))

    cast(store, "U0ALICE")
    last = cast(store, "U0BOB")

    assert last.outcome == "recorded"
    assert [s.approved_by for s in store.get(APPROVAL).steps] == [("U0BOB",), ("U0ALICE",)]


def test_in_sequence_a_vote_that_would_strand_a_later_step_is_refused(
    store: ApprovalStore,
) -> None:
    open_request(store, steps_rules("sequence", QA_WITH_ALICE, ONLY_ALICE))

    early = cast(store, "U0ALICE")

    assert early.outcome == "needed_later"
    assert "*Release*" in early.ephemeral and "Nothing was recorded" in early.ephemeral
    assert store.get(APPROVAL).votes == ()
    outcomes = [cast(store, user).outcome for user in ("U0BOB", "U0ALICE")]
    assert outcomes == ["vote_recorded", "recorded"]


def test_still_possible_is_hall_s_condition_over_the_steps() -> None:
    a = Step("A", Approvers(users=("U1", "U2")), 1)
    b = Step("B", Approvers(users=("U1", "U2")), 1)
    c = Step("C", Approvers(users=("U1", "U2")), 1)
    rules = steps_rules("any", a, b, c)

    assert still_possible(progress(rules, []), frozenset()) is not None  # 3 places, 2 people
    two = steps_rules("any", a, b)
    assert still_possible(progress(two, []), frozenset()) is None
    assert still_possible(progress(two, [vote("U1", "A")]), frozenset({"U1", "U2"})) is not None
