"""The approval policy: who decides, where, how many, and what happens at the deadline.

One YAML document (DESIGN §3), validated completely at load, so a bad policy fails the
deploy's tests rather than a production approval. Every error names the key path and the
bad value, e.g. ``pipelines[1].required_approvals: expected an integer >= 1, got 0``.

A pipeline rule replaces whole top-level keys of ``defaults`` (a rule's ``approvers``
replaces the default approvers, never widens them); ``defaults`` fill what a rule leaves
out; the built-in defaults of :class:`Rules` fill the rest. The first matching rule wins.

PyYAML is imported only inside the loaders: this module is on every Lambda's cold start.
"""

from __future__ import annotations

import functools
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from approval_gate.rules import (
    ANNOUNCE_EVENTS,
    ON_DEADLINE_CHOICES,
    UNKNOWN_AUTHOR_CHOICES,
    Approvers,
    Escalation,
    Rules,
)

__all__ = [
    "ANNOUNCE_EVENTS",
    "MAX_COUNT",
    "MAX_DURATION",
    "ON_DEADLINE_CHOICES",
    "POLICY_KEYS",
    "UNKNOWN_AUTHOR_CHOICES",
    "Approvers",
    "Escalation",
    "Policy",
    "PolicyError",
    "Rules",
    "format_duration",
    "load_policy",
    "load_policy_file",
    "parse_duration",
    "policy_ids",
    "shipped_policy",
]


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
            f"{where}: expected a duration ({_DURATION_HINT}, or whole seconds), got {_show(value)}"
        )
    if isinstance(value, str):
        found = _DURATION.fullmatch(value)
        if found is None:
            raise PolicyError(f"{where}: {_show(value)} is not a duration ({_DURATION_HINT})")
        if len(found.group(1)) > 15:  # int() refuses thousands of digits; no sane one has 16
            raise PolicyError(f"{where}: {_show(value)} is too long to be a duration")
        seconds = int(found.group(1)) * _UNIT_SECONDS[found.group(2)]
    else:
        seconds = value
    if seconds <= 0:
        raise PolicyError(f"{where}: a duration must be more than 0, got {_show(value)}")
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


# --------------------------------------------------------------------------- the rules

# Approvers, Escalation and Rules (what an approval stores and a click reads back) live in
# approval_gate.rules, which stays small for the functions that need no policy; they are
# part of this module's interface too.

#: The keys a policy may set in ``defaults`` and in each rule (every Rules field but ``rule``).
POLICY_KEYS: tuple[str, ...] = tuple(name for name in Rules._fields if name != "rule")
_RULE_SELECTORS = ("match", "stage", "action")


# --------------------------------------------------------------------------- the policy


@dataclass(frozen=True)
class Policy:
    """A loaded policy: defaults, per-pipeline overrides in order, and the author map."""

    #: Validated and normalised: values have the types of the Rules fields.
    defaults: dict[str, Any]
    #: (selectors {match, stage?, action?}, overrides normalised like ``defaults``), in order.
    pipelines: tuple[tuple[dict[str, str], dict[str, Any]], ...]
    #: Commit author email or IAM principal ARN -> Slack user id.
    people: dict[str, str]

    def resolve(self, pipeline: str, stage: str | None = None, action: str | None = None) -> Rules:
        """The rules for this approval: the first matching rule over defaults over built-ins.

        A rule with a ``stage:`` (or ``action:``) glob matches only when that stage (action)
        is given and matches.
        """
        for index, (selectors, overrides) in enumerate(self.pipelines):
            if _matches(selectors, pipeline, stage, action):
                return Rules(**{**self.defaults, **overrides, "rule": _label(index, selectors)})
        return Rules(**{**self.defaults, "rule": "defaults"})

    @classmethod
    def from_document(cls, doc: Any) -> Policy:
        """Validate a parsed policy document (a mapping) completely; PolicyError if not."""
        if doc is None:
            raise PolicyError(
                "policy: the document is empty; expected a mapping with defaults, people "
                "and pipelines"
            )
        if not isinstance(doc, Mapping):
            raise PolicyError(
                f"policy: expected a mapping with defaults, people and pipelines, got {_show(doc)}"
            )
        _check_keys(doc, ("defaults", "people", "pipelines"), "")
        defaults = _settings(_optional_mapping(doc.get("defaults"), "defaults"), "defaults")
        people = _people(doc.get("people"))
        pipelines = _pipelines(doc.get("pipelines"))
        policy = cls(defaults=defaults, pipelines=pipelines, people=people)
        _check_complete(policy)
        return policy


