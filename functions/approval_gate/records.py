"""The approval record: its statuses, votes, hold and override, and the decision record.

One approval request (one CodePipeline approval token) as the approvals table keeps it
(approval_gate.store reads and writes it). The CodePipeline token and the task tokens are
never in a ``repr``, a decision record or a Slack message.
"""

from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, NamedTuple

from approval_gate.checks import CheckResult
from approval_gate.clock import iso
from approval_gate.revisions import Revision, Since
from approval_gate.rules import Rules
from approval_gate.steps import StepProgress, progress

PENDING = "PENDING"
#: Approved, but deploys may not go on yet: the workflow holds (DESIGN §8.2).
HELD = "HELD"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
DECIDED_ELSEWHERE = "DECIDED_ELSEWHERE"
FINAL_STATUSES = (APPROVED, REJECTED, EXPIRED, DECIDED_ELSEWHERE)


class AlreadyDecided(Exception):
    """A conditional write lost: somebody (or something) decided first."""

    def __init__(self, approval: "Approval") -> None:
        super().__init__(f"approval {approval.approval_id} is already {approval.status}")
        self.approval = approval


class Vote(NamedTuple):
    """One approver's vote, as recorded on the approval."""

    user_id: str
    name: str
    vote: str  # "approve" | "reject"
    at: datetime
    reason: str | None = None
    #: The approval step an approve vote counted in (DESIGN §8.1); None: the only step.
    step: str | None = None
    #: "Approve for later": the earliest time this approver wants the deploy to go on.
    deploy_at: datetime | None = None
    #: What the approver gave in the Approve modal (DESIGN §8.4): the policy's input ids
    #: to the strings given; empty without inputs.
    inputs: Mapping[str, str] = MappingProxyType({})

    def record(self) -> dict[str, Any]:
        """The vote in the decision record's ``votes`` (DESIGN §8.4)."""
        return {
            "user": self.user_id,
            "vote": self.vote,
            "inputs": dict(self.inputs),
            "comment": self.reason,
            "at": iso(self.at),
        }


#: Why a hold waits for the approvers' own time, and for the health checks to pass (the
#: other causes, a window and a freeze, are windows.WHY_*).
WHY_SCHEDULE = "schedule"
WHY_CHECKS = "checks"


class Hold(NamedTuple):
    """Why and until when an approval waits before it is reported (DESIGN §8.2)."""

    until: datetime
    why: str  # "window" | "freeze" | "schedule" | "checks"
    reason: str | None = None
    #: The status the hold ends in: APPROVED (approvers), or EXPIRED (the policy approved
    #: at the deadline, `on_deadline: approve`). Kept in the item, not in the record.
    then: str = "APPROVED"

    def record(self) -> dict[str, Any]:
        return {"until": iso(self.until), "why": self.why, "reason": self.reason}

    @property
    def for_checks(self) -> bool:
        """A hold for the health checks: its `until` is only its limit (DESIGN §8.3)."""
        return self.why == WHY_CHECKS

    def item(self) -> dict[str, Any]:
        """How the approvals table keeps it: the record, and the status it ends in."""
        return {**self.record(), "then": self.then}


class Override(NamedTuple):
    """Who deployed a held approval now, during a freeze or outside a window, and why."""

    by: tuple[str, ...]
    reason: str

    def record(self) -> dict[str, Any]:
        return {"by": list(self.by), "reason": self.reason}


class ChecksLine(NamedTuple):
    """The request's thread line that says what the last alarm changes did: one line,
    edited while changes come within a minute of each other (a flapping alarm)."""

    ts: str
    since: datetime
    changes: int

    def item(self) -> dict[str, Any]:
        return {"ts": self.ts, "since": iso(self.since), "changes": self.changes}


#: The fields no ``repr`` of an approval shows: CodePipeline's token and the task tokens.
SECRET_FIELDS = frozenset({"token", "task_token", "hold_token"})


