"""The checks of the deploy-window and freeze keys (DESIGN §8.2, issue 20).

``timezone``, ``deploy_windows``, ``freezes`` and ``freeze_override``, each checked and
normalised to the type of its Rules field, every error naming the key path and the bad
value, like the other keys' checks in approval_gate.policy_fields (which calls these).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from approval_gate.policy_fields import (
    PolicyError,
    _duration,
    _mapping,
    approver_group,
    check_keys,
    choice_list,
    show,
)
from approval_gate.rules import WEEKDAYS, DeployWindow, Freeze, FreezeOverride

#: At most this many windows and freezes in one rule: far above any real calendar, and
#: each is checked on every "may deploys go on?" question.
MAX_WINDOWS = 50
MAX_FREEZES = 50
#: A freeze's reason is shown in the request ("Frozen until … (Year-end freeze)").
MAX_REASON = 100
#: A cron freeze must begin within this horizon from the load: "30 2 30 2 *" never does.
CRON_HORIZON = timedelta(days=5 * 366)
_CLOCK = re.compile(r"([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?")
_CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")


def _timezone(value: Any, path: str) -> str:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    hint = "an IANA time zone name, like Europe/Paris, America/New_York or UTC"
    if not isinstance(value, str) or not value:
        raise PolicyError(f"{path}: expected {hint}, got {show(value)}")
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise PolicyError(f"{path}: unknown time zone {show(value)} (expected {hint})") from None
    return value


def _clock(value: Any, path: str) -> int:
    """A time of day, ``HH:MM`` or ``HH:MM:SS``, as seconds after midnight."""
    if isinstance(value, int) and not isinstance(value, bool):
        # YAML 1.1 reads an unquoted 17:00 as the base-60 number 1020.
        raise PolicyError(
            f'{path}: expected a time of day in quotes, like "17:00" (unquoted, YAML reads '
            f"it as a number), got {show(value)}"
        )
    found = _CLOCK.fullmatch(value) if isinstance(value, str) else None
    if found is None:
        raise PolicyError(
            f'{path}: expected a time of day, "HH:MM" or "HH:MM:SS", got {show(value)}'
        )
    hours, minutes, seconds = (int(part or 0) for part in found.groups())
    if hours > 23 or minutes > 59 or seconds > 59:
        raise PolicyError(f"{path}: {show(value)} is not a time of day (00:00 to 23:59:59)")
    return hours * 3600 + minutes * 60 + seconds


def _days(value: Any, path: str) -> tuple[str, ...]:
    days = choice_list(value, path, WEEKDAYS)
    if not days:
        raise PolicyError(f"{path}: the list is empty, so the window never opens")
    return tuple(day for day in WEEKDAYS if day in days)


def _deploy_windows(value: Any, path: str) -> tuple[DeployWindow, ...]:
    """A list of {days, from, to}; empty or absent means deploys may go on any time."""
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of windows (each with days, from, to), got {show(value)}"
        )
    if len(value) > MAX_WINDOWS:
        raise PolicyError(f"{path}: at most {MAX_WINDOWS} windows, got {len(value)}")
    windows = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        data = _mapping(item, where, "a window (a mapping with days, from, to)")
        check_keys(data, ("days", "from", "to"), where)
        for key in ("days", "from", "to"):
            if key not in data:
                raise PolicyError(f"{where}: missing {key}")
        days = _days(data["days"], f"{where}.days")
        start = _clock(data["from"], f"{where}.from")
        end = _clock(data["to"], f"{where}.to")
        if start == end:
            raise PolicyError(
                f"{where}.to: {show(data['to'])} is the same time as from, so the window is "
                "empty (for all day, leave deploy_windows out; to < from ends the next day)"
            )
        windows.append(DeployWindow(days=days, start=start, end=end))
    return tuple(windows)


def _reason(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(
            f"{path}: expected a non-empty reason, like Year-end freeze, got {show(value)}"
        )
    if any(not character.isprintable() for character in value) or value != value.strip():
        raise PolicyError(
            f"{path}: a reason is one line of printable characters, got {show(value)}"
        )
    if any(character in value for character in "<>&*`"):
        raise PolicyError(
            f"{path}: a reason may not contain Slack markup (< > & * `), got {show(value)}"
        )
    if len(value) > MAX_REASON:
        raise PolicyError(f"{path}: a reason is at most {MAX_REASON} characters, got {len(value)}")
    return value


def _instant(value: Any, path: str) -> datetime:
    """An ISO 8601 date and time with an offset (YAML may already have read it as one)."""
    hint = 'an ISO 8601 date and time with an offset, like "2026-12-24T00:00:00+07:00"'
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise PolicyError(f"{path}: expected {hint}, got {show(value)}") from None
    elif isinstance(value, date) and not isinstance(value, datetime):
        raise PolicyError(
            f"{path}: expected {hint} (a time, not only a date), got {value.isoformat()!r}"
        )
    if not isinstance(value, datetime):
        raise PolicyError(f"{path}: expected {hint}, got {show(value)}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise PolicyError(
            f"{path}: {value.isoformat()!r} has no offset; expected {hint} (or Z for UTC)"
        )
    return value


def _cron(value: Any, path: str) -> str:
    """A five-field cron expression (or an @ alias) that matches within CRON_HORIZON."""
    from croniter import croniter
    from croniter.croniter import CroniterError

    hint = 'five fields: minute hour day-of-month month day-of-week, like "0 17 * * FRI"'
    if not isinstance(value, str):
        raise PolicyError(f"{path}: expected a cron expression ({hint}), got {show(value)}")
    if value.strip() not in _CRON_ALIASES and len(value.split()) != 5:
        raise PolicyError(f"{path}: {show(value)} is not a cron expression ({hint})")
    start = datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)
    try:
        first = croniter(value, start).get_next(datetime)
    except CroniterError:
        if not croniter.is_valid(value):
            raise PolicyError(f"{path}: {show(value)} is not a cron expression ({hint})") from None
        raise PolicyError(
            f"{path}: {show(value)} never matches (no date in the calendar fits it)"
        ) from None
    except (ValueError, KeyError, IndexError, OverflowError):
        raise PolicyError(f"{path}: {show(value)} is not a cron expression ({hint})") from None
    if first - start > CRON_HORIZON:
        raise PolicyError(f"{path}: {show(value)} does not match in the next 5 years")
    return value


def _freezes(value: Any, path: str) -> tuple[Freeze, ...]:
    """A list of {from, to, reason} (one-off) and {cron, duration, reason} (recurring)."""
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of freezes (each {{from, to, reason}} or "
            f"{{cron, duration, reason}}), got {show(value)}"
        )
    if len(value) > MAX_FREEZES:
        raise PolicyError(f"{path}: at most {MAX_FREEZES} freezes, got {len(value)}")
    freezes = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        data = _mapping(
            item, where, "a freeze (a mapping with from, to, reason or cron, duration, reason)"
        )
        recurring = "cron" in data or "duration" in data
        keys = ("cron", "duration", "reason") if recurring else ("from", "to", "reason")
        check_keys(data, keys, where)
        for key in keys:
            if key not in data:
                raise PolicyError(f"{where}: missing {key}")
        reason = _reason(data["reason"], f"{where}.reason")
        if recurring:
            cron = _cron(data["cron"], f"{where}.cron")
            duration = _duration(data["duration"], f"{where}.duration")
            freezes.append(Freeze(reason=reason, cron=cron, duration=duration))
            continue
        begins = _instant(data["from"], f"{where}.from")
        ends = _instant(data["to"], f"{where}.to")
        if ends <= begins:
            raise PolicyError(
                f"{where}.to: {ends.isoformat()!r} is not after from ({begins.isoformat()!r})"
            )
        freezes.append(Freeze(reason=reason, begins=begins, ends=ends))
    return tuple(freezes)


def _freeze_override(value: Any, path: str) -> FreezeOverride | None:
    if value is None:
        return None
    data = _mapping(value, path, "a mapping with approvers and required_approvals")
    check_keys(data, ("approvers", "required_approvals"), path)
    approvers, required = approver_group(
        data, path, who="approvers", consequence="no override could be made"
    )
    return FreezeOverride(approvers=approvers, required_approvals=required)


CALENDAR_CHECKS: dict[str, Callable[[Any, str], Any]] = {
    "timezone": _timezone,
    "deploy_windows": _deploy_windows,
    "freezes": _freezes,
    "freeze_override": _freeze_override,
}
