"""The approvals table: one item per approval request, status changes by conditional write.

The item holds the CodePipeline token and the current task token; neither is ever logged,
returned in a decision record or sent to Slack (both are excluded from ``repr``). How the
record's fields are written as item attributes is approval_gate.approval_items.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from approval_gate import alarm_watch
from approval_gate.approval_items import approval_fields, expression_values, new_item, vote_item
from approval_gate.checks import CheckResult
from approval_gate.clock import iso
from approval_gate.records import (
    APPROVED,
    DECIDED_ELSEWHERE,
    EXPIRED,
    FINAL_STATUSES,
    HELD,
    PENDING,
    REJECTED,
    AlreadyDecided,
    Approval,
    ChecksLine,
    Hold,
    Override,
    Vote,
)

__all__ = [
    "APPROVED",
    "DECIDED_ELSEWHERE",
    "EXPIRED",
    "FINAL_STATUSES",
    "HELD",
    "PENDING",
    "REJECTED",
    "AlreadyDecided",
    "Approval",
    "ApprovalStore",
    "Hold",
    "Override",
    "Vote",
]

#: The index on the pipeline execution id (template.yaml names it the same).
EXECUTION_INDEX = "by-pipeline-execution"


def _from_item(item: Mapping[str, Any]) -> Approval:
    """The approval a table item holds (approval_items reads the fields by name)."""
    fields = approval_fields(item)
    votes = tuple(Vote(**vote) for vote in fields.pop("votes"))
    overrides = tuple(Vote(**vote) for vote in fields.pop("overrides"))
    checks = tuple(CheckResult.from_item(result) for result in fields.pop("checks"))
    held = fields.pop("held")
    override = fields.pop("override")
    line = fields.pop("checks_line")
    return Approval(
        **fields,
        votes=votes,
        overrides=overrides,
        checks=checks,
        held=Hold(**held) if held else None,
        override=Override(**override) if override else None,
        checks_line=ChecksLine(**line) if line else None,
    )


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _decision(
    status: str,
    by: list[str],
    at: datetime,
    *,
    reason: str | None,
    note: str | None,
    held: Hold | None,
) -> tuple[str, dict[str, Any]]:
    """The SET clause and values that record a decision (a hold starts with no override
    votes), conditional on the request being open (`:pending`)."""
    expression = "SET #status = :status, decided_by = :by, decided_at = :at"
    values: dict[str, Any] = {"status": status, "by": by, "at": iso(at), "pending": PENDING}
    for name, value in (("reason", reason), ("note", note)):
        if value:
            expression += f", {name} = :{name}"
            values[name] = value
    if held is not None:
        expression += ", held = :held, overrides = :none"
        values.update(held=held.item(), none={})
    return expression, values


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

    def save_checks(
        self, approval_id: str, results: tuple[CheckResult, ...], *, seen: int | None = None
    ) -> Approval:
        """The health checks' results (DESIGN §8.3), while the request is open or held.

        With `seen` (the `checks_version` the caller read), only over those results:
        AlreadyDecided (with the approval as it is now) when another write came first.
        """
        condition = "#status IN (:pending, :held)"
        values: dict[str, Any] = {"pending": PENDING, "held": HELD}
        if seen is not None:
            condition += " AND " + (
                "checks_version = :seen" if seen else "attribute_not_exists(checks_version)"
            )
            if seen:
                values["seen"] = seen
        return self._update(
            approval_id,
            "SET checks = :results ADD checks_version :one",
            condition,
            results=[result.item() for result in results],
            one=1,
            **values,
        )

    def save_checks_line(self, approval_id: str, line: ChecksLine) -> Approval:
        """The thread line that tells the last alarm changes (live_checks)."""
        return self._update(approval_id, "SET checks_line = :line", None, line=line.item())

    # The alarms open approvals list (approval_gate.alarm_watch), in this table.

    def watch_alarms(self, approval: Approval, now: datetime) -> None:
        checks = approval.rules.checks
        if checks is not None and checks.alarms:
            alarm_watch.watch(self._client, self._table, approval.approval_id, checks.alarms, now)

    def unwatch_alarms(self, approval_id: str, entries: tuple[str, ...] | list[str]) -> None:
        alarm_watch.unwatch(self._client, self._table, approval_id, entries)

    def alarm_watchers(self, alarm: str) -> dict[str, list[str]]:
        """The open approvals that list the alarm, each with the entries that list it."""
        return alarm_watch.watchers(self._client, self._table, alarm)

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
        held: Hold | None = None,
        was: str = PENDING,
    ) -> Approval:
        """Move `was` (PENDING, or HELD for a hold CodePipeline settled itself) → status
        exactly once; AlreadyDecided if anything decided first.

        With `votes`, these become the whole vote record and their users the deciders;
        with `decided_by`, the votes already recorded (add_vote) stay as they are. A HELD
        status comes with its `held`.
        """
        by = [vote.user_id for vote in votes] if votes is not None else list(decided_by or ())
        expression, values = _decision(status, by, at, reason=reason, note=note, held=held)
        values["pending"] = was
        if votes is not None:
            expression += ", votes = :votes"
            values["votes"] = {vote.user_id: vote_item(vote) for vote in votes}
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
        note: str | None = None,
        held: Hold | None = None,
    ) -> Approval:
        """Record the deciding vote and the decision in one conditional write.

        Only while the request is open, this person has not voted and the votes are still
        the `votes_seen` the caller counted (votes are only ever added, so an unchanged
        count means unchanged votes). AlreadyDecided otherwise, carrying the item, so the
        caller can tell decided, voted already and "someone voted meanwhile" apart.
        """
        expression, values = _decision(
            status, list(decided_by), at, reason=vote.reason, note=note, held=held
        )
        values.update(vote=vote_item(vote), seen=votes_seen)
        return self._update(
            approval_id,
            expression + ", votes.#user = :vote",
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

    # --- holds (DESIGN §8.2): every change is conditional on the request still held ---

    def save_hold_token(self, approval_id: str, task_token: str) -> Approval:
        """Store the token of the hold now waiting; AlreadyDecided when no longer held."""
        return self._update(
            approval_id, "SET hold_token = :token", "#status = :held", token=task_token, held=HELD
        )

    def reopen(self, approval_id: str, *, approvers: tuple[str, ...]) -> Approval:
        """A cancelled hold: the request is open again, without the approve votes (their
        users are `approvers`), as if nobody had approved; AlreadyDecided when the hold
        ended first. The hold's token stays: the caller ends its wait with the item this
        write returns (a hold that began an instant before has stored it by then)."""
        names = {f"#u{i}": user for i, user in enumerate(approvers)}
        removals = ", ".join(
            ["held", "decided_by", "decided_at", "reason", "overrides"]
            + [f"votes.{name}" for name in names]
        )
        return self._update(
            approval_id,
            f"SET #status = :pending REMOVE {removals}",
            "#status = :held",
            names=names,
            pending=PENDING,
            held=HELD,
        )

    def release(
        self,
        approval_id: str,
        *,
        status: str,
        held: Hold | None = None,
        note: str | None = None,
        checks: tuple[CheckResult, ...] | None = None,
        checked: bool = False,
        was: str = HELD,
    ) -> Approval:
        """End a hold as `status` (APPROVED, REJECTED), or keep holding with a new `held`
        (status HELD); AlreadyDecided when a cancel or an override came first. `checks`: the
        health checks just run (DESIGN §8.3), in the same write, and `checked` (all passed:
        report it now); `was`: the status read (the check before the report holds, rejects)."""
        parts = ["#status = :status"]
        values: dict[str, Any] = {"status": status, "was": was}
        if held is not None:  # a hold starts with no override votes (never held: no map)
            parts += ["held = :hold", "overrides = if_not_exists(overrides, :none)"]
            values.update(hold=held.item(), none={})
        if note:
            parts.append("note = :note")
            values["note"] = note
        if checks is not None:
            parts += ["checks = :results", "checked_at_report = :checked"]
            values.update(results=[result.item() for result in checks], checked=checked, one=1)
        add = " ADD checks_version :one" if checks is not None else ""
        return self._update(approval_id, f"SET {', '.join(parts)}{add}", "#status = :was", **values)

    def add_override(
        self, approval_id: str, vote: Vote, *, votes_seen: int, override: Override | None
    ) -> Approval:
        """One person's "deploy now", once, while held and while the override votes are
        the `votes_seen` counted; with `override` (this vote completes it) the approval is
        APPROVED in the same write. AlreadyDecided otherwise."""
        expression = "SET overrides.#user = :vote"
        values: dict[str, Any] = {"vote": vote_item(vote), "held": HELD, "seen": votes_seen}
        if override is not None:
            expression += ", #status = :approved, #override = :override"
            values.update(approved=APPROVED, override=override.record())
        return self._update(
            approval_id,
            expression,
            "#status = :held AND attribute_not_exists(overrides.#user) AND size(overrides) = :seen",
            names={"#user": vote.user_id, **({"#override": "override"} if override else {})},
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
        self,
        approval_id: str,
        *,
        at: datetime,
        status: str | None = None,
        note: str | None = None,
        reported: bool = False,
    ) -> Approval:
        """Mark the request closed (once); optionally correct its final status. `reported`:
        CodePipeline accepted the outcome (PutApprovalResult ran just before), so the
        record's `reported_at` is now.

        A second close (a retried Lambda) changes nothing and returns the item as it is.
        """
        parts = ["closed_at = :closed"] + (["reported_at = :closed"] if reported else [])
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
