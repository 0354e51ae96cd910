"""The approvals table: one item per approval request, status changes by conditional write.

The item holds the CodePipeline token and the current task token; neither is ever logged,
returned in a decision record or sent to Slack (both are excluded from ``repr``). How the
record's fields are written as item attributes is approval_gate.approval_items.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from botocore.exceptions import ClientError

from approval_gate.approval_items import approval_fields, expression_values, new_item, vote_item
from approval_gate.clock import iso
from approval_gate.rules import Rules
from approval_gate.steps import StepProgress, progress
from approval_gate.text import MAX_SUMMARY, one_line

PENDING = "PENDING"
APPROVED = "APPROVED"
REJECTED = "REJECTED"
EXPIRED = "EXPIRED"
DECIDED_ELSEWHERE = "DECIDED_ELSEWHERE"
FINAL_STATUSES = (APPROVED, REJECTED, EXPIRED, DECIDED_ELSEWHERE)

#: The index on the pipeline execution id (template.yaml names it the same).
EXECUTION_INDEX = "by-pipeline-execution"


class AlreadyDecided(Exception):
    """A conditional write lost: somebody (or something) decided first."""

    def __init__(self, approval: Approval) -> None:
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


@dataclass(frozen=True)
class Approval:
    """The approval record (one per CodePipeline approval token); see docs/architecture.md."""

    approval_id: str
    pipeline: str
    stage: str
    action: str
    pipeline_execution_id: str | None
    region: str
    token: str = field(repr=False)
    rules: Rules
    requested_at: datetime
    deadline_at: datetime
    expires: datetime
    custom_data: str | None = None
    external_entity_link: str | None = None
    console_link: str | None = None
    status: str = PENDING
    task_token: str | None = field(default=None, repr=False)
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

    @property
    def outcome(self) -> str | None:
        return None if self.status == PENDING else self.status.lower()

    def name_of(self, user_id: str) -> str:
        for vote in self.votes:
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
        }

    @property
    def steps(self) -> tuple[StepProgress, ...]:
        """Each approval step with who approved in it and when it completed."""
        return progress(self.rules, self.votes)


def _from_item(item: Mapping[str, Any]) -> Approval:
    """The approval a table item holds (approval_items reads the fields by name)."""
    fields = approval_fields(item)
    votes = tuple(Vote(**vote) for vote in fields.pop("votes"))
    return Approval(**fields, votes=votes)


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ApprovalStore:
    """Reads and writes approvals; every status change is a conditional write."""

    def __init__(self, table_name: str, client: Any, retention_days: int = 400) -> None:
        self._table = table_name
        self._client = client
        self._retention_days = retention_days

    def create(self, approval: Approval) -> bool:
        """Store a new request; False when it exists already (a duplicate delivery)."""
        try:
            self._client.put_item(
                TableName=self._table,
                Item=new_item(approval, self._retention_days),
                ConditionExpression="attribute_not_exists(approval_id)",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def get(self, approval_id: str) -> Approval | None:
        response = self._client.get_item(
            TableName=self._table,
            Key={"approval_id": {"S": approval_id}},
            ConsistentRead=True,
        )
        item = response.get("Item")
        return _from_item(item) if item else None

    def _update(
        self,
        approval_id: str,
        expression: str,
        condition: str | None,
        names: dict[str, str] | None = None,
        **values: Any,
    ) -> Approval:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": {"approval_id": {"S": approval_id}},
            "UpdateExpression": expression,
            "ReturnValues": "ALL_NEW",
        }
        names = dict(names or {})
        if "#status" in expression or "#status" in (condition or ""):
            names["#status"] = "status"
        if names:
            kwargs["ExpressionAttributeNames"] = names
        if values:
            kwargs["ExpressionAttributeValues"] = expression_values(**values)
        if condition:
            kwargs["ConditionExpression"] = condition
        else:
            kwargs["ConditionExpression"] = "attribute_exists(approval_id)"
        try:
            response = self._client.update_item(**kwargs)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                current = self.get(approval_id)
                if current is None:
                    raise KeyError(approval_id) from None
                raise AlreadyDecided(current) from None
            raise
        return _from_item(response["Attributes"])

    def all(self) -> list[Approval]:
        """Every approval in the table: a scan, for the sandbox and audits, never a hot path.

        The status feed's items share the table; only approvals carry a CodePipeline token.
        """
        approvals: list[Approval] = []
        paginator = self._client.get_paginator("scan")
        for page in paginator.paginate(
            TableName=self._table,
            FilterExpression="attribute_exists(#token)",
            ExpressionAttributeNames={"#token": "token"},
            ConsistentRead=True,
        ):
            approvals.extend(_from_item(item) for item in page.get("Items", []))
        return approvals

    def by_pipeline_execution(self, pipeline_execution_id: str) -> list[Approval]:
        """The approvals a pipeline execution asked for (through the execution index)."""
        response = self._client.query(
            TableName=self._table,
            IndexName=EXECUTION_INDEX,
            KeyConditionExpression="pipeline_execution_id = :id",
            ExpressionAttributeValues={":id": {"S": pipeline_execution_id}},
        )
        found = [self.get(item["approval_id"]["S"]) for item in response.get("Items", [])]
        return [approval for approval in found if approval is not None]

    def save_task_token(self, approval_id: str, task_token: str) -> Approval:
        """Store the token of the task now waiting; only while the request is open."""
        return self._update(
            approval_id,
            "SET task_token = :token",
            "#status = :pending",
            token=task_token,
            pending=PENDING,
        )

    def save_message(self, approval_id: str, channel: str, ts: str) -> Approval:
        return self._update(
            approval_id,
            "SET channel = :channel, message_ts = :ts",
            None,
            channel=channel,
            ts=ts,
        )

    def decide(
        self,
        approval_id: str,
        *,
        status: str,
        votes: tuple[Vote, ...] | None = None,
        decided_by: tuple[str, ...] | None = None,
        reason: str | None,
        at: datetime,
        note: str | None = None,
    ) -> Approval:
        """Move PENDING → status exactly once; AlreadyDecided if anything decided first.

        With `votes`, these become the whole vote record and their users the deciders;
        with `decided_by`, the votes already recorded (add_vote) stay as they are.
        """
        expression = "SET #status = :status, decided_by = :by, decided_at = :at"
        values: dict[str, Any] = {"status": status, "at": iso(at), "pending": PENDING}
        if votes is not None:
            expression += ", votes = :votes"
            values["votes"] = {vote.user_id: vote_item(vote) for vote in votes}
            values["by"] = [vote.user_id for vote in votes]
        else:
            values["by"] = list(decided_by or ())
        expression += (", reason = :reason" if reason else "") + (", note = :note" if note else "")
        if reason:
            values["reason"] = reason
        if note:
            values["note"] = note
        return self._update(approval_id, expression, "#status = :pending", **values)

    def decide_with_vote(
        self,
        approval_id: str,
        vote: Vote,
        *,
        votes_seen: int,
        status: str,
        decided_by: tuple[str, ...],
        at: datetime,
    ) -> Approval:
        """Record the deciding vote and the decision in one conditional write.

        Only while the request is open, this person has not voted and the votes are still
        the `votes_seen` the caller counted (votes are only ever added, so an unchanged
        count means unchanged votes). AlreadyDecided otherwise, carrying the item, so the
        caller can tell decided, voted already and "someone voted meanwhile" apart.
        """
        expression = (
            "SET votes.#user = :vote, #status = :status, decided_by = :by, decided_at = :at"
        )
        values: dict[str, Any] = {
            "vote": vote_item(vote),
            "status": status,
            "by": list(decided_by),
            "at": iso(at),
            "pending": PENDING,
            "seen": votes_seen,
        }
        if vote.reason:
            expression += ", reason = :reason"
            values["reason"] = vote.reason
        return self._update(
            approval_id,
            expression,
            "#status = :pending AND attribute_not_exists(votes.#user) AND size(votes) = :seen",
            names={"#user": vote.user_id},
            **values,
        )

    def add_vote(self, approval_id: str, vote: Vote, *, votes_seen: int | None = None) -> Approval:
        """Record one person's vote, once, while the request is open; with `votes_seen`,
        only while its votes are still the ones the caller counted (a step vote: the step
        it counts in was chosen from them, and a vote cast meanwhile could have filled it).

        AlreadyDecided (carrying the item) otherwise: the item's status and votes tell why.
        """
        condition = "#status = :pending AND attribute_not_exists(votes.#user)"
        values: dict[str, Any] = {"vote": vote_item(vote), "pending": PENDING}
        if votes_seen is not None:
            condition += " AND size(votes) = :seen"
            values["seen"] = votes_seen
        return self._update(
            approval_id,
            "SET votes.#user = :vote",
            condition,
            names={"#user": vote.user_id},
            **values,
        )

    def record_reminder(self, approval_id: str) -> Approval:
        """One more reminder sent, while the request is open; AlreadyDecided otherwise."""
        return self._update(
            approval_id,
            "SET reminders = reminders + :one",
            "#status = :pending",
            one=1,
            pending=PENDING,
        )

    def mark_escalated(self, approval_id: str) -> bool:
        """Escalate once: True for the one caller that flips the flag, False for the rest."""
        try:
            self._update(
                approval_id,
                "SET escalated = :yes",
                "#status = :pending AND escalated = :no",
                yes=True,
                no=False,
                pending=PENDING,
            )
        except AlreadyDecided:
            return False
        return True

    def mark_fallback(self, approval_id: str, *, at: datetime, reason: str) -> bool:
        """Note that the request went out by SNS because Slack could not be asked: True for
        the one caller that notes it first (so the notification goes out once)."""
        try:
            self._update(
                approval_id,
                "SET fallback_at = :at, fallback_reason = :reason",
                "attribute_exists(approval_id) AND attribute_not_exists(fallback_at)",
                at=iso(at),
                reason=reason,
            )
        except AlreadyDecided:
            return False
        return True

    def clear_fallback(self, approval_id: str) -> None:
        """Undo mark_fallback when the notification could not be sent."""
        self._update(approval_id, "REMOVE fallback_at, fallback_reason", None)

    def clear_escalated(self, approval_id: str) -> None:
        """Undo mark_escalated when the escalation could not be posted."""
        self._update(approval_id, "SET escalated = :no", None, no=False)

    def close(
        self, approval_id: str, *, at: datetime, status: str | None = None, note: str | None = None
    ) -> Approval:
        """Mark the request closed (once); optionally correct its final status.

        A second close (a retried Lambda) changes nothing and returns the item as it is.
        """
        parts = ["closed_at = :closed"]
        values: dict[str, Any] = {"closed": iso(at)}
        removals = ""
        if status:
            parts.append("#status = :status")
            values["status"] = status
        if status == DECIDED_ELSEWHERE:
            # The gate's own decision did not count: the record says nobody decided in
            # Slack, when the gate learnt it, and why (the votes stay, for the audit).
            parts += ["decided_by = :nobody", "decided_at = :closed"]
            values["nobody"] = []
            removals = " REMOVE reason"
        if note:
            parts.append("note = :note")
            values["note"] = note
        try:
            return self._update(
                approval_id,
                "SET " + ", ".join(parts) + removals,
                "attribute_exists(approval_id) AND attribute_not_exists(closed_at)",
                **values,
            )
        except AlreadyDecided as already:
            return already.approval


# --- what CodePipeline hears ------------------------------------------------------------


def summary(approval: Approval) -> str:
    """The one-line PutApprovalResult summary (≤ 512 characters, no Slack markup); an
    approval with steps names each step and who approved in it."""
    names = ", ".join(f"{approval.name_of(user)} ({user})" for user in approval.decided_by)
    if approval.status == APPROVED and approval.rules.steps:
        by_step = "; ".join(
            f"{state.name} by {', '.join(approval.name_of(user) for user in state.approved_by)}"
            for state in approval.steps
        )
        text = f"Approved in Slack: {by_step}"
    elif approval.status == APPROVED:
        text = f"Approved in Slack by {names}"
    elif approval.status == REJECTED:
        text = f"Rejected in Slack by {names}"
    elif approval.status == EXPIRED:
        text = approval.note or "No decision in time"
    else:
        text = approval.note or "Decided outside Slack"
    if approval.reason:
        text += f": {approval.reason}"
    return one_line(text, MAX_SUMMARY)


def codepipeline_status(approval: Approval) -> str:
    if approval.status == APPROVED:
        return "Approved"
    if approval.status == EXPIRED and approval.rules.on_deadline == "approve":
        return "Approved"
    return "Rejected"


def decision(approval: Approval) -> dict[str, Any]:
    """What the workflow receives once the request is decided: its execution history
    keeps it, with when each approval step completed (DESIGN §8.1)."""
    return {
        "outcome": approval.outcome,
        "status": codepipeline_status(approval),
        "summary": summary(approval),
        "steps": [state.record() for state in approval.steps],
    }
