"""Quorum: distinct approvers, a second click counts once, one rejection rejects."""

from __future__ import annotations

import json
import threading
from datetime import timedelta

from approval_gate.interactions import record_click
from approval_gate.store import APPROVED, PENDING, REJECTED, ApprovalStore
from approval_gate.votes import Click

from tests.unit.fakes import (
    APPROVAL_ID,
    FIXED,
    TASK_TOKEN,
    RecordingSfn,
    clock_at,
    make_approval,
    make_rules,
)

NOW = clock_at(FIXED + timedelta(minutes=5))


def _click(user: str, action: str = "approve") -> Click:
    """A click; a Reject comes as the submitted reason modal (reasons are required)."""
    return Click(
        reason="not now" if action == "reject" else None,
        submitted=action == "reject",
        action=action,
        approval_id=APPROVAL_ID,
        user_id=user,
        user_name=user[2:].lower(),
        team_id="T0SANDBOX",
        app_id="A0SANDBOX",
        channel="C0DEPLOYS",
    )


def _open(store: ApprovalStore, users=("U0ALICE", "U0BOB", "U0CAROL"), quorum=2) -> None:
    from approval_gate.policy import Approvers

    store.create(
        make_approval(rules=make_rules(approvers=Approvers(users=users), required_approvals=quorum))
    )
    store.save_task_token(APPROVAL_ID, TASK_TOKEN)


def test_two_distinct_approvers_are_needed_and_a_second_click_counts_once(store):
    _open(store)
    sfn = RecordingSfn()

    first = record_click(_click("U0ALICE"), store=store, sfn=sfn, clock=NOW)
    again = record_click(_click("U0ALICE"), store=store, sfn=sfn, clock=NOW)

    assert first.outcome == "vote_recorded"
    assert "Approved so far by <@U0ALICE>; 1 more approval needed." in first.ephemeral
    assert again.outcome == "already_voted"
    assert "does not count" in again.ephemeral
    assert store.get(APPROVAL_ID).status == PENDING
    assert sfn.task_successes == []

    second = record_click(_click("U0BOB"), store=store, sfn=sfn, clock=NOW)

    assert second.outcome == "recorded"
    decided = store.get(APPROVAL_ID)
    assert decided.status == APPROVED
    assert decided.decided_by == ("U0ALICE", "U0BOB")
    (success,) = sfn.task_successes
    assert json.loads(success["output"])["summary"] == (
        "Approved in Slack by alice (U0ALICE), bob (U0BOB)"
    )


def test_one_rejection_rejects_even_after_approvals(store):
    _open(store, quorum=3)
    sfn = RecordingSfn()
    record_click(_click("U0ALICE"), store=store, sfn=sfn, clock=NOW)

    result = record_click(_click("U0BOB", "reject"), store=store, sfn=sfn, clock=NOW)

    assert result.outcome == "recorded"
    decided = store.get(APPROVAL_ID)
    assert decided.status == REJECTED
    assert decided.decided_by == ("U0BOB",)
    assert {v.user_id: v.vote for v in decided.votes} == {"U0ALICE": "approve", "U0BOB": "reject"}
    assert len(sfn.task_successes) == 1


def test_racing_approvers_reach_the_quorum_exactly_once(store):
    users = tuple(f"U0USER{n}" for n in range(8))
    _open(store, users=users, quorum=2)
    sfn = RecordingSfn()
    barrier = threading.Barrier(len(users) * 2)
    outcomes: list[str] = []

    def click(user: str) -> None:
        barrier.wait()
        outcomes.append(record_click(_click(user), store=store, sfn=sfn, clock=NOW).outcome)

    threads = [threading.Thread(target=click, args=(u,)) for u in users * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(sfn.task_successes) == 1
    assert outcomes.count("recorded") == 1
    decided = store.get(APPROVAL_ID)
    assert decided.status == APPROVED
    assert len(decided.decided_by) >= 2


class _CountingClient:
    """The DynamoDB client, counting the writes."""

    def __init__(self, client) -> None:
        self._client = client
        self.updates = 0

    def update_item(self, **kwargs):
        self.updates += 1
        return self._client.update_item(**kwargs)

    def __getattr__(self, name):
        return getattr(self._client, name)


def test_the_deciding_click_records_its_vote_and_the_decision_in_one_write(store):
    _open(store, quorum=1)
    counting = _CountingClient(store._client)
    store._client = counting
    sfn = RecordingSfn()

    result = record_click(_click("U0ALICE"), store=store, sfn=sfn, clock=NOW)

    assert result.outcome == "recorded"
    assert counting.updates == 1
    decided = store.get(APPROVAL_ID)
    assert decided.status == APPROVED
    assert [v.user_id for v in decided.votes] == ["U0ALICE"]
    assert len(sfn.task_successes) == 1


def test_a_vote_that_lands_between_the_read_and_the_write_still_counts(store):
    """Bob reads Alice's vote (quorum 2: his would decide), then Carol's vote lands before
    Bob writes. Bob's one-write decision must not pass over Carol's vote: it falls back to
    recording his vote and deciding from the votes as they now are."""
    from approval_gate.store import Vote

    _open(store, quorum=2)
    store.add_vote(APPROVAL_ID, Vote(user_id="U0ALICE", name="alice", vote="approve", at=FIXED))
    sfn = RecordingSfn()
    original_get = store.get

    def get_then_carol_votes(approval_id):
        approval = original_get(approval_id)
        store.get = original_get
        carol = Vote(user_id="U0CAROL", name="carol", vote="approve", at=FIXED)
        store.add_vote(APPROVAL_ID, carol)  # her click has not decided yet
        return approval

    store.get = get_then_carol_votes
    result = record_click(_click("U0BOB"), store=store, sfn=sfn, clock=NOW)

    assert result.outcome == "recorded"
    decided = store.get(APPROVAL_ID)
    assert decided.status == APPROVED
    assert set(decided.decided_by) == {"U0ALICE", "U0BOB", "U0CAROL"}
    assert len(sfn.task_successes) == 1
