"""Live health checks (DESIGN §8.3, issue 21 point 3): a CloudWatch alarm changed state;
update every open request that lists it, within seconds.

CloudWatch sends "CloudWatch Alarm State Change" to the default event bus; an EventBridge
rule hands it to the alarm-events function, which calls :func:`on_alarm_change`. For each
open (or held) approval that lists the alarm (approval_gate.alarm_watch):

- the alarm's result is replaced, only when the event is newer than the state the request
  shows (events may come late and out of order) and only over the results that were read
  (`checks_version`): a concurrent change is read again, not overwritten;
- the request is drawn again in place: Approve hidden while a check fails, back when
  every check passes (a held request shows its hold);
- when the alarm passes or fails where it did the opposite, a thread line says so
  ("prod-api-5xx is OK again: Approve is back"); further changes within a minute edit that
  line instead of posting more (a flapping alarm leaves one line, saying the last state);
- a hold waiting for the checks (`on_failing: hold`) whose checks all pass now ends its
  wait: the workflow runs every check again, then reports.

Check functions are not event-driven: they run at every ask (each reminder) and while a
hold waits. Nothing here polls, and nothing calls CloudWatch: the event carries the state.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from approval_gate.checks import ALARM, CheckResult, failing
from approval_gate.checks import alarm_console_url as console_url
from approval_gate.clock import Clock, parse_iso
from approval_gate.hold_messages import held_blocks, held_text
from approval_gate.i18n import ntr, tr
from approval_gate.messages import request_blocks, request_text
from approval_gate.posting import update_request
from approval_gate.records import HELD, PENDING, AlreadyDecided, Approval, ChecksLine
from approval_gate.text import escape_mrkdwn, slack_date
from approval_gate.workflow import end_hold_wait

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: The event CloudWatch sends (its user guide, "Alarm events and EventBridge").
DETAIL_TYPE = "CloudWatch Alarm State Change"
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")
#: Changes within this long of the thread line's first post edit it rather than post more.
COALESCE = timedelta(minutes=1)
#: Writes lost to a concurrent one (another alarm's event) are read and tried again.
WRITE_ATTEMPTS = 8
#: Draws of the request that found a newer state behind them draw again, at most this often.
DRAW_ATTEMPTS = 3
_MAX_REASON = 200


class MalformedEvent(ValueError):
    """The event is not a "CloudWatch Alarm State Change" the gate can read (why)."""


class AlarmChange(NamedTuple):
    """An alarm's new state, as the event says, and since when."""

    name: str
    state: str
    reason: str
    at: datetime
    region: str | None

    @classmethod
    def from_event(cls, event: Any) -> AlarmChange:
        if not isinstance(event, Mapping) or event.get("detail-type") != DETAIL_TYPE:
            raise MalformedEvent(f"not a {DETAIL_TYPE} event")
        detail = event.get("detail")
        if not isinstance(detail, Mapping) or not isinstance(detail.get("state"), Mapping):
            raise MalformedEvent("the event has no detail.state")
        state = detail["state"]
        name = detail.get("alarmName")
        if not isinstance(name, str) or not 0 < len(name) <= 255:
            raise MalformedEvent("detail.alarmName is not an alarm name")
        value = state.get("value")
        if value not in ALARM_STATES:
            raise MalformedEvent("detail.state.value is not an alarm state")
        at = _event_time(state.get("timestamp")) or _event_time(event.get("time"))
        if at is None:
            raise MalformedEvent("the event says no time")
        reason = " ".join(str(state.get("reason") or value).split())
        if len(reason) > _MAX_REASON:
            reason = reason[: _MAX_REASON - 1] + "…"
        region = event.get("region") if isinstance(event.get("region"), str) else None
        return cls(name, value, reason, at, region)


def _event_time(value: Any) -> datetime | None:
    """CloudWatch's "2026-12-06T08:00:00.000+0000", or EventBridge's ISO `time`."""
    if not isinstance(value, str):
        return None
    for form in ("%Y-%m-%dT%H:%M:%S.%f%z", "%Y-%m-%dT%H:%M:%S%z"):
        try:
            return datetime.strptime(value, form)
        except ValueError:
            continue
    try:
        return parse_iso(value)
    except ValueError:
        return None