class Approval(NamedTuple):
    """The approval record (one per CodePipeline approval token); see docs/architecture.md.

    Immutable; a changed copy is ``approval._replace(field=value)``. A NamedTuple rather
    than a dataclass: with 46 fields, the dataclass cost every handler ~1.3 ms of its cold
    start building its methods (docs/performance.md). Being a tuple, it is JSON as it
    stands, tokens included: never hand one to ``json.dumps`` or a log line's ``extra``;
    write ``decision_record()`` (or the table's item, approval_items.py).
    """

    approval_id: str
    pipeline: str
    stage: str
    action: str
    pipeline_execution_id: str | None
    region: str
    token: str
    rules: Rules
    requested_at: datetime
    deadline_at: datetime
    expires: datetime
    custom_data: str | None = None
    external_entity_link: str | None = None
    console_link: str | None = None
    status: str = PENDING
    task_token: str | None = None
    channel: str | None = None
    message_ts: str | None = None
    votes: tuple[Vote, ...] = ()
    decided_by: tuple[str, ...] = ()
    reason: str | None = None
    decided_at: datetime | None = None
    note: str | None = None
    reminders: int = 0
    escalated: bool = False
    closed_at: datetime | None = None
    #: When and why the request went out by SNS because Slack could not be asked.
    fallback_at: datetime | None = None
    fallback_reason: str | None = None
    #: Who made the change (commit author emails, IAM principals) and their Slack users.
    authors: tuple[str, ...] = ()
    author_users: tuple[str, ...] = ()
    change: str | None = None
    #: Set when the approval was held (kept after the hold ends, for the audit); the
    #: hold's own task token; when the outcome went to CodePipeline; the override, with
    #: the override votes cast so far (a Vote each, vote "deploy_now").
    held: Hold | None = None
    hold_token: str | None = None
    reported_at: datetime | None = None
    override: Override | None = None
    overrides: tuple[Vote, ...] = ()
    #: The health checks' results as last recorded (DESIGN §8.3): a click is judged by them.
    checks: tuple[CheckResult, ...] = ()
    #: How many times `checks` was written: a live update writes only over what it read.
    checks_version: int = 0
    #: The checks ran just before the report and passed (the workflow reports it now).
    checked_at_report: bool = False
    #: The thread line of the last alarm changes, if one was posted.
    checks_line: ChecksLine | None = None
    #: What the run deploys, what the last approval through this stage and action
    #: deployed (None: a first deployment, or not known), the link comparing the two, and
    #: how the request words the changes (DESIGN §8.4; approval_gate.changes finds them).
    revisions: tuple[Revision, ...] = ()
    previous_revisions: tuple[Revision, ...] | None = None
    compare_url: str | None = None
    since: Since | None = None

    def __repr__(self) -> str:
        shown = (
            f"{k}={v!r}" for k, v in zip(self._fields, self, strict=True) if k not in SECRET_FIELDS
        )
        return f"Approval({', '.join(shown)})"

    @property
    def outcome(self) -> str | None:
        return None if self.status in (PENDING, HELD) else self.status.lower()

    def name_of(self, user_id: str) -> str:
        for vote in (*self.votes, *self.overrides):
            if vote.user_id == user_id:
                return vote.name
        return user_id

    def decision_record(self) -> dict[str, Any]:
        """The decision record of DESIGN §4: the execution output and the audit entry."""
        return {
            "approval_id": self.approval_id,
            "pipeline": self.pipeline,
            "stage": self.stage,
            "action": self.action,
            "pipeline_execution_id": self.pipeline_execution_id,
            "outcome": self.outcome,
            "decided_by": list(self.decided_by),
            "reason": self.reason,
            "requested_at": iso(self.requested_at),
            "decided_at": iso(self.decided_at) if self.decided_at else None,
            "reminders": self.reminders,
            "escalated": self.escalated,
            "steps": [state.record() for state in self.steps],
            "held": self.held.record() if self.held else None,
            "reported_at": iso(self.reported_at) if self.reported_at else None,
            "override": self.override.record() if self.override else None,
            "checks": [result.record() for result in self.checks],
            "revisions": [revision.record() for revision in self.revisions],
            "previous_revisions": [revision.record() for revision in self.previous_revisions]
            if self.previous_revisions is not None
            else None,
            "compare_url": self.compare_url,
            "votes": [vote.record() for vote in self.votes if vote.vote in ("approve", "reject")],
        }

    @property
    def steps(self) -> tuple[StepProgress, ...]:
        """Each approval step with who approved in it and when it completed."""
        return progress(self.rules, self.votes)
