"""The pipeline status feed: one Slack message per pipeline execution, updated in place.

CodePipeline's EventBridge events (pipeline, stage and action execution state changes)
arrive at least once and in no guaranteed order. Each is applied to one feed item in the
approvals table by a conditional write that lets state only move forward, so a duplicate
or a late event changes nothing. The Slack message is a pure function of that item: any
Lambda that applied something renders the item and updates the message when what it shows
differs from what the message shows, so the last writer always leaves the newest state.
How each stage and action ended goes into the message's thread, one line each, once.

Approvals settled outside Slack (approved or rejected in the console, a run superseded or
stopped) are closed here too, through `approvals.settle_elsewhere`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import BotoCoreError, ClientError
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from approval_gate.approvals import settle_elsewhere
from approval_gate.clock import Clock, iso, parse_iso
from approval_gate.messages import slack_date
from approval_gate.policy import Policy
from approval_gate.store import ApprovalStore
from approval_gate.text import cut_at_word, escape_mrkdwn, human_duration, one_line

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

# --------------------------------------------------------------------------- the events

PIPELINE = "pipeline"
STAGE = "stage"
ACTION = "action"
DETAIL_TYPES: dict[str, str] = {
    "CodePipeline Pipeline Execution State Change": PIPELINE,
    "CodePipeline Stage Execution State Change": STAGE,
    "CodePipeline Action Execution State Change": ACTION,
}
SOURCE = "aws.codepipeline"

#: How far each state has come: a state never gives way to one of a lower level (within
#: one attempt of the execution; a retry is a higher attempt and starts over).
_LEVELS: dict[str, int] = {
    "STARTED": 1,
    "RESUMED": 1,
    "STOPPING": 2,
    "SUCCEEDED": 3,
    "FAILED": 3,
    "STOPPED": 3,
    "CANCELED": 3,
    "SUPERSEDED": 3,
    "ABANDONED": 3,
}
STATES: tuple[str, ...] = tuple(_LEVELS)
ENDED = frozenset(state for state, level in _LEVELS.items() if level == 3)
#: The category CodePipeline gives manual approval actions.
APPROVAL_CATEGORY = "Approval"

_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_EVENT_ID = re.compile(r"[A-Za-z0-9\-]{1,128}")
_REGION = re.compile(r"[a-z]{2}(-[a-z]+)+-\d{1,2}")
_ACCOUNT = re.compile(r"\d{12}")
_TYPE_PART = re.compile(r"[A-Za-z0-9.\-_]{1,64}")
_TRIGGER_TYPE = re.compile(r"[A-Za-z0-9]{1,64}")
_LINK = re.compile(r"https?://[^\s<>|]{1,2040}")
_COMMIT = re.compile(r"[0-9a-f]{7,64}")

#: An error summary in a thread line is cut to this many characters.
MAX_ERROR_SUMMARY = 500


class InvalidEvent(ValueError):
    """The event is not a CodePipeline state change we can act on.

    The message names the field and says what is wrong; it never echoes free text.
    """


@dataclass(frozen=True)
class PipelineEvent:
    kind: str  # "pipeline" | "stage" | "action"
    event_id: str
    time: datetime
    region: str
    account: str
    pipeline: str
    execution_id: str
    state: str
    stage: str | None = None
    action: str | None = None
    category: str | None = None  # action type category, e.g. "Approval"
    provider: str | None = None
    trigger_type: str | None = None
    trigger_detail: str | None = None
    #: `pipeline-execution-attempt`: a retried execution starts over at a higher attempt.
    attempt: int = 1
    #: An action's `execution-result`, when the event carries one (failed actions do).
    external_summary: str | None = None
    external_url: str | None = None

    @property
    def rank(self) -> int:
        return rank_of(self.state, self.attempt)


def rank_of(state: str, attempt: int) -> int:
    return attempt * 10 + _LEVELS[state]


def _text(value: Any, where: str) -> str:
    if value is None or value == "":
        raise InvalidEvent(f"{where} is missing")
    if not isinstance(value, str):
        raise InvalidEvent(f"{where} must be a string, got {type(value).__name__}")
    return value


def _matching(value: Any, where: str, pattern: re.Pattern[str], what: str) -> str:
    text = _text(value, where)
    if not pattern.fullmatch(text):
        raise InvalidEvent(f"{where} is not {what}")
    return text


def _name(value: Any, where: str) -> str:
    text = _text(value, where)
    if not _NAME.fullmatch(text):
        raise InvalidEvent(f"{where} is not a CodePipeline name: {text[:100]!r}")
    return text


def _time(value: Any) -> datetime:
    """EventBridge writes ISO 8601; moto's in-process delivery passes epoch seconds."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, UTC)
        except (OverflowError, OSError, ValueError):
            raise InvalidEvent("time is not a valid time") from None
    text = _text(value, "time")
    try:
        return parse_iso(text[:40])
    except ValueError:
        raise InvalidEvent("time is not an ISO 8601 time") from None


