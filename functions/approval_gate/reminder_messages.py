"""The texts of a request that waits: the reminder in its thread, the escalation post and
the escalation's note in the thread, in the rule's language (approval_gate.reminders posts
them)."""

from __future__ import annotations

from datetime import datetime

from approval_gate.i18n import ntr, tr
from approval_gate.messages import (
    acting_mention,
    approvers_mention,
    approves_at_deadline,
    waiting_for,
)
from approval_gate.store import Approval
from approval_gate.text import escape_mrkdwn, human_duration, slack_date


def reminder_text(approval: Approval, now: datetime) -> str:
    """The reminder posted in the request's thread."""
    language = approval.rules.language
    left = human_duration((approval.deadline_at - now).total_seconds(), language)
    steps = waiting_for(approval)
    who = acting_mention(approval)
    if steps:
        # Translators: %(steps)s: the steps waiting ("*Release* (1 of 2)"); %(approvers)s:
        # mentions of who may approve now.
        waiting = tr(
            language,
            "Reminder: still waiting for %(steps)s from %(approvers)s.",
            steps=steps,
            approvers=who,
        )
    else:
        # Translators: %(approvers)s: mentions of who may decide.
        waiting = tr(
            language, "Reminder: still waiting for a decision from %(approvers)s.", approvers=who
        )
    deadline = slack_date(approval.deadline_at, language)
    if approves_at_deadline(approval):
        # Translators: %(time)s: a duration ("3h 20m"); %(deadline)s: a date.
        then = tr(
            language,
            "%(time)s left: at %(deadline)s it is *approved* by policy.",
            time=left,
            deadline=deadline,
        )
    else:
        # Translators: %(time)s: a duration ("3h 20m"); %(deadline)s: a date.
        then = tr(
            language,
            "%(time)s left: at %(deadline)s it is *rejected* by policy.",
            time=left,
            deadline=deadline,
        )
    return f":bell: {waiting} {then}"


def escalation_text(approval: Approval, permalink: str | None, now: datetime) -> str:
    """Posted once in the escalation channel."""
    language = approval.rules.language
    groups = " ".join(f"<!subteam^{g}>" for g in approval.rules.escalation.mention_groups)
    left = human_duration((approval.deadline_at - now).total_seconds(), language)
    # Translators: stands for the request's message, as a link's label or plain, in "See
    # the request; 3h left before …".
    request = tr(language, "the request")
    link = f"<{permalink}|{request}>" if permalink else request
    who = f"{groups} " if groups else ""
    names = {
        "pipeline": escape_mrkdwn(approval.pipeline),
        "stage": escape_mrkdwn(approval.stage),
    }
    steps = waiting_for(approval)
    if steps:
        # Translators: %(pipeline)s / %(stage)s: names; %(count)d: reminders sent;
        # %(steps)s: the steps waiting ("*Release* (1 of 2)").
        escalated = ntr(
            language,
            "Escalated: %(pipeline)s / %(stage)s has waited through %(count)d reminder, "
            "waiting for %(steps)s.",
            "Escalated: %(pipeline)s / %(stage)s has waited through %(count)d reminders, "
            "waiting for %(steps)s.",
            approval.reminders,
            steps=steps,
            **names,
        )
    else:
        # Translators: %(pipeline)s / %(stage)s: names; %(count)d: reminders sent.
        escalated = ntr(
            language,
            "Escalated: %(pipeline)s / %(stage)s has waited through %(count)d reminder.",
            "Escalated: %(pipeline)s / %(stage)s has waited through %(count)d reminders.",
            approval.reminders,
            **names,
        )
    if approves_at_deadline(approval):
        # Translators: %(request)s: "the request" (a link); %(time)s: a duration ("3h").
        see = tr(
            language,
            "See %(request)s; %(time)s left before it is *approved* by policy.",
            request=link,
            time=left,
        )
    else:
        # Translators: %(request)s: "the request" (a link); %(time)s: a duration ("3h").
        see = tr(
            language,
            "See %(request)s; %(time)s left before it is *rejected* by policy.",
            request=link,
            time=left,
        )
    return f":rotating_light: {who}{escalated} {see}"


def escalation_note(approval: Approval) -> str:
    """Said in the request's thread when the request escalates."""
    language = approval.rules.language
    channel = approval.rules.escalation.channel
    count = approval.reminders
    steps = waiting_for(approval) if approval.rules.steps else ""
    if channel and steps:
        # Translators: %(channel)s: a channel (link); %(count)d: reminders sent;
        # %(steps)s: the steps waiting ("*Release* (1 of 2)").
        escalated = ntr(
            language,
            "Escalated to %(channel)s after %(count)d reminder, waiting for %(steps)s.",
            "Escalated to %(channel)s after %(count)d reminders, waiting for %(steps)s.",
            count,
            channel=f"<#{channel}>",
            steps=steps,
        )
    elif channel:
        # Translators: %(channel)s: a channel (link); %(count)d: reminders sent.
        escalated = ntr(
            language,
            "Escalated to %(channel)s after %(count)d reminder.",
            "Escalated to %(channel)s after %(count)d reminders.",
            count,
            channel=f"<#{channel}>",
        )
    elif steps:
        # Translators: %(count)d: reminders sent; %(steps)s: the steps waiting.
        escalated = ntr(
            language,
            "Escalated after %(count)d reminder, waiting for %(steps)s.",
            "Escalated after %(count)d reminders, waiting for %(steps)s.",
            count,
            steps=steps,
        )
    else:
        # Translators: %(count)d: reminders sent.
        escalated = ntr(
            language,
            "Escalated after %(count)d reminder.",
            "Escalated after %(count)d reminders.",
            count,
        )
    if approval.rules.steps:
        # Translators: %(approvers)s: mentions of who may approve the waiting steps now.
        may = tr(language, "May approve now: %(approvers)s.", approvers=acting_mention(approval))
    else:
        # Translators: %(approvers)s: mentions of who may approve or reject now.
        may = tr(language, "May decide now: %(approvers)s.", approvers=approvers_mention(approval))
    return f":rotating_light: {escalated} {may}"
