"""The feed items in the approvals table, and the rules that order CodePipeline's events.

CodePipeline's EventBridge events arrive at least once and in no guaranteed order. Each is
applied to one feed item (one per pipeline execution) by a conditional write that lets
state only move forward, so a duplicate or a late event changes nothing. The same item
holds the claims that let one Lambda alone post the execution's message and each thread
message.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from approval_gate.clock import iso, parse_iso
from approval_gate.feed.events import ACTION, PIPELINE, STAGE, PipelineEvent
from approval_gate.feed.state import Feed, Revision, StepState

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: The feed item's key: never a valid approval id (32 hex characters).
FEED_PREFIX = "feed#"
#: A posting claim older than this was abandoned (its Lambda died before posting).
CLAIM_TIMEOUT = timedelta(minutes=2)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def feed_key(execution_id: str) -> dict[str, Any]:
    return {"approval_id": {"S": FEED_PREFIX + execution_id}}


def _entity_attribute(kind: str, stage: str | None, action: str | None) -> str:
    if kind == PIPELINE:
        return "e#pipeline"
    if kind == STAGE:
        return f"e#stage#{stage}"
    return f"e#action#{stage}#{action}"


#: The attribute beside each stage's and action's `e#…`: when the feed first heard of it.
FIRST_SEEN = "first#"
#: `held#<stage>#<action>`: the approval action is approved, held until this instant.
HELD = "held#"
#: Its value for an approval held until the health checks pass (no instant to show).
HELD_FOR_CHECKS = "checks"


def _step(data: Mapping[str, Any], since: Any = None) -> StepState:
    return StepState(
        state=str(data["state"]),
        rank=int(data["rank"]),
        attempt=int(data.get("attempt", 1)),
        at=parse_iso(str(data["at"])),
        category=data.get("category"),
        provider=data.get("provider"),
        summary=data.get("summary"),
        url=data.get("url"),
        since=parse_iso(str(since)) if since else None,
    )


def _from_item(item: Mapping[str, Any]) -> Feed:
    data = {k: _deserializer.deserialize(v) for k, v in item.items()}
    stages: dict[str, StepState] = {}
    actions: dict[tuple[str, str], StepState] = {}
    pipeline_state = None
    held: dict[tuple[str, str], Any] = {}
    for key, value in data.items():
        since = data.get(FIRST_SEEN + key[2:])
        if key.startswith(HELD):
            stage, _, action = key[len(HELD) :].partition("#")
            held[(stage, action)] = None if value == HELD_FOR_CHECKS else parse_iso(str(value))
        elif key == "e#pipeline":
            pipeline_state = _step(value)
        elif key.startswith("e#stage#"):
            stages[key[len("e#stage#") :]] = _step(value, since)
        elif key.startswith("e#action#"):
            stage, _, action = key[len("e#action#") :].partition("#")
            actions[(stage, action)] = _step(value, since)
    revision = data.get("revision")
    return Feed(
        execution_id=str(data["execution_id"]),
        pipeline=str(data["pipeline"]),
        region=str(data["region"]),
        account=str(data["account"]),
        pipeline_state=pipeline_state,
        stages=stages,
        actions=actions,
        started_at=parse_iso(data["started_at"]) if data.get("started_at") else None,
        trigger_type=data.get("trigger_type"),
        trigger_detail=data.get("trigger_detail"),
        revision=Revision(
            revision_id=str(revision["revision_id"]),
            summary=revision.get("summary"),
            url=revision.get("url"),
        )
        if isinstance(revision, dict) and revision.get("revision_id")
        else None,
        channel=data.get("channel"),
        message_ts=data.get("message_ts"),
        lines=frozenset(data.get("lines", ())),
        shown=data.get("shown"),
        held=held,
    )


def _is_conditional_failure(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


@dataclass(frozen=True)
class Applied:
    """What applying an event did: "applied", "duplicate" or "stale" (an earlier state)."""

    outcome: str
    feed: Feed


class _Update:
    """One UpdateItem: every attribute name aliased (several are DynamoDB reserved words)."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}
        self.values: dict[str, Any] = {}

    def name(self, attribute: str) -> str:
        for alias, known in self.names.items():
            if known == attribute:
                return alias
        alias = f"#n{len(self.names)}"
        self.names[alias] = attribute
        return alias

    def value(self, value: Any) -> str:
        alias = f":v{len(self.values)}"
        self.values[alias] = _serializer.serialize(value)
        return alias


