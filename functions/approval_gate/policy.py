"""The approval policy: who decides, where, how many, and what happens at the deadline.

One YAML document (DESIGN §3), validated completely at load, so a bad policy fails the
deploy's tests rather than a production approval. Every error names the key path and the
bad value, e.g. ``pipelines[1].required_approvals: expected an integer >= 1, got 0``.

A pipeline rule replaces whole top-level keys of ``defaults`` (a rule's ``approvers``
replaces the default approvers, never widens them); ``defaults`` fill what a rule leaves
out; the built-in defaults of :class:`Rules` fill the rest. The first matching rule wins.
``steps`` and ``approvers`` + ``required_approvals`` are one group (DESIGN §8.1): a rule
that sets either side replaces the defaults' other side too.

PyYAML is imported only inside the loaders: this module is on every Lambda's cold start.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

from approval_gate.policy_fields import (
    RULE_SELECTORS,
    SINGLE_STEP_KEYS,
    PolicyError,
    check_keys,
    optional_mapping,
    people_map,
    pipeline_rules,
    rule_settings,
    show,
)
from approval_gate.rules import (
    Approvers,
    Checks,
    Escalation,
    Freeze,
    FreezeOverride,
    Rules,
    Step,
)

# Approvers, Escalation and Rules (what an approval stores and a click reads back) live in
# approval_gate.rules, which stays small for the functions that need no policy; PolicyError
# and the checks of each value live in approval_gate.policy_fields. These four are part of
# this module's interface too.
__all__ = [
    "Approvers",
    "Escalation",
    "Policy",
    "PolicyError",
    "Rules",
    "load_policy",
    "load_policy_file",
    "policy_channels",
    "policy_checks",
    "policy_ids",
    "shipped_policy",
]


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
                settings = _with_steps(_merge(self.defaults, overrides))
                return Rules(**{**settings, "rule": _label(index, selectors)})
        return Rules(**{**_with_steps(self.defaults), "rule": "defaults"})

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
                f"policy: expected a mapping with defaults, people and pipelines, got {show(doc)}"
            )
        check_keys(doc, ("defaults", "people", "pipelines"), "")
        defaults = rule_settings(optional_mapping(doc.get("defaults"), "defaults"), "defaults")
        people = people_map(doc.get("people"))
        pipelines = pipeline_rules(doc.get("pipelines"))
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
        steps: tuple[Step, ...] = settings.get("steps", ())
        override: FreezeOverride | None = settings.get("freeze_override")
        for listed in (
            approvers,
            escalation.approvers if escalation else None,
            *(step.approvers for step in steps),
            override.approvers if override else None,
        ):
            if listed is not None:
                users.update(listed.users)
                groups.update(listed.groups)
        if escalation is not None:
            groups.update(escalation.mention_groups)
    return users, groups


def policy_channels(policy: Policy) -> set[str]:
    """Every Slack channel id the policy names: each rule's ``channel`` and
    ``status_channel`` (the status feed) and its escalation's ``channel``."""
    channels: set[str] = set()
    for settings in (policy.defaults, *(overrides for _, overrides in policy.pipelines)):
        channels.update(
            value for key in ("channel", "status_channel") if (value := settings.get(key))
        )
        escalation: Escalation | None = settings.get("escalation")
        if escalation is not None and escalation.channel:
            channels.add(escalation.channel)
    return channels


def policy_checks(policy: Policy) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(every alarm name or ``prefix*``, every check function ARN) the policy names
    anywhere, each once, in the order they first appear (for IAM and the sandbox)."""
    alarms: dict[str, None] = {}
    functions: dict[str, None] = {}
    for settings in (policy.defaults, *(overrides for _, overrides in policy.pipelines)):
        checks: Checks | None = settings.get("checks")
        if checks is not None:
            alarms.update(dict.fromkeys(checks.alarms))
            functions.update(dict.fromkeys(checks.functions))
    return tuple(alarms), tuple(functions)


# --------------------------------------------------------------------------- internals


def _merge(defaults: Mapping[str, Any], overrides: Mapping[str, Any]) -> dict[str, Any]:
    """A rule over defaults: whole keys, with ``steps`` against approvers as one group."""
    if "steps" in overrides:
        dropped: tuple[str, ...] = SINGLE_STEP_KEYS
    elif any(key in overrides for key in SINGLE_STEP_KEYS):
        dropped = ("steps",)
    else:
        dropped = ()
    return {
        **{key: value for key, value in defaults.items() if key not in dropped},
        **overrides,
    }


def _with_steps(settings: Mapping[str, Any]) -> dict[str, Any]:
    """With steps: approvers = everyone any step lists (each once, in order), and
    required_approvals = the steps' sum (Rules.steps)."""
    steps: tuple[Step, ...] = settings.get("steps", ())
    if not steps:
        return dict(settings)
    users = tuple(dict.fromkeys(user for step in steps for user in step.approvers.users))
    groups = tuple(dict.fromkeys(group for step in steps for group in step.approvers.groups))
    return {
        **settings,
        "approvers": Approvers(users=users, groups=groups),
        "required_approvals": sum(step.required_approvals for step in steps),
    }


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
    parts = ", ".join(f'{key} "{selectors[key]}"' for key in RULE_SELECTORS if key in selectors)
    return f"pipelines[{index}] ({parts})"


def _check_complete(policy: Policy) -> None:
    """Every rule, merged over defaults, must be able to reach a decision."""
    catch_all = any(
        set(selectors) == {"match"} and set(selectors["match"]) == {"*"}
        for selectors, _ in policy.pipelines
    )
    if not catch_all:  # a pipeline that matches no rule gets defaults alone
        _check_rules(_with_steps(policy.defaults), "defaults", "set it in defaults")
    for index, (selectors, overrides) in enumerate(policy.pipelines):
        merged = _with_steps(_merge(policy.defaults, overrides))
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
    _check_deploys_may_go_on(settings, name)


def _check_deploys_may_go_on(settings: Mapping[str, Any], name: str) -> None:
    """Refuse windows and recurring freezes that together leave no time to deploy.

    A one-off freeze ends at its ``to``, and each window opens every week it lists, so only
    recurring freezes can shut deploys out for good (say "0 0 * * *" lasting 24h); they
    are looked at over a year from now, where every cron and daylight-saving rule recurs.
    """
    freezes: tuple[Freeze, ...] = settings.get("freezes", ())
    recurring = tuple(freeze for freeze in freezes if freeze.cron is not None)
    if not recurring:
        return
    from datetime import UTC, datetime, timedelta

    from approval_gate.windows import next_allowed  # only for a policy with cron freezes

    now = datetime.now(UTC)
    answer = next_allowed(
        now,
        timezone=settings.get("timezone", "UTC"),
        windows=settings.get("deploy_windows", ()),
        freezes=recurring,
        limit=now + timedelta(days=366),
    )
    if answer.at is None:
        raise PolicyError(
            f"{name}: freezes: the recurring freezes (with deploy_windows, if any) leave no "
            "time in the next year when deploys may go on"
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
                raise PolicyError(f"policy: line {line}: duplicate key {show(key)}")
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
