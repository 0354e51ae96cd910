"""The checks of each value a policy may set, and the PolicyError they raise.

Durations (``30s``, ``15m``, ``4h``, ``2d``), Slack ids, counts, choices, and the three
sections of the document (``defaults`` and each rule's settings, ``people``,
``pipelines``): each is checked and normalised to the type of its Rules field, and every
error names the key path and the bad value. approval_gate.policy assembles the checked
sections into a Policy and matches pipelines against its rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

from approval_gate.rules import (
    ANNOUNCE_EVENTS,
    ON_DEADLINE_CHOICES,
    OUTSIDE_WINDOW_CHOICES,
    STEPS_ORDER_CHOICES,
    UNKNOWN_AUTHOR_CHOICES,
    WEEKDAYS,
    Approvers,
    DeployWindow,
    Escalation,
    Freeze,
    FreezeOverride,
    Rules,
    Step,
)


class PolicyError(ValueError):
    """The policy document is invalid; the message names the key path and the bad value."""


# --------------------------------------------------------------------------- durations

_DURATION = re.compile(r"([0-9]+)([smhd])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION_HINT = "use 30s, 15m, 4h or 2d"
#: No policy duration may exceed a year: Step Functions runs a standard workflow a year at
#: most, and a longer one overflows the date arithmetic of every request.
MAX_DURATION = 365 * 86400


def parse_duration(value: str | int, where: str = "duration") -> int:
    """Seconds in ``30s``, ``15m``, ``4h``, ``2d`` or a plain int (seconds); always > 0."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise PolicyError(
            f"{where}: expected a duration ({_DURATION_HINT}, or whole seconds), got {show(value)}"
        )
    if isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            raise PolicyError(f"{where}: {show(value)} is not a duration ({_DURATION_HINT})")
        if len(found.group(1)) > 15:  # int() refuses thousands of digits; no sane one has 16
            raise PolicyError(f"{where}: {show(value)} is too long to be a duration")
        seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    else:
        seconds = value
    if seconds <= 0:
        raise PolicyError(f"{where}: a duration must be more than 0, got {show(value)}")
    return seconds


def format_duration(seconds: int) -> str:
    """The shortest exact spelling: 90 -> 90s, 900 -> 15m, 86400 -> 24h, 172800 -> 2d.

    One day is written ``24h`` (how people say a deadline); whole multiples of two days
    or more use ``d``. ``parse_duration(format_duration(n)) == n`` for every ``n > 0``.
    """
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative, got {seconds}")
    if seconds == 0:
        return "0s"
    if seconds % 86400 == 0 and seconds > 86400:
        return f"{seconds // 86400}d"
    if seconds % 3600 == 0:
        return f"{seconds // 3600}h"
    if seconds % 60 == 0:
        return f"{seconds // 60}m"
    return f"{seconds}s"


# --------------------------------------------------------------------------- the values

#: The keys a policy may set in ``defaults`` and in each rule (every Rules field but ``rule``).
POLICY_KEYS: tuple[str, ...] = tuple(name for name in Rules._fields if name != "rule")
#: The keys that pick a rule's approvals: a glob on the pipeline, then on stage and action.
RULE_SELECTORS = ("match", "stage", "action")

_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_CHANNEL_HINT = "a Slack channel id, like C0123ABCD; not the #name"
_USER_HINT = "a Slack user id, like U0123ABCD or W0123ABCD; not the @name or email"
_GROUP_HINT = "a Slack user-group id, like S0123ABCD; not the @handle"


def show(value: Any) -> str:
    """A short, safe rendering of a bad value for an error message."""
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        return f"an integer of about {int(value.bit_length() * 0.30103) + 1} digits"
    if value is None or isinstance(value, bool | int | float):
        return repr(value)
    if isinstance(value, str):
        return repr(value) if len(value) <= 60 else repr(value[:57] + "...")
    return f"a value of type {type(value).__name__}"


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def check_keys(mapping: Mapping[Any, Any], allowed: Iterable[str], path: str) -> None:
    """Refuse a key the mapping may not have, suggesting the allowed key it is closest to."""
    allowed = tuple(allowed)
    for key in mapping:
        if key in allowed:
            continue
        if not isinstance(key, str):
            raise PolicyError(f"{path or 'policy'}: key {show(key)} is not a string")
        from difflib import get_close_matches  # only on the error path

        close = get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PolicyError(f"{_join(path, key)}: unknown key{hint}")


