"""Clicks on a held request (DESIGN §8.2): Cancel, and Deploy now with its reason.

Cancel (any approver) opens the request again without its approve votes; Deploy now
(the policy's `freeze_override` approvers, with a reason, as many distinct people as it
requires) approves it at once. Both are conditional writes on the request still being
held, so a cancel, an override and the end of the hold can race and exactly one wins;
the winner ends the hold's wait with its token (the token the write itself returned, so
a hold that began an instant before is not missed).
"""

from __future__ import annotations

import logging

from approval_gate.clicks import (
    Click,
    ClickResult,
    already_decided_text,
    busy_text,
    group_failure_text,
    may_decide,
)
from approval_gate.clock import Clock
from approval_gate.groups import GroupDirectory, GroupLookupFailed, in_approvers
from approval_gate.hold_messages import deploy_now_view, may_override, waits_for_checks
from approval_gate.i18n import ntr, tr
from approval_gate.messages import CANCEL_HOLD, approvers_mention
from approval_gate.records import Approval
from approval_gate.store import HELD, PENDING, AlreadyDecided, ApprovalStore, Override, Vote

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: Override votes cast at the same instant: each lost write means another vote won.
OVERRIDE_WRITE_ATTEMPTS = 16


def override_reason_text(language: str) -> str:
    # Translators: shown under the reason input of the Deploy now form (150 characters at
    # most).
    return tr(
        language, "Say why it must deploy now: the reason goes to CodePipeline and the audit."
    )


def checks_hold_text(language: str) -> str:
    # Translators: "Deploy now" and "Cancel" are the held request's buttons.
    return tr(
        language,
        "This approval waits for its health checks to pass: Deploy now overrides a freeze or "
        "a closed deploy window, not failing checks. Nothing changed; Cancel opens the "
        "request again.",
    )


def not_held_text(approval: Approval) -> str:
    if approval.status == PENDING:
        return tr(
            approval.rules.language,
            "This request is not held (any more): it is open for approval. Nothing changed.",
        )
    return already_decided_text(approval)


def hold_click(
    approval: Approval,
    click: Click,
    *,
    store: ApprovalStore,
    clock: Clock,
    groups: GroupDirectory | None,
) -> ClickResult:
    """Cancel or Deploy now on a held request: authorize and record once. Outcomes
    "hold_cancelled" and "overridden" end the hold's wait (workflow.end_hold_wait); so
    does "not_held" with the approval, in case the winner's end of the wait was lost."""
    if approval.status != HELD:
        known = approval if approval.closed_at is None else None
        return ClickResult("not_held", not_held_text(approval), approval=known)
    try:
        if click.action == CANCEL_HOLD:
            return _cancel(approval, click, store, groups)
        return _deploy_now(approval, click, store, clock, groups)
    except GroupLookupFailed as failure:
        LOG.warning(
            "could not read an approver group; refused the click (fail closed)",
            extra={"group": failure.group_id, "reason": failure.reason},
        )
        return ClickResult(
            "group_lookup_failed", group_failure_text(failure, approval.rules.language)
        )


def _cancel(
    approval: Approval, click: Click, store: ApprovalStore, groups: GroupDirectory | None
) -> ClickResult:
    language = approval.rules.language
    if not may_decide(approval, click.user_id, groups):
        # Translators: %(approvers)s are Slack mentions of the approvers.
        words = tr(
            language,
            "Only an approver may cancel this hold (%(approvers)s). Nothing changed.",
            approvers=approvers_mention(approval),
        )
        return ClickResult("not_approver", words)
    approving = tuple(vote.user_id for vote in approval.votes if vote.vote == "approve")
    try:
        reopened = store.reopen(approval.approval_id, approvers=approving)
    except AlreadyDecided as already:
        return ClickResult("not_held", not_held_text(already.approval))
    LOG.info("cancelled a hold", extra={"approval_id": approval.approval_id})
    return ClickResult(
        "hold_cancelled",
        tr(
            language,
            "You cancelled the hold: the request is open again, and its approvals are cleared.",
        ),
        approval=reopened,
    )


def may_override_now(approval: Approval, user_id: str, groups: GroupDirectory | None) -> bool:
    """One of the policy's `freeze_override` approvers (by id, or in a listed group)."""
    override = approval.rules.freeze_override
    return override is not None and in_approvers(override.approvers, user_id, groups)


def _deploy_now(
    approval: Approval,
    click: Click,
    store: ApprovalStore,
    clock: Clock,
    groups: GroupDirectory | None,
) -> ClickResult:
    language = approval.rules.language
    if waits_for_checks(approval):
        LOG.info(
            "refused an override of a checks hold", extra={"approval_id": approval.approval_id}
        )
        return ClickResult("not_override", checks_hold_text(language))
    if not may_override(approval):
        words = tr(
            language,
            "This hold cannot be overridden (it waits for the time the approvers asked for, "
            "or the policy names nobody who may). Nothing changed.",
        )
        return ClickResult("not_override", words)
    if not may_override_now(approval, click.user_id, groups):
        LOG.info("refused an override", extra={"approval_id": approval.approval_id})
        # Translators: freeze_override is the policy's setting, as written in the policy.
        words = tr(
            language,
            "Only the policy's freeze_override approvers may deploy during a freeze or "
            "outside a window. Nothing changed.",
        )
        return ClickResult("not_approver", words)
    if not click.submitted:
        return ClickResult("modal", view=deploy_now_view(approval), approval=approval)
    if not click.reason:
        return ClickResult("reason_required", override_reason_text(language))
    vote = Vote(click.user_id, click.user_name, "deploy_now", clock(), reason=click.reason)
    needed = (
        approval.rules.freeze_override.required_approvals if approval.rules.freeze_override else 1
    )
    for _ in range(OVERRIDE_WRITE_ATTEMPTS):
        if any(v.user_id == click.user_id for v in approval.overrides):
            words = tr(language, "You already asked to deploy now. Nothing changed.")
            return ClickResult("already_voted", words)
        votes = (*approval.overrides, vote)
        complete = (
            Override(
                by=tuple(v.user_id for v in votes),
                reason="; ".join(dict.fromkeys(v.reason for v in votes if v.reason)),
            )
            if len(votes) >= needed
            else None
        )
        try:
            recorded = store.add_override(
                approval.approval_id, vote, votes_seen=len(approval.overrides), override=complete
            )
        except AlreadyDecided as already:
            if already.approval.status != HELD:
                return ClickResult("not_held", not_held_text(already.approval))
            approval = already.approval  # another override vote came first: count again
            continue
        if complete is None:
            more = needed - len(votes)
            words = ntr(
                language,
                "Your deploy-now is recorded; %(count)d more override approver needed.",
                "Your deploy-now is recorded; %(count)d more override approvers needed.",
                more,
            )
            return ClickResult("override_recorded", words, approval=recorded)
        LOG.info("overrode a hold", extra={"approval_id": approval.approval_id})
        return ClickResult("overridden", approval=recorded)
    return ClickResult("busy", busy_text(language))
