"""The request once it is closed: the outcome line (who decided, when, why), its header
and the closed message's blocks, in the rule's language (approval_gate.closing updates the
request with them)."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import ContextBlock, MarkdownTextObject, SectionBlock

from approval_gate.clock import iso
from approval_gate.i18n import tr, trp
from approval_gate.input_messages import inputs_section
from approval_gate.messages import (
    SECTION_LIMIT,
    steps_line,
    summary_blocks,
)
from approval_gate.reporting import held_for, override_text
from approval_gate.store import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    REJECTED,
    Approval,
)
from approval_gate.text import cut_at_word, escape_mrkdwn, human_duration, slack_date


def _who(approval: Approval) -> str:
    names = ", ".join(f"<@{user}>" for user in approval.decided_by)
    # Translators: stands for who decided when nobody is recorded ("Approved by nobody").
    return names or tr(approval.rules.language, "nobody")


def outcome_line(approval: Approval) -> str:
    """One line saying what was decided, by whom and when (Slack mrkdwn)."""
    language = approval.rules.language
    when = slack_date(approval.decided_at, language) if approval.decided_at else ""
    status = approval.status
    if status == APPROVED:
        # Translators: %(approvers)s: mentions; %(when)s: a date, or empty.
        said = tr(
            language, "*Approved* by %(approvers)s %(when)s", approvers=_who(approval), when=when
        )
        line = f":white_check_mark: {said}"
    elif status == REJECTED and approval.note:  # the policy rejected an approval
        # Translators: %(note)s: why the policy rejected it; %(when)s: a date, or empty.
        said = tr(
            language, "*Rejected*: %(note)s %(when)s", note=escape_mrkdwn(approval.note), when=when
        )
        line = f":no_entry: {said}"
    elif status == REJECTED:
        # Translators: %(approvers)s: mentions; %(when)s: a date, or empty.
        said = tr(
            language, "*Rejected* by %(approvers)s %(when)s", approvers=_who(approval), when=when
        )
        line = f":no_entry: {said}"
    elif status == EXPIRED:
        # Translators: a request nobody decided in time (shown bold).
        note = approval.note or trp(language, "status", "Expired")
        line = f":hourglass: *{escape_mrkdwn(note)}* {when}"
    elif status == DECIDED_ELSEWHERE:
        settled = approval.closed_at or approval.decided_at
        when = slack_date(settled, language) if settled else ""
        # Translators: a request decided elsewhere than in Slack (the console, the CLI).
        note = escape_mrkdwn(approval.note or tr(language, "Decided outside Slack"))
        # A console decision names the IAM principal (an ARN): say who by its last segment.
        named = [p.rsplit(":", 1)[-1].rsplit("/", 1)[-1] for p in approval.decided_by]
        if named:
            # Translators: %(note)s: how it was decided ("Decided outside Slack");
            # %(principals)s: the IAM user or role names that decided.
            note = tr(
                language,
                "%(note)s by %(principals)s",
                note=note,
                principals=escape_mrkdwn(", ".join(named)),
            )
        line = f":arrow_right_hook: *{note}* {when}"
    else:
        line = tr(language, "Waiting for a decision")
    if approval.reason:
        # The reason takes what the line leaves of the section (many approvers, long line).
        room = min(2500, SECTION_LIMIT - len(line) - 2)
        line += f"\n>{cut_at_word(escape_mrkdwn(approval.reason), room)}"
    return line.strip()


def closed_text(approval: Approval) -> str:
    """The closed request's header and notification text (at most 150 characters shown)."""
    language = approval.rules.language
    names = {"pipeline": approval.pipeline, "stage": approval.stage, "action": approval.action}
    status = approval.status
    if status == APPROVED:
        # Translators: the closed request's header (at most 150 characters with the names).
        return tr(language, "Approved: %(pipeline)s / %(stage)s / %(action)s", **names)
    if status == REJECTED:
        # Translators: the closed request's header (at most 150 characters with the names).
        return tr(language, "Rejected: %(pipeline)s / %(stage)s / %(action)s", **names)
    if status == EXPIRED:
        # Translators: the closed request's header (at most 150 characters with the names).
        return tr(language, "Expired: %(pipeline)s / %(stage)s / %(action)s", **names)
    if status == DECIDED_ELSEWHERE:
        # Translators: the closed request's header (at most 150 characters with the names).
        return tr(language, "Decided outside Slack: %(pipeline)s / %(stage)s / %(action)s", **names)
    # No closed request has another status; the stored name is shown as it is.
    return f"{status.title()}: {approval.pipeline} / {approval.stage} / {approval.action}"


def closed_blocks(approval: Approval) -> list[dict[str, Any]]:
    """The request once decided: buttons gone; decision, who, when, reason, timings."""
    language = approval.rules.language
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
    # Translators: when the request was posted; %(when)s: a date.
    timings = [tr(language, "Requested %(when)s", when=slack_date(approval.requested_at, language))]
    if approval.decided_at:
        seconds = int((approval.decided_at - approval.requested_at).total_seconds())
        # Translators: how long the request waited for its decision ("3h 20m").
        timings.append(tr(language, "waited %(time)s", time=human_duration(seconds, language)))
    # Translators: the approval's id (a code span), for support.
    timings.append(tr(language, "approval %(id)s", id=f"`{approval.approval_id[:12]}`"))
    timings.append(iso(approval.requested_at))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=" · ".join(timings))]))
    return [block.to_dict() for block in blocks]
