"""The rules one approval runs under: who decides, where, how many, and the deadline.

Resolved from the policy when a request starts (approval_gate.policy) and stored with the
approval, so a click, a reminder or the deadline reads them back without the policy: this
module is what those functions import, and it stays small (no loader, no validation).
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple, Self

ANNOUNCE_EVENTS: tuple[str, ...] = (
    "started",
    "succeeded",
    "failed",
    "stopped",
    "superseded",
    "stage",
    "action",
)
UNKNOWN_AUTHOR_CHOICES: tuple[str, ...] = ("allow", "block")
ON_DEADLINE_CHOICES: tuple[str, ...] = ("reject", "approve")


class Approvers(NamedTuple):
    """Who may decide: Slack user ids and user-group ids."""

    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"users": list(self.users), "groups": list(self.groups)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(users=tuple(data.get("users", ())), groups=tuple(data.get("groups", ())))


STEPS_ORDER_CHOICES: tuple[str, ...] = ("sequence", "any")
#: The one step of a rule without `steps` (DESIGN §8.1).
SINGLE_STEP = "Approvers"


class Step(NamedTuple):
    """One approval step: who may approve in it, and how many distinct approvals it needs."""

    name: str
    approvers: Approvers
    required_approvals: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "approvers": self.approvers.to_dict(),
            "required_approvals": self.required_approvals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            name=str(data["name"]),
            approvers=Approvers.from_dict(data["approvers"]),
            required_approvals=int(data.get("required_approvals", 1)),
        )


class Escalation(NamedTuple):
    """Where a request goes once reminders have run out, and who may decide then."""

    channel: str | None = None
    mention_groups: tuple[str, ...] = ()
    approvers: Approvers | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "mention_groups": list(self.mention_groups),
            "approvers": None if self.approvers is None else self.approvers.to_dict(),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        approvers = data.get("approvers")
        return cls(
            channel=data.get("channel"),
            mention_groups=tuple(data.get("mention_groups", ())),
            approvers=None if approvers is None else Approvers.from_dict(approvers),
        )


#: The days a deploy window may list, in the order of ``datetime.weekday()``.
WEEKDAYS: tuple[str, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
OUTSIDE_WINDOW_CHOICES: tuple[str, ...] = ("hold", "reject")


def format_clock(seconds: int) -> str:
    """A time of day: 32400 -> ``09:00``, 32405 -> ``09:00:05``."""
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours:02d}:{minutes:02d}" + (f":{secs:02d}" if secs else "")


def _clock_seconds(text: str) -> int:
    """The inverse of :func:`format_clock` for a stored, already checked value."""
    hours, minutes, *secs = (int(part) for part in text.split(":"))
    return hours * 3600 + minutes * 60 + (secs[0] if secs else 0)


class DeployWindow(NamedTuple):
    """When deploys may go on, by the wall clock of the policy's time zone (DESIGN §8.2).

    ``start`` and ``end`` are seconds after local midnight (the policy's ``from`` and
    ``to``); ``end < start`` means the window ends the next day, after midnight.
    """

    days: tuple[str, ...]
    start: int
    end: int

    @property
    def crosses_midnight(self) -> bool:
        return self.end < self.start

    def to_dict(self) -> dict[str, Any]:
        return {
            "days": list(self.days),
            "from": format_clock(self.start),
            "to": format_clock(self.end),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            days=tuple(data["days"]),
            start=_clock_seconds(data["from"]),
            end=_clock_seconds(data["to"]),
        )


class Freeze(NamedTuple):
    """A time when deploys may not go on: one-off (``begins``..``ends``, aware instants)
    or recurring (begins at each match of ``cron`` in the policy's time zone and lasts
    ``duration`` seconds)."""

    reason: str
    begins: datetime | None = None
    ends: datetime | None = None
    cron: str | None = None
    duration: int = 0

    def to_dict(self) -> dict[str, Any]:
        if self.cron is not None:
            return {"cron": self.cron, "duration": self.duration, "reason": self.reason}
        assert self.begins is not None and self.ends is not None
        return {
            "from": self.begins.isoformat(),
            "to": self.ends.isoformat(),
            "reason": self.reason,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        if "cron" in data:
            return cls(
                reason=str(data["reason"]), cron=str(data["cron"]), duration=int(data["duration"])
            )
        return cls(
            reason=str(data["reason"]),
            begins=datetime.fromisoformat(data["from"]),
            ends=datetime.fromisoformat(data["to"]),
        )


class FreezeOverride(NamedTuple):
    """Who may deploy during a freeze or outside a window, and how many of them must."""

    approvers: Approvers
    required_approvals: int = 1

    def to_dict(self) -> dict[str, Any]:
        return {
            "approvers": self.approvers.to_dict(),
            "required_approvals": self.required_approvals,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            approvers=Approvers.from_dict(data["approvers"]),
            required_approvals=int(data.get("required_approvals", 1)),
        )


#: CloudWatch alarm states (DescribeAlarms' StateValue).
ALARM_STATES = ("OK", "ALARM", "INSUFFICIENT_DATA")


class Checks(NamedTuple):
    """Health checks that gate the approval (DESIGN §8.3): CloudWatch alarms (names; a
    trailing ``*`` makes a name prefix), the alarm states that block, and check functions
    (Lambda function ARNs), and what an approval reached while one fails does."""

    alarms: tuple[str, ...] = ()
    alarm_states: tuple[str, ...] = ("ALARM",)
    functions: tuple[str, ...] = ()
    on_failing: str = "hold"  # "hold" | "reject"

    def to_dict(self) -> dict[str, Any]:
        return {
            "alarms": list(self.alarms),
            "alarm_states": list(self.alarm_states),
            "functions": list(self.functions),
            "on_failing": self.on_failing,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            alarms=tuple(data.get("alarms", ())),
            alarm_states=tuple(data.get("alarm_states", ("ALARM",))),
            functions=tuple(data.get("functions", ())),
            on_failing=str(data.get("on_failing", "hold")),
        )


class ApproverInput(NamedTuple):
    """A value each approver gives with an approval (DESIGN §8.4): free text, checked
    against ``pattern`` when set, or one of ``options`` (a select); ``id`` is the modal's
    block and action id and the key in the decision record's ``votes[].inputs``."""

    id: str
    label: str
    pattern: str | None = None
    options: tuple[str, ...] = ()
    required: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "label": self.label,
            "pattern": self.pattern,
            "options": list(self.options),
            "required": self.required,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        return cls(
            id=str(data["id"]),
            label=str(data["label"]),
            pattern=data.get("pattern"),
            options=tuple(data.get("options", ())),
            required=bool(data.get("required", False)),
        )


