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

from approval_gate.approver_inputs import checked_inputs, inputs_invalid_text
from approval_gate.checks import failing
from approval_gate.clicks import (
    Click,
    ClickResult,
    already_decided_text,
    already_voted_text,
    busy_text,
    check_failing_text,
    group_failure_text,
    may_decide,
    needed_later_text,
    not_an_approver_text,
    not_your_turn_text,
    reason_required_text,
    self_approval_text,
    steps_done_text,
    tally_text,
    unknown_approval_text,
    unknown_author_text,
)
from approval_gate.clock import Clock
from approval_gate.groups import GroupDirectory, GroupLookupFailed, in_approvers
from approval_gate.hold_clicks import hold_click
from approval_gate.hold_messages import already_held_text, approve_later_view, deploy_at_error
from approval_gate.holds import Plan, plan
from approval_gate.messages import (
    APPROVE_LATER,
    CANCEL_HOLD,
    DEPLOY_AT_BLOCK,
    DEPLOY_NOW,
    REJECT,
    decision_view,
)
from approval_gate.rules import Step
from approval_gate.steps import (
    all_complete,
    place,
)
from approval_gate.store import (
    HELD,
    PENDING,
    REJECTED,
    AlreadyDecided,
    Approval,
    ApprovalStore,
    Vote,
)

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


def refusal(approval: Approval, click: Click, groups: GroupDirectory | None) -> ClickResult | None:
    """Why this click may not count, if it may not; None when it may."""
    if approval.status == HELD:
        return ClickResult("already_decided", already_held_text(approval), approval=approval)
    if approval.status != PENDING:
        return ClickResult("already_decided", already_decided_text(approval), approval=approval)
    try:
        allowed = may_decide(approval, click.user_id, groups)
    except GroupLookupFailed as failure:
        LOG.warning(
            "could not read an approver group; refused the click (fail closed)",
            extra={"group": failure.group_id, "reason": failure.reason},
        )
        return ClickResult(
            "group_lookup_failed", group_failure_text(failure, approval.rules.language)
        )
    if not allowed:
        LOG.info("refused a click from a non-approver", extra={"approval_id": approval.approval_id})
        return ClickResult("not_approver", not_an_approver_text(approval))
    if click.approves:
        rules = approval.rules
        if not rules.allow_self_approval and click.user_id in approval.author_users:
            LOG.info("refused a self-approval", extra={"approval_id": approval.approval_id})
            return ClickResult("self_approval", self_approval_text(rules.language))
        # An author who maps to no Slack user cannot be held to four-eyes: that is an
        # unknown author as far as Slack goes.
        if not approval.author_users and rules.unknown_author == "block":
            return ClickResult("unknown_author", unknown_author_text(rules.language))
        if failing(approval.checks):  # as last recorded: no check runs while Slack waits
            LOG.info(
                "refused an approval while a check fails",
                extra={"approval_id": approval.approval_id},
            )
            return ClickResult("check_failing", check_failing_text(approval))
    if any(v.user_id == click.user_id for v in approval.votes):
        return ClickResult("already_voted", already_voted_text(approval))
    return None


