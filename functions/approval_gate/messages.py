"""The Slack messages of an approval, built with slack_sdk's Block Kit models.

Only the opaque approval id goes into a button; tokens and CodePipeline's review link
(which embeds the approval token) never reach Slack.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import quote

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    HeaderBlock,
    InputBlock,
    MarkdownTextObject,
    PlainTextInputElement,
    PlainTextObject,
    SectionBlock,
)
from slack_sdk.models.views import View

from approval_gate.check_messages import checks_text
from approval_gate.checks import failing
from approval_gate.clock import iso
from approval_gate.holds import forecast
from approval_gate.input_messages import approve_confirm, input_blocks, inputs_section
from approval_gate.reporting import held_for, override_text
from approval_gate.revision_messages import changes_blocks
from approval_gate.steps import StepProgress, approvers_of, open_steps, progress_line
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    PENDING,
    REJECTED,
    Approval,
)
from approval_gate.text import cut_at_word, escape_mrkdwn, human_duration, slack_date

APPROVE = "approve"
REJECT = "reject"
#: The buttons of holds (DESIGN §8.2; approval_gate.hold_messages builds their messages).
APPROVE_LATER = "approve_later"
CANCEL_HOLD = "cancel_hold"
DEPLOY_NOW = "deploy_now"
#: The date-time picker's input block and action id (DESIGN §8.2), and the hold modals.
DEPLOY_AT_BLOCK = "deploy_at"
APPROVE_LATER_VIEW = "approval_gate_approve_later"
DEPLOY_NOW_VIEW = "approval_gate_deploy_now"
#: callback_ids of the modals, and the block (and action) id of their text input.
REJECT_VIEW = "approval_gate_reject"
APPROVE_VIEW = "approval_gate_approve"
REASON_BLOCK = "reason"
MAX_REASON = 2000
#: block_id of the actions block, so a click handler can tell our buttons apart.
ACTIONS_BLOCK = "approval_gate_actions"

_SECTION_LIMIT = 3000


def _execution_link(approval: Approval) -> str | None:
    if not approval.pipeline_execution_id:
        return None
    region = approval.region
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(approval.pipeline)}/executions/{quote(approval.pipeline_execution_id)}/timeline"
        f"?region={region}"
    )


def _links(approval: Approval) -> list[str]:
    """One mrkdwn link per element, so each stays far inside Slack's 3,000 characters."""
    links = []
    if approval.console_link:
        links.append(f"<{approval.console_link}|Review in CodePipeline>")
    execution = _execution_link(approval)
    if execution:
        short = escape_mrkdwn(approval.pipeline_execution_id or "")[:8]
        links.append(f"<{execution}|Execution {short}>")
    if approval.external_entity_link:
        links.append(f"<{approval.external_entity_link}|Change to review>")
    return links


def summary_blocks(approval: Approval, title: str) -> list[Block]:
    fields = [
        MarkdownTextObject(text=f"*Pipeline*\n{escape_mrkdwn(approval.pipeline)}"),
        MarkdownTextObject(
            text=f"*Stage / action*\n{escape_mrkdwn(approval.stage)} / "
            f"{escape_mrkdwn(approval.action)}"
        ),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=cut_at_word(title, 150)),
        SectionBlock(fields=fields),
    ]
    if approval.custom_data:
        text = cut_at_word(escape_mrkdwn(approval.custom_data), _SECTION_LIMIT - 10)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f">{text}")))
    blocks += changes_blocks(approval)
    links = _links(approval)
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link) for link in links]))
    return blocks


def request_text(approval: Approval) -> str:
    return f"Approval needed: {approval.pipeline} / {approval.stage} / {approval.action}"


def deadline_outcome(approval: Approval) -> str:
    """What happens at the deadline, in the words every message uses."""
    return "approved" if approval.rules.on_deadline == "approve" else "rejected"


def _mention(users: tuple[str, ...] | list[str], groups: tuple[str, ...] | list[str]) -> str:
    return ", ".join([f"<@{u}>" for u in users] + [f"<!subteam^{g}>" for g in groups])


def _with_escalation(approval: Approval, users: tuple[str, ...], groups: tuple[str, ...]) -> str:
    extra = approval.rules.escalation.approvers
    every_user, every_group = list(users), list(groups)
    if approval.escalated and extra is not None:
        every_user += [u for u in extra.users if u not in every_user]
        every_group += [g for g in extra.groups if g not in every_group]
    return _mention(every_user, every_group)