def _attempt(value: Any) -> int:
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent("detail.pipeline-execution-attempt must be a number")
    if value != int(value) or not 1 <= value <= 10_000:
        raise InvalidEvent("detail.pipeline-execution-attempt is not a whole number >= 1")
    return int(value)


def _optional_link(value: Any) -> str | None:
    return value if isinstance(value, str) and _LINK.fullmatch(value) else None


def _optional_summary(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return one_line(value, MAX_ERROR_SUMMARY) or None


def parse_event(event: Any) -> PipelineEvent:
    """Validate one EventBridge event from CodePipeline; InvalidEvent names what is wrong."""
    if not isinstance(event, dict):
        raise InvalidEvent("the event is not a JSON object")
    if event.get("source") != SOURCE:
        raise InvalidEvent(f"source is not {SOURCE}")
    detail_type = event.get("detail-type")
    if not isinstance(detail_type, str) or detail_type not in DETAIL_TYPES:
        raise InvalidEvent("detail-type is not a CodePipeline execution state change")
    kind = DETAIL_TYPES[detail_type]
    detail = event.get("detail")
    if not isinstance(detail, dict):
        raise InvalidEvent("detail is missing or not a JSON object")
    state = _text(detail.get("state"), "detail.state")
    if state not in _LEVELS:
        raise InvalidEvent(f"detail.state is not a known CodePipeline state: {state[:20]!r}")
    values: dict[str, Any] = {
        "kind": kind,
        "event_id": _matching(event.get("id"), "id", _EVENT_ID, "an EventBridge event id"),
        "time": _time(event.get("time")),
        "region": _matching(event.get("region"), "region", _REGION, "an AWS region"),
        "account": _matching(event.get("account"), "account", _ACCOUNT, "an AWS account id"),
        "pipeline": _name(detail.get("pipeline"), "detail.pipeline"),
        "execution_id": _matching(
            detail.get("execution-id"), "detail.execution-id", _UUID, "a pipeline execution id"
        ),
        "state": state,
        "attempt": _attempt(detail.get("pipeline-execution-attempt")),
    }
    if kind in (STAGE, ACTION):
        values["stage"] = _name(detail.get("stage"), "detail.stage")
    if kind == ACTION:
        values["action"] = _name(detail.get("action"), "detail.action")
        action_type = detail.get("type")
        if action_type is not None:
            if not isinstance(action_type, dict):
                raise InvalidEvent("detail.type is not a JSON object")
            for key in ("category", "provider"):
                if action_type.get(key) is not None:
                    values[key] = _matching(
                        action_type[key], f"detail.type.{key}", _TYPE_PART, f"an action {key}"
                    )
        result = detail.get("execution-result")
        if isinstance(result, dict):
            values["external_summary"] = _optional_summary(result.get("external-execution-summary"))
            values["external_url"] = _optional_link(result.get("external-execution-url"))
    if kind == PIPELINE:
        trigger = detail.get("execution-trigger")
        if trigger is not None:
            if not isinstance(trigger, dict):
                raise InvalidEvent("detail.execution-trigger is not a JSON object")
            if trigger.get("trigger-type") is not None:
                values["trigger_type"] = _matching(
                    trigger["trigger-type"],
                    "detail.execution-trigger.trigger-type",
                    _TRIGGER_TYPE,
                    "a trigger type",
                )
            if isinstance(trigger.get("trigger-detail"), str):
                values["trigger_detail"] = one_line(trigger["trigger-detail"], 300) or None
    return PipelineEvent(**values)


# --------------------------------------------------------------------------- the feed item

#: The feed item's key: never a valid approval id (32 hex characters).
FEED_PREFIX = "feed#"
#: A posting claim older than this was abandoned (its Lambda died before posting).
CLAIM_TIMEOUT = timedelta(minutes=2)

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@dataclass(frozen=True)
class StepState:
    """Where a pipeline execution, a stage or an action has got to."""

    state: str
    rank: int
    attempt: int
    at: datetime
    category: str | None = None
    provider: str | None = None
    #: A failed action's error summary and logs link.
    summary: str | None = None
    url: str | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED


@dataclass(frozen=True)
class Revision:
    revision_id: str
    summary: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Feed:
    """One pipeline execution as the feed knows it (the feed item, read back)."""

    execution_id: str
    pipeline: str
    region: str
    account: str
    pipeline_state: StepState | None = None
    stages: Mapping[str, StepState] = field(default_factory=dict)
    actions: Mapping[tuple[str, str], StepState] = field(default_factory=dict)
    started_at: datetime | None = None
    trigger_type: str | None = None
    trigger_detail: str | None = None
    revision: Revision | None = None
    channel: str | None = None
    message_ts: str | None = None
    #: The thread lines posted (or being posted), by line key.
    lines: frozenset[str] = frozenset()
    #: The digest of what the Slack message shows now.
    shown: str | None = None


def feed_key(execution_id: str) -> dict[str, Any]:
    return {"approval_id": {"S": FEED_PREFIX + execution_id}}


def _entity_attribute(kind: str, stage: str | None, action: str | None) -> str:
    if kind == PIPELINE:
        return "e#pipeline"
    if kind == STAGE:
        return f"e#stage#{stage}"
    return f"e#action#{stage}#{action}"


def _step(data: Mapping[str, Any]) -> StepState:
    return StepState(
        state=str(data["state"]),
        rank=int(data["rank"]),
        attempt=int(data.get("attempt", 1)),
        at=parse_iso(str(data["at"])),
        category=data.get("category"),
        provider=data.get("provider"),
        summary=data.get("summary"),
        url=data.get("url"),
    )


def _from_item(item: Mapping[str, Any]) -> Feed:
    data = {k: _deserializer.deserialize(v) for k, v in item.items()}
    stages: dict[str, StepState] = {}
    actions: dict[tuple[str, str], StepState] = {}
    pipeline_state = None
    for key, value in data.items():
        if key == "e#pipeline":
            pipeline_state = _step(value)
        elif key.startswith("e#stage#"):
            stages[key[len("e#stage#") :]] = _step(value)
        elif key.startswith("e#action#"):
            stage, _, action = key[len("e#action#") :].partition("#")
            actions[(stage, action)] = _step(value)
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
        entity_name = u.name(_entity_attribute(event.kind, event.stage, event.action))
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

    def claim_line(self, execution_id: str, key: str) -> bool:
        """Take one thread line: True for the one caller that adds its key."""
        u = _Update()
        lines = u.name("lines")
        condition = (
            f"attribute_exists({u.name('message_ts')}) AND "
            f"(attribute_not_exists({lines}) OR NOT contains({lines}, {u.value(key)}))"
        )
        try:
            self._update(execution_id, u, f"ADD {lines} {u.value({key})}", condition)
        except ClientError as exc:
            if _is_conditional_failure(exc):
                return False
            raise
        return True

    def release_line(self, execution_id: str, key: str) -> None:
        """Give a thread line back (its post failed), so a retry posts it."""
        u = _Update()
        self._update(execution_id, u, f"DELETE {u.name('lines')} {u.value({key})}", None)


def _current_step(feed: Feed, event: PipelineEvent) -> StepState | None:
    if event.kind == PIPELINE:
        return feed.pipeline_state
    if event.kind == STAGE:
        return feed.stages.get(event.stage or "")
    return feed.actions.get((event.stage or "", event.action or ""))


# --------------------------------------------------------------------------- the message

_SYMBOLS = {
    "STARTED": "▶️",
    "RESUMED": "▶️",
    "STOPPING": "⏳",
    "SUCCEEDED": "✅",
    "FAILED": "❌",
    "STOPPED": "⏹",
    "CANCELED": "⏹",
    "ABANDONED": "⏹",
    "SUPERSEDED": "⏭",
}
_WORDS = {
    "STARTED": "in progress",
    "RESUMED": "in progress",
    "STOPPING": "stopping",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "stopped",
    "CANCELED": "cancelled",
    "ABANDONED": "abandoned",
    "SUPERSEDED": "superseded",
}
#: The `announce` word of each pipeline state: does the policy want a message for it?
ANNOUNCE_OF_STATE = {
    "STARTED": "started",
    "RESUMED": "started",
    "STOPPING": "stopped",
    "STOPPED": "stopped",
    "CANCELED": "stopped",
    "ABANDONED": "stopped",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "SUPERSEDED": "superseded",
}
_TRIGGERS = {
    "StartPipelineExecution": "started by",
    "CloudWatchEvent": "source change, EventBridge rule",
    "PollForSourceChanges": "source change, polling",
    "Webhook": "webhook",
    "WebhookV2": "webhook",
    "PutActionRevision": "new source revision",
    "CreatePipeline": "pipeline created or updated",
    "ManualRollback": "manual rollback",
    "AutomatedRollback": "automated rollback",
}
_SECTION_LIMIT = 3000


@dataclass(frozen=True)
class FeedView:
    """The message as Slack shows it, and a digest to tell whether it changed."""

    text: str
    blocks: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        content = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:32]


