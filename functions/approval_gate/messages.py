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
from approval_gate.holds import forecast
from approval_gate.i18n import ntr, tr, trp
from approval_gate.input_messages import approve_confirm, input_blocks
from approval_gate.revision_messages import changes_blocks
from approval_gate.steps import StepProgress, approvers_of, open_steps, progress_line, step_name
from approval_gate.store import (
    PENDING,
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

SECTION_LIMIT = 3000


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
    language = approval.rules.language
    links = []
    if approval.console_link:
        # Translators: a link's label: the approval action's page in the AWS console.
        label = tr(language, "Review in CodePipeline")
        links.append(f"<{approval.console_link}|{label}>")
    execution = _execution_link(approval)
    if execution:
        short = escape_mrkdwn(approval.pipeline_execution_id or "")[:8]
        # Translators: a link's label: the pipeline execution in the console; %(id)s: the
        # first characters of its id.
        label = tr(language, "Execution %(id)s", id=short)
        links.append(f"<{execution}|{label}>")
    if approval.external_entity_link:
        # Translators: a link's label: the page the pipeline's author named for review.
        label = tr(language, "Change to review")
        links.append(f"<{approval.external_entity_link}|{label}>")
    return links


def summary_blocks(approval: Approval, title: str) -> list[Block]:
    language = approval.rules.language
    # Translators: a field's title above the pipeline's name (CodePipeline's word).
    pipeline = tr(language, "Pipeline")
    # Translators: a field's title above "<stage name> / <action name>".
    where = tr(language, "Stage / action")
    fields = [
        MarkdownTextObject(text=f"*{pipeline}*\n{escape_mrkdwn(approval.pipeline)}"),
        MarkdownTextObject(
            text=f"*{where}*\n{escape_mrkdwn(approval.stage)} / {escape_mrkdwn(approval.action)}"
        ),
    ]
    blocks: list[Block] = [
        HeaderBlock(text=cut_at_word(title, 150)),
        SectionBlock(fields=fields),
    ]
    if approval.custom_data:
        text = cut_at_word(escape_mrkdwn(approval.custom_data), SECTION_LIMIT - 10)
        blocks.append(SectionBlock(text=MarkdownTextObject(text=f">{text}")))
    blocks += changes_blocks(approval)
    links = _links(approval)
    if links:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=link) for link in links]))
    return blocks


def request_text(approval: Approval) -> str:
    """The request's notification text (what a client shows where it cannot show blocks)."""
    return tr(
        approval.rules.language,
        "Approval needed: %(pipeline)s / %(stage)s / %(action)s",
        pipeline=approval.pipeline,
        stage=approval.stage,
        action=approval.action,
    )


def deadline_outcome(approval: Approval) -> str:
    """What happens at the deadline, as one word in the approval's language (sentences of
    this module word each outcome whole instead)."""
    if approval.rules.on_deadline == "approve":
        # Translators: what becomes of a request nobody decides by its deadline, as in
        # "(then approved by policy)".
        return trp(approval.rules.language, "deadline outcome", "approved")
    # Translators: as "approved": the request is rejected at its deadline.
    return trp(approval.rules.language, "deadline outcome", "rejected")


def approves_at_deadline(approval: Approval) -> bool:
    return approval.rules.on_deadline == "approve"


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
    language = approval.rules.language
    return ", ".join(
        # Translators: a step waiting for approvals; %(step)s: its name (bold), then how
        # many approvals it has of those it needs.
        tr(
            language,
            "%(step)s (%(approved)d of %(required)d)",
            step=f"*{step_name(state.name, language)}*",
            approved=len(state.approved_by),
            required=state.step.required_approvals,
        )
        for state in waiting_steps(approval)
    )


