"""The check of the ``checks`` key: health checks that gate the approval (DESIGN §8.3,
issue 21).

``checks: {alarms, alarm_states, functions, on_failing}``, checked and normalised to a
:class:`~approval_gate.rules.Checks`, every error naming the key path and the bad value,
like the other keys' checks in approval_gate.policy_fields (which calls this one).
"""

from __future__ import annotations

import re
from typing import Any

from approval_gate.policy_fields import PolicyError, _mapping, check_keys, choice_list, show
from approval_gate.rules import ALARM_STATES, Checks

#: DescribeAlarms takes at most 100 names in one call; a policy listing more is a mistake.
MAX_ALARMS = 100
#: Each check function is invoked before every request and at each reminder, one after
#: another, up to 5 s each: 20 of them can already take over a minute and a half.
MAX_FUNCTIONS = 20
#: CloudWatch's limit on an alarm name (and on DescribeAlarms' AlarmNamePrefix).
MAX_ALARM_NAME = 255
ON_FAILING_CHOICES = ("hold", "reject")

# arn:aws[-cn|-us-gov]:lambda:<region>:<account>:function:<name>[:<version or alias>]
_FUNCTION_ARN = re.compile(
    r"arn:aws(?:-cn|-us-gov)?:lambda:[a-z]{2}(?:-[a-z]+)+-[0-9]+:[0-9]{12}:"
    r"function:[A-Za-z0-9_-]{1,64}(?::(?:\$LATEST|[A-Za-z0-9_-]{1,128}))?"
)
_FUNCTION_HINT = (
    "a Lambda function ARN, like arn:aws:lambda:us-east-1:123456789012:function:change-check"
)


def _whole(value: Any) -> str:
    """The bad value, whole when it is a string of up to an ARN's length: show() cuts at
    60 characters, and an ARN's mistake is often in its last part."""
    if isinstance(value, str) and len(value) <= 2 * MAX_ALARM_NAME:
        return repr(value)
    return show(value)


def _alarm(value: Any, path: str) -> str:
    """An alarm name, or a name prefix ending in ``*``."""
    if not isinstance(value, str) or not value:
        raise PolicyError(
            f"{path}: expected a CloudWatch alarm name, or a prefix ending in *, like "
            f'"prod-api-*", got {show(value)}'
        )
    if value == "*":
        raise PolicyError(
            f"{path}: '*' alone would match every alarm in the account; name the alarms, or a "
            'prefix like "prod-api-*"'
        )
    if "*" in value[:-1]:
        raise PolicyError(
            f"{path}: * may only end a name (making it a prefix), got {_whole(value)}"
        )
    if any(ord(character) < 32 or 127 <= ord(character) < 160 for character in value):
        raise PolicyError(
            f"{path}: an alarm name may not contain control characters, got {_whole(value)}"
        )
    name = value.removesuffix("*")
    if len(name) > MAX_ALARM_NAME:
        raise PolicyError(
            f"{path}: an alarm name is at most {MAX_ALARM_NAME} characters, got {len(name)}"
        )
    return value


def _function(value: Any, path: str) -> str:
    if not isinstance(value, str) or _FUNCTION_ARN.fullmatch(value) is None:
        raise PolicyError(f"{path}: expected {_FUNCTION_HINT}, got {_whole(value)}")
    return value


def _distinct(value: Any, path: str, *, what: str, most: int, check: Any) -> tuple[str, ...]:
    """A list of at most `most` items, each passed through `check`, none repeated."""
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{path}: expected a list of {what}, got {_whole(value)}")
    if len(value) > most:
        raise PolicyError(f"{path}: at most {most} {what}, got {len(value)}")
    items: list[str] = []
    for index, item in enumerate(value):
        checked = check(item, f"{path}[{index}]")
        if checked in items:
            raise PolicyError(
                f"{path}[{index}]: {_whole(checked)} is already {path}[{items.index(checked)}]"
            )
        items.append(checked)
    return tuple(items)


def _alarm_states(value: Any, path: str) -> tuple[str, ...]:
    states = choice_list(value, path, ALARM_STATES)
    if not states:
        raise PolicyError(
            f"{path}: the list is empty, so no alarm could ever block; list the states that "
            "block (default [ALARM])"
        )
    return states


def checks(value: Any, path: str) -> Checks | None:
    """``checks``: null means none (a rule may so drop the defaults' checks)."""
    if value is None:
        return None
    data = _mapping(value, path, "a mapping with alarms, alarm_states, functions, on_failing")
    check_keys(data, ("alarms", "alarm_states", "functions", "on_failing"), path)
    alarms = _distinct(
        data.get("alarms", []),
        f"{path}.alarms",
        what="CloudWatch alarm names",
        most=MAX_ALARMS,
        check=_alarm,
    )
    functions = _distinct(
        data.get("functions", []),
        f"{path}.functions",
        what="Lambda function ARNs",
        most=MAX_FUNCTIONS,
        check=_function,
    )
    if not alarms and not functions:
        raise PolicyError(
            f"{path}: lists no alarms and no functions; list at least one, or leave checks out"
        )
    states = _alarm_states(data.get("alarm_states", ["ALARM"]), f"{path}.alarm_states")
    on_failing = data.get("on_failing", "hold")
    if not isinstance(on_failing, str) or on_failing not in ON_FAILING_CHOICES:
        expected = " or ".join(repr(choice) for choice in ON_FAILING_CHOICES)
        raise PolicyError(f"{path}.on_failing: expected {expected}, got {show(on_failing)}")
    return Checks(alarms=alarms, alarm_states=states, functions=functions, on_failing=on_failing)