def approvers_mention(approval: Approval) -> str:
    """Everyone who may decide at all (approve or reject): the users and groups any step
    lists, and the escalation approvers once escalated, as Slack mentions."""
    approvers = approval.rules.approvers
    return _with_escalation(approval, approvers.users, approvers.groups)


def waiting_steps(approval: Approval) -> tuple[StepProgress, ...]:
    """The steps that take approvals now (DESIGN §8.1): in ``sequence`` order, the first
    incomplete one; in ``any`` order, each incomplete one."""
    return open_steps(approval.rules, approval.steps)


def acting_mention(approval: Approval) -> str:
    """Who may act now: the approvers of the steps that take approvals now, and the
    escalation approvers once escalated. Without steps, everyone listed (as before)."""
    if not approval.rules.steps:
        return approvers_mention(approval)
    users, groups = approvers_of(waiting_steps(approval))
    return _with_escalation(approval, users, groups)


def waiting_for(approval: Approval) -> str:
    """The steps waiting, with their count: "*Release* (1 of 2)"; "" without steps."""
    if not approval.rules.steps:
        return ""
    return ", ".join(
        f"*{state.name}* ({len(state.approved_by)} of {state.step.required_approvals})"
        for state in waiting_steps(approval)
    )


def steps_line(approval: Approval) -> str:
    """Each step's progress, and in ``sequence`` order which step may approve now."""
    line = progress_line(approval.steps)
    if approval.rules.steps_order != "sequence":
        return f"Steps, in any order: {line}"
    waiting = waiting_steps(approval)
    now = f" · now: *{waiting[0].name}*" if waiting and approval.status == PENDING else ""
    return f"Steps, in order: {line}{now}"


def step_complete_text(approval: Approval, completed: str) -> str | None:
    """Posted in the request's thread when a vote completes a step in ``sequence`` order
    and the request is still open: it asks the next step's approvers. None otherwise."""
    if not approval.rules.steps or approval.rules.steps_order != "sequence":
        return None
    if approval.status != PENDING:
        return None
    done = next((state for state in approval.steps if state.name == completed), None)
    waiting = waiting_steps(approval)
    if done is None or not done.complete or not waiting:
        return None
    following = waiting[0]
    users, groups = approvers_of((following,))
    more = following.step.required_approvals - len(following.approved_by)
    needed = "1 approval needed" if more == 1 else f"{more} approvals needed"
    who = ", ".join(f"<@{user}>" for user in done.approved_by)
    mentions = _mention(users, groups)
    return f"*{done.name}* is complete ({who}). Now *{following.name}*: {mentions}, {needed}."


def request_blocks(approval: Approval, now: datetime | None = None) -> list[dict[str, Any]]:
    """The open request: what, where, until when, and the Approve / Reject buttons.

    With `now`, a context line says how many reminders went out and how long is left.
    """
    blocks = summary_blocks(approval, f"Approval needed: {approval.pipeline}")
    blocks.append(
        SectionBlock(
            text=MarkdownTextObject(
                text=(
                    f"Decide by *{slack_date(approval.deadline_at)}*; "
                    f"with no decision by then it is *{deadline_outcome(approval)}* by policy."
                )
            )
        )
    )
    coming = forecast(approval, now) if now is not None else None
    if coming:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f":calendar: {coming}")))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=author_line(approval))))
    if approval.checks:
        blocks.append(SectionBlock(text=MarkdownTextObject(text=checks_text(approval))))
    if approval.rules.steps:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=steps_line(approval))]))
    elif approval.rules.required_approvals > 1:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=tally_line(approval))]))
    if now is not None and (approval.reminders or approval.escalated):
        left = human_duration((approval.deadline_at - now).total_seconds())
        reminders = "1 reminder" if approval.reminders == 1 else f"{approval.reminders} reminders"
        escalated = " · escalated" if approval.escalated else ""
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"{reminders} sent{escalated} · {left} left")]
            )
        )
    value = approval.approval_id
    approving = (
        []
        if failing(approval.checks)
        else [
            ButtonElement(
                text="Approve",
                action_id=APPROVE,
                value=value,
                style="primary",
                confirm=approve_confirm(approval),
            ),
            *(
                [ButtonElement(text="Approve for later", action_id=APPROVE_LATER, value=value)]
                if approval.rules.allow_scheduling
                else []
            ),
        ]
    )
    blocks.append(
        ActionsBlock(
            block_id=ACTIONS_BLOCK,
            elements=[
                *approving,
                ButtonElement(text="Reject", action_id=REJECT, value=value, style="danger"),
            ],
        )
    )
    return [block.to_dict() for block in blocks]