def steps_line(approval: Approval) -> str:
    """Each step's progress, and in ``sequence`` order which step may approve now."""
    language = approval.rules.language
    line = progress_line(approval.steps, language)
    if approval.rules.steps_order != "sequence":
        # Translators: %(progress)s: each step's name and progress ("QA 1 of 2 · Release ✅").
        return tr(language, "Steps, in any order: %(progress)s", progress=line)
    waiting = waiting_steps(approval)
    # Translators: %(progress)s: each step's name and progress, in the order they go.
    text = tr(language, "Steps, in order: %(progress)s", progress=line)
    if waiting and approval.status == PENDING:
        # Translators: after the steps' progress: the step whose turn it is (bold name).
        now = tr(language, "now: %(step)s", step=f"*{step_name(waiting[0].name, language)}*")
        text += f" · {now}"
    return text


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
    language = approval.rules.language
    # Translators: posted when a step completes; %(done)s, %(next)s: step names (bold);
    # %(approvers)s: who approved the step; %(mentions)s: the next step's approvers.
    return ntr(
        language,
        "%(done)s is complete (%(approvers)s). Now %(next)s: %(mentions)s, "
        "%(count)d approval needed.",
        "%(done)s is complete (%(approvers)s). Now %(next)s: %(mentions)s, "
        "%(count)d approvals needed.",
        more,
        done=f"*{step_name(done.name, language)}*",
        approvers=", ".join(f"<@{user}>" for user in done.approved_by),
        next=f"*{step_name(following.name, language)}*",
        mentions=_mention(users, groups),
    )


def request_blocks(approval: Approval, now: datetime | None = None) -> list[dict[str, Any]]:
    """The open request: what, where, until when, and the Approve / Reject buttons.

    With `now`, a context line says how many reminders went out and how long is left.
    """
    language = approval.rules.language
    # Translators: the request's header (at most 150 characters with the name).
    title = tr(language, "Approval needed: %(pipeline)s", pipeline=approval.pipeline)
    blocks = summary_blocks(approval, title)
    deadline = f"*{slack_date(approval.deadline_at, language)}*"
    if approves_at_deadline(approval):
        # Translators: %(deadline)s: a date (bold). The policy approves at the deadline.
        decide = tr(
            language,
            "Decide by %(deadline)s; with no decision by then it is *approved* by policy.",
            deadline=deadline,
        )
    else:
        # Translators: %(deadline)s: a date (bold). The policy rejects at the deadline.
        decide = tr(
            language,
            "Decide by %(deadline)s; with no decision by then it is *rejected* by policy.",
            deadline=deadline,
        )
    blocks.append(SectionBlock(text=MarkdownTextObject(text=decide)))
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
        left = human_duration((approval.deadline_at - now).total_seconds(), language)
        parts = [
            # Translators: how many reminders the request's thread got so far.
            ntr(language, "%(count)d reminder sent", "%(count)d reminders sent", approval.reminders)
        ]
        if approval.escalated:
            # Translators: the request was escalated (after its reminders).
            parts.append(trp(language, "status", "escalated"))
        # Translators: %(time)s: a duration ("3h 20m") until the deadline.
        parts.append(tr(language, "%(time)s left", time=left))
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(parts))]))
    value = approval.approval_id
    approving = (
        []
        if failing(approval.checks)
        else [
            ButtonElement(
                # Translators: the request's button (at most 75 characters).
                text=trp(language, "button", "Approve"),
                action_id=APPROVE,
                value=value,
                style="primary",
                confirm=approve_confirm(approval),
            ),
            *(
                [
                    ButtonElement(
                        # Translators: the request's button that approves now and picks a
                        # later time to deploy (at most 75 characters).
                        text=trp(language, "button", "Approve for later"),
                        action_id=APPROVE_LATER,
                        value=value,
                    )
                ]
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
                ButtonElement(
                    # Translators: the request's button (at most 75 characters).
                    text=trp(language, "button", "Reject"),
                    action_id=REJECT,
                    value=value,
                    style="danger",
                ),
            ],
        )
    )
    return [block.to_dict() for block in blocks]