def execution_link(feed: Feed) -> str:
    region = feed.region
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(feed.pipeline)}/executions/{quote(feed.execution_id)}/timeline?region={region}"
    )


def _stage_order(feed: Feed) -> list[tuple[str, StepState | None]]:
    """Stages in the order they ran (stages run one after another, so by the time of
    their latest state); a stage known only from its actions is in progress."""
    stages: dict[str, tuple[datetime, StepState | None]] = {
        name: (step.at, step) for name, step in feed.stages.items()
    }
    for (stage, _), step in feed.actions.items():
        if stage not in stages:
            stages[stage] = (step.at, None)
        elif stages[stage][1] is None:
            stages[stage] = (min(stages[stage][0], step.at), None)
    return [(name, step) for name, (_, step) in sorted(stages.items(), key=lambda kv: kv[1][0])]


def _started(feed: Feed) -> datetime | None:
    if feed.started_at is not None:
        return feed.started_at
    times = [s.at for s in (*feed.stages.values(), *feed.actions.values())]
    return min(times) if times else None


def headline(feed: Feed) -> tuple[str, str]:
    """(symbol, what happened) of the whole execution, e.g. ("✅", "succeeded in 26m 32s")."""
    step = feed.pipeline_state
    state = step.state if step is not None else "STARTED"
    words = _WORDS[state]
    if step is not None and step.ended:
        if state == "FAILED":
            failed = [name for name, s in _stage_order(feed) if s and s.state == "FAILED"]
            if failed:
                words += f" in stage {failed[-1]}"
        started = _started(feed)
        if started is not None:
            took = human_duration((step.at - started).total_seconds())
            words += f" in {took}" if state == "SUCCEEDED" else f" after {took}"
    return _SYMBOLS[state], words