def load_policy(text: str) -> Policy:
    """Parse and validate policy YAML. Duplicate keys in a mapping are an error."""
    import yaml

    try:
        doc = yaml.load(text, Loader=_strict_loader())  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as error:
        raise PolicyError(f"policy: not valid YAML: {_yaml_problem(error)}") from None
    except PolicyError:
        raise
    except RecursionError:
        raise PolicyError("policy: not valid YAML: nested too deeply to be a policy") from None
    except ValueError as error:  # PyYAML's int() of a number with thousands of digits
        raise PolicyError(f"policy: not valid YAML: {error}") from None
    return Policy.from_document(doc)


def load_policy_file(path: str | os.PathLike[str]) -> Policy:
    """Read, parse and validate a policy file; every error message starts with the path."""
    name = os.fspath(path)
    try:
        with open(name, encoding="utf-8") as handle:
            text = handle.read()
    except FileNotFoundError:
        raise PolicyError(f"{name}: policy file not found") from None
    except (OSError, UnicodeDecodeError) as error:
        raise PolicyError(f"{name}: cannot read the policy file: {error}") from None
    try:
        return load_policy(text)
    except PolicyError as error:
        raise PolicyError(f"{name}: {error}") from None


def policy_ids(policy: Policy) -> tuple[set[str], set[str]]:
    """(every Slack user id, every user-group id) the policy names anywhere."""
    users: set[str] = set(policy.people.values())
    groups: set[str] = set()
    for settings in (policy.defaults, *(overrides for _, overrides in policy.pipelines)):
        approvers: Approvers | None = settings.get("approvers")
        escalation: Escalation | None = settings.get("escalation")
        for listed in (approvers, escalation.approvers if escalation else None):
            if listed is not None:
                users.update(listed.users)
                groups.update(listed.groups)
        if escalation is not None:
            groups.update(escalation.mention_groups)
    return users, groups


# --------------------------------------------------------------------------- internals

_CHANNEL_ID = re.compile(r"[CG][A-Z0-9]{2,}")
_USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")
_GROUP_ID = re.compile(r"S[A-Z0-9]{2,}")
_CHANNEL_HINT = "a Slack channel id, like C0123ABCD; not the #name"
_USER_HINT = "a Slack user id, like U0123ABCD or W0123ABCD; not the @name or email"
_GROUP_HINT = "a Slack user-group id, like S0123ABCD; not the @handle"


def _show(value: Any) -> str:
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


