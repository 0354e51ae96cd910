"""Reminders, escalation and the reminder cap, with an injected clock."""

from __future__ import annotations

from datetime import timedelta

import pytest
from approval_gate.policy import Approvers, Escalation
from approval_gate.reminders import (
    LAST_CALL,
    MAX_REMINDERS,
    REMINDERS_AT_FULL_RATE,
    next_reminder_in,
    remind,
)
from approval_gate.store import APPROVED, ApprovalStore, Vote

from tests.unit.fakes import (
    APPROVAL_ID,
    FIXED,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)

#: One reminder cycle's history events, counted from a sandbox execution (13).
EVENTS_PER_CYCLE = 13
#: Step Functions fails a Standard execution at 25,000 history events.
HISTORY_LIMIT = 25_000


def _open(store: ApprovalStore, **rules) -> None:
    store.create(make_approval(rules=make_rules(**rules)))
    store.save_message(APPROVAL_ID, "C0DEPLOYS", "1796144400.000100")


def test_reminders_go_out_at_the_policy_rate_at_first():
    assert next_reminder_in(4 * 3600, 0, 10 * 86400) == 4 * 3600
    assert next_reminder_in(30, REMINDERS_AT_FULL_RATE - 1, 60 * 86400) == 30


@pytest.mark.parametrize("every", [1, 30, 900, 4 * 3600])
def test_no_wait_codepipeline_allows_can_exceed_the_reminder_cap(every):
    """Simulate the longest wait (60 days) at every reminder rate: the cap holds."""
    left = 60 * 86400.0
    sent = 0
    while left > LAST_CALL:
        left -= next_reminder_in(every, sent, left)
        sent += 1
    assert sent <= MAX_REMINDERS
    assert sent * EVENTS_PER_CYCLE + 100 < HISTORY_LIMIT / 3


def test_a_reminder_mentions_approvers_and_says_what_happens_at_the_deadline(store):
    _open(store, approvers=Approvers(users=("U0ALICE",), groups=("S0RELEASE",)))
    slack = RecordingSlack()

    result = remind(
        APPROVAL_ID, store=store, slack=slack, clock=clock_at(FIXED + timedelta(minutes=20))
    )

    assert result == {
        "decided": False,
        "out_of_time": False,
        "heartbeat": 4 * 3600,
        "reminded": True,
        "reminders": 1,
        "escalated": False,
    }
    ((method, posted),) = slack.calls
    assert method == "chat_postMessage"
    assert posted["thread_ts"] == "1796144400.000100"
    assert "<@U0ALICE>" in posted["text"] and "<!subteam^S0RELEASE>" in posted["text"]
    assert "40m left" in posted["text"]
    assert "rejected* by policy" in posted["text"]
    assert store.get(APPROVAL_ID).reminders == 1


def test_escalation_happens_once_after_the_configured_reminders(store):
    _open(
        store,
        escalate_after_reminders=2,
        escalation=Escalation(
            channel="C0ONCALL",
            mention_groups=("S0ONCALL",),
            approvers=Approvers(users=("U0CAROL",)),
        ),
    )
    slack = RecordingSlack()
    results = [
        remind(APPROVAL_ID, store=store, slack=slack, clock=clock_at(FIXED + timedelta(minutes=n)))
        for n in (1, 2, 3, 4)
    ]

    assert [r["escalated"] for r in results] == [False, True, True, True]
    to_oncall = [
        kw for m, kw in slack.calls if m == "chat_postMessage" and kw["channel"] == "C0ONCALL"
    ]
    assert len(to_oncall) == 1
    assert "<!subteam^S0ONCALL>" in to_oncall[0]["text"]
    assert "https://example.slack.com/archives/C0DEPLOYS/p1796144400000100" in to_oncall[0]["text"]
    approval = store.get(APPROVAL_ID)
    assert approval.escalated is True
    assert approval.rules.may_decide("U0CAROL", escalated=approval.escalated)


def test_no_escalation_when_the_policy_says_never(store):
    _open(store, escalate_after_reminders=0, escalation=Escalation(channel="C0ONCALL"))
    slack = RecordingSlack()
    for n in range(1, 5):
        result = remind(
            APPROVAL_ID, store=store, slack=slack, clock=clock_at(FIXED + timedelta(minutes=n))
        )
    assert result["escalated"] is False
    assert all(kw["channel"] != "C0ONCALL" for _, kw in slack.calls)


def test_too_close_to_the_deadline_for_a_reminder_means_decide_now(store):
    _open(store)
    slack = RecordingSlack()
    near = FIXED + timedelta(hours=1) - timedelta(seconds=LAST_CALL / 2)

    result = remind(APPROVAL_ID, store=store, slack=slack, clock=clock_at(near))

    assert result["out_of_time"] is True and result["decided"] is False
    assert slack.calls == []


def test_a_decision_recorded_but_not_delivered_is_handed_on(store):
    _open(store)
    store.add_vote(APPROVAL_ID, Vote("U0BOB", "bob", "approve", FIXED))
    store.decide(APPROVAL_ID, status=APPROVED, decided_by=("U0BOB",), reason=None, at=FIXED)
    slack = RecordingSlack()

    result = remind(
        APPROVAL_ID, store=store, slack=slack, clock=clock_at(FIXED + timedelta(minutes=5))
    )

    assert result["decided"] is True
    assert result["decision"]["status"] == "Approved"
    assert "bob (U0BOB)" in result["decision"]["summary"]
    assert slack.calls == []


class FailingChannel(RecordingSlack):
    """Slack refuses posts to one channel (the bot was not invited there)."""

    def __init__(self, channel: str) -> None:
        super().__init__()
        self.failing = channel

    def chat_postMessage(self, **kwargs):
        if kwargs["channel"] == self.failing:
            from slack_sdk.errors import SlackApiError

            raise SlackApiError("not in channel", {"ok": False, "error": "not_in_channel"})
        return super().chat_postMessage(**kwargs)


def test_an_escalation_that_cannot_be_posted_is_tried_again_next_cycle(store):
    _open(store, escalate_after_reminders=1, escalation=Escalation(channel="C0ONCALL"))
    failing = FailingChannel("C0ONCALL")

    first = remind(
        APPROVAL_ID, store=store, slack=failing, clock=clock_at(FIXED + timedelta(minutes=1))
    )

    assert first["escalated"] is False and first["reminders"] == 1
    assert store.get(APPROVAL_ID).escalated is False
    working = RecordingSlack()
    second = remind(
        APPROVAL_ID, store=store, slack=working, clock=clock_at(FIXED + timedelta(minutes=2))
    )
    assert second["escalated"] is True and second["reminders"] == 2
    assert any(kw["channel"] == "C0ONCALL" for _, kw in working.calls)


def test_votes_short_of_the_quorum_survive_the_deadline(store):
    from approval_gate.closing import at_deadline

    _open(store, required_approvals=2)
    store.add_vote(APPROVAL_ID, Vote("U0ALICE", "alice", "approve", FIXED))

    decision = at_deadline(APPROVAL_ID, store=store, clock=clock_at(FIXED + timedelta(hours=1)))

    assert decision["outcome"] == "expired"
    assert [v.user_id for v in store.get(APPROVAL_ID).votes] == ["U0ALICE"]
