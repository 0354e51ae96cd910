"""Who may decide, and recording a click's vote exactly once.

The third step of a click's path (docs/architecture.md, "The path of a click"): the
approval is read, the clicker authorized (listed users and groups, escalation, four-eyes,
unknown authors), and the vote recorded with conditional writes, so that two clicks, a
Slack retry or a reminder can never decide twice. The result says what happened; handing
the decision to the workflow (`workflow`) and answering the clicker (`answers`) come next.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from typing import Any, NamedTuple

from approval_gate.clock import Clock
from approval_gate.groups import GroupDirectory, GroupLookupFailed, is_member
from approval_gate.messages import APPROVE, REJECT, approvers_mention, decision_view, slack_date
from approval_gate.rules import Step
from approval_gate.steps import (
    StepProgress,
    all_complete,
    approvers_of,
    open_steps,
    place,
    progress_line,
)
from approval_gate.store import (
    APPROVED,
    EXPIRED,
    PENDING,
    REJECTED,
    AlreadyDecided,
    Approval,
    ApprovalStore,
    Vote,
)

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


class Click(NamedTuple):
    """A button press on a request: which approval, who, and what they chose."""

    action: str  # APPROVE | REJECT
    approval_id: str
    user_id: str
    user_name: str
    team_id: str | None
    app_id: str | None
    channel: str | None
    trigger_id: str | None = None
    #: From a submitted modal: the text typed (None when empty), and that it was asked.
    reason: str | None = None
    submitted: bool = False


def _who(approval: Approval) -> str:
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or "nobody"


def already_decided_text(approval: Approval) -> str:
    when = f" {slack_date(approval.decided_at)}" if approval.decided_at else ""
    if approval.status == APPROVED:
        return f"Already approved by {_who(approval)}{when}. Your click changed nothing."
    if approval.status == REJECTED:
        return f"Already rejected by {_who(approval)}{when}. Your click changed nothing."
    if approval.status == EXPIRED:
        return f"This request already expired{when}: {approval.note or 'no decision in time'}."
    return f"This request was already closed: {approval.note or 'decided outside Slack'}."


def not_an_approver_text(approval: Approval) -> str:
    return (
        f"You are not an approver for {approval.pipeline} / {approval.stage}. "
        f"Approvers: {approvers_mention(approval)}. Nothing was recorded."
    )


def approved_so_far(approval: Approval) -> str:
    """Who has approved so far, and how many more approvals are needed (per step, when
    the rules have steps)."""
    if approval.rules.steps:
        return f"Progress: {progress_line(approval.steps)}."
    approving = [f"<@{v.user_id}>" for v in approval.votes if v.vote == "approve"]
    more = max(0, approval.rules.required_approvals - len(approving))
    who = ", ".join(approving) or "nobody"
    return f"Approved so far by {who}; {more} more approval{'s' if more != 1 else ''} needed."


def tally_text(approval: Approval) -> str:
    return f"Your approval is recorded. {approved_so_far(approval)}"


def already_voted_text(approval: Approval) -> str:
    return f"You already voted; a second click does not count. {approved_so_far(approval)}"


UNKNOWN_APPROVAL_TEXT = (
    "Approval Gate does not know this request (it may be older than the retention period). "
    "Nothing was recorded; decide in the CodePipeline console if it is still waiting."
)


SELF_APPROVAL_TEXT = (
    "You made this change, so you cannot approve it: this policy requires a second person "
    "(four-eyes). Nothing was recorded. You may still reject it."
)
UNKNOWN_AUTHOR_TEXT = (
    "The author of this change could not be determined, and this policy does not allow "
    "approval in Slack then (unknown_author: block). Nothing was recorded; reject here, or "
    "decide in the CodePipeline console."
)
REASON_REQUIRED_TEXT = "Say why you reject this deployment: the reason goes to CodePipeline."


def group_failure_text(failure: GroupLookupFailed) -> str:
    return (
        f"Approval Gate could not check whether you are in <!subteam^{failure.group_id}> "
        f"({failure.reason}). Nothing was recorded; the request stays open. "
        "Ask an approver listed by name, or try again later."
    )


def _mentions(users: tuple[str, ...], groups: tuple[str, ...]) -> str:
    return ", ".join([f"<@{u}>" for u in users] + [f"<!subteam^{g}>" for g in groups])


def not_your_turn_text(waiting: StepProgress) -> str:
    users, groups = approvers_of((waiting,))
    return (
        f"It is the *{waiting.name}* step's turn ({_mentions(users, groups)}); your approval "
        "counts in a later step. Nothing was recorded: you will be asked when it is your turn."
    )


def steps_done_text(approval: Approval) -> str:
    waiting = open_steps(approval.rules, approval.steps)
    names = ", ".join(f"*{state.name}*" for state in waiting) or "the last approvals"
    return (
        f"The steps you approve in are complete; the request waits for {names}. "
        "Nothing was recorded."
    )


def needed_later_text(step: StepProgress) -> str:
    return (
        f"Your approval is needed in the *{step.name}* step, which could not complete "
        "without you: it does not count here. Nothing was recorded; approve when it is "
        f"*{step.name}*'s turn, and let another approver act now."
    )


BUSY_TEXT = "Many approvers are voting at this moment: nothing was recorded. Please click again."


class ClickResult(NamedTuple):
    """What a click did, and what to tell the clicker privately, if anything."""

    #: recorded | vote_recorded | already_voted | already_decided | unknown | not_approver
    #: | self_approval | unknown_author | group_lookup_failed | modal | reason_required
    #: | not_your_turn | needed_later | steps_done | busy
    outcome: str
    ephemeral: str | None = None
    view: dict[str, Any] | None = None  # a modal to open (outcome "modal")
    approval: Approval | None = None  # the approval as it now stands, when known
    #: The step this vote completed without deciding the request (DESIGN §8.1).
    completed_step: str | None = None


def may_decide(approval: Approval, user_id: str, groups: GroupDirectory | None) -> bool:
    """Listed by id, or a member of a listed group (escalation's too, once escalated).

    Raises GroupLookupFailed when membership matters and Slack cannot say: fail closed.
    """
    rules = approval.rules
    if rules.may_decide(user_id, escalated=approval.escalated):
        return True
    group_ids = list(rules.approvers.groups)
    extra = rules.escalation.approvers
    if approval.escalated and extra is not None:
        group_ids += [g for g in extra.groups if g not in group_ids]
    if not group_ids or groups is None:
        return False
    return is_member(groups, user_id, tuple(group_ids))


def refusal(approval: Approval, click: Click, groups: GroupDirectory | None) -> ClickResult | None:
    """Why this click may not count, if it may not; None when it may."""
    if approval.status != PENDING:
        return ClickResult("already_decided", already_decided_text(approval), approval=approval)
    try:
        allowed = may_decide(approval, click.user_id, groups)
    except GroupLookupFailed as failure:
        LOG.warning(
            "could not read an approver group; refused the click (fail closed)",
            extra={"group": failure.group_id, "reason": failure.reason},
        )
        return ClickResult("group_lookup_failed", group_failure_text(failure))
    if not allowed:
        LOG.info("refused a click from a non-approver", extra={"approval_id": approval.approval_id})
        return ClickResult("not_approver", not_an_approver_text(approval))
    if click.action == APPROVE:
        rules = approval.rules
        if not rules.allow_self_approval and click.user_id in approval.author_users:
            LOG.info("refused a self-approval", extra={"approval_id": approval.approval_id})
            return ClickResult("self_approval", SELF_APPROVAL_TEXT)
        # An author who maps to no Slack user cannot be held to four-eyes: that is an
        # unknown author as far as Slack goes.
        if not approval.author_users and rules.unknown_author == "block":
            return ClickResult("unknown_author", UNKNOWN_AUTHOR_TEXT)
    if any(v.user_id == click.user_id for v in approval.votes):
        return ClickResult("already_voted", already_voted_text(approval))
    return None


def needs_modal(approval: Approval, click: Click) -> bool:
    rules = approval.rules
    if click.submitted:
        return False
    if click.action == REJECT:
        return rules.require_reason_on_reject
    return rules.ask_comment_on_approve


def record_vote(
    click: Click, *, store: ApprovalStore, clock: Clock, groups: GroupDirectory | None = None
) -> ClickResult:
    """Authorize the clicker and record the vote exactly once; decide when the policy
    says so. A click that needs a reason first answers with the modal to open.

    Outcome "recorded" carries the decided approval, for the workflow. An
    "already_decided" refusal carries the approval as read, so a decision recorded in
    Slack but never delivered can be handed over again; one that lost a race to another
    writer carries none, since the winner hands its own decision over."""
    approval = store.get(click.approval_id)
    if approval is None:
        return ClickResult("unknown", UNKNOWN_APPROVAL_TEXT)
    refused = refusal(approval, click, groups)
    if refused is not None:
        return refused
    if approval.rules.steps and click.action == APPROVE and not click.submitted:
        # Not the approver's turn (or their steps are done): say so before any modal.
        early = _placed(approval, Vote(click.user_id, click.user_name, "approve", clock()), groups)
        if isinstance(early, ClickResult):
            return early
    if needs_modal(approval, click):
        return ClickResult("modal", view=decision_view(approval, click.action))
    if (
        click.submitted
        and click.action == REJECT
        and approval.rules.require_reason_on_reject
        and not click.reason
    ):
        return ClickResult("reason_required", REASON_REQUIRED_TEXT)
    now = clock()
    vote = Vote(
        user_id=click.user_id,
        name=click.user_name,
        vote="approve" if click.action == APPROVE else "reject",
        at=now,
        reason=click.reason,
    )
    if approval.rules.steps:
        return _record_in_steps(approval, vote, store, groups)
    decided = _decide_at_once(approval, vote, store)
    if decided is None:  # not the deciding vote, or the votes changed since the read
        try:
            voted = store.add_vote(click.approval_id, vote)
        except AlreadyDecided as already:
            if already.approval.status != PENDING:
                return ClickResult("already_decided", already_decided_text(already.approval))
            return ClickResult("already_voted", already_voted_text(already.approval))
        status, deciders = _outcome(voted, vote)
        if status is None:
            LOG.info("recorded a vote", extra={"approval_id": voted.approval_id})
            return ClickResult("vote_recorded", tally_text(voted), approval=voted)
        try:
            decided = store.decide(
                click.approval_id, status=status, decided_by=deciders, reason=vote.reason, at=now
            )
        except AlreadyDecided as already:
            return ClickResult("already_decided", already_decided_text(already.approval))
    elif isinstance(decided, ClickResult):
        return decided
    LOG.info(
        "recorded a decision",
        extra={"approval_id": decided.approval_id, "outcome": decided.outcome},
    )
    return ClickResult("recorded", approval=decided)


def _outcome(approval: Approval, vote: Vote) -> tuple[str | None, tuple[str, ...]]:
    """What the votes on `approval` decide, `vote` among them: one rejection rejects;
    enough distinct approvals approve (in every step, when the rules have steps); (None,
    ()) while one is short."""
    if vote.vote != "approve":
        return REJECTED, (vote.user_id,)
    if approval.rules.steps:
        states = approval.steps
        if not all_complete(states):
            return None, ()
        return APPROVED, tuple(user for state in states for user in state.approved_by)
    approving = tuple(v.user_id for v in approval.votes if v.vote == "approve")
    if len(approving) < approval.rules.required_approvals:
        return None, ()
    return APPROVED, approving


def _decide_at_once(
    approval: Approval, vote: Vote, store: ApprovalStore
) -> Approval | ClickResult | None:
    """The common case in one write: this vote decides, given the votes just read.

    None when it does not decide, or when the votes changed meanwhile (the caller then
    records the vote and decides in two steps, as before).
    """
    counted = replace(approval, votes=(*approval.votes, vote))
    status, deciders = _outcome(counted, vote)
    if status is None:
        return None
    try:
        return store.decide_with_vote(
            approval.approval_id,
            vote,
            votes_seen=len(approval.votes),
            status=status,
            decided_by=deciders,
            at=vote.at,
        )
    except AlreadyDecided as already:
        current = already.approval
        if current.status != PENDING:
            return ClickResult("already_decided", already_decided_text(current))
        if any(v.user_id == vote.user_id for v in current.votes):
            return ClickResult("already_voted", already_voted_text(current))
        return None


#: How often a vote is placed again after another vote changed the steps meanwhile: each
#: lost write means another click won, so this bounds a burst of that many clicks at once.
STEP_WRITE_ATTEMPTS = 64


def _listed(
    approval: Approval, user_id: str, groups: GroupDirectory | None
) -> Callable[[Step], bool]:
    def listed(step: Step) -> bool:
        if step.lists(user_id):
            return True
        if not step.approvers.groups or groups is None:
            return False
        return is_member(groups, user_id, step.approvers.groups)

    return listed


def _escalation_approver(approval: Approval, user_id: str, groups: GroupDirectory | None) -> bool:
    extra = approval.rules.escalation.approvers
    if not approval.escalated or extra is None:
        return False
    if user_id in extra.users:
        return True
    return bool(extra.groups) and groups is not None and is_member(groups, user_id, extra.groups)


def _placed(approval: Approval, vote: Vote, groups: GroupDirectory | None) -> Vote | ClickResult:
    """The approve vote with the step it counts in, or why it counts nowhere."""
    try:
        placement = place(
            approval.rules,
            approval.steps,
            _listed(approval, vote.user_id, groups),
            voter=vote.user_id,
            escalation_approver=_escalation_approver(approval, vote.user_id, groups),
        )
    except GroupLookupFailed as failure:
        LOG.warning(
            "could not read an approver group; refused the click (fail closed)",
            extra={"group": failure.group_id, "reason": failure.reason},
        )
        return ClickResult("group_lookup_failed", group_failure_text(failure))
    if placement.step is not None:
        return vote._replace(step=placement.step.name)
    if placement.why == "later" and placement.waiting is not None:
        return ClickResult("not_your_turn", not_your_turn_text(placement.waiting))
    if placement.why == "needed_later" and placement.waiting is not None:
        return ClickResult("needed_later", needed_later_text(placement.waiting))
    if placement.why == "done":
        return ClickResult("steps_done", steps_done_text(approval))
    return ClickResult("not_approver", not_an_approver_text(approval))


def _record_in_steps(
    approval: Approval, vote: Vote, store: ApprovalStore, groups: GroupDirectory | None
) -> ClickResult:
    """Place the vote in its step and record it, conditionally on the votes it was placed
    by; when another vote came first, read again and place again. A rejection needs no
    place, but takes the same write, so it never races a completing approval."""
    for _ in range(STEP_WRITE_ATTEMPTS):
        placed = _placed(approval, vote, groups) if vote.vote == "approve" else vote
        if isinstance(placed, ClickResult):
            return placed
        counted = replace(approval, votes=(*approval.votes, placed))
        status, deciders = _outcome(counted, placed)
        try:
            if status is None:
                voted = store.add_vote(approval.approval_id, placed, votes_seen=len(approval.votes))
            else:
                decided = store.decide_with_vote(
                    approval.approval_id,
                    placed,
                    votes_seen=len(approval.votes),
                    status=status,
                    decided_by=deciders,
                    at=placed.at,
                )
                LOG.info(
                    "recorded a decision",
                    extra={"approval_id": decided.approval_id, "outcome": decided.outcome},
                )
                return ClickResult("recorded", approval=decided)
        except AlreadyDecided as already:
            current = already.approval
            if current.status != PENDING:
                return ClickResult("already_decided", already_decided_text(current))
            if any(v.user_id == vote.user_id for v in current.votes):
                return ClickResult("already_voted", already_voted_text(current))
            approval = current
            continue
        LOG.info("recorded a vote", extra={"approval_id": voted.approval_id, "step": placed.step})
        completed = next(
            (s.name for s in voted.steps if s.name == placed.step and s.complete), None
        )
        return ClickResult(
            "vote_recorded", tally_text(voted), approval=voted, completed_step=completed
        )
    LOG.warning(
        "could not place a vote among concurrent ones", extra={"approval_id": approval.approval_id}
    )
    return ClickResult("busy", BUSY_TEXT)