def author_line(approval: Approval) -> str:
    """Who made the change, and what four-eyes means for this request."""
    rules = approval.rules
    change = f" `{escape_mrkdwn(approval.change)}`" if approval.change else ""
    if approval.author_users:
        who = ", ".join(f"<@{user}>" for user in approval.author_users)
        rule = "" if rules.allow_self_approval else " They may not approve it themselves."
        return f"Change{change} by {who}.{rule}"
    if approval.authors:
        who = ", ".join(escape_mrkdwn(identity) for identity in approval.authors)
        then = (
            "approval in Slack is not possible (unknown_author: block)"
            if rules.unknown_author == "block"
            else "anyone listed may approve it (unknown_author: allow)"
        )
        return f"Change{change} by {who}, who has no Slack user here: {then}."
    if rules.unknown_author == "block":
        return (
            f"Change{change}: *author unknown*. This policy does not allow approval in Slack "
            "then (unknown_author: block): reject here, or decide in CodePipeline."
        )
    return (
        f"Change{change}: *author unknown*, so anyone listed may approve it, "
        "including whoever made it (unknown_author: allow)."
    )


def tally_line(approval: Approval) -> str:
    approving = [f"<@{v.user_id}>" for v in approval.votes if v.vote == "approve"]
    needed = approval.rules.required_approvals
    so_far = ", ".join(approving) if approving else "nobody yet"
    return f"Approvals: {len(approving)} of {needed} ({so_far})"


def modal_view(
    approval: Approval,
    *,
    callback_id: str,
    title: str,
    submit: str,
    note: str,
    field: InputBlock,
    inputs: Sequence[InputBlock] = (),
) -> dict[str, Any]:
    """A modal about this request: which one it is (and `note`), the policy's `inputs`
    (DESIGN §8.4), and one input of its own."""
    which = (
        f"*{escape_mrkdwn(approval.pipeline)}* / {escape_mrkdwn(approval.stage)}"
        f" / {escape_mrkdwn(approval.action)}"
    )
    view = View(
        type="modal",
        callback_id=callback_id,
        private_metadata=approval.approval_id,
        title=PlainTextObject(text=title),
        submit=PlainTextObject(text=submit),
        close=PlainTextObject(text="Cancel"),
        blocks=[
            SectionBlock(text=MarkdownTextObject(text=f"{which}\n{note}" if note else which)),
            *inputs,
            field,
        ],
    )
    return view.to_dict()


def reason_input(label: str, *, optional: bool = False) -> InputBlock:
    """The modals' text input for a reason or a comment (block and action id `reason`)."""
    return InputBlock(
        block_id=REASON_BLOCK,
        label=PlainTextObject(text=label),
        optional=optional,
        element=PlainTextInputElement(
            action_id=REASON_BLOCK, multiline=True, max_length=MAX_REASON
        ),
    )


def decision_view(approval: Approval, action: str) -> dict[str, Any]:
    """The modal that asks why (Reject) or for an optional comment (Approve), with the
    policy's inputs on Approve (titled "Approve" then: it is the confirmation)."""
    rejecting = action == REJECT
    required = rejecting and approval.rules.require_reason_on_reject
    asked = [] if rejecting else input_blocks(approval.rules)
    return modal_view(
        approval,
        callback_id=REJECT_VIEW if rejecting else APPROVE_VIEW,
        title="Reject deployment" if rejecting else "Approve" if asked else "Approve deployment",
        submit="Reject" if rejecting else "Approve",
        note="",
        field=reason_input("Why?" if rejecting else "Comment", optional=not required),
        inputs=asked,
    )


def reminder_text(approval: Approval, now: datetime) -> str:
    """The reminder posted in the request's thread."""
    left = human_duration((approval.deadline_at - now).total_seconds())
    steps = waiting_for(approval)
    what = f"{steps} " if steps else "a decision "
    return (
        f":bell: Reminder: still waiting for {what}from {acting_mention(approval)}. "
        f"{left} left: at {slack_date(approval.deadline_at)} it is "
        f"*{deadline_outcome(approval)}* by policy."
    )


