"""The Slack side of holds (DESIGN §8.2): the held request, its buttons, and two modals.

A held request says who approved and when it deploys, with Cancel (any approver: the
request opens again) and, for a freeze or a closed window when the policy names override
approvers, Deploy now. A hold for the health checks (DESIGN §8.3) lists them instead, with
Cancel only: an override is about freezes and windows, not failing health. "Approve for
later" asks for a time in a modal with Slack's date-time picker; "Deploy now" asks for the
reason in a modal.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    DateTimePickerElement,
    InputBlock,
    MarkdownTextObject,
    PlainTextObject,
    SectionBlock,
)

from approval_gate.check_messages import check_line
from approval_gate.i18n import tr
from approval_gate.input_messages import input_blocks
from approval_gate.messages import (
    ACTIONS_BLOCK,
    APPROVE_LATER_VIEW,
    CANCEL_HOLD,
    DEPLOY_AT_BLOCK,
    DEPLOY_NOW,
    DEPLOY_NOW_VIEW,
    modal_view,
    reason_input,
    slack_date,
    summary_blocks,
)
from approval_gate.records import EXPIRED, WHY_SCHEDULE, Approval
from approval_gate.reporting import hold_cause, hold_limit, local_time
from approval_gate.text import cut_at_word, escape_mrkdwn

#: The most text a Slack section block holds.
SECTION_LIMIT = 3000


def may_override(approval: Approval) -> bool:
    """Whether Deploy now is offered: a hold for a freeze or a closed window, and a policy
    that names who may override (a requested time is the approvers' own choice, and failing
    health checks are no freeze)."""
    held = approval.held
    return (
        held is not None
        and held.why != WHY_SCHEDULE
        and not held.for_checks
        and approval.rules.freeze_override is not None
    )


def waits_for_checks(approval: Approval) -> bool:
    """Whether the approval is held until its health checks pass."""
    return approval.held is not None and approval.held.for_checks


def _who(approval: Approval) -> str:
    if approval.held is not None and approval.held.then == EXPIRED:
        return "policy at the deadline"
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or "nobody"


def held_line(approval: Approval) -> str:
    """ "Approved by <@U0ALICE> · deploys at <!date…> (the Year-end freeze ends)"."""
    held = approval.held
    if held is None:
        return f"Approved by {_who(approval)}"
    if held.for_checks:
        return (
            f":double_vertical_bar: *Approved* by {_who(approval)} · *waiting for the health "
            f"checks to pass* (reported Rejected if they still fail at {slack_date(held.until)})"
        )
    return (
        f":double_vertical_bar: *Approved* by {_who(approval)} · *deploys at "
        f"{slack_date(held.until)}* (held for {escape_mrkdwn(hold_cause(held))})"
    )


def held_text(approval: Approval) -> str:
    return f"Approved, held: {approval.pipeline} / {approval.stage} / {approval.action}"


def held_blocks(approval: Approval) -> list[dict[str, Any]]:
    """The held request: who approved, when it deploys and why, Cancel and Deploy now."""
    blocks: list[Block] = summary_blocks(approval, f"Approved, held: {approval.pipeline}")
    blocks.append(SectionBlock(text=MarkdownTextObject(text=held_line(approval))))
    if waits_for_checks(approval) and approval.checks:
        language = approval.rules.language
        title = "*" + tr(language, "Health checks") + "*"
        lines = [title, *(check_line(result, language) for result in approval.checks)]
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=cut_at_word("\n".join(lines), SECTION_LIMIT)))
        )
    if approval.reason:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f">{escape_mrkdwn(approval.reason)}")])
        )
    needed = approval.rules.freeze_override
    if may_override(approval) and needed is not None and approval.overrides:
        who = ", ".join(f"<@{vote.user_id}>" for vote in approval.overrides)
        blocks.append(
            ContextBlock(
                elements=[
                    MarkdownTextObject(
                        text=f"Deploy now: {len(approval.overrides)} of "
                        f"{needed.required_approvals} ({who})"
                    )
                ]
            )
        )
    buttons = [
        ButtonElement(text="Cancel", action_id=CANCEL_HOLD, value=approval.approval_id),
    ]
    if may_override(approval):
        buttons.append(
            ButtonElement(
                text="Deploy now", action_id=DEPLOY_NOW, value=approval.approval_id, style="danger"
            )
        )
    blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK, elements=buttons))
    return [block.to_dict() for block in blocks]


def approve_later_view(approval: Approval, now: datetime) -> dict[str, Any]:
    """The modal that asks when to deploy: Slack's date-time picker (shown in the
    approver's own time zone), starting an hour from now, with the policy's zone and the
    latest allowed time spelled out; and the policy's inputs, as Approve asks them."""
    tz = approval.rules.timezone
    latest = hold_limit(approval)
    start = min(now + timedelta(hours=1), latest)
    return modal_view(
        approval,
        callback_id=APPROVE_LATER_VIEW,
        title="Approve for later",
        submit="Approve",
        note="Your approval counts now; the deploy waits until this time, and then for a deploy "
        f"window. Latest: {local_time(latest, tz)} ({escape_mrkdwn(tz)}).",
        field=InputBlock(
            block_id=DEPLOY_AT_BLOCK,
            label=PlainTextObject(text="Deploy at"),
            element=DateTimePickerElement(
                action_id=DEPLOY_AT_BLOCK, initial_date_time=int(start.timestamp())
            ),
        ),
        inputs=input_blocks(approval.rules),
    )


def deploy_at_error(approval: Approval, deploy_at: datetime | None, now: datetime) -> str | None:
    """Why the time chosen in the modal cannot be taken (shown under the picker), if not."""
    tz = approval.rules.timezone
    if deploy_at is None:
        return "Choose a date and time."
    if deploy_at <= now:
        return f"That time has passed ({local_time(deploy_at, tz)}): choose a later one."
    latest = hold_limit(approval)
    if deploy_at > latest:
        return f"CodePipeline stops waiting at {local_time(latest, tz)}: choose a time before it."
    return None


def deploy_now_view(approval: Approval) -> dict[str, Any]:
    """The modal that asks why the held approval must deploy now."""
    held = approval.held
    cause = hold_cause(held) if held else "the hold"
    return modal_view(
        approval,
        callback_id=DEPLOY_NOW_VIEW,
        title="Deploy now",
        submit="Deploy now",
        note=f"Held for {escape_mrkdwn(cause)}. Deploying now overrides it; who and why go to "
        "CodePipeline and the audit record.",
        field=reason_input("Why must it deploy now?"),
    )


def already_held_text(approval: Approval) -> str:
    """For a click on a held request's old Approve / Reject."""
    held = approval.held
    until = f" until {slack_date(held.until)} ({escape_mrkdwn(hold_cause(held))})" if held else ""
    if waits_for_checks(approval):
        until = " until the health checks pass"
    return (
        f"Already approved by {_who(approval)}, and held{until}. Your click changed nothing; "
        "Cancel on the request opens it again."
    )


def hold_change_text(approval: Approval, outcome: str, user_id: str) -> str:
    """The thread line for a cancelled hold, an override vote, or an override."""
    if outcome == "hold_cancelled":
        return (
            f"<@{user_id}> cancelled the hold: the request is open again and its approvals "
            "are cleared."
        )
    reason = next((v.reason for v in approval.overrides if v.user_id == user_id), None)
    why = f"\n>{escape_mrkdwn(reason)}" if reason else ""
    if outcome == "overridden":
        return f":rotating_light: <@{user_id}> deployed now, overriding the hold{why}"
    return f"<@{user_id}> asked to deploy now{why}"
