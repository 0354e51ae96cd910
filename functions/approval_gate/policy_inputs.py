"""The check of the ``inputs`` key: what each approver gives with an approval (DESIGN §8.4,
issue 22).

``inputs: [{id, label, pattern?, options?, required?}]``, checked and normalised to
:class:`~approval_gate.rules.ApproverInput` values, every error naming the key path and
the bad value, like the other keys' checks in approval_gate.policy_fields (which calls
this one when a policy sets the key). The limits are Slack's: an input block's label,
a static select's options, a modal's blocks.
"""

from __future__ import annotations

import re
from typing import Any

from approval_gate.policy_fields import PolicyError, check_unique, listed_mappings, show
from approval_gate.rules import ApproverInput

#: Each input is a block of the Approve modal, next to the comment; a handful is plenty.
MAX_INPUTS = 10
#: Slack's limit on an input block's label.
MAX_LABEL = 2000
#: Slack's limits on a static select: at most 100 options, each text at most 75 characters.
MAX_OPTIONS = 100
MAX_OPTION = 75
#: An input's id: its block id and action id in the modal, and its key in the record.
_INPUT_ID = re.compile(r"[a-z][a-z0-9_]{0,29}")
#: The block and action ids the gate's own modals and request use (approval_gate.messages:
#: REASON_BLOCK, DEPLOY_AT_BLOCK, ACTIONS_BLOCK): an input may not take one.
RESERVED_IDS = ("reason", "deploy_at", "approval_gate_actions")
INPUT_KEYS = ("id", "label", "pattern", "options", "required")


def inputs(value: Any, path: str) -> tuple[ApproverInput, ...]:
    """A list of inputs, ids unique; an empty list means none."""
    checked: list[ApproverInput] = []
    for where, data in listed_mappings(
        value,
        path,
        noun="inputs",
        each="id and label",
        item="an input (a mapping with id, label, pattern or options)",
        keys=INPUT_KEYS,
        most=MAX_INPUTS,
    ):
        for key in ("id", "label"):
            if key not in data:
                raise PolicyError(f"{where}: missing {key}")
        name = _input_id(data["id"], f"{where}.id")
        check_unique(
            name, [other.id for other in checked], where, path, field="id", what="input ids"
        )
        if "pattern" in data and "options" in data:
            raise PolicyError(f"{where}: set pattern (free text) or options (a choice), not both")
        required = data.get("required", False)
        if not isinstance(required, bool):
            raise PolicyError(f"{where}.required: expected true or false, got {show(required)}")
        checked.append(
            ApproverInput(
                id=name,
                label=_label(data["label"], f"{where}.label"),
                pattern=_pattern(data["pattern"], f"{where}.pattern")
                if "pattern" in data
                else None,
                options=_options(data["options"], f"{where}.options") if "options" in data else (),
                required=required,
            )
        )
    return tuple(checked)


def _input_id(value: Any, path: str) -> str:
    if not isinstance(value, str) or _INPUT_ID.fullmatch(value) is None:
        raise PolicyError(
            f"{path}: expected an id of 1 to 30 lowercase letters, digits and _, starting "
            f"with a letter, like ticket, got {show(value)}"
        )
    if value in RESERVED_IDS:
        raise PolicyError(
            f"{path}: {value!r} is reserved (the gate's own modals use it); choose another id"
        )
    return value


def _label(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise PolicyError(
            f"{path}: expected a non-empty label, like Change ticket, got {show(value)}"
        )
    if len(value) > MAX_LABEL:
        raise PolicyError(
            f"{path}: a label is at most {MAX_LABEL} characters (Slack's limit), got {len(value)}"
        )
    return value


def _pattern(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(
            f'{path}: expected a regular expression, like "^CHG[0-9]{{6}}$", got {show(value)}'
        )
    try:
        re.compile(value)
    except re.error as error:
        raise PolicyError(f"{path}: not a valid regular expression: {error}") from None
    return value


def _options(value: Any, path: str) -> tuple[str, ...]:
    if isinstance(value, list | tuple) and not value:
        raise PolicyError(
            f"{path}: the list is empty; list at least one choice, or leave options out "
            "for free text"
        )
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of 1 to {MAX_OPTIONS} choices, like "
            f'["10%", "50%", "100%"], got {show(value)}'
        )
    if len(value) > MAX_OPTIONS:
        raise PolicyError(
            f"{path}: at most {MAX_OPTIONS} options (Slack's limit), got {len(value)}"
        )
    for index, option in enumerate(value):
        where = f"{path}[{index}]"
        if not isinstance(option, str) or not option.strip():
            raise PolicyError(f"{where}: expected a non-empty string, got {show(option)}")
        if len(option) > MAX_OPTION:
            raise PolicyError(
                f"{where}: an option is at most {MAX_OPTION} characters (Slack's limit), "
                f"got {len(option)}"
            )
        if option in value[:index]:
            raise PolicyError(f"{where}: {option!r} is listed twice; options must be distinct")
    return tuple(value)
