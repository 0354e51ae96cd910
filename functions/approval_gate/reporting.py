"""What CodePipeline hears, and what the workflow is handed, once a request is decided.

The PutApprovalResult summary (one line, at most 512 characters, no Slack markup), the
status CodePipeline is told, and the decision the workflow routes on: report it, run the
health checks first (DESIGN §8.3), hold it until deploys may go on (DESIGN §8.2), or ask
again (a cancelled hold).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from approval_gate.approver_inputs import summary_inputs
from approval_gate.clock import iso, utc_now
from approval_gate.i18n import tr, trp
from approval_gate.records import APPROVED, EXPIRED, HELD, PENDING, REJECTED, Approval, Hold
from approval_gate.text import MAX_SUMMARY, human_duration, one_line, plain


def hold_limit(approval: Approval) -> datetime:
    """A hold never outlasts this: CodePipeline's own expiry less the deadline margin."""
    return approval.expires - timedelta(seconds=approval.rules.deadline_margin)


def _weekdays(language: str) -> tuple[str, ...]:
    """Monday first, as datetime.weekday() counts."""
    return (
        # Translators: a weekday's short name, in a date such as "Thu 24 Dec 09:00 +07".
        trp(language, "weekday", "Mon"),
        trp(language, "weekday", "Tue"),
        trp(language, "weekday", "Wed"),
        trp(language, "weekday", "Thu"),
        trp(language, "weekday", "Fri"),
        trp(language, "weekday", "Sat"),
        trp(language, "weekday", "Sun"),
    )


def _months(language: str) -> tuple[str, ...]:
    return (
        # Translators: a month's short name, in a date such as "Thu 24 Dec 09:00 +07".
        trp(language, "month", "Jan"),
        trp(language, "month", "Feb"),
        trp(language, "month", "Mar"),
        trp(language, "month", "Apr"),
        trp(language, "month", "May"),
        trp(language, "month", "Jun"),
        trp(language, "month", "Jul"),
        trp(language, "month", "Aug"),
        trp(language, "month", "Sep"),
        trp(language, "month", "Oct"),
        trp(language, "month", "Nov"),
        trp(language, "month", "Dec"),
    )


def local_time(moment: datetime, timezone: str, language: str) -> str:
    """An instant on the policy's wall clock, for people: "Thu 24 Dec 09:00 +07" (the
    weekday and month names in ``language``, not the process's locale)."""
    from zoneinfo import ZoneInfo  # only when a hold is told about (see windows)

    local = moment.astimezone(ZoneInfo(timezone))
    # Translators: a time on the policy's wall clock: "Thu 24 Dec 09:00 +07" (weekday,
    # day of the month, month, 24-hour time, the zone's abbreviation or offset).
    return tr(
        language,
        "%(weekday)s %(day)d %(month)s %(time)s %(zone)s",
        weekday=_weekdays(language)[local.weekday()],
        day=local.day,
        month=_months(language)[local.month - 1],
        time=f"{local:%H:%M}",
        zone=local.tzname() or "",
    )


def hold_cause(held: Hold, language: str) -> str:
    """What a hold waits for, as a phrase: "the Year-end freeze", "a deploy window"."""
    if held.why == "freeze":
        # Translators: what a hold waits for, after "held for" (Vietnamese: after "vì").
        return held.reason or tr(language, "a freeze")
    if held.why == "window":
        # Translators: what a hold waits for, after "held for" (Vietnamese: after "vì").
        return tr(language, "a deploy window")
    if held.for_checks:
        # Translators: what a hold waits for, after "held for" (Vietnamese: after "vì").
        return tr(language, "the health checks")
    # Translators: what a hold waits for (the time an approver chose), after "held for".
    return tr(language, "the requested time")


def hold_ended_at(approval: Approval) -> datetime | None:
    """When the hold ended: the override's last vote; for a hold on the health checks, their
    last run (its `until` is only the limit); otherwise the hold's end."""
    if approval.held is None:
        return None
    if approval.override is not None and approval.overrides:
        return max(vote.at for vote in approval.overrides)
    if approval.held.for_checks and approval.checks:
        return min(approval.held.until, max(result.at for result in approval.checks))
    return approval.held.until


def held_for(approval: Approval) -> str | None:
    """How long the approval was held, and for what: "held 2h 5m for the Year-end freeze"."""
    ended = hold_ended_at(approval)
    if approval.held is None or ended is None or approval.decided_at is None:
        return None
    language = approval.rules.language
    waited = human_duration((ended - approval.decided_at).total_seconds(), language)
    # Translators: part of the CodePipeline summary and the closed request: "held 2h 5m
    # for the Year-end freeze" (%(cause)s: a freeze's reason, or a phrase such as "a
    # deploy window").
    return tr(
        language,
        "held %(duration)s for %(cause)s",
        duration=waited,
        cause=hold_cause(approval.held, language),
    )