def _trigger_line(feed: Feed) -> str | None:
    if not feed.trigger_type:
        return None
    label = _TRIGGERS.get(feed.trigger_type, feed.trigger_type)
    detail = feed.trigger_detail
    if detail and detail.startswith("arn:"):
        detail = detail.split(":", 5)[-1]  # the resource: assumed-role/Admin/jane, rule/x
    if detail:
        return f"Trigger: {escape_mrkdwn(label)} `{escape_mrkdwn(cut_at_word(detail, 120))}`"
    return f"Trigger: {escape_mrkdwn(label)}"


def _revision_line(revision: Revision | None) -> str | None:
    if revision is None:
        return None
    commit = _COMMIT.fullmatch(revision.revision_id) is not None
    short = revision.revision_id[:7] if commit else cut_at_word(revision.revision_id, 20)
    line = f"{'Commit' if commit else 'Revision'} `{escape_mrkdwn(short)}`"
    if revision.summary:
        summary = escape_mrkdwn(cut_at_word(revision.summary, 150))
        line += f" <{revision.url}|{summary}>" if revision.url else f" {summary}"
    elif revision.url:
        line += f" <{revision.url}|view>"
    return line


def feed_view(feed: Feed) -> FeedView:
    """The execution's message: a pure function of the feed item, so whichever Lambda
    renders it last shows the same thing."""
    symbol, words = headline(feed)
    name = escape_mrkdwn(feed.pipeline)
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"{symbol} *<{execution_link(feed)}|{name}>* {words}")
        )
    ]
    stages = [
        f"{_SYMBOLS[step.state if step else 'STARTED']} {escape_mrkdwn(stage)}"
        for stage, step in _stage_order(feed)
    ]
    if stages:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=cut_at_word("  →  ".join(stages), _SECTION_LIMIT))
            )
        )
    context = [line for line in (_revision_line(feed.revision), _trigger_line(feed)) if line]
    started = _started(feed)
    execution = f"execution `{feed.execution_id[:8]}`"
    context.append(f"Started {slack_date(started)} · {execution}" if started else execution)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text) for text in context]))
    return FeedView(
        text=f"{symbol} {feed.pipeline} {words}", blocks=[block.to_dict() for block in blocks]
    )