def on_alarm_change(
    event: Any, *, store: Any, slack: Any, sfn: Any, clock: Clock
) -> dict[str, Any]:
    """Apply the event to every open approval that lists its alarm; what was done to each.

    MalformedEvent (nothing changed) when the event cannot be read.
    """
    change = AlarmChange.from_event(event)
    done: dict[str, str] = {}
    for approval_id, entries in store.alarm_watchers(change.name).items():
        done[approval_id] = apply_change(
            approval_id, entries, change, store=store, slack=slack, sfn=sfn, clock=clock
        )
    LOG.info(
        "alarm state change",
        extra={"alarm": change.name, "state": change.state, "approvals": done},
    )
    return {"alarm": change.name, "state": change.state, "approvals": done}


def apply_change(
    approval_id: str,
    entries: list[str],
    change: AlarmChange,
    *,
    store: Any,
    slack: Any,
    sfn: Any,
    clock: Clock,
) -> str:
    """Apply one alarm change to one approval: "updated", "unchanged" (the request shows
    it already, or a newer state), or "closed" (no longer watched)."""
    for _ in range(WRITE_ATTEMPTS):
        approval = store.get(approval_id)
        if approval is None or approval.status not in (PENDING, HELD) or not _lists(approval):
            store.unwatch_alarms(approval_id, entries)
            return "closed"
        before = approval.checks
        results = updated_results(approval, change)
        if results is None:
            return "unchanged"
        try:
            approval = store.save_checks(approval_id, results, seen=approval.checks_version)
            break
        except AlreadyDecided:
            continue  # another change (or a decision) came first: read it again
    else:
        raise RuntimeError("the checks kept changing under the alarm's update")
    held = approval.held if approval.status == HELD else None
    if held is not None and held.for_checks and not failing(approval.checks):
        end_hold_wait(approval, sfn)  # the workflow runs every check again, then reports
    _draw(approval, store=store, slack=slack, clock=clock)
    line = change_line(before, approval, change.name)
    if line is not None:
        _tell(approval, line, store=store, slack=slack, clock=clock)
    return "updated"


def _lists(approval: Approval) -> bool:
    checks = approval.rules.checks
    return checks is not None and bool(checks.alarms)


def _listed(name: str, entries: tuple[str, ...]) -> str | None:
    """The policy entry that lists the alarm `name` (itself, or a prefix), if any."""
    for entry in entries:
        if entry == name or (entry.endswith("*") and name.startswith(entry[:-1])):
            return entry
    return None


def updated_results(approval: Approval, change: AlarmChange) -> tuple[CheckResult, ...] | None:
    """The approval's results with the alarm's new state; None when the approval does not
    list it or already shows that state or a newer one."""
    checks = approval.rules.checks
    entry = _listed(change.name, checks.alarms) if checks else None
    if checks is None or entry is None:
        return None
    new = CheckResult(
        change.name,
        ALARM,
        change.state not in checks.alarm_states,
        change.state,
        change.reason,
        change.at,
        console_url(change.name, change.region),
    )
    results = list(approval.checks)
    for index, result in enumerate(results):
        if result.kind == ALARM and result.name == change.name:
            if result.at >= change.at:
                return None  # the request shows this state, or a later one
            results[index] = new
            return tuple(results)
    for index, result in enumerate(results):
        if result.kind == ALARM and result.name == entry:  # "no alarm starts with …"
            results[index] = new
            return tuple(results)
    return (*results, new)  # a new alarm under a prefix the approval lists


def change_line(before: tuple[CheckResult, ...], after: Approval, name: str) -> str | None:
    """What an alarm's change means for the request, when it passes where it failed or
    the reverse: "✅ prod-api-5xx is OK again: Approve is back"; None otherwise."""
    was = next((r for r in before if r.kind == ALARM and r.name == name), None)
    now = next((r for r in after.checks if r.kind == ALARM and r.name == name), None)
    if now is None or (was is not None and was.passed == now.passed):
        return None
    language = after.rules.language
    alarm = f"*{escape_mrkdwn(name)}*"
    still = failing(after.checks)
    held = after.status == HELD
    if now.passed:
        return f":white_check_mark: {_passed_line(language, alarm, now.state, was, still, after)}"
    if len(still) > 1:
        # Translators: a thread line; %(alarm)s: the alarm's name (bold); %(state)s: its
        # CloudWatch state (ALARM, OK, INSUFFICIENT_DATA), kept as it is. Other checks fail.
        line = tr(language, "%(alarm)s is %(state)s too", alarm=alarm, state=now.state)
    elif held:
        # Translators: a thread line on a held request; %(alarm)s, %(state)s as above.
        line = tr(
            language,
            "%(alarm)s is %(state)s: the approval is not reported while it fails",
            alarm=alarm,
            state=now.state,
        )
    else:
        # Translators: a thread line; %(alarm)s: the alarm's name; %(state)s: its state;
        # "Approve" is the request's button (use its translation).
        line = tr(
            language,
            "%(alarm)s is %(state)s: Approve is hidden until it passes",
            alarm=alarm,
            state=now.state,
        )
    return f":x: {line}"


