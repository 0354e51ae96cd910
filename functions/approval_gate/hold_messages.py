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
from approval_gate.i18n import tr, trp
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
    summary_blocks,
)
from approval_gate.records import EXPIRED, WHY_SCHEDULE, Approval
from approval_gate.reporting import hold_cause, hold_limit, local_time
from approval_gate.text import cut_at_word, escape_mrkdwn, slack_date

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
    language = approval.rules.language
    if approval.held is not None and approval.held.then == EXPIRED:
        # Translators: who approved a held request, after "Approved by".
        return tr(language, "policy at the deadline")
    # Translators: who approved a held request, after "Approved by", when nobody is known.
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or tr(language, "nobody")


def held_line(approval: Approval) -> str:
    """ "Approved by <@U0ALICE> · deploys at <!date…> (the Year-end freeze ends)"."""
    held = approval.held
    language = approval.rules.language
    if held is None:
        # Translators: %(users)s: Slack mentions of who approved.
        return tr(language, "Approved by %(users)s", users=_who(approval))
    if held.for_checks:
        # Translators: the held request. Keep the *bold* marks around the same words;
        # %(users)s: Slack mentions; %(date)s: a date Slack renders (the hold's limit).
        line = tr(
            language,
            "*Approved* by %(users)s · *waiting for the health checks to pass* (reported "
            "Rejected if they still fail at %(date)s)",
            users=_who(approval),
            date=slack_date(held.until, language),
        )
    else:
        # Translators: the held request. Keep the *bold* marks around the same words;
        # %(users)s: Slack mentions; %(date)s: a date Slack renders; %(cause)s: a freeze's
        # reason, or a phrase such as "a deploy window".
        line = tr(
            language,
            "*Approved* by %(users)s · *deploys at %(date)s* (held for %(cause)s)",
            users=_who(approval),
            date=slack_date(held.until, language),
            cause=escape_mrkdwn(hold_cause(held, language)),
        )
    return f":double_vertical_bar: {line}"


def held_text(approval: Approval) -> str:
    # Translators: the held request's notification text.
    return tr(
        approval.rules.language,
        "Approved, held: %(pipeline)s / %(stage)s / %(action)s",
        pipeline=approval.pipeline,
        stage=approval.stage,
        action=approval.action,
    )


def held_blocks(approval: Approval) -> list[dict[str, Any]]:
    """The held request: who approved, when it deploys and why, Cancel and Deploy now."""
    language = approval.rules.language
    # Translators: the held request's header (at most 150 characters with the name).
    title = tr(language, "Approved, held: %(pipeline)s", pipeline=approval.pipeline)
    blocks: list[Block] = summary_blocks(approval, title)
    blocks.append(SectionBlock(text=MarkdownTextObject(text=held_line(approval))))
    if waits_for_checks(approval) and approval.checks:
        # Translators: heads the list of health checks on a held request.
        heading = tr(language, "Health checks")
        lines = [f"*{heading}*", *(check_line(result, language) for result in approval.checks)]
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
                        # Translators: the override votes so far: "Deploy now: 1 of 2
                        # (<@U0ALICE>)"; %(users)s: Slack mentions.
                        text=tr(
                            language,
                            "Deploy now: %(votes)d of %(required)d (%(users)s)",
                            votes=len(approval.overrides),
                            required=needed.required_approvals,
                            users=who,
                        )
                    )
                ]
            )
        )
    buttons = [
        ButtonElement(
            # Translators: the held request's button that cancels the hold (the request
            # opens again); at most 75 characters.
            text=trp(language, "hold button", "Cancel"),
            action_id=CANCEL_HOLD,
            value=approval.approval_id,
        ),
    ]
    if may_override(approval):
        buttons.append(
            ButtonElement(
                # Translators: the held request's button that overrides the hold; at most
                # 75 characters.
                text=trp(language, "hold button", "Deploy now"),
                action_id=DEPLOY_NOW,
                value=approval.approval_id,
                style="danger",
            )
        )
    blocks.append(ActionsBlock(block_id=ACTIONS_BLOCK, elements=buttons))
    return [block.to_dict() for block in blocks]


def approve_later_view(approval: Approval, now: datetime) -> dict[str, Any]:
    """The modal that asks when to deploy: Slack's date-time picker (shown in the
    approver's own time zone), starting an hour from now, with the policy's zone and the
    latest allowed time spelled out; and the policy's inputs, as Approve asks them."""
    tz = approval.rules.timezone
    language = approval.rules.language
    latest = hold_limit(approval)
    start = min(now + timedelta(hours=1), latest)
    return modal_view(
        approval,
        callback_id=APPROVE_LATER_VIEW,
        # Translators: a modal's title: at most 24 characters.
        title=trp(language, "modal title", "Approve for later"),
        # Translators: the modal's submit button: at most 24 characters.
        submit=trp(language, "modal submit", "Approve"),
        # Translators: in the "Approve for later" modal. %(latest)s: a time such as "Thu 24
        # Dec 09:00 +07"; %(timezone)s: the policy's time zone (e.g. Asia/Ho_Chi_Minh).
        note=tr(
            language,
            "Your approval counts now; the deploy waits until this time, and then for a "
            "deploy window. Latest: %(latest)s (%(timezone)s).",
            latest=local_time(latest, tz, language),
            timezone=escape_mrkdwn(tz),
        ),
        field=InputBlock(
            block_id=DEPLOY_AT_BLOCK,
            # Translators: the label of the date and time picker in "Approve for later".
            label=PlainTextObject(text=tr(language, "Deploy at")),
            element=DateTimePickerElement(
                action_id=DEPLOY_AT_BLOCK, initial_date_time=int(start.timestamp())
            ),
        ),
        inputs=input_blocks(approval.rules),
    )


