"""A click on a request, what it did, and the words that answer it.

The types and texts the click's path shares (`votes` records a vote, `hold_clicks` acts on
a held request, `answers` replies): a `Click` parsed from Slack's payload, the
`ClickResult` the clicker is answered from, who may decide, and the private words for
each refusal.
"""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from approval_gate.checks import failing
from approval_gate.groups import GroupDirectory, GroupLookupFailed, is_member
from approval_gate.i18n import ntr, tr, trp
from approval_gate.messages import (
    APPROVE,
    APPROVE_LATER,
    approvers_mention,
)
from approval_gate.steps import StepProgress, approvers_of, open_steps, progress_line
from approval_gate.store import APPROVED, EXPIRED, REJECTED, Approval
from approval_gate.text import slack_date


class Click(NamedTuple):
    """A button press on a request: which approval, who, and what they chose."""

    action: str  # APPROVE | APPROVE_LATER | REJECT (CANCEL_HOLD | DEPLOY_NOW: hold_clicks)
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
    #: From the "Approve for later" modal: the time chosen (None when none was).
    deploy_at: datetime | None = None
    #: From a submitted Approve modal: what each input block gave (unchecked; DESIGN §8.4).
    inputs: Mapping[str, str] = MappingProxyType({})

    @property
    def approves(self) -> bool:
        return self.action in (APPROVE, APPROVE_LATER)


def _who(approval: Approval, language: str) -> str:
    # Translators: stands in for the people who decided when none is recorded, as in
    # "Already approved by nobody".
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or trp(
        language, "people", "nobody"
    )


def already_decided_text(approval: Approval) -> str:
    language = approval.rules.language
    when = slack_date(approval.decided_at, language) if approval.decided_at else None
    if approval.status == APPROVED:
        who = _who(approval, language)
        if when:
            # Translators: %(who)s are Slack mentions; %(when)s is a date ("today at 10:02").
            return tr(
                language,
                "Already approved by %(who)s %(when)s. Your click changed nothing.",
                who=who,
                when=when,
            )
        return tr(language, "Already approved by %(who)s. Your click changed nothing.", who=who)
    if approval.status == REJECTED:
        who = _who(approval, language)
        if when:
            # Translators: %(who)s are Slack mentions; %(when)s is a date ("today at 10:02").
            return tr(
                language,
                "Already rejected by %(who)s %(when)s. Your click changed nothing.",
                who=who,
                when=when,
            )
        return tr(language, "Already rejected by %(who)s. Your click changed nothing.", who=who)
    if approval.status == EXPIRED:
        # Translators: why a request expired, when it recorded no reason of its own.
        note = approval.note or tr(language, "no decision in time")
        if when:
            # Translators: %(when)s is a date ("today at 10:02"); %(note)s says why.
            return tr(
                language, "This request already expired %(when)s: %(note)s.", when=when, note=note
            )
        # Translators: %(note)s says why the request expired.
        return tr(language, "This request already expired: %(note)s.", note=note)
    # Translators: how a request was closed, when it recorded no note of its own.
    note = approval.note or tr(language, "decided outside Slack")
    # Translators: %(note)s says how the request was closed.
    return tr(language, "This request was already closed: %(note)s.", note=note)


def check_failing_text(approval: Approval) -> str:
    """For an Approve while a health check fails (the last recorded results decide)."""
    blocking = ", ".join(
        f"{result.name} {result.state}: {result.summary}" for result in failing(approval.checks)
    )
    # Translators: %(checks)s lists the failing checks: "name STATE: summary, ...".
    return tr(
        approval.rules.language,
        "Approve is blocked while a health check fails (%(checks)s). Nothing was recorded; "
        "Reject still works, and Approve comes back when the checks pass.",
        checks=blocking,
    )


def not_an_approver_text(approval: Approval) -> str:
    # Translators: %(pipeline)s / %(stage)s are CodePipeline names; %(approvers)s are
    # Slack mentions.
    return tr(
        approval.rules.language,
        "You are not an approver for %(pipeline)s / %(stage)s. "
        "Approvers: %(approvers)s. Nothing was recorded.",
        pipeline=approval.pipeline,
        stage=approval.stage,
        approvers=approvers_mention(approval),
    )


def approved_so_far(approval: Approval) -> str:
    """Who has approved so far, and how many more approvals are needed (per step, when
    the rules have steps)."""
    language = approval.rules.language
    if approval.rules.steps:
        # Translators: %(progress)s is each step's progress: "QA ✅ @dan · Release 1 of 2".
        return tr(
            language, "Progress: %(progress)s.", progress=progress_line(approval.steps, language)
        )
    approving = [f"<@{v.user_id}>" for v in approval.votes if v.vote == "approve"]
    more = max(0, approval.rules.required_approvals - len(approving))
    # Translators: stands in for the people who approved when none has, as in
    # "Approved so far by nobody".
    who = ", ".join(approving) or trp(language, "people", "nobody")
    # Translators: %(who)s are Slack mentions of the approvers so far.
    return ntr(
        language,
        "Approved so far by %(who)s; %(count)d more approval needed.",
        "Approved so far by %(who)s; %(count)d more approvals needed.",
        more,
        who=who,
    )