def needs_modal(approval: Approval, click: Click) -> bool:
    rules = approval.rules
    if click.submitted:
        return False
    if click.action == REJECT:
        return rules.require_reason_on_reject
    return rules.ask_comment_on_approve or bool(rules.inputs)


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
        # No approval, so no rules to read the language from, and no policy at hand here
        # (the click's path has only the table): English.
        return ClickResult("unknown", unknown_approval_text("en"))
    if click.action in (CANCEL_HOLD, DEPLOY_NOW):
        return hold_click(approval, click, store=store, clock=clock, groups=groups)
    refused = refusal(approval, click, groups)
    if refused is not None:
        return refused
    if approval.rules.steps and click.approves and not click.submitted:
        # Not the approver's turn (or their steps are done): say so before any modal.
        early = _placed(approval, Vote(click.user_id, click.user_name, "approve", clock()), groups)
        if isinstance(early, ClickResult):
            return early
    if click.action == APPROVE_LATER and not click.submitted:
        return ClickResult("modal", view=approve_later_view(approval, clock()), approval=approval)
    if needs_modal(approval, click):
        return ClickResult("modal", view=decision_view(approval, click.action), approval=approval)
    # The inputs are checked here, whatever the modal's client let through (DESIGN §8.4).
    given, wrong = checked_inputs(approval.rules, click.inputs) if click.approves else ({}, {})
    if click.action == APPROVE_LATER:
        wrong_time = deploy_at_error(approval, click.deploy_at, clock())
        if wrong_time:
            errors = {DEPLOY_AT_BLOCK: wrong_time, **wrong}
            return ClickResult("deploy_at_invalid", wrong_time, errors=errors)
    if wrong:
        text = inputs_invalid_text(approval.rules.language)
        return ClickResult("inputs_invalid", text, errors=wrong)
    if (
        click.submitted
        and click.action == REJECT
        and approval.rules.require_reason_on_reject
        and not click.reason
    ):
        return ClickResult("reason_required", reason_required_text(approval.rules.language))
    now = clock()
    vote = Vote(
        user_id=click.user_id,
        name=click.user_name,
        vote="approve" if click.approves else "reject",
        at=now,
        reason=click.reason,
        deploy_at=click.deploy_at if click.action == APPROVE_LATER else None,
        inputs=given,
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
        verdict, deciders = _outcome(voted, vote)
        if verdict is None:
            LOG.info("recorded a vote", extra={"approval_id": voted.approval_id})
            return ClickResult("vote_recorded", tally_text(voted), approval=voted)
        try:
            decided = store.decide(
                click.approval_id,
                status=verdict.status,
                decided_by=deciders,
                reason=vote.reason,
                at=now,
                held=verdict.held,
                note=verdict.note,
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


def _outcome(approval: Approval, vote: Vote) -> tuple[Plan | None, tuple[str, ...]]:
    """What the votes on `approval` decide, `vote` among them: one rejection rejects;
    enough distinct approvals approve (in every step, when the rules have steps), and the
    approval is held, or rejected, when deploys may not go on now (holds.plan); (None,
    ()) while one is short."""
    if vote.vote != "approve":
        return Plan(REJECTED), (vote.user_id,)
    if approval.rules.steps:
        states = approval.steps
        if not all_complete(states):
            return None, ()
        return plan(approval, vote.at), tuple(u for state in states for u in state.approved_by)
    approving = tuple(v.user_id for v in approval.votes if v.vote == "approve")
    if len(approving) < approval.rules.required_approvals:
        return None, ()
    return plan(approval, vote.at), approving


def _write_decision(
    store: ApprovalStore, approval: Approval, vote: Vote, verdict: Plan, deciders: tuple[str, ...]
) -> Approval:
    """The deciding vote and what it decided (approved, held or rejected), in one write
    conditional on the votes `approval` holds still being the ones counted."""
    return store.decide_with_vote(
        approval.approval_id,
        vote,
        votes_seen=len(approval.votes),
        status=verdict.status,
        decided_by=deciders,
        at=vote.at,
        held=verdict.held,
        note=verdict.note,
    )


def _decide_at_once(
    approval: Approval, vote: Vote, store: ApprovalStore
) -> Approval | ClickResult | None:
    """The common case in one write: this vote decides, given the votes just read.

    None when it does not decide, or when the votes changed meanwhile (the caller then
    records the vote and decides in two steps, as before).
    """
    counted = approval._replace(votes=(*approval.votes, vote))
    verdict, deciders = _outcome(counted, vote)
    if verdict is None:
        return None
    try:
        return _write_decision(store, approval, vote, verdict, deciders)
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
        return in_approvers(step.approvers, user_id, groups)

    return listed


def _escalation_approver(approval: Approval, user_id: str, groups: GroupDirectory | None) -> bool:
    extra = approval.rules.escalation.approvers
    return approval.escalated and extra is not None and in_approvers(extra, user_id, groups)


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
        return ClickResult(
            "group_lookup_failed", group_failure_text(failure, approval.rules.language)
        )
    if placement.step is not None:
        return vote._replace(step=placement.step.name)
    if placement.why == "later" and placement.waiting is not None:
        return ClickResult(
            "not_your_turn", not_your_turn_text(placement.waiting, approval.rules.language)
        )
    if placement.why == "needed_later" and placement.waiting is not None:
        return ClickResult(
            "needed_later", needed_later_text(placement.waiting, approval.rules.language)
        )
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
        counted = approval._replace(votes=(*approval.votes, placed))
        verdict, deciders = _outcome(counted, placed)
        try:
            if verdict is None:
                voted = store.add_vote(approval.approval_id, placed, votes_seen=len(approval.votes))
            else:
                decided = _write_decision(store, approval, placed, verdict, deciders)
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
    return ClickResult("busy", busy_text(approval.rules.language))
