"""What people see of approval steps (DESIGN §8.1, issue 19): the request's progress per
step, the line that asks the next step's approvers, reminders and escalation that mention
only who may act now, the closed message and CodePipeline's summary; each within Slack's
limits (and CodePipeline's 512 characters) in the worst case."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.answers import OK, answer
from approval_gate.closed_messages import (
    closed_blocks,
    closed_text,
)
from approval_gate.messages import (
    APPROVE,
    REJECT,
    approvers_mention,
    decision_view,
    request_blocks,
    request_text,
    step_complete_text,
)
from approval_gate.reminder_messages import (
    escalation_note,
    escalation_text,
    reminder_text,
)
from approval_gate.reminders import remind
from approval_gate.reporting import summary
from approval_gate.rules import Approvers, Escalation, Rules, Step
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    REJECTED,
    Approval,
    ApprovalStore,
    Vote,
)
from approval_gate.text import MAX_SUMMARY
from approval_gate.votes import Click, not_an_approver_text, record_vote, tally_text
from slack_sdk.errors import SlackApiError

from tests.unit.fakes import APPROVAL_ID, FIXED, RecordingSlack, clock_at, make_approval
from tests.unit.slack_limits_oracle import message_violations, view_violations
from tests.unit.test_messages import visible

AT = FIXED + timedelta(minutes=5)
NOW = FIXED + timedelta(minutes=10)
QA = Step("QA", Approvers(users=("U0DAN",), groups=("S0QA",)), 1)
RELEASE = Step("Release", Approvers(users=("U0ALICE", "U0BOB", "U0CAROL")), 2)
ONCALL = Escalation(
    channel="C0ONCALL", mention_groups=("S0ONCALL",), approvers=Approvers(users=("U0ERIN",))
)
THREAD = "1796144400.000100"


def step_rules(*steps: Step, order: str = "sequence", **overrides: Any) -> Rules:
    """Rules with steps as the policy resolves them: `approvers` the union of the steps',
    `required_approvals` their sum."""
    users: list[str] = []
    groups: list[str] = []
    for step in steps:
        users += [u for u in step.approvers.users if u not in users]
        groups += [g for g in step.approvers.groups if g not in groups]
    values: dict[str, Any] = {
        "channel": "C0DEPLOYS",
        "approvers": Approvers(tuple(users), tuple(groups)),
        "required_approvals": sum(step.required_approvals for step in steps),
        "deadline": 3600,
        "steps": steps,
        "steps_order": order,
    }
    values.update(overrides)
    return Rules(**values)


def approve(user: str, step: str | None, name: str | None = None) -> Vote:
    return Vote(user_id=user, name=name or user[3:].lower(), vote="approve", at=AT, step=step)


def qa_then_release(*votes: Vote, order: str = "sequence", **overrides: Any) -> Approval:
    rules = step_rules(QA, RELEASE, order=order, escalation=ONCALL)
    values: dict[str, Any] = {
        "rules": rules,
        "votes": votes,
        "channel": "C0DEPLOYS",
        "message_ts": THREAD,
    }
    values.update(overrides)
    return make_approval(**values)


def context_texts(blocks: list[dict[str, Any]]) -> list[str]:
    return [e["text"] for b in blocks if b["type"] == "context" for e in b["elements"]]


# --------------------------------------------------------------------------- the request


def test_the_request_shows_each_steps_progress_and_whose_turn_it_is() -> None:
    blocks = request_blocks(qa_then_release(approve("U0DAN", "QA"), approve("U0ALICE", "Release")))

    (line,) = [text for text in context_texts(blocks) if text.startswith("Steps")]
    assert line == (
        "Steps, in order: QA ✅ <@U0DAN> · Release 1 of 2 (<@U0ALICE>) · now: *Release*"
    )
    assert "Approvals:" not in visible(blocks)  # the one-quorum tally gives way to the steps


def test_the_request_shows_the_first_step_first() -> None:
    blocks = request_blocks(qa_then_release())

    assert "Steps, in order: QA 0 of 1 · Release 0 of 2 · now: *QA*" in context_texts(blocks)


def test_the_request_in_any_order_names_no_turn() -> None:
    blocks = request_blocks(qa_then_release(approve("U0ALICE", "Release"), order="any"))

    assert "Steps, in any order: QA 0 of 1 · Release 1 of 2 (<@U0ALICE>)" in context_texts(blocks)


def test_a_rule_without_steps_keeps_its_tally() -> None:
    approval = make_approval(votes=(approve("U0ALICE", None),))
    rules = approval.rules._replace(required_approvals=2)
    blocks = request_blocks(make_approval(rules=rules, votes=approval.votes))

    assert context_texts(blocks)[-1] == "Approvals: 1 of 2 (<@U0ALICE>)"
    assert "Steps" not in visible(blocks)


# --------------------------------------------------------------------------- a step completes


def test_a_completed_step_asks_the_next_steps_approvers_users_and_groups() -> None:
    approval = qa_then_release(approve("U0DAN", "QA"))

    assert step_complete_text(approval, "QA") == (
        "*QA* is complete (<@U0DAN>). Now *Release*: <@U0ALICE>, <@U0BOB>, <@U0CAROL>, "
        "2 approvals needed."
    )


def test_the_next_step_line_mentions_groups_and_counts_one() -> None:
    rules = step_rules(RELEASE, QA)
    approval = make_approval(
        rules=rules, votes=(approve("U0ALICE", "Release"), approve("U0BOB", "Release"))
    )

    text = step_complete_text(approval, "Release")

    assert text == (
        "*Release* is complete (<@U0ALICE>, <@U0BOB>). Now *QA*: <@U0DAN>, <!subteam^S0QA>, "
        "1 approval needed."
    )


@pytest.mark.parametrize(
    "approval",
    [
        qa_then_release(approve("U0DAN", "QA"), order="any"),  # no turns to announce
        qa_then_release(approve("U0DAN", "QA"), status=APPROVED),  # decided meanwhile
        make_approval(votes=(approve("U0ALICE", None),)),  # no steps
    ],
    ids=["any order", "decided", "no steps"],
)
def test_no_next_step_line_when_there_is_no_turn_to_announce(approval: Approval) -> None:
    assert step_complete_text(approval, approval.rules.effective_steps[0].name) is None


class FailingPostSlack(RecordingSlack):
    """Slack that updates messages but cannot post one."""

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self._record("chat_postMessage", kwargs)
        raise SlackApiError("ratelimited", {"ok": False, "error": "ratelimited"})


def _click(user: str, action: str = APPROVE) -> Click:
    return Click(action, APPROVAL_ID, user, user[3:].lower(), "T0", "A0", "C0DEPLOYS", "trig")


def _open(store: ApprovalStore, order: str = "sequence") -> None:
    store.create(make_approval(rules=step_rules(QA, RELEASE, order=order)))
    store.save_message(APPROVAL_ID, "C0DEPLOYS", THREAD)


def _vote_and_answer(store: ApprovalStore, slack: Any, user: str) -> Any:
    clock = clock_at(NOW)
    click = _click(user)
    result = record_vote(click, store=store, clock=clock)
    return result, answer(result, click, slack=slack, store=store, clock=clock)


def _thread_posts(slack: RecordingSlack) -> list[dict[str, Any]]:
    return [kw for m, kw in slack.calls if m == "chat_postMessage"]


def test_the_vote_that_completes_a_step_posts_one_line_in_the_thread(
    store: ApprovalStore,
) -> None:
    _open(store)
    slack = RecordingSlack()

    result, http = _vote_and_answer(store, slack, "U0DAN")

    assert result.outcome == "vote_recorded" and http == OK
    (post,) = _thread_posts(slack)
    assert post["channel"] == "C0DEPLOYS" and post["thread_ts"] == THREAD
    assert post["text"].startswith("*QA* is complete (<@U0DAN>). Now *Release*: <@U0ALICE>")
    (update,) = [kw for m, kw in slack.calls if m == "chat_update"]
    assert "QA ✅ <@U0DAN> · Release 0 of 2 · now: *Release*" in visible(update["blocks"])

    _vote_and_answer(store, slack, "U0ALICE")  # counts in Release, completes nothing
    _vote_and_answer(store, slack, "U0BOB")  # decides: the close says so, not a step line
    assert len(_thread_posts(slack)) == 1
    assert store.get(APPROVAL_ID).status == APPROVED


def test_in_any_order_a_completed_step_posts_nothing(store: ApprovalStore) -> None:
    _open(store, order="any")
    slack = RecordingSlack()

    result, _ = _vote_and_answer(store, slack, "U0DAN")

    assert result.outcome == "vote_recorded"
    assert _thread_posts(slack) == []


def test_a_slack_failure_asking_the_next_step_is_logged_and_the_vote_stands(
    store: ApprovalStore, gate_log: Any
) -> None:
    _open(store)
    slack = FailingPostSlack()

    result, http = _vote_and_answer(store, slack, "U0DAN")

    assert result.outcome == "vote_recorded" and http == OK
    assert len(_thread_posts(slack)) == 1
    assert [v.user_id for v in store.get(APPROVAL_ID).votes] == ["U0DAN"]
    warnings = [r for r in gate_log.records if r.levelno == logging.WARNING]
    assert any("next step" in r.getMessage() for r in warnings)


# --------------------------------------------------------------------------- reminders


def test_a_reminder_mentions_only_the_step_whose_turn_it_is() -> None:
    before = reminder_text(qa_then_release(), NOW)
    after = reminder_text(qa_then_release(approve("U0DAN", "QA")), NOW)

    assert "waiting for *QA* (0 of 1) from <@U0DAN>, <!subteam^S0QA>." in before
    assert "<@U0ALICE>" not in before and "<@U0BOB>" not in before
    assert "from <@U0ALICE>, <@U0BOB>, <@U0CAROL>." in after
    assert "<@U0DAN>" not in after and "S0QA" not in after


def test_a_reminder_in_any_order_mentions_every_open_step() -> None:
    text = reminder_text(qa_then_release(approve("U0ALICE", "Release"), order="any"), NOW)

    assert "waiting for *QA* (0 of 1), *Release* (1 of 2) from " in text
    for mention in ("<@U0DAN>", "<!subteam^S0QA>", "<@U0BOB>", "<@U0CAROL>"):
        assert mention in text


def test_once_escalated_a_reminder_mentions_the_escalation_approvers_too() -> None:
    text = reminder_text(qa_then_release(approve("U0DAN", "QA"), escalated=True), NOW)

    assert "from <@U0ALICE>, <@U0BOB>, <@U0CAROL>, <@U0ERIN>." in text


def test_the_reminder_cycle_asks_the_waiting_step_and_escalates_naming_it(
    store: ApprovalStore,
) -> None:
    rules = step_rules(QA, RELEASE, escalate_after_reminders=1, escalation=ONCALL)
    store.create(make_approval(rules=rules))
    store.save_message(APPROVAL_ID, "C0DEPLOYS", THREAD)
    record_vote(_click("U0DAN"), store=store, clock=clock_at(NOW))
    slack = RecordingSlack()

    result = remind(APPROVAL_ID, store=store, slack=slack, clock=clock_at(NOW))

    assert result["escalated"] is True
    reminder, post, note = (kw["text"] for m, kw in slack.calls if m == "chat_postMessage")
    assert "waiting for *Release* (0 of 2) from <@U0ALICE>, <@U0BOB>, <@U0CAROL>." in reminder
    assert "U0DAN" not in reminder and "S0QA" not in reminder
    assert "waiting for *Release* (0 of 2)" in post
    assert "waiting for *Release* (0 of 2). May approve now: " in note
    assert note.endswith("<@U0CAROL>, <@U0ERIN>.")


def test_who_is_not_an_approver_is_told_everyone_listed_in_any_step() -> None:
    approval = qa_then_release(approve("U0DAN", "QA"))
    text = not_an_approver_text(approval)

    for mention in ("<@U0DAN>", "<!subteam^S0QA>", "<@U0ALICE>", "<@U0BOB>", "<@U0CAROL>"):
        assert mention in text
    assert approvers_mention(approval).count("<@") == 4


def test_the_escalation_post_and_note_say_which_step_is_waiting() -> None:
    approval = qa_then_release(
        approve("U0DAN", "QA"), approve("U0ALICE", "Release"), escalated=True, reminders=2
    )

    post = escalation_text(approval, "https://example.slack.com/p1", NOW)
    note = escalation_note(approval)

    assert "waited through 2 reminders, waiting for *Release* (1 of 2)." in post
    assert note == (
        ":rotating_light: Escalated to <#C0ONCALL> after 2 reminders, waiting for *Release* "
        "(1 of 2). May approve now: <@U0ALICE>, <@U0BOB>, <@U0CAROL>, <@U0ERIN>."
    )


def test_an_escalation_after_one_reminder_says_one_reminder() -> None:
    approval = qa_then_release(approve("U0DAN", "QA"), escalated=True, reminders=1)

    assert "waited through 1 reminder, waiting for" in escalation_text(approval, None, NOW)
    assert "Escalated to <#C0ONCALL> after 1 reminder, waiting for" in escalation_note(approval)


# --------------------------------------------------------------------------- once decided


def test_the_closed_message_shows_each_step_and_who_approved_in_it() -> None:
    votes = (approve("U0DAN", "QA"), approve("U0ALICE", "Release"), approve("U0BOB", "Release"))
    approval = qa_then_release(
        *votes, status=APPROVED, decided_at=NOW, decided_by=("U0DAN", "U0ALICE", "U0BOB")
    )

    texts = context_texts(closed_blocks(approval))

    assert "Steps, in order: QA ✅ <@U0DAN> · Release ✅ <@U0ALICE>, <@U0BOB>" in texts


def test_a_rejected_request_shows_how_far_each_step_got() -> None:
    reject = Vote("U0CAROL", "carol", "reject", AT, "not now")
    approval = qa_then_release(
        approve("U0DAN", "QA"), reject, status=REJECTED, decided_at=NOW, decided_by=("U0CAROL",)
    )

    texts = context_texts(closed_blocks(approval))

    assert "Steps, in order: QA ✅ <@U0DAN> · Release 0 of 2" in texts
    assert not any("now:" in text for text in texts)


def test_the_summary_names_each_step_and_who_approved_it() -> None:
    votes = (
        approve("U0DAN", "QA", "dan"),
        approve("U0ALICE", "Release", "alice"),
        approve("U0BOB", "Release", "bob"),
    )
    approval = qa_then_release(
        *votes, status=APPROVED, decided_at=NOW, decided_by=("U0DAN", "U0ALICE", "U0BOB")
    )

    assert summary(approval) == "Approved in Slack: QA by dan; Release by alice, bob"


def test_a_rejection_with_steps_is_summarised_as_before() -> None:
    reject = Vote("U0CAROL", "carol", "reject", AT, "not now")
    approval = qa_then_release(
        approve("U0DAN", "QA"),
        reject,
        status=REJECTED,
        decided_at=NOW,
        decided_by=("U0CAROL",),
        reason="not now",
    )

    assert summary(approval) == "Rejected in Slack by carol (U0CAROL): not now"


# --------------------------------------------------------------------------- the worst case

#: Ten steps of 40-character names, 50 approvers (5 a step) and 15 groups, every approver
#: approving in their step; escalation to 20 more.
WORST_STEPS = tuple(
    Step(
        f"{n}" + "s" * 39,
        Approvers(
            users=tuple(f"U0APPROVER{n * 5 + k:03}" for k in range(5)),
            groups=tuple(f"S0GROUP{n:02}{k}" for k in range(2 if n < 5 else 1)),
        ),
        5,
    )
    for n in range(10)
)


def worst_case(status: str | None = None, done_steps: int = 10, **overrides: Any) -> Approval:
    rules = step_rules(
        *WORST_STEPS,
        escalation=Escalation(
            channel="C0ONCALL",
            mention_groups=tuple(f"S0ONCALL{n:03}" for n in range(15)),
            approvers=Approvers(users=tuple(f"U0ONCALL{n:03}" for n in range(20))),
        ),
    )
    votes = tuple(
        Vote(user, "n" * 80, "approve", AT, step=step.name)
        for step in WORST_STEPS[:done_steps]
        for user in step.approvers.users
    )
    values: dict[str, Any] = {
        "pipeline": "p" * 100,
        "stage": "s" * 100,
        "action": "a" * 100,
        "custom_data": "<&>" * 1000,
        "rules": rules,
        "votes": votes,
        "reminders": 99,
        "escalated": True,
        "channel": "C0DEPLOYS",
        "message_ts": THREAD,
    }
    if status is not None:
        values.update(status=status, decided_at=NOW, closed_at=NOW)
        values["decided_by"] = tuple(v.user_id for v in votes) if status == APPROVED else ("U0X",)
        values["reason"] = "&<> " * 3000 if status in (APPROVED, REJECTED) else None
        values["note"] = "& " * 256 if status in (EXPIRED, DECIDED_ELSEWHERE) else None
    values.update(overrides)
    return make_approval(**values)


@pytest.mark.parametrize("done", [0, 5, 9])
def test_the_longest_step_messages_stay_within_slack_limits(done: int) -> None:
    approval = worst_case(done_steps=done)
    texts = [
        reminder_text(approval, NOW),
        escalation_text(approval, "https://slack.example/" + "p" * 500, NOW),
        escalation_note(approval),
        tally_text(approval),
        not_an_approver_text(approval),
    ]
    if done:
        texts.append(step_complete_text(approval, WORST_STEPS[done - 1].name) or "")
    for text in texts:
        assert message_violations(text, None) == []
    assert message_violations(request_text(approval), request_blocks(approval, NOW)) == []
    for action in (APPROVE, REJECT):
        assert view_violations(decision_view(approval, action)) == []


@pytest.mark.parametrize("status", [APPROVED, REJECTED, EXPIRED, DECIDED_ELSEWHERE])
def test_the_longest_closed_step_messages_stay_within_limits(status: str) -> None:
    approval = worst_case(status)

    assert message_violations(closed_text(approval), closed_blocks(approval)) == []
    text = summary(approval)
    assert len(text) <= MAX_SUMMARY and "<" not in text and "\n" not in text


def test_a_long_summary_is_cut_cleanly_at_512() -> None:
    text = summary(worst_case(APPROVED, reason=None))

    assert len(text) <= MAX_SUMMARY and text.endswith("…")
    assert text.startswith(f"Approved in Slack: {WORST_STEPS[0].name} by {'n' * 80}, ")
    head = text.removesuffix("…").rstrip(",; ")
    assert head.endswith(" " + "n" * 80)  # cut between names, never inside one
