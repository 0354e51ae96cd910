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
from approval_gate.messages import APPROVE, APPROVE_LATER, approvers_mention, slack_date
from approval_gate.steps import StepProgress, approvers_of, open_steps, progress_line
from approval_gate.store import APPROVED, EXPIRED, REJECTED, Approval


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


def check_failing_text(approval: Approval) -> str:
    """For an Approve while a health check fails (the last recorded results decide)."""
    blocking = ", ".join(
        f"{result.name} {result.state}: {result.summary}" for result in failing(approval.checks)
    )
    return (
        f"Approve is blocked while a health check fails ({blocking}). Nothing was recorded; "
        "Reject still works, and Approve comes back when the checks pass."
    )


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