def line_key(kind: str, stage: str, action: str | None, step: StepState) -> str:
    return f"{kind}#{stage}#{action or ''}#{step.state}#{step.attempt}"


def thread_line(kind: str, stage: str, action: str | None, step: StepState) -> str:
    """One thread line: how a stage or an action ended."""
    symbol = _SYMBOLS[step.state]
    if kind == STAGE:
        return f"{symbol} Stage {escape_mrkdwn(stage)} {_WORDS[step.state]}"
    words = _WORDS[step.state]
    if (step.category or "").lower() == APPROVAL_CATEGORY.lower():
        words = {"SUCCEEDED": "approved", "FAILED": "rejected"}.get(step.state, words)
    line = f"{symbol} Action {escape_mrkdwn(stage)}/{escape_mrkdwn(action or '')} {words}"
    if step.summary:
        line += f": {escape_mrkdwn(step.summary)}"
    if step.url:
        line += f" · <{step.url}|logs>"
    return line


def wanted_lines(feed: Feed, announce: frozenset[str]) -> list[tuple[str, str]]:
    """(key, text) of every thread line the item calls for, in the order things ended."""
    ended: list[tuple[datetime, int, str, str, str]] = []
    if STAGE in announce:
        for stage, step in feed.stages.items():
            if step.ended:
                key = line_key(STAGE, stage, None, step)
                ended.append((step.at, 1, stage, key, thread_line(STAGE, stage, None, step)))
    if ACTION in announce:
        for (stage, action), step in feed.actions.items():
            if step.ended:
                key = line_key(ACTION, stage, action, step)
                text = thread_line(ACTION, stage, action, step)
                ended.append((step.at, 0, f"{stage}/{action}", key, text))
    return [(key, text) for *_, key, text in sorted(ended)]


