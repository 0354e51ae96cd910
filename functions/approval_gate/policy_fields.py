"""The checks of each value a policy may set, and the PolicyError they raise.

Durations (``30s``, ``15m``, ``4h``, ``2d``), Slack ids, counts, choices, and the three
sections of the document (``defaults`` and each rule's settings, ``people``,
``pipelines``): each is checked and normalised to the type of its Rules field, and every
error names the key path and the bad value. approval_gate.policy assembles the checked
sections into a Policy and matches pipelines against its rules.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from approval_gate.i18n import LANGUAGES
from approval_gate.rules import (
    ANNOUNCE_EVENTS,
    ON_DEADLINE_CHOICES,
    OUTSIDE_WINDOW_CHOICES,
    STEPS_ORDER_CHOICES,
    UNKNOWN_AUTHOR_CHOICES,
    Approvers,
    Escalation,
    Rules,
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


def listed_mappings(
    value: Any,
    path: str,
    *,
    noun: str,
    each: str,
    item: str,
    keys: tuple[str, ...],
    most: int,
    empty: str | None = None,
) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Each mapping of a list-valued key (``steps``, ``inputs``), with its path: a list
    ("a list of <noun> (each with <each>)"), not empty when `empty` says what to do
    instead, at most `most`, each a mapping (`item`) with no key but `keys`."""
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of {noun} (each with {each}), got {show(value)}"
        )
    if not value and empty:
        raise PolicyError(f"{path}: the list is empty; {empty}")
    if len(value) > most:
        raise PolicyError(f"{path}: at most {most} {noun}, got {len(value)}")
    for index, entry in enumerate(value):
        where = f"{path}[{index}]"
        data = _mapping(entry, where, item)
        check_keys(data, keys, where)
        yield where, data


def check_unique(
    name: str, earlier: list[str], where: str, path: str, *, field: str, what: str
) -> None:
    """`name` (the `field` of `where`) is not that of an earlier entry of the list `path`
    (`what`: "step names", "input ids")."""
    if name in earlier:
        raise PolicyError(
            f"{where}.{field}: {name!r} is already the {field} of {path}[{earlier.index(name)}]; "
            f"{what} must be unique"
        )


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


def choice_list(value: Any, path: str, choices: tuple[str, ...]) -> tuple[str, ...]:
    """A list whose items are each one of `choices`: the distinct items, in the list's
    order. The error names the list, or the item and its index."""
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{path}: expected a list of {', '.join(choices)}, got {show(value)}")
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in choices:
            raise PolicyError(
                f"{path}[{index}]: expected one of {', '.join(choices)}, got {show(item)}"
            )
    return tuple(dict.fromkeys(value))


def _announce(value: Any, path: str) -> tuple[str, ...]:
    return choice_list(value, path, ANNOUNCE_EVENTS)


#: The largest count a policy may set: far above any real one (an integer too long to
#: print cannot even be stored with the approval).
MAX_COUNT = 1000


def approver_group(
    data: Mapping[str, Any], path: str, *, who: str, consequence: str
) -> tuple[Approvers, int]:
    """The `approvers` (someone listed) and `required_approvals` (within reach) of a mapping
    that names its own approvers: a step, the freeze override. `who` and `consequence`
    finish the error when more are required than the users listed and no group."""
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
            f"{path}.required_approvals: {required} required but {who} lists only "
            f"{len(approvers.users)} user(s) and no groups, so {consequence}"
        )
    return approvers, required


def _steps(value: Any, path: str) -> Any:
    """The check of the approval steps key, in approval_gate.policy_steps (imported when
    a policy sets the key: it builds on the checks here)."""
    from approval_gate.policy_steps import steps

    return steps(value, path)


def _calendar(key: str) -> Callable[[Any, str], Any]:
    """The check of a deploy-window or freeze key, in approval_gate.policy_calendar.

    That module builds on the checks here, so it is imported when first used, not at
    the top (and a policy without these keys never loads zoneinfo or croniter).
    """

    def check(value: Any, path: str) -> Any:
        from approval_gate.policy_calendar import CALENDAR_CHECKS

        return CALENDAR_CHECKS[key](value, path)

    return check


def _checks(value: Any, path: str) -> Any:
    """The check of the health-check key, in approval_gate.policy_checks (imported when
    first used, like the calendar keys' checks)."""
    from approval_gate.policy_checks import checks

    return checks(value, path)


def _inputs(value: Any, path: str) -> Any:
    """The check of the approver inputs key, in approval_gate.policy_inputs (imported when
    first used, like the health checks' check)."""
    from approval_gate.policy_inputs import inputs

    return inputs(value, path)


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
    "timezone": _calendar("timezone"),
    "deploy_windows": _calendar("deploy_windows"),
    "freezes": _calendar("freezes"),
    "outside_window": _choice(*OUTSIDE_WINDOW_CHOICES),
    "freeze_override": _calendar("freeze_override"),
    "allow_scheduling": _boolean,
    "checks": _checks,
    "confirm_approve": _boolean,
    "inputs": _inputs,
    "language": _choice(*LANGUAGES),
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