def author_line(approval: Approval) -> str:
    """Who made the change, and what four-eyes means for this request."""
    rules = approval.rules
    language = rules.language
    # In each message below, %(change)s is empty or a space and the change (a code span).
    change = f" `{escape_mrkdwn(approval.change)}`" if approval.change else ""
    if approval.author_users:
        who = ", ".join(f"<@{user}>" for user in approval.author_users)
        # Translators: %(change)s: empty, or a space and the change's commit and title (a
        # code span); %(authors)s: Slack mentions of who made it.
        line = tr(language, "Change%(change)s by %(authors)s.", change=change, authors=who)
        if rules.allow_self_approval:
            return line
        # Translators: after "Change … by <authors>.": four-eyes, the authors cannot approve.
        rule = tr(language, "They may not approve it themselves.")
        return f"{line} {rule}"
    if approval.authors:
        who = ", ".join(escape_mrkdwn(identity) for identity in approval.authors)
        if rules.unknown_author == "block":
            # Translators: %(change)s: empty, or a space and the change (a code span);
            # %(authors)s: the authors' names from the source provider. "unknown_author:
            # block" is the policy's setting: keep it as it is.
            return tr(
                language,
                "Change%(change)s by %(authors)s, who has no Slack user here: approval in "
                "Slack is not possible (unknown_author: block).",
                change=change,
                authors=who,
            )
        # Translators: as above; "unknown_author: allow" is the policy's setting: keep it.
        return tr(
            language,
            "Change%(change)s by %(authors)s, who has no Slack user here: anyone listed may "
            "approve it (unknown_author: allow).",
            change=change,
            authors=who,
        )
    if rules.unknown_author == "block":
        # Translators: %(change)s: empty, or a space and the change (a code span).
        # "unknown_author: block" is the policy's setting: keep it as it is.
        return tr(
            language,
            "Change%(change)s: *author unknown*. This policy does not allow approval in Slack "
            "then (unknown_author: block): reject here, or decide in CodePipeline.",
            change=change,
        )
    # Translators: %(change)s: empty, or a space and the change (a code span).
    # "unknown_author: allow" is the policy's setting: keep it as it is.
    return tr(
        language,
        "Change%(change)s: *author unknown*, so anyone listed may approve it, "
        "including whoever made it (unknown_author: allow).",
        change=change,
    )


def tally_line(approval: Approval) -> str:
    approving = [f"<@{v.user_id}>" for v in approval.votes if v.vote == "approve"]
    needed = approval.rules.required_approvals
    language = approval.rules.language
    if not approving:
        # Translators: the request's tally: approvals so far of those needed.
        return tr(
            language,
            "Approvals: %(approved)d of %(required)d (nobody yet)",
            approved=0,
            required=needed,
        )
    # Translators: the request's tally; %(approvers)s: who approved (mentions).
    return tr(
        language,
        "Approvals: %(approved)d of %(required)d (%(approvers)s)",
        approved=len(approving),
        required=needed,
        approvers=", ".join(approving),
    )


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
        # Translators: the button that closes a modal (at most 24 characters).
        close=PlainTextObject(text=trp(approval.rules.language, "button", "Cancel")),
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
    language = approval.rules.language
    # Translators: a modal's submit button (at most 24 characters).
    submit = trp(language, "button", "Reject") if rejecting else trp(language, "button", "Approve")
    if rejecting:
        # Translators: a modal's title (at most 24 characters).
        title = tr(language, "Reject deployment")
    elif asked:
        # Translators: the title of the modal that asks the policy's inputs on Approve (at
        # most 24 characters).
        title = trp(language, "modal title", "Approve")
    else:
        # Translators: a modal's title (at most 24 characters).
        title = tr(language, "Approve deployment")
    return modal_view(
        approval,
        callback_id=REJECT_VIEW if rejecting else APPROVE_VIEW,
        title=title,
        submit=submit,
        note="",
        field=reason_input(
            # Translators: the label of the Reject modal's text input: the reason.
            tr(language, "Why?")
            if rejecting
            # Translators: the label of the Approve modal's text input: a comment.
            else tr(language, "Comment"),
            optional=not required,
        ),
        inputs=asked,
    )