def message_wanted(feed: Feed, announce: frozenset[str]) -> bool:
    """Every run started, so `started` asks for the message whatever the state; otherwise
    the state the run has reached must be one the policy announces."""
    step = feed.pipeline_state
    state = step.state if step is not None else "STARTED"
    return "started" in announce or ANNOUNCE_OF_STATE[state] in announce


# --------------------------------------------------------------------------- CodePipeline


@dataclass(frozen=True)
class ActionDetails:
    summary: str | None = None
    url: str | None = None


def action_details(codepipeline: Any, event: PipelineEvent) -> ActionDetails | None:
    """A failed action's error summary and logs link from ListActionExecutions; None
    when CodePipeline cannot say (the thread line goes out without them)."""
    try:
        response = codepipeline.list_action_executions(
            pipelineName=event.pipeline, filter={"pipelineExecutionId": event.execution_id}
        )
    except (ClientError, BotoCoreError) as exc:
        LOG.warning(
            "could not read the failed action's details",
            extra={"pipeline": event.pipeline, "error": _error_code(exc)},
        )
        return None
    details = response.get("actionExecutionDetails") if isinstance(response, dict) else None
    mine = [
        d
        for d in (details if isinstance(details, list) else [])
        if isinstance(d, dict)
        and d.get("stageName") == event.stage
        and d.get("actionName") == event.action
    ]
    if not mine:
        return None

    def newest_failure(detail: dict[str, Any]) -> tuple[bool, float]:
        updated = detail.get("lastUpdateTime")
        when = updated.timestamp() if isinstance(updated, datetime) else 0.0
        return (detail.get("status") == "Failed", when)

    detail = max(mine, key=newest_failure)
    result = _mapping(_mapping(detail.get("output")).get("executionResult"))
    errors = [e for e in (result.get("errorDetails"), detail.get("errorDetails")) if e]
    summary = _optional_summary(result.get("externalExecutionSummary"))
    for error in errors:
        if summary is None and isinstance(error, dict):
            summary = _optional_summary(error.get("message"))
    return ActionDetails(summary=summary, url=_optional_link(result.get("externalExecutionUrl")))


def execution_info(
    codepipeline: Any, feed: Feed
) -> tuple[Revision | None, tuple[str | None, str | None]]:
    """The source revision and the trigger, from GetPipelineExecution (once, when the
    message is first posted); nothing when CodePipeline cannot say."""
    try:
        response = codepipeline.get_pipeline_execution(
            pipelineName=feed.pipeline, pipelineExecutionId=feed.execution_id
        )
    except (ClientError, BotoCoreError) as exc:
        LOG.warning(
            "could not read the pipeline execution",
            extra={"pipeline": feed.pipeline, "error": _error_code(exc)},
        )
        return None, (None, None)
    execution = response.get("pipelineExecution") if isinstance(response, dict) else None
    if not isinstance(execution, dict):
        return None, (None, None)
    trigger = _mapping(execution.get("trigger"))
    trigger_type = trigger.get("triggerType")
    if not (isinstance(trigger_type, str) and _TRIGGER_TYPE.fullmatch(trigger_type)):
        trigger_type = None
    trigger_detail = trigger.get("triggerDetail")
    detail = None
    if isinstance(trigger_detail, str):
        detail = one_line(trigger_detail, 300) or None
    revisions = execution.get("artifactRevisions")
    revision = None
    for candidate in revisions if isinstance(revisions, list) else []:
        if isinstance(candidate, dict) and isinstance(candidate.get("revisionId"), str):
            revision = Revision(
                revision_id=one_line(candidate["revisionId"], 100),
                summary=_revision_summary(candidate.get("revisionSummary")),
                url=_optional_link(candidate.get("revisionUrl")),
            )
            break
    return revision, (trigger_type, detail)