class FeedStore:
    """The feed items in the approvals table: one per pipeline execution, keyed
    ``feed#<execution id>``; every state change a conditional write.

    A feed item never carries ``pipeline_execution_id`` (the attribute the approvals'
    index is built on), so the index only ever finds approvals.
    """

    def __init__(self, table_name: str, client: Any, retention_days: int = 400) -> None:
        self._table = table_name
        self._client = client
        self._retention_days = retention_days

    def get(self, execution_id: str) -> Feed | None:
        response = self._client.get_item(
            TableName=self._table, Key=feed_key(execution_id), ConsistentRead=True
        )
        item = response.get("Item")
        return _from_item(item) if item else None

    def _update(
        self,
        execution_id: str,
        update: _Update,
        expression: str,
        condition: str | None,
        *,
        old_on_failure: bool = False,
    ) -> dict[str, Any]:
        kwargs: dict[str, Any] = {
            "TableName": self._table,
            "Key": feed_key(execution_id),
            "UpdateExpression": expression,
            "ExpressionAttributeNames": update.names,
            "ReturnValues": "ALL_NEW",
        }
        if update.values:
            kwargs["ExpressionAttributeValues"] = update.values
        if condition:
            kwargs["ConditionExpression"] = condition
        if old_on_failure:
            kwargs["ReturnValuesOnConditionCheckFailure"] = "ALL_OLD"
        response: dict[str, Any] = self._client.update_item(**kwargs)
        return response

    def apply(
        self,
        event: PipelineEvent,
        *,
        now: datetime,
        summary: str | None = None,
        url: str | None = None,
    ) -> Applied:
        """Record the event's state, unless the event was seen or its entity is as far
        along already (the condition holds the rank, so racing writers never go back)."""
        u = _Update()
        attribute = _entity_attribute(event.kind, event.stage, event.action)
        entity_name = u.name(attribute)
        entity: dict[str, Any] = {
            "state": event.state,
            "rank": event.rank,
            "attempt": event.attempt,
            "at": iso(event.time),
        }
        if event.kind == ACTION:
            extra = {
                "category": event.category,
                "provider": event.provider,
                "summary": summary,
                "url": url,
            }
            entity.update({k: v for k, v in extra.items() if v})
        seen = u.name("seen")
        sets = [
            f"{entity_name} = {u.value(entity)}",
            f"{u.name('record_type')} = {u.value('feed')}",
            f"{u.name('pipeline')} = {u.value(event.pipeline)}",
            f"{u.name('execution_id')} = {u.value(event.execution_id)}",
            f"{u.name('region')} = {u.value(event.region)}",
            f"{u.name('account')} = {u.value(event.account)}",
            # DynamoDB TTL: the feed goes RetentionDays after the run, like its approvals.
            self._if_absent(u, "expire_at", self._expire_at(now)),
        ]
        if event.kind == PIPELINE and event.state == "STARTED":
            sets += self._start(u, event)
        if event.kind != PIPELINE:
            sets.append(self._if_absent(u, FIRST_SEEN + attribute[2:], iso(now)))
        event_id = u.value(event.event_id)
        condition = (
            f"(attribute_not_exists({seen}) OR NOT contains({seen}, {event_id})) AND "
            f"(attribute_not_exists({entity_name}) OR "
            f"{entity_name}.{u.name('rank')} < {u.value(event.rank)})"
        )
        expression = f"SET {', '.join(sets)} ADD {seen} {u.value({event.event_id})}"
        try:
            response = self._update(
                event.execution_id, u, expression, condition, old_on_failure=True
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            item = exc.response.get("Item")
            current = _from_item(item) if item else self.get(event.execution_id)
            if current is None:  # cannot be: the condition only fails on an existing item
                raise
            return self._not_applied(event, current, item, now)
        return Applied("applied", _from_item(response["Attributes"]))

    def _not_applied(
        self, event: PipelineEvent, current: Feed, item: Mapping[str, Any] | None, now: datetime
    ) -> Applied:
        seen = set(_deserializer.deserialize(item["seen"])) if item and "seen" in item else set()
        if event.event_id in seen:
            return Applied("duplicate", current)
        step = _current_step(current, event)
        if step is not None and (step.state, step.attempt) == (event.state, event.attempt):
            return Applied("duplicate", current)
        if event.kind == PIPELINE and event.state == "STARTED" and current.started_at is None:
            # The run ended before its start arrived: the start time still counts.
            return Applied("applied", self._record_start(event, now) or current)
        return Applied("stale", current)

    def _record_start(self, event: PipelineEvent, now: datetime) -> Feed | None:
        u = _Update()
        started = u.name("started_at")
        seen = u.name("seen")
        event_id = u.value(event.event_id)
        sets = ", ".join(self._start(u, event))
        expression = f"SET {sets} ADD {seen} {u.value({event.event_id})}"
        try:
            response = self._update(
                event.execution_id,
                u,
                expression,
                f"attribute_not_exists({started}) AND NOT contains({seen}, {event_id})",
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _from_item(response["Attributes"])

    def _start(self, u: _Update, event: PipelineEvent) -> list[str]:
        sets = [self._if_absent(u, "started_at", iso(event.time))]
        if event.trigger_type:
            sets.append(self._if_absent(u, "trigger_type", event.trigger_type))
        if event.trigger_detail:
            sets.append(self._if_absent(u, "trigger_detail", event.trigger_detail))
        return sets

    @staticmethod
    def _if_absent(u: _Update, attribute: str, value: Any) -> str:
        name = u.name(attribute)
        return f"{name} = if_not_exists({name}, {u.value(value)})"

    def _expire_at(self, now: datetime) -> int:
        return int((now + timedelta(days=self._retention_days)).timestamp())

    def claim_post(self, execution_id: str, token: str, now: datetime) -> Feed | None:
        """Take the right to post the execution's message; None if someone holds it (or
        the message exists). A claim older than CLAIM_TIMEOUT was abandoned: taken over."""
        u = _Update()
        claim, claimed_at = u.name("claim"), u.name("claimed_at")
        condition = (
            f"attribute_not_exists({u.name('message_ts')}) AND "
            f"(attribute_not_exists({claim}) OR {claimed_at} < {u.value(iso(now - CLAIM_TIMEOUT))})"
        )
        expression = f"SET {claim} = {u.value(token)}, {claimed_at} = {u.value(iso(now))}"
        try:
            response = self._update(execution_id, u, expression, condition)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _from_item(response["Attributes"])

    def release_post(self, execution_id: str, token: str) -> None:
        """Give the claim back (the post failed), so a retry can post."""
        u = _Update()
        claim = u.name("claim")
        try:
            self._update(
                execution_id,
                u,
                f"REMOVE {claim}, {u.name('claimed_at')}",
                f"{claim} = {u.value(token)}",
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise

    def save_post(
        self,
        execution_id: str,
        *,
        token: str,
        channel: str,
        ts: str,
        shown: str,
        revision: Revision | None,
        trigger: tuple[str | None, str | None],
    ) -> Feed:
        """Keep the posted message (and what the poster learnt of the run) and drop the
        claim; returns the item as it is now, with whatever others applied meanwhile."""
        u = _Update()
        message_ts = u.name("message_ts")
        sets = [
            f"{u.name('channel')} = {u.value(channel)}",
            f"{message_ts} = {u.value(ts)}",
            f"{u.name('shown')} = {u.value(shown)}",
        ]
        if revision is not None:
            plain = {"revision_id": revision.revision_id, "summary": revision.summary}
            plain["url"] = revision.url
            sets.append(f"{u.name('revision')} = {u.value({k: v for k, v in plain.items() if v})}")
        for attribute, value in zip(("trigger_type", "trigger_detail"), trigger, strict=True):
            if value:
                sets.append(self._if_absent(u, attribute, value))
        claim = u.name("claim")
        expression = f"SET {', '.join(sets)} REMOVE {claim}, {u.name('claimed_at')}"
        try:
            response = self._update(
                execution_id, u, expression, f"attribute_not_exists({message_ts})"
            )
        except ClientError as exc:
            if not _is_conditional_failure(exc):
                raise
            # Our claim ran out and another Lambda posted too: its message is the one kept.
            LOG.warning(
                "the pipeline execution's message was posted twice",
                extra={"execution_id": execution_id, "channel": channel, "ts": ts},
            )
            current = self.get(execution_id)
            assert current is not None
            return current
        return _from_item(response["Attributes"])

    def mark_shown(self, execution_id: str, shown: str) -> Feed:
        u = _Update()
        response = self._update(
            execution_id,
            u,
            f"SET {u.name('shown')} = {u.value(shown)}",
            f"attribute_exists({u.name('approval_id')})",
        )
        return _from_item(response["Attributes"])

    def mark_held(
        self,
        execution_id: str,
        stage: str,
        action: str,
        until: datetime | None,
        *,
        for_checks: bool = False,
    ) -> Feed | None:
        """An approval action held until `until` (or, `for_checks`, until the health
        checks pass), or no longer held (None); None when the feed has no item for the
        execution (its first event not handled yet)."""
        u = _Update()
        name = u.name(f"{HELD}{stage}#{action}")
        value = HELD_FOR_CHECKS if for_checks else iso(until) if until else None
        expression = f"SET {name} = {u.value(value)}" if until else f"REMOVE {name}"
        try:
            response = self._update(
                execution_id, u, expression, f"attribute_exists({u.name('approval_id')})"
            )
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _from_item(response["Attributes"])

    def claim_line(self, execution_id: str, keys: Sequence[str]) -> Feed | None:
        """Take one thread message, by the keys of the ends it tells: the item as it is
        now for the one caller that adds them all, None if any of them was taken."""
        u = _Update()
        lines = u.name("lines")
        untold = " AND ".join(f"NOT contains({lines}, {u.value(key)})" for key in keys)
        condition = (
            f"attribute_exists({u.name('message_ts')}) AND "
            f"(attribute_not_exists({lines}) OR ({untold}))"
        )
        try:
            response = self._update(execution_id, u, f"ADD {lines} {u.value(set(keys))}", condition)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return None
            raise
        return _from_item(response["Attributes"])

    def release_line(self, execution_id: str, keys: Sequence[str]) -> None:
        """Give a thread message's keys back (its post failed), so a later try posts it."""
        u = _Update()
        self._update(execution_id, u, f"DELETE {u.name('lines')} {u.value(set(keys))}", None)


def _current_step(feed: Feed, event: PipelineEvent) -> StepState | None:
    if event.kind == PIPELINE:
        return feed.pipeline_state
    if event.kind == STAGE:
        return feed.stages.get(event.stage or "")
    return feed.actions.get((event.stage or "", event.action or ""))