class Rules(NamedTuple):
    """The resolved policy for one pipeline, stage and action (stored with each approval)."""

    channel: str
    approvers: Approvers
    required_approvals: int = 1
    allow_self_approval: bool = False
    unknown_author: str = "allow"  # "allow" | "block"
    require_reason_on_reject: bool = True
    ask_comment_on_approve: bool = False
    reminder_every: int = 4 * 3600  # seconds
    escalate_after_reminders: int = 2  # 0 = never
    escalation: Escalation = Escalation()
    deadline: int = 24 * 3600  # seconds
    deadline_margin: int = 600  # seconds
    on_deadline: str = "reject"  # "reject" | "approve"
    status_channel: str | None = None  # None: the same as channel
    announce: tuple[str, ...] = ANNOUNCE_EVENTS
    rule: str = "defaults"  # which rule matched, for the audit trail
    #: Approval steps (DESIGN §8.1); empty: one step, `Approvers`, of `approvers` and
    #: `required_approvals`. With steps, `approvers` holds everyone any step lists (who may
    #: reject, and whom a request mentions) and `required_approvals` their sum.
    steps: tuple[Step, ...] = ()
    steps_order: str = "sequence"  # "sequence" | "any"
    #: When deploys may go on (DESIGN §8.2): an IANA zone for the windows and cron freezes;
    #: no windows = any time; no freezes = never frozen.
    timezone: str = "UTC"
    deploy_windows: tuple[DeployWindow, ...] = ()
    freezes: tuple[Freeze, ...] = ()
    outside_window: str = "hold"  # "hold" | "reject"
    freeze_override: FreezeOverride | None = None  # None: nobody may override
    allow_scheduling: bool = False
    #: Health checks (DESIGN §8.3); None: none.
    checks: Checks | None = None
    #: Slack's confirm dialog on Approve, and the inputs each approver gives (DESIGN §8.4).
    confirm_approve: bool = True
    inputs: tuple[ApproverInput, ...] = ()
    #: The language of every text people read (DESIGN §8.5): approval_gate.i18n.LANGUAGES.
    language: str = "en"

    @property
    def effective_steps(self) -> tuple[Step, ...]:
        """The steps an approval goes through: the policy's, or the one implicit step."""
        if self.steps:
            return self.steps
        return (Step(SINGLE_STEP, self.approvers, self.required_approvals),)

    @property
    def effective_status_channel(self) -> str:
        return self.status_channel or self.channel

    def may_decide(self, user_id: str, escalated: bool = False) -> bool:
        """Is this user listed by id? Group membership is resolved by the caller."""
        if user_id in self.approvers.users:
            return True
        extra = self.escalation.approvers
        return escalated and extra is not None and user_id in extra.users

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: durations in seconds, tuples as lists, nested values as dicts."""
        return {
            "channel": self.channel,
            "approvers": self.approvers.to_dict(),
            "required_approvals": self.required_approvals,
            "allow_self_approval": self.allow_self_approval,
            "unknown_author": self.unknown_author,
            "require_reason_on_reject": self.require_reason_on_reject,
            "ask_comment_on_approve": self.ask_comment_on_approve,
            "reminder_every": self.reminder_every,
            "escalate_after_reminders": self.escalate_after_reminders,
            "escalation": self.escalation.to_dict(),
            "deadline": self.deadline,
            "deadline_margin": self.deadline_margin,
            "on_deadline": self.on_deadline,
            "status_channel": self.status_channel,
            "announce": list(self.announce),
            "rule": self.rule,
            "steps": [step.to_dict() for step in self.steps],
            "steps_order": self.steps_order,
            "timezone": self.timezone,
            "deploy_windows": [window.to_dict() for window in self.deploy_windows],
            "freezes": [freeze.to_dict() for freeze in self.freezes],
            "outside_window": self.outside_window,
            "freeze_override": (
                None if self.freeze_override is None else self.freeze_override.to_dict()
            ),
            "allow_scheduling": self.allow_scheduling,
            "checks": None if self.checks is None else self.checks.to_dict(),
            "confirm_approve": self.confirm_approve,
            "inputs": [item.to_dict() for item in self.inputs],
            "language": self.language,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        """The inverse of :meth:`to_dict`.

        A key missing from ``data`` (an item stored by an older release) takes the built-in
        default; a key this release does not know (a newer release's item) is ignored.
        """
        known = set(cls._fields)
        values = {key: value for key, value in data.items() if key in known}
        values["approvers"] = Approvers.from_dict(data["approvers"])
        if "escalation" in values:
            values["escalation"] = Escalation.from_dict(values["escalation"])
        if "announce" in values:
            values["announce"] = tuple(values["announce"])
        if "steps" in values:
            values["steps"] = tuple(Step.from_dict(step) for step in values["steps"])
        if "deploy_windows" in values:
            values["deploy_windows"] = tuple(
                DeployWindow.from_dict(window) for window in values["deploy_windows"]
            )
        if "freezes" in values:
            values["freezes"] = tuple(Freeze.from_dict(freeze) for freeze in values["freezes"])
        if values.get("freeze_override") is not None:
            values["freeze_override"] = FreezeOverride.from_dict(values["freeze_override"])
        if values.get("checks") is not None:
            values["checks"] = Checks.from_dict(values["checks"])
        if "inputs" in values:
            values["inputs"] = tuple(ApproverInput.from_dict(item) for item in values["inputs"])
        return cls(**values)
