"""The approvals table's item format: an approval's fields as DynamoDB attributes and back.

Which attributes an item has, their types (times as ISO strings, the rules as JSON, votes
as a map by user, the TTL), what a new request writes and how an item reads back. It
knows the record's fields by name, not its classes: approval_gate.store builds the record
from what `approval_fields` reads, and imports this module, never the other way round.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

from approval_gate.clock import iso, parse_iso
from approval_gate.revisions import Revision, Since
from approval_gate.rules import Rules

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()

#: The audit index (template.yaml names it the same): a month's requests in time order.
AUDIT_INDEX = "by-requested-month"
#: Its partition key, ``YYYY-MM`` of ``requested_at`` in UTC; only approval items carry
#: it (the status feed's and the alarm watch's items share the table), so it is sparse.
AUDIT_MONTH = "audit_month"


def audit_month(moment: datetime) -> str:
    """The audit index's partition for a request made at ``moment``: ``2026-12``."""
    return moment.astimezone(UTC).strftime("%Y-%m")


def new_item(approval: Any, retention_days: int) -> dict[str, Any]:
    """The item that stores a new request (an approval_gate.store.Approval), no votes yet."""
    plain: dict[str, Any] = {
        "approval_id": approval.approval_id,
        "pipeline": approval.pipeline,
        "stage": approval.stage,
        "action": approval.action,
        "region": approval.region,
        "token": approval.token,
        "rules": json.dumps(approval.rules.to_dict(), separators=(",", ":")),
        "requested_at": iso(approval.requested_at),
        AUDIT_MONTH: audit_month(approval.requested_at),
        "deadline_at": iso(approval.deadline_at),
        "expires": iso(approval.expires),
        "status": approval.status,
        "votes": {},
        "reminders": approval.reminders,
        "escalated": approval.escalated,
        "authors": list(approval.authors),
        "author_users": list(approval.author_users),
        # DynamoDB TTL: the item goes RetentionDays after the request.
        "expire_at": int((approval.requested_at + timedelta(days=retention_days)).timestamp()),
    }
    optional = {
        "pipeline_execution_id": approval.pipeline_execution_id,
        "custom_data": approval.custom_data,
        "external_entity_link": approval.external_entity_link,
        "console_link": approval.console_link,
        "change": approval.change,
        "previous_revisions": [r.item() for r in approval.previous_revisions]
        if approval.previous_revisions is not None
        else None,
        "compare_url": approval.compare_url,
        "since": approval.since.item() if approval.since else None,
    }
    if approval.revisions:
        plain["revisions"] = [revision.item() for revision in approval.revisions]
    plain.update({k: v for k, v in optional.items() if v is not None})
    return {k: _serializer.serialize(v) for k, v in plain.items()}


def approval_fields(item: Mapping[str, Any]) -> dict[str, Any]:
    """The approval's fields by name, read from its item; ``votes`` holds each vote's
    fields (user_id, name, vote, at, reason, step, deploy_at, inputs), oldest first, and so do
    ``overrides`` (the "deploy now" votes on a held approval)."""
    data = {k: _deserializer.deserialize(v) for k, v in item.items()}

    def when(key: str) -> datetime | None:
        return parse_iso(data[key]) if data.get(key) else None

    def votes(key: str) -> list[dict[str, Any]]:
        return [
            {
                "user_id": user_id,
                "name": str(vote.get("name", user_id)),
                "vote": str(vote["vote"]),
                "at": parse_iso(vote["at"]),
                "reason": vote.get("reason"),
                "step": vote.get("step"),
                "deploy_at": parse_iso(vote["deploy_at"]) if vote.get("deploy_at") else None,
                "inputs": {str(k): str(v) for k, v in (vote.get("inputs") or {}).items()},
            }
            for user_id, vote in sorted(data.get(key, {}).items(), key=lambda kv: kv[1]["at"])
        ]

    held = data.get("held")
    override = data.get("override")
    return {
        "approval_id": data["approval_id"],
        "pipeline": data["pipeline"],
        "stage": data["stage"],
        "action": data["action"],
        "pipeline_execution_id": data.get("pipeline_execution_id"),
        "region": data["region"],
        "token": data["token"],
        "rules": Rules.from_dict(json.loads(data["rules"])),
        "requested_at": parse_iso(data["requested_at"]),
        "deadline_at": parse_iso(data["deadline_at"]),
        "expires": parse_iso(data["expires"]),
        "custom_data": data.get("custom_data"),
        "external_entity_link": data.get("external_entity_link"),
        "console_link": data.get("console_link"),
        "status": data["status"],
        "task_token": data.get("task_token"),
        "channel": data.get("channel"),
        "message_ts": data.get("message_ts"),
        "votes": votes("votes"),
        "decided_by": tuple(data.get("decided_by", ())),
        "reason": data.get("reason"),
        "decided_at": when("decided_at"),
        "note": data.get("note"),
        "reminders": int(data.get("reminders", 0)),
        "escalated": bool(data.get("escalated", False)),
        "closed_at": when("closed_at"),
        "fallback_at": when("fallback_at"),
        "fallback_reason": data.get("fallback_reason"),
        "authors": tuple(data.get("authors", ())),
        "author_users": tuple(data.get("author_users", ())),
        "change": data.get("change"),
        "held": {
            "until": parse_iso(held["until"]),
            "why": held["why"],
            "reason": held.get("reason"),
            "then": held.get("then", "APPROVED"),
        }
        if held
        else None,
        "hold_token": data.get("hold_token"),
        "reported_at": when("reported_at"),
        "override": {"by": tuple(override["by"]), "reason": override["reason"]}
        if override
        else None,
        "overrides": votes("overrides"),
        "checks": list(data.get("checks", ())),
        "checks_version": int(data.get("checks_version", 0)),
        "checked_at_report": bool(data.get("checked_at_report", False)),
        "checks_line": {
            "ts": str(line["ts"]),
            "since": parse_iso(line["since"]),
            "changes": int(line["changes"]),
        }
        if (line := data.get("checks_line"))
        else None,
        "revisions": tuple(Revision.from_item(r) for r in data.get("revisions", ())),
        "previous_revisions": tuple(Revision.from_item(r) for r in previous)
        if (previous := data.get("previous_revisions")) is not None
        else None,
        "compare_url": data.get("compare_url"),
        "since": Since.from_item(data["since"]) if data.get("since") else None,
    }


def vote_item(vote: Any) -> dict[str, Any]:
    """One vote (an approval_gate.store.Vote) as the map the item keeps under its user."""
    return {
        "name": vote.name,
        "vote": vote.vote,
        "at": iso(vote.at),
        **({"reason": vote.reason} if vote.reason else {}),
        **({"step": vote.step} if vote.step else {}),
        **({"deploy_at": iso(vote.deploy_at)} if vote.deploy_at else {}),
        **({"inputs": dict(vote.inputs)} if getattr(vote, "inputs", None) else {}),
    }


def expression_values(**values: Any) -> dict[str, Any]:
    """An update's ExpressionAttributeValues: each value under ``:name``, typed."""
    return {f":{k}": _serializer.serialize(v) for k, v in values.items()}