def override_text(approval: Approval) -> str | None:
    """Who deployed now, and why, in plain words (None without an override)."""
    if approval.override is None:
        return None
    who = ", ".join(f"{approval.name_of(user)} ({user})" for user in approval.override.by)
    # Translators: part of the CodePipeline summary; %(users)s: names and Slack ids,
    # %(reason)s: what they typed.
    return tr(
        approval.rules.language,
        "deployed now on override by %(users)s: %(reason)s",
        users=who,
        reason=approval.override.reason,
    )


def summary(approval: Approval) -> str:
    """The one-line PutApprovalResult summary (≤ 512 characters, no Slack markup); an
    approval with steps names each step and who approved in it; a held approval says how
    long and why, and an override who and why."""
    language = approval.rules.language
    names = ", ".join(f"{approval.name_of(user)} ({user})" for user in approval.decided_by)
    if approval.status == APPROVED and approval.rules.steps:
        by_step = "; ".join(
            # Translators: one approval step in the CodePipeline summary: "Security by
            # Alice, Bob" (%(step)s: the step's name, %(users)s: who approved in it).
            tr(
                language,
                "%(step)s by %(users)s",
                step=state.name,
                users=", ".join(approval.name_of(user) for user in state.approved_by),
            )
            for state in approval.steps
        )
        # Translators: the CodePipeline summary of an approval with steps; %(steps)s: each
        # step and who approved in it, separated by semicolons.
        text = tr(language, "Approved in Slack: %(steps)s", steps=by_step)
    elif approval.status == APPROVED:
        # Translators: the CodePipeline summary; %(users)s: names with their Slack ids.
        text = tr(language, "Approved in Slack by %(users)s", users=names)
    elif approval.status == REJECTED and approval.note:
        return one_line(approval.note, MAX_SUMMARY)  # the policy rejected an approval
    elif approval.status == REJECTED:
        # Translators: the CodePipeline summary; %(users)s: names with their Slack ids.
        text = tr(language, "Rejected in Slack by %(users)s", users=names)
    elif approval.status == EXPIRED:
        # Translators: the CodePipeline summary of a request nobody decided in time.
        text = approval.note or tr(language, "No decision in time")
        if codepipeline_status(approval) == "Approved" and (held := held_for(approval)):
            text += f"; {held}"
    else:
        # Translators: the CodePipeline summary of a request settled outside Slack.
        text = approval.note or tr(language, "Decided outside Slack")
    extra: list[str] = []
    given = ""
    if approval.status == APPROVED:
        # What the approvers gave (DESIGN §8.4) comes first, within half the summary.
        given = one_line(summary_inputs(approval), MAX_SUMMARY // 2)
        extra = [part for part in (override_text(approval), held_for(approval)) if part]
        if approval.override is not None:
            extra = extra[:1]  # the override is the story; how long it had waited is not
        extra = [given, *extra] if given else extra
    tail = "".join(f"; {part}" for part in extra)
    if approval.reason:
        reason = approval.reason
        if given:  # the comment yields room to the inputs after it
            room = MAX_SUMMARY - len(plain(text + tail)) - 2
            reason = one_line(reason, max(room, 40))
        text += f": {reason}"
    return one_line(text + tail, MAX_SUMMARY)


def codepipeline_status(approval: Approval) -> str:
    if approval.status == APPROVED:
        return "Approved"
    if approval.status == EXPIRED and approval.rules.on_deadline == "approve":
        return "Approved"
    return "Rejected"


def checks_due(approval: Approval) -> bool:
    """Whether the health checks must run before this approval is reported (DESIGN §8.3):
    it would be reported Approved, its rules have checks, and they have not passed yet
    just before the report."""
    return (
        approval.status in (APPROVED, EXPIRED)
        and codepipeline_status(approval) == "Approved"
        and approval.rules.checks is not None
        and not approval.checked_at_report
    )


def hold_wake(approval: Approval, now: datetime) -> datetime | None:
    """When a hold's wait should end (None: not held): `held.until`, except that a hold for
    the health checks whose rules list check functions wakes every `reminder_every` to run
    them again (alarms are not polled: their state-change event ends the wait)."""
    held = approval.held
    if approval.status != HELD or held is None:
        return None
    checks = approval.rules.checks
    if held.for_checks and checks is not None and checks.functions:
        return min(held.until, now + timedelta(seconds=approval.rules.reminder_every))
    return held.until


def decision(approval: Approval, now: datetime | None = None) -> dict[str, Any]:
    """What the workflow receives once the request is decided (or held): its execution
    history keeps it, with when each approval step completed (DESIGN §8.1). `wait` routes
    it: "check" the health checks before reporting it Approved, "hold" until `wake`, "ask"
    again (a cancelled hold), or none: report it."""
    wait = {HELD: "hold", PENDING: "ask"}.get(approval.status)
    if checks_due(approval):
        wait = "check"
    wake = hold_wake(approval, now or utc_now())
    return {
        "outcome": approval.outcome,
        "status": codepipeline_status(approval),
        "summary": summary(approval),
        "steps": [state.record() for state in approval.steps],
        "held": approval.held.record() if approval.held else None,
        "wait": wait,
        **({"wake": iso(wake)} if wake is not None else {}),
    }