def tally_text(approval: Approval) -> str:
    # Translators: %(so_far)s is a sentence saying who approved so far and what is missing.
    return tr(
        approval.rules.language,
        "Your approval is recorded. %(so_far)s",
        so_far=approved_so_far(approval),
    )


def already_voted_text(approval: Approval) -> str:
    # Translators: %(so_far)s is a sentence saying who approved so far and what is missing.
    return tr(
        approval.rules.language,
        "You already voted; a second click does not count. %(so_far)s",
        so_far=approved_so_far(approval),
    )


def unknown_approval_text(language: str) -> str:
    """For a click on a request the table does not have (any more)."""
    return tr(
        language,
        "Approval Gate does not know this request (it may be older than the retention "
        "period). Nothing was recorded; decide in the CodePipeline console if it is still "
        "waiting.",
    )


def self_approval_text(language: str) -> str:
    return tr(
        language,
        "You made this change, so you cannot approve it: this policy requires a second "
        "person (four-eyes). Nothing was recorded. You may still reject it.",
    )


def unknown_author_text(language: str) -> str:
    # Translators: "unknown_author: block" is the policy's setting, as written in the policy.
    return tr(
        language,
        "The author of this change could not be determined, and this policy does not allow "
        "approval in Slack then (unknown_author: block). Nothing was recorded; reject here, "
        "or decide in the CodePipeline console.",
    )


def reason_required_text(language: str) -> str:
    # Translators: shown under the reason input of the Reject form (150 characters at most).
    return tr(language, "Say why you reject this deployment: the reason goes to CodePipeline.")


def group_lookup_reason(failure: GroupLookupFailed, language: str) -> str:
    """Why a group's members are unknown, in ``language``: what Slack said, or that it did
    not answer (Slack's error code and the exception's name are kept as they are)."""
    if not failure.answered:
        # Translators: %(error)s is the name of a network error, like TimeoutError.
        return tr(language, "Slack did not answer: %(error)s", error=failure.error)
    if failure.error:
        # Translators: %(error)s is Slack's error code, like plan_upgrade_required.
        return tr(language, "Slack said: %(error)s", error=failure.error)
    return tr(language, "Slack said: an error")


def group_failure_text(failure: GroupLookupFailed, language: str) -> str:
    # Translators: %(group)s is a Slack user group mention; %(reason)s says why it could
    # not be read ("Slack said: ...").
    return tr(
        language,
        "Approval Gate could not check whether you are in %(group)s (%(reason)s). Nothing was "
        "recorded; the request stays open. Ask an approver listed by name, or try again later.",
        group=f"<!subteam^{failure.group_id}>",
        reason=group_lookup_reason(failure, language),
    )


def _mentions(users: tuple[str, ...], groups: tuple[str, ...]) -> str:
    return ", ".join([f"<@{u}>" for u in users] + [f"<!subteam^{g}>" for g in groups])


def not_your_turn_text(waiting: StepProgress, language: str) -> str:
    users, groups = approvers_of((waiting,))
    # Translators: %(step)s is the step's name from the policy; %(approvers)s are Slack
    # mentions of its approvers. Keep the *asterisks* around the step (bold in Slack).
    return tr(
        language,
        "It is the *%(step)s* step's turn (%(approvers)s); your approval counts in a later "
        "step. Nothing was recorded: you will be asked when it is your turn.",
        step=waiting.name,
        approvers=_mentions(users, groups),
    )


def steps_done_text(approval: Approval) -> str:
    language = approval.rules.language
    waiting = open_steps(approval.rules, approval.steps)
    if not waiting:
        return tr(
            language,
            "The steps you approve in are complete; the request waits for the last "
            "approvals. Nothing was recorded.",
        )
    # Translators: %(steps)s are step names from the policy, each in *bold*.
    return tr(
        language,
        "The steps you approve in are complete; the request waits for %(steps)s. "
        "Nothing was recorded.",
        steps=", ".join(f"*{state.name}*" for state in waiting),
    )


def needed_later_text(step: StepProgress, language: str) -> str:
    # Translators: %(step)s is the step's name from the policy (twice). Keep the
    # *asterisks* around it (bold in Slack).
    return tr(
        language,
        "Your approval is needed in the *%(step)s* step, which could not complete without "
        "you: it does not count here. Nothing was recorded; approve when it is *%(step)s*'s "
        "turn, and let another approver act now.",
        step=step.name,
    )


def busy_text(language: str) -> str:
    return tr(
        language,
        "Many approvers are voting at this moment: nothing was recorded. Please click again.",
    )


class ClickResult(NamedTuple):
    """What a click did, and what to tell the clicker privately, if anything."""

    #: recorded | vote_recorded | already_voted | already_decided | unknown | not_approver
    #: | self_approval | unknown_author | group_lookup_failed | modal | reason_required
    #: | not_your_turn | needed_later | steps_done | busy | deploy_at_invalid | inputs_invalid
    outcome: str
    ephemeral: str | None = None
    view: dict[str, Any] | None = None  # a modal to open (outcome "modal")
    approval: Approval | None = None  # the approval as it now stands, when known
    #: The step this vote completed without deciding the request (DESIGN §8.1).
    completed_step: str | None = None
    #: A refused modal submission's words under each input, by block id (DESIGN §8.4).
    errors: dict[str, str] | None = None


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