def deploy_at_error(approval: Approval, deploy_at: datetime | None, now: datetime) -> str | None:
    """Why the time chosen in the modal cannot be taken (shown under the picker), if not."""
    tz = approval.rules.timezone
    language = approval.rules.language
    if deploy_at is None:
        # Translators: under the date and time picker of "Approve for later".
        return tr(language, "Choose a date and time.")
    if deploy_at <= now:
        # Translators: under the picker; %(time)s: a time such as "Thu 24 Dec 09:00 +07".
        return tr(
            language,
            "That time has passed (%(time)s): choose a later one.",
            time=local_time(deploy_at, tz, language),
        )
    latest = hold_limit(approval)
    if deploy_at > latest:
        # Translators: under the picker; %(time)s: a time such as "Thu 24 Dec 09:00 +07".
        return tr(
            language,
            "CodePipeline stops waiting at %(time)s: choose a time before it.",
            time=local_time(latest, tz, language),
        )
    return None


def deploy_now_view(approval: Approval) -> dict[str, Any]:
    """The modal that asks why the held approval must deploy now."""
    held = approval.held
    language = approval.rules.language
    # Translators: what a hold waits for, when it is not known; after "Held for".
    cause = hold_cause(held, language) if held else tr(language, "the hold")
    return modal_view(
        approval,
        callback_id=DEPLOY_NOW_VIEW,
        # Translators: a modal's title: at most 24 characters.
        title=trp(language, "modal title", "Deploy now"),
        # Translators: the modal's submit button: at most 24 characters.
        submit=trp(language, "modal submit", "Deploy now"),
        # Translators: in the "Deploy now" modal; %(cause)s: a freeze's reason, or a
        # phrase such as "a deploy window".
        note=tr(
            language,
            "Held for %(cause)s. Deploying now overrides it; who and why go to CodePipeline "
            "and the audit record.",
            cause=escape_mrkdwn(cause),
        ),
        # Translators: the label of the reason field in the "Deploy now" modal.
        field=reason_input(tr(language, "Why must it deploy now?")),
    )


def already_held_text(approval: Approval) -> str:
    """For a click on a held request's old Approve / Reject."""
    held = approval.held
    language = approval.rules.language
    who = _who(approval)
    if waits_for_checks(approval):
        # Translators: to a click on a held request's old Approve or Reject; "Cancel" is
        # the held request's button (use its translation). %(users)s: Slack mentions.
        return tr(
            language,
            "Already approved by %(users)s, and held until the health checks pass. Your "
            "click changed nothing; Cancel on the request opens it again.",
            users=who,
        )
    if held is not None:
        # Translators: as the message before; %(date)s: a date Slack renders; %(cause)s: a
        # freeze's reason, or a phrase such as "a deploy window".
        return tr(
            language,
            "Already approved by %(users)s, and held until %(date)s (%(cause)s). Your click "
            "changed nothing; Cancel on the request opens it again.",
            users=who,
            date=slack_date(held.until, language),
            cause=escape_mrkdwn(hold_cause(held, language)),
        )
    # Translators: to a click on a held request's old Approve or Reject; "Cancel" is the
    # held request's button (use its translation). %(users)s: Slack mentions.
    return tr(
        language,
        "Already approved by %(users)s, and held. Your click changed nothing; Cancel on the "
        "request opens it again.",
        users=who,
    )


def hold_change_text(approval: Approval, outcome: str, user_id: str) -> str:
    """The thread line for a cancelled hold, an override vote, or an override."""
    language = approval.rules.language
    user = f"<@{user_id}>"
    if outcome == "hold_cancelled":
        # Translators: a thread line; %(user)s: a Slack mention.
        return tr(
            language,
            "%(user)s cancelled the hold: the request is open again and its approvals are cleared.",
            user=user,
        )
    reason = next((v.reason for v in approval.overrides if v.user_id == user_id), None)
    why = f"\n>{escape_mrkdwn(reason)}" if reason else ""
    if outcome == "overridden":
        # Translators: a thread line; %(user)s: a Slack mention (their reason follows).
        line = tr(language, "%(user)s deployed now, overriding the hold", user=user)
        return f":rotating_light: {line}{why}"
    # Translators: a thread line (an override vote); %(user)s: a Slack mention.
    return tr(language, "%(user)s asked to deploy now", user=user) + why
