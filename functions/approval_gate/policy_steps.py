"""The check of the ``steps`` key: ordered approvals across groups (DESIGN §8.1).

``steps: [{name, approvers, required_approvals}]``, checked and normalised to
:class:`~approval_gate.rules.Step` values, every error naming the key path and the bad
value, like the other keys' checks in approval_gate.policy_fields (which calls this one
when a policy sets the key).
"""

from __future__ import annotations

from typing import Any

from approval_gate.policy_fields import (
    PolicyError,
    approver_group,
    check_unique,
    listed_mappings,
    show,
)
from approval_gate.rules import Step

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


def steps(value: Any, path: str) -> tuple[Step, ...]:
    """A list of steps, each {name, approvers, required_approvals}; names unique."""
    steps: list[Step] = []
    for where, data in listed_mappings(
        value,
        path,
        noun="steps",
        each="name, approvers and required_approvals",
        item="a step (a mapping with name, approvers, required_approvals)",
        keys=("name", "approvers", "required_approvals"),
        most=MAX_STEPS,
        empty="list at least one step, or set approvers instead",
    ):
        if "name" not in data:
            raise PolicyError(f"{where}: missing name (how the request and the record call it)")
        name = _step_name(data["name"], f"{where}.name")
        where = f"{where} ({name})"
        check_unique(
            name, [step.name for step in steps], where, path, field="name", what="step names"
        )
        approvers, required = approver_group(
            data, where, who="the step", consequence="it could never complete"
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