def _revision_summary(value: Any) -> str | None:
    """The commit message; CodeStar connections put it in a JSON document."""
    if not isinstance(value, str):
        return None
    if value.startswith("{"):
        try:
            document = json.loads(value)
        except ValueError:
            document = None
        if isinstance(document, dict) and isinstance(document.get("CommitMessage"), str):
            value = document["CommitMessage"]
    first = value.strip().splitlines()[0] if value.strip() else ""
    return one_line(first, 150) or None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return type(exc).__name__


# --------------------------------------------------------------------------- approvals

APPROVED_IN_CONSOLE = "Approved in the CodePipeline console"
REJECTED_IN_CONSOLE = "Rejected in the CodePipeline console, or expired there"
CANCELLED_IN_CODEPIPELINE = "Cancelled in CodePipeline"
SUPERSEDED = "Superseded by a newer run"
STOPPED = "The pipeline run was stopped"
ENDED_BEFORE_DECISION = "The pipeline run ended before a decision"

_PIPELINE_NOTES = {
    "SUPERSEDED": SUPERSEDED,
    "STOPPED": STOPPED,
    "STOPPING": STOPPED,
    "FAILED": ENDED_BEFORE_DECISION,
    "CANCELED": ENDED_BEFORE_DECISION,
}


def is_approval(event: PipelineEvent) -> bool:
    return event.kind == ACTION and (event.category or "").lower() == APPROVAL_CATEGORY.lower()


def settlement_note(event: PipelineEvent, details: ActionDetails | None) -> str | None:
    """Why CodePipeline settled the execution's open approvals itself, or None."""
    if is_approval(event):
        if event.state == "SUCCEEDED":
            return APPROVED_IN_CONSOLE
        if event.state == "FAILED":
            summary = details.summary if details else None
            return f"{REJECTED_IN_CONSOLE}: {summary}" if summary else REJECTED_IN_CONSOLE
        if event.state in ("CANCELED", "ABANDONED"):
            return CANCELLED_IN_CODEPIPELINE
        return None
    if event.kind == PIPELINE:
        return _PIPELINE_NOTES.get(event.state)
    return None


# --------------------------------------------------------------------------- one event


def handle_event(
    event: PipelineEvent,
    *,
    store: FeedStore,
    approvals: ApprovalStore,
    slack: Any,
    policy: Policy,
    codepipeline: Any,
    sfn: Any,
    clock: Clock,
) -> dict[str, Any]:
    """Apply one CodePipeline event: the feed item, open approvals, then Slack.

    Safe to run twice and in any order: a duplicate or an earlier state changes nothing,
    and Slack is only told what the item shows and Slack does not show yet (so a retry
    after a Slack error completes what the first attempt left undone).
    """
    rules = policy.resolve(event.pipeline)
    announce = frozenset(rules.announce)
    details = None
    if (
        event.kind == ACTION
        and event.state == "FAILED"
        and (ACTION in announce or is_approval(event))
    ):
        details = action_details(codepipeline, event) or ActionDetails()
        details = ActionDetails(
            summary=details.summary or event.external_summary,
            url=details.url or event.external_url,
        )
    applied = store.apply(
        event,
        now=clock(),
        summary=details.summary if details else None,
        url=details.url if details else None,
    )
    result: dict[str, Any] = {
        "posted": False,
        "updated": False,
        "threaded": False,
        "ignored": None if applied.outcome == "applied" else applied.outcome,
        "settled": [],
    }
    note = settlement_note(event, details)
    if note is not None:
        # Idempotent (only PENDING approvals move), so it runs for duplicates too: a retry
        # after a failure here must still close the approval.
        result["settled"] = settle_elsewhere(
            pipeline_execution_id=event.execution_id,
            stage=event.stage if event.kind == ACTION else None,
            action=event.action if event.kind == ACTION else None,
            note=note,
            store=approvals,
            sfn=sfn,
            clock=clock,
        )
    feed = applied.feed
    if feed.message_ts is None:
        if not message_wanted(feed, announce):
            if result["ignored"] is None:
                result["ignored"] = "not announced"
            return result
        posted = _post_message(
            feed,
            channel=rules.effective_status_channel,
            store=store,
            slack=slack,
            codepipeline=codepipeline,
            clock=clock,
        )
        if posted is None:  # another Lambda posts it, and shows what we applied
            return result
        feed = posted
        result["posted"] = True
    result["updated"], feed = _refresh(feed, store=store, slack=slack)
    result["threaded"] = _post_lines(feed, announce, store, slack)
    return result