def escalation_text(approval: Approval, permalink: str | None, now: datetime) -> str:
    """Posted once in the escalation channel."""
    groups = " ".join(f"<!subteam^{g}>" for g in approval.rules.escalation.mention_groups)
    left = human_duration((approval.deadline_at - now).total_seconds())
    link = f"<{permalink}|the request>" if permalink else "the request"
    who = f"{groups} " if groups else ""
    return (
        f":rotating_light: {who}Escalated: {escape_mrkdwn(approval.pipeline)} / "
        f"{escape_mrkdwn(approval.stage)} has waited through {approval.reminders} reminders"
        f"{_waiting_clause(approval)}. "
        f"See {link}; {left} left before it is *{deadline_outcome(approval)}* by policy."
    )


def _waiting_clause(approval: Approval) -> str:
    steps = waiting_for(approval)
    return f", waiting for {steps}" if steps else ""


def escalation_note(approval: Approval) -> str:
    """Said in the request's thread when the request escalates."""
    channel = approval.rules.escalation.channel
    where = f" to <#{channel}>" if channel else ""
    if approval.rules.steps:
        return (
            f":rotating_light: Escalated{where} after {approval.reminders} reminders"
            f"{_waiting_clause(approval)}. May approve now: {acting_mention(approval)}."
        )
    return (
        f":rotating_light: Escalated{where} after {approval.reminders} reminders. "
        f"May decide now: {approvers_mention(approval)}."
    )


def _who(approval: Approval) -> str:
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or "nobody"


def outcome_line(approval: Approval) -> str:
    """One line saying what was decided, by whom and when (Slack mrkdwn)."""
    when = slack_date(approval.decided_at) if approval.decided_at else ""
    status = approval.status
    if status == APPROVED:
        line = f":white_check_mark: *Approved* by {_who(approval)} {when}"
    elif status == REJECTED and approval.note:  # the policy rejected an approval
        line = f":no_entry: *Rejected*: {escape_mrkdwn(approval.note)} {when}"
    elif status == REJECTED:
        line = f":no_entry: *Rejected* by {_who(approval)} {when}"
    elif status == EXPIRED:
        line = f":hourglass: *{escape_mrkdwn(approval.note or 'Expired')}* {when}"
    elif status == DECIDED_ELSEWHERE:
        settled = approval.closed_at or approval.decided_at
        when = slack_date(settled) if settled else ""
        note = escape_mrkdwn(approval.note or "Decided outside Slack")
        # A console decision names the IAM principal (an ARN): say who by its last segment.
        named = [p.rsplit(":", 1)[-1].rsplit("/", 1)[-1] for p in approval.decided_by]
        by = f" by {escape_mrkdwn(', '.join(named))}" if named else ""
        line = f":arrow_right_hook: *{note}{by}* {when}"
    else:
        line = "Waiting for a decision"
    if approval.reason:
        # The reason takes what the line leaves of the section (many approvers, long line).
        room = min(2500, _SECTION_LIMIT - len(line) - 2)
        line += f"\n>{cut_at_word(escape_mrkdwn(approval.reason), room)}"
    return line.strip()


def closed_text(approval: Approval) -> str:
    label = {
        APPROVED: "Approved",
        REJECTED: "Rejected",
        EXPIRED: "Expired",
        DECIDED_ELSEWHERE: "Decided outside Slack",
    }.get(approval.status, approval.status.title())
    return f"{label}: {approval.pipeline} / {approval.stage} / {approval.action}"


def closed_blocks(approval: Approval) -> list[dict[str, Any]]:
    """The request once decided: buttons gone; decision, who, when, reason, timings."""
    blocks = summary_blocks(approval, closed_text(approval))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=outcome_line(approval))))
    if approval.rules.steps:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=steps_line(approval))]))
    given = inputs_section(approval)
    if given is not None:
        blocks.append(given)
    hold = [part for part in (override_text(approval), held_for(approval)) if part]
    if hold:
        joined = " · ".join(hold)
        line = escape_mrkdwn(joined[:1].upper() + joined[1:])
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=line)]))
    waited = ""
    if approval.decided_at:
        seconds = int((approval.decided_at - approval.requested_at).total_seconds())
        waited = f" · waited {human_duration(seconds)}"
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(
                    text=f"Requested {slack_date(approval.requested_at)}{waited}"
                    f" · approval `{approval.approval_id[:12]}` · {iso(approval.requested_at)}"
                )
            ]
        )
    )
    return [block.to_dict() for block in blocks]