def optional_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """A top-level section; null (everything in it commented out) means empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: expected a mapping, got {show(value)}")
    return value


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: expected {what}, got {show(value)}")
    return value


def _slack_id(value: Any, path: str, pattern: re.Pattern[str], hint: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise PolicyError(f"{path}: expected {hint}, got {show(value)}")
    return value


def _id_list(value: Any, path: str, pattern: re.Pattern[str], hint: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{path}: expected a list of ids, got {show(value)}")
    ids = [_slack_id(item, f"{path}[{i}]", pattern, hint) for i, item in enumerate(value)]
    return tuple(dict.fromkeys(ids))  # drop repeats, keep the order


def _channel(value: Any, path: str) -> str:
    return _slack_id(value, path, _CHANNEL_ID, _CHANNEL_HINT)


def _optional_channel(value: Any, path: str) -> str | None:
    return None if value is None else _channel(value, path)


def _approvers(value: Any, path: str) -> Approvers:
    data = _mapping(value, path, "a mapping with users and/or groups")
    check_keys(data, ("users", "groups"), path)
    return Approvers(
        users=_id_list(data.get("users", []), f"{path}.users", _USER_ID, _USER_HINT),
        groups=_id_list(data.get("groups", []), f"{path}.groups", _GROUP_ID, _GROUP_HINT),
    )


def _escalation(value: Any, path: str) -> Escalation:
    data = _mapping(value, path, "a mapping with channel, mention_groups and/or approvers")
    check_keys(data, ("channel", "mention_groups", "approvers"), path)
    approvers = data.get("approvers")
    mention_groups = data.get("mention_groups", [])
    return Escalation(
        channel=_optional_channel(data.get("channel"), f"{path}.channel"),
        mention_groups=_id_list(mention_groups, f"{path}.mention_groups", _GROUP_ID, _GROUP_HINT),
        approvers=None if approvers is None else _approvers(approvers, f"{path}.approvers"),
    )


def _integer(minimum: int, maximum: int) -> Callable[[Any, str], int]:
    def check(value: Any, path: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise PolicyError(f"{path}: expected an integer >= {minimum}, got {show(value)}")
        if value > maximum:
            raise PolicyError(f"{path}: expected an integer <= {maximum}, got {show(value)}")
        return value

    return check


def _duration(value: Any, path: str) -> int:
    seconds = parse_duration(value, path)
    if seconds > MAX_DURATION:
        raise PolicyError(
            f"{path}: a duration must be at most 365d (a workflow runs a year at most), "
            f"got {show(value)}"
        )
    return seconds


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{path}: expected true or false, got {show(value)}")
    return value


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            expected = " or ".join(repr(choice) for choice in choices)
            raise PolicyError(f"{path}: expected {expected}, got {show(value)}")
        return value

    return check


def _announce(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of {', '.join(ANNOUNCE_EVENTS)}, got {show(value)}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in ANNOUNCE_EVENTS:
            raise PolicyError(
                f"{path}[{index}]: expected one of {', '.join(ANNOUNCE_EVENTS)}, got {show(item)}"
            )
    return tuple(dict.fromkeys(value))


#: The largest count a policy may set: far above any real one (an integer too long to
#: print cannot even be stored with the approval).
MAX_COUNT = 1000
#: The longest step name: it is shown in the request's progress line, the thread and the
#: summary to CodePipeline (512 characters for every step and approver together).
MAX_STEP_NAME = 40
#: The most steps a rule may have: each takes a part of the request's progress line and of
#: the 512-character summary; a real process has a handful.
MAX_STEPS = 10


def _step_name(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(f"{path}: expected a non-empty step name, like QA, got {show(value)}")
    if any(not character.isprintable() for character in value):
        raise PolicyError(
            f"{path}: a step name is one line of printable characters, got {show(value)}"
        )
    if value != value.strip():
        raise PolicyError(
            f"{path}: a step name may not start or end with a space, got {show(value)}"
        )
    if any(character in value for character in "<>&*`"):
        # Slack reads these as markup: a step named "<!channel>" would ping the channel.
        raise PolicyError(
            f"{path}: a step name may not contain Slack markup (< > & * `), got {show(value)}"
        )
    if len(value) > MAX_STEP_NAME:
        raise PolicyError(
            f"{path}: a step name is at most {MAX_STEP_NAME} characters, got {len(value)}"
        )
    return value


def _steps(value: Any, path: str) -> tuple[Step, ...]:
    """A list of steps, each {name, approvers, required_approvals}; names unique."""
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of steps (each with name, approvers and "
            f"required_approvals), got {show(value)}"
        )
    if not value:
        raise PolicyError(
            f"{path}: the list is empty; list at least one step, or set approvers instead"
        )
    if len(value) > MAX_STEPS:
        raise PolicyError(f"{path}: at most {MAX_STEPS} steps, got {len(value)}")
    steps: list[Step] = []
    for index, item in enumerate(value):
        where = f"{path}[{index}]"
        data = _mapping(item, where, "a step (a mapping with name, approvers, required_approvals)")
        check_keys(data, ("name", "approvers", "required_approvals"), where)
        if "name" not in data:
            raise PolicyError(f"{where}: missing name (how the request and the record call it)")
        name = _step_name(data["name"], f"{where}.name")
        where = f"{path}[{index}] ({name})"
        for earlier, step in enumerate(steps):
            if step.name == name:
                raise PolicyError(
                    f"{where}.name: {name!r} is already the name of {path}[{earlier}]; "
                    "step names must be unique"
                )
        if "approvers" not in data:
            raise PolicyError(f"{where}: missing approvers (users and/or groups)")
        approvers = _approvers(data["approvers"], f"{where}.approvers")
        if not (approvers.users or approvers.groups):
            raise PolicyError(f"{where}.approvers: no one is listed (set users or groups)")
        required = _integer(1, MAX_COUNT)(
            data.get("required_approvals", 1), f"{where}.required_approvals"
        )
        if not approvers.groups and required > len(approvers.users):
            raise PolicyError(
                f"{where}.required_approvals: {required} required but the step lists only "
                f"{len(approvers.users)} user(s) and no groups, so it could never complete"
            )
        steps.append(Step(name=name, approvers=approvers, required_approvals=required))
    _check_distinct_people(steps, path)
    return tuple(steps)


def _check_distinct_people(steps: list[Step], path: str) -> None:
    """Refuse steps that together need more distinct people than they list.

    A person's approve vote counts in one step only, so steps QA and Release both listing
    only alice can never both complete. Steps are satisfiable exactly when every set of
    them lists at least as many users as it requires (Hall's theorem). A step with groups
    is left out: its groups' members are known only in Slack. At most 2**MAX_STEPS sets.
    """
    from itertools import combinations  # only on the load path, never on a click

    closed = [index for index, step in enumerate(steps) if not step.approvers.groups]
    for size in range(2, len(closed) + 1):
        for chosen in combinations(closed, size):
            users = {user for index in chosen for user in steps[index].approvers.users}
            required = sum(steps[index].required_approvals for index in chosen)
            if required > len(users):
                names = ", ".join(f"{path}[{index}] ({steps[index].name})" for index in chosen)
                raise PolicyError(
                    f"{names}: together require {required} approvals but list only "
                    f"{len(users)} user(s) and no groups, and a person's vote counts in one "
                    "step only, so they could never all complete"
                )


# --------------------------------------------------------------------------- windows, freezes

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
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of days ({', '.join(WEEKDAYS)}), got {show(value)}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in WEEKDAYS:
            raise PolicyError(
                f"{path}[{index}]: expected one of {', '.join(WEEKDAYS)}, got {show(item)}"
            )
    if not value:
        raise PolicyError(f"{path}: the list is empty, so the window never opens")
    return tuple(day for day in WEEKDAYS if day in value)


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
    if "approvers" not in data:
        raise PolicyError(f"{path}: missing approvers (users and/or groups)")
    approvers = _approvers(data["approvers"], f"{path}.approvers")
    if not (approvers.users or approvers.groups):
        raise PolicyError(f"{path}.approvers: no one is listed (set users or groups)")
    required = _integer(1, MAX_COUNT)(
        data.get("required_approvals", 1), f"{path}.required_approvals"
    )
    if not approvers.groups and required > len(approvers.users):
        raise PolicyError(
            f"{path}.required_approvals: {required} required but approvers lists only "
            f"{len(approvers.users)} user(s) and no groups, so no override could be made"
        )
    return FreezeOverride(approvers=approvers, required_approvals=required)


_VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "channel": _channel,
    "approvers": _approvers,
    "required_approvals": _integer(1, MAX_COUNT),
    "allow_self_approval": _boolean,
    "unknown_author": _choice(*UNKNOWN_AUTHOR_CHOICES),
    "require_reason_on_reject": _boolean,
    "ask_comment_on_approve": _boolean,
    "reminder_every": _duration,
    "escalate_after_reminders": _integer(0, MAX_COUNT),
    "escalation": _escalation,
    "deadline": _duration,
    "deadline_margin": _duration,
    "on_deadline": _choice(*ON_DEADLINE_CHOICES),
    "status_channel": _optional_channel,
    "announce": _announce,
    "steps": _steps,
    "steps_order": _choice(*STEPS_ORDER_CHOICES),
    "timezone": _timezone,
    "deploy_windows": _deploy_windows,
    "freezes": _freezes,
    "outside_window": _choice(*OUTSIDE_WINDOW_CHOICES),
    "freeze_override": _freeze_override,
    "allow_scheduling": _boolean,
}
assert set(_VALIDATORS) == set(POLICY_KEYS)


#: The keys that say who approves a single-step rule; ``steps`` replaces them as a group.
SINGLE_STEP_KEYS = ("approvers", "required_approvals")


def rule_settings(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Validate the policy keys of ``defaults`` or a rule; values get their Rules types."""
    check_keys(data, POLICY_KEYS, path)
    settings = {key: _VALIDATORS[key](value, _join(path, key)) for key, value in data.items()}
    if "steps" in settings:
        for key in SINGLE_STEP_KEYS:
            if key in settings:
                raise PolicyError(
                    f"{_join(path, key)}: set either steps or approvers and "
                    "required_approvals, not both (each step has its own)"
                )
    return settings


def people_map(value: Any) -> dict[str, str]:
    """The ``people`` section: commit email or IAM principal ARN -> Slack user id."""
    data = optional_mapping(value, "people")
    people: dict[str, str] = {}
    for key, user in data.items():
        if not isinstance(key, str) or not key.strip():
            raise PolicyError(
                f"people: key {show(key)} must be a non-empty string "
                "(a commit email or an IAM principal ARN)"
            )
        people[key] = _slack_id(user, f"people[{key!r}]", _USER_ID, _USER_HINT)
    return people


def _glob(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(f'{path}: expected a non-empty glob, like "prod-*", got {show(value)}')
    return value


def pipeline_rules(value: Any) -> tuple[tuple[dict[str, str], dict[str, Any]], ...]:
    """The ``pipelines`` section: each rule's selectors and its checked settings, in order."""
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise PolicyError(f"pipelines: expected a list of rules, got {show(value)}")
    rules = []
    for index, item in enumerate(value):
        path = f"pipelines[{index}]"
        data = _mapping(item, path, "a rule (a mapping with match: and policy keys)")
        check_keys(data, (*RULE_SELECTORS, *POLICY_KEYS), path)
        if "match" not in data:
            raise PolicyError(f'{path}: missing match (a glob on the pipeline name, like "prod-*")')
        selectors = {
            key: _glob(data[key], f"{path}.{key}") for key in RULE_SELECTORS if key in data
        }
        overrides = {key: value for key, value in data.items() if key not in RULE_SELECTORS}
        rules.append((selectors, rule_settings(overrides, path)))
    return tuple(rules)