def _check_keys(mapping: Mapping[Any, Any], allowed: Iterable[str], path: str) -> None:
    allowed = tuple(allowed)
    for key in mapping:
        if key in allowed:
            continue
        if not isinstance(key, str):
            raise PolicyError(f"{path or 'policy'}: key {_show(key)} is not a string")
        from difflib import get_close_matches  # only on the error path

        close = get_close_matches(key, allowed, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise PolicyError(f"{_join(path, key)}: unknown key{hint}")


def _optional_mapping(value: Any, path: str) -> Mapping[str, Any]:
    """A top-level section; null (everything in it commented out) means empty."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: expected a mapping, got {_show(value)}")
    return value


def _mapping(value: Any, path: str, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise PolicyError(f"{path}: expected {what}, got {_show(value)}")
    return value


def _slack_id(value: Any, path: str, pattern: re.Pattern[str], hint: str) -> str:
    if not isinstance(value, str) or pattern.fullmatch(value) is None:
        raise PolicyError(f"{path}: expected {hint}, got {_show(value)}")
    return value


def _id_list(value: Any, path: str, pattern: re.Pattern[str], hint: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyError(f"{path}: expected a list of ids, got {_show(value)}")
    ids = [_slack_id(item, f"{path}[{i}]", pattern, hint) for i, item in enumerate(value)]
    return tuple(dict.fromkeys(ids))  # drop repeats, keep the order


def _channel(value: Any, path: str) -> str:
    return _slack_id(value, path, _CHANNEL_ID, _CHANNEL_HINT)


def _optional_channel(value: Any, path: str) -> str | None:
    return None if value is None else _channel(value, path)


def _approvers(value: Any, path: str) -> Approvers:
    data = _mapping(value, path, "a mapping with users and/or groups")
    _check_keys(data, ("users", "groups"), path)
    return Approvers(
        users=_id_list(data.get("users", []), f"{path}.users", _USER_ID, _USER_HINT),
        groups=_id_list(data.get("groups", []), f"{path}.groups", _GROUP_ID, _GROUP_HINT),
    )


def _escalation(value: Any, path: str) -> Escalation:
    data = _mapping(value, path, "a mapping with channel, mention_groups and/or approvers")
    _check_keys(data, ("channel", "mention_groups", "approvers"), path)
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
            raise PolicyError(f"{path}: expected an integer >= {minimum}, got {_show(value)}")
        if value > maximum:
            raise PolicyError(f"{path}: expected an integer <= {maximum}, got {_show(value)}")
        return value

    return check


def _duration(value: Any, path: str) -> int:
    seconds = parse_duration(value, path)
    if seconds > MAX_DURATION:
        raise PolicyError(
            f"{path}: a duration must be at most 365d (a workflow runs a year at most), "
            f"got {_show(value)}"
        )
    return seconds


def _boolean(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise PolicyError(f"{path}: expected true or false, got {_show(value)}")
    return value


def _choice(*choices: str) -> Callable[[Any, str], str]:
    def check(value: Any, path: str) -> str:
        if not isinstance(value, str) or value not in choices:
            expected = " or ".join(repr(choice) for choice in choices)
            raise PolicyError(f"{path}: expected {expected}, got {_show(value)}")
        return value

    return check


def _announce(value: Any, path: str) -> tuple[str, ...]:
    if not isinstance(value, list | tuple):
        raise PolicyError(
            f"{path}: expected a list of {', '.join(ANNOUNCE_EVENTS)}, got {_show(value)}"
        )
    for index, item in enumerate(value):
        if not isinstance(item, str) or item not in ANNOUNCE_EVENTS:
            raise PolicyError(
                f"{path}[{index}]: expected one of {', '.join(ANNOUNCE_EVENTS)}, got {_show(item)}"
            )
    return tuple(dict.fromkeys(value))


#: The largest count a policy may set: far above any real one (an integer too long to
#: print cannot even be stored with the approval).
MAX_COUNT = 1000
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
}
assert set(_VALIDATORS) == set(POLICY_KEYS)


def _settings(data: Mapping[str, Any], path: str) -> dict[str, Any]:
    """Validate the policy keys of ``defaults`` or a rule; values get their Rules types."""
    _check_keys(data, POLICY_KEYS, path)
    return {key: _VALIDATORS[key](value, _join(path, key)) for key, value in data.items()}


def _people(value: Any) -> dict[str, str]:
    data = _optional_mapping(value, "people")
    people: dict[str, str] = {}
    for key, user in data.items():
        if not isinstance(key, str) or not key.strip():
            raise PolicyError(
                f"people: key {_show(key)} must be a non-empty string "
                "(a commit email or an IAM principal ARN)"
            )
        people[key] = _slack_id(user, f"people[{key!r}]", _USER_ID, _USER_HINT)
    return people


def _glob(value: Any, path: str) -> str:
    if not isinstance(value, str) or not value:
        raise PolicyError(f'{path}: expected a non-empty glob, like "prod-*", got {_show(value)}')
    return value


def _pipelines(value: Any) -> tuple[tuple[dict[str, str], dict[str, Any]], ...]:
    if value is None:
        return ()
    if not isinstance(value, list | tuple):
        raise PolicyError(f"pipelines: expected a list of rules, got {_show(value)}")
    rules = []
    for index, item in enumerate(value):
        path = f"pipelines[{index}]"
        data = _mapping(item, path, "a rule (a mapping with match: and policy keys)")
        _check_keys(data, (*_RULE_SELECTORS, *POLICY_KEYS), path)
        if "match" not in data:
            raise PolicyError(f'{path}: missing match (a glob on the pipeline name, like "prod-*")')
        selectors = {
            key: _glob(data[key], f"{path}.{key}") for key in _RULE_SELECTORS if key in data
        }
        overrides = {key: value for key, value in data.items() if key not in _RULE_SELECTORS}
        rules.append((selectors, _settings(overrides, path)))
    return tuple(rules)


def _matches(
    selectors: Mapping[str, str], pipeline: str, stage: str | None, action: str | None
) -> bool:
    if not fnmatchcase(pipeline, selectors["match"]):
        return False
    for key, name in (("stage", stage), ("action", action)):
        glob = selectors.get(key)
        if glob is not None and (name is None or not fnmatchcase(name, glob)):
            return False
    return True


def _label(index: int, selectors: Mapping[str, str]) -> str:
    """How errors and the audit trail name a rule: pipelines[0] (match "prod-*")."""
    parts = ", ".join(f'{key} "{selectors[key]}"' for key in _RULE_SELECTORS if key in selectors)
    return f"pipelines[{index}] ({parts})"


def _check_complete(policy: Policy) -> None:
    """Every rule, merged over defaults, must be able to reach a decision."""
    catch_all = any(
        set(selectors) == {"match"} and set(selectors["match"]) == {"*"}
        for selectors, _ in policy.pipelines
    )
    if not catch_all:  # a pipeline that matches no rule gets defaults alone
        _check_rules(policy.defaults, "defaults", "set it in defaults")
    for index, (selectors, overrides) in enumerate(policy.pipelines):
        merged = {**policy.defaults, **overrides}
        _check_rules(merged, _label(index, selectors), "set it in the rule or in defaults")


def _check_rules(settings: Mapping[str, Any], name: str, where: str) -> None:
    if settings.get("channel") is None:
        raise PolicyError(f"{name}: no channel ({where})")
    approvers: Approvers | None = settings.get("approvers")
    if approvers is None or not (approvers.users or approvers.groups):
        raise PolicyError(f"{name}: no approvers (set approvers.users or approvers.groups)")
    required = settings.get("required_approvals", 1)
    if not approvers.groups and required > len(approvers.users):
        raise PolicyError(
            f"{name}: required_approvals is {required} but approvers lists only "
            f"{len(approvers.users)} user(s) and no groups, so no request could be approved"
        )


def _yaml_problem(error: Exception) -> str:
    """One line: where and what, without PyYAML's '<unicode string>' and source excerpt."""
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or problem is None:
        return " ".join(str(error).split())
    context = getattr(error, "context", None)
    what = f"{context}: {problem}" if context else problem
    return f"line {mark.line + 1}, column {mark.column + 1}: {what}"


def _strict_loader() -> type:
    """A yaml.SafeLoader that rejects a key repeated in one mapping.

    Plain ``safe_load`` keeps the last of two ``approvers:`` silently; in a policy that
    decides who may approve production, that must be an error. Merge keys (``<<: *x``)
    still override as YAML defines.
    """
    import yaml

    class StrictLoader(yaml.SafeLoader):
        pass

    def construct_mapping(loader: StrictLoader, node: yaml.MappingNode) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag.endswith(":merge"):
                continue
            key = loader.construct_object(key_node)
            if key in seen:
                line = key_node.start_mark.line + 1
                raise PolicyError(f"policy: line {line}: duplicate key {_show(key)}")
            seen.add(key)
        return loader.construct_mapping(node)

    StrictLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
        construct_mapping,
    )
    return StrictLoader


@functools.cache
def shipped_policy(path: str) -> Policy:
    """The policy shipped with the functions (a layer), loaded on first use and kept."""
    return load_policy_file(path)
