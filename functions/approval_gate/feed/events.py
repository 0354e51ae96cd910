"""CodePipeline's EventBridge events, read and validated for the status feed.

The pipeline, stage and action execution state changes become `PipelineEvent`s at the
edge; anything else raises `InvalidEvent`, whose message names the field at fault. Each
state has a level, and `rank_of` orders the states of one execution (a retried attempt
starts over, above every state of the attempts before it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from approval_gate.clock import parse_iso
from approval_gate.text import one_line

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
_LINK = re.compile(r"https?://[^\s<>|]{1,2040}")
#: A trigger type as CodePipeline names it (in events and in GetPipelineExecution).
TRIGGER_TYPE = re.compile(r"[A-Za-z0-9]{1,64}")

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
    """Every state of an attempt (0 included) ranks below every state of a later attempt:
    levels are 1 to 3, so ten rank steps per attempt keep the attempts apart."""
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
    """The attempt as CodePipeline counts it: the user guide's emitted events show 1.0 for
    a first attempt, its processed events 0.0; either orders below the retries after it."""
    if value is None:
        return 1
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidEvent("detail.pipeline-execution-attempt must be a number")
    if value != int(value) or not 0 <= value <= 10_000:
        raise InvalidEvent("detail.pipeline-execution-attempt is not a whole number >= 0")
    return int(value)


def optional_link(value: Any) -> str | None:
    """The value if it is a link fit to show in Slack (http or https, no mrkdwn), or None."""
    return value if isinstance(value, str) and _LINK.fullmatch(value) else None


def optional_summary(value: Any) -> str | None:
    """An error summary on one line, cut to MAX_ERROR_SUMMARY; None if there is none."""
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
            values["external_summary"] = optional_summary(result.get("external-execution-summary"))
            values["external_url"] = optional_link(result.get("external-execution-url"))
    if kind == PIPELINE:
        trigger = detail.get("execution-trigger")
        if trigger is not None:
            if not isinstance(trigger, dict):
                raise InvalidEvent("detail.execution-trigger is not a JSON object")
            if trigger.get("trigger-type") is not None:
                values["trigger_type"] = _matching(
                    trigger["trigger-type"],
                    "detail.execution-trigger.trigger-type",
                    TRIGGER_TYPE,
                    "a trigger type",
                )
            if isinstance(trigger.get("trigger-detail"), str):
                values["trigger_detail"] = one_line(trigger["trigger-detail"], 300) or None
    return PipelineEvent(**values)


def is_approval(event: PipelineEvent) -> bool:
    return event.kind == ACTION and (event.category or "").lower() == APPROVAL_CATEGORY.lower()