def _post_message(
    feed: Feed, *, channel: str, store: FeedStore, slack: Any, codepipeline: Any, clock: Clock
) -> Feed | None:
    """Post the execution's message once: the one Lambda whose claim wins posts it."""
    token = uuid.uuid4().hex
    claimed = store.claim_post(feed.execution_id, token, clock())
    if claimed is None:
        return None
    revision, trigger = execution_info(codepipeline, claimed)
    # What the item will hold once saved (save_post keeps a trigger already known).
    shown = feed_view(
        replace(
            claimed,
            revision=revision or claimed.revision,
            trigger_type=claimed.trigger_type or trigger[0],
            trigger_detail=claimed.trigger_detail or trigger[1],
        )
    )
    try:
        response = slack.chat_postMessage(
            channel=channel,
            text=shown.text,
            blocks=shown.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
    except Exception:
        store.release_post(feed.execution_id, token)
        raise
    saved = store.save_post(
        feed.execution_id,
        token=token,
        channel=str(response["channel"]),
        ts=str(response["ts"]),
        shown=shown.digest,
        revision=revision,
        trigger=trigger,
    )
    LOG.info(
        "posted the pipeline execution's message",
        extra={"pipeline": feed.pipeline, "channel": saved.channel},
    )
    return saved


#: Rounds of "update, then check nobody applied something meanwhile" before leaving the
#: rest to the next event's Lambda.
_REFRESH_ROUNDS = 3


def _refresh(feed: Feed, *, store: FeedStore, slack: Any) -> tuple[bool, Feed]:
    """Update the message in place while it shows less than the item holds."""
    updated = False
    for _ in range(_REFRESH_ROUNDS):
        view = feed_view(feed)
        if view.digest == feed.shown or not feed.channel or not feed.message_ts:
            break
        try:
            slack.chat_update(
                channel=feed.channel, ts=feed.message_ts, text=view.text, blocks=view.blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted the message: nothing to update, and no point retrying.
            LOG.warning(
                "the pipeline execution's message is gone",
                extra={"pipeline": feed.pipeline, "channel": feed.channel},
            )
            return updated, feed
        updated = True
        # Read back with the new digest: a change applied meanwhile shows as a mismatch.
        feed = store.mark_shown(feed.execution_id, view.digest)
    return updated, feed


def _post_lines(feed: Feed, announce: frozenset[str], store: FeedStore, slack: Any) -> bool:
    """Post every thread line the item calls for that nobody has posted yet."""
    if not feed.channel or not feed.message_ts:
        return False
    threaded = False
    for key, text in wanted_lines(feed, announce):
        if key in feed.lines or not store.claim_line(feed.execution_id, key):
            continue
        try:
            slack.chat_postMessage(
                channel=feed.channel,
                thread_ts=feed.message_ts,
                text=text,
                unfurl_links=False,
                unfurl_media=False,
            )
        except Exception:
            store.release_line(feed.execution_id, key)
            raise
        threaded = True
    return threaded