def _passed_line(
    language: str,
    alarm: str,
    state: str,
    was: CheckResult | None,
    still: tuple[CheckResult, ...],
    after: Approval,
) -> str:
    """The thread line of an alarm that passes where it failed (or is new and passes)."""
    if still:
        others = ", ".join(f"*{escape_mrkdwn(r.name)}*" for r in still[:3])
        if was:
            # Translators: a thread line; %(alarm)s: the alarm's name (bold); %(state)s: its
            # CloudWatch state, kept as it is; %(others)s: the alarms still failing.
            return tr(
                language,
                "%(alarm)s is %(state)s again; still blocked by %(others)s",
                alarm=alarm,
                state=state,
                others=others,
            )
        # Translators: as the message before, for an alarm seen for the first time.
        return tr(
            language,
            "%(alarm)s is %(state)s; still blocked by %(others)s",
            alarm=alarm,
            state=state,
            others=others,
        )
    if after.status == HELD:
        if after.held is not None and after.held.for_checks:
            if was:
                # Translators: a thread line on a request held for its health checks.
                return tr(
                    language,
                    "%(alarm)s is %(state)s again: the approval goes on",
                    alarm=alarm,
                    state=state,
                )
            # Translators: as the message before, for an alarm seen for the first time.
            return tr(
                language, "%(alarm)s is %(state)s: the approval goes on", alarm=alarm, state=state
            )
        if was:
            # Translators: a thread line; %(alarm)s: the alarm's name; %(state)s: its state.
            return tr(language, "%(alarm)s is %(state)s again", alarm=alarm, state=state)
        # Translators: a thread line; %(alarm)s: the alarm's name; %(state)s: its state.
        return tr(language, "%(alarm)s is %(state)s", alarm=alarm, state=state)
    if was:
        # Translators: a thread line; "Approve" is the request's button (its translation).
        return tr(
            language, "%(alarm)s is %(state)s again: Approve is back", alarm=alarm, state=state
        )
    # Translators: a thread line; "Approve" is the request's button (its translation).
    return tr(language, "%(alarm)s is %(state)s: Approve is back", alarm=alarm, state=state)


def _draw(approval: Approval, *, store: Any, slack: Any, clock: Clock) -> None:
    """Draw the request as recorded; again while a newer state landed meanwhile."""
    for _ in range(DRAW_ATTEMPTS):
        if approval.status == PENDING:
            text, blocks = request_text(approval), request_blocks(approval, clock())
        elif approval.status == HELD:
            text, blocks = held_text(approval), held_blocks(approval)
        else:
            return  # decided meanwhile: its own steps draw it
        update_request(slack, store, approval, text=text, blocks=blocks)
        latest = store.get(approval.approval_id)
        if latest is None or latest.checks_version == approval.checks_version:
            return
        approval = latest


def _tell(approval: Approval, line: str, *, store: Any, slack: Any, clock: Clock) -> None:
    """Post the line in the request's thread, or edit the line posted under a minute ago."""
    if not (approval.channel and approval.message_ts):  # not posted (or MAYBE_POSTED)
        return
    now = clock()
    last = approval.checks_line
    if last is not None and now - last.since < COALESCE:
        changes = last.changes + 1
        language = approval.rules.language
        # Translators: after a thread line that was edited; %(date)s: a date Slack renders.
        since = ntr(
            language,
            "%(count)d change since %(date)s",
            "%(count)d changes since %(date)s",
            changes,
            date=slack_date(last.since, language),
        )
        text = f"{line} _({since})_"
        slack.chat_update(channel=approval.channel, ts=last.ts, text=text)
        store.save_checks_line(approval.approval_id, last._replace(changes=changes))
        return
    posted = slack.chat_postMessage(
        channel=approval.channel, thread_ts=approval.message_ts, text=line
    )
    store.save_checks_line(approval.approval_id, ChecksLine(str(posted["ts"]), now, 1))
