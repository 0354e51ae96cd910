"""The approval request CodePipeline publishes to SNS: parsed, validated, identified.

CodePipeline's manual-approval notification is JSON in the SNS message body:

    {"region": "us-east-2", "consoleLink": "https://console.aws.amazon.com/...",
     "approval": {"pipelineName": ..., "stageName": ..., "actionName": ..., "token": <uuid>,
                  "expires": "2016-07-07T20:22Z", "externalEntityLink": ...,
                  "approvalReviewLink": ..., "customData": ...}}

Anything else on the topic (a hand-published test message, a truncated or hostile body) is
rejected with a reason that names the field, and starts nothing.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from approval_gate.clock import parse_iso

_NAME = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")
_TOKEN = re.compile(
    r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
)
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d{1,2}$")
_EXPIRES = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?(Z|[+-]00:00)$")
_LINK = re.compile(r"^https?://[^\s<>|]{1,2040}$")
_EXECUTION_NAME_UNSAFE = re.compile(r"[^0-9A-Za-z_-]")

#: CodePipeline caps an approval action's custom data at 500 characters.
MAX_CUSTOM_DATA = 500
#: Step Functions execution names are at most 80 characters.
MAX_EXECUTION_NAME = 80
#: Times outside these bounds come from no CodePipeline or SNS: date arithmetic on them
#: overflows (Python's dates end with year 9999) or they do not survive ISO formatting.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(9000, 1, 1, tzinfo=UTC)


class InvalidNotification(ValueError):
    """The SNS message is not a CodePipeline approval notification we can act on.

    The message names the field and says what is wrong, never echoes the token.
    """


@dataclass(frozen=True)
class ApprovalRequest:
    pipeline: str
    stage: str
    action: str
    token: str = field(repr=False)
    expires: datetime
    region: str
    console_link: str | None = None
    external_entity_link: str | None = None
    custom_data: str | None = None

    @property
    def approval_id(self) -> str:
        """Opaque, stable id of this request: the Slack button value and the table key.

        Derived from the request so that a duplicate SNS delivery maps to the same approval;
        a one-way hash, so the id reveals nothing of the CodePipeline token.
        """
        material = "\n".join((self.pipeline, self.stage, self.action, self.token))
        return hashlib.sha256(material.encode()).hexdigest()[:32]

    @property
    def execution_name(self) -> str:
        """The Step Functions execution name: the pipeline, then the approval id (≤ 80)."""
        suffix = "-" + self.approval_id
        prefix = _EXECUTION_NAME_UNSAFE.sub("_", self.pipeline)[: MAX_EXECUTION_NAME - len(suffix)]
        return prefix + suffix


def _text(value: Any, where: str, *, required: bool = True) -> str | None:
    if value is None or value == "":
        if required:
            raise InvalidNotification(f"{where} is missing")
        return None
    if not isinstance(value, str):
        raise InvalidNotification(f"{where} must be a string, got {type(value).__name__}")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise InvalidNotification(f"{where} is not valid Unicode text") from None
    return value


def _name(value: Any, where: str) -> str:
    text = _text(value, where)
    assert text is not None
    if not _NAME.fullmatch(text):
        raise InvalidNotification(f"{where} is not a CodePipeline name: {text[:100]!r}")
    return text


def _link(value: Any, where: str) -> str | None:
    text = _text(value, where, required=False)
    if text is not None and not _LINK.fullmatch(text):
        raise InvalidNotification(f"{where} is not an http(s) link")
    return text


def parse_approval_message(message: Any) -> ApprovalRequest:
    """Parse the body of one SNS message (a JSON string) into an ApprovalRequest."""
    if not isinstance(message, str):
        raise InvalidNotification("the SNS message body is not text")
    if len(message) > 262_144:
        raise InvalidNotification("the SNS message is larger than SNS allows")
    try:
        doc = json.loads(message)
    except json.JSONDecodeError as exc:
        raise InvalidNotification(f"the SNS message is not JSON ({exc.msg})") from None
    except RecursionError:
        raise InvalidNotification("the SNS message nests too deeply to be a notification") from None
    if not isinstance(doc, dict):
        raise InvalidNotification("the SNS message is not a JSON object")
    approval = doc.get("approval")
    if not isinstance(approval, dict):
        raise InvalidNotification("approval is missing: not a manual-approval notification")

    token = _text(approval.get("token"), "approval.token")
    assert token is not None
    if not _TOKEN.fullmatch(token):
        raise InvalidNotification("approval.token is not a CodePipeline approval token")

    expires_text = _text(approval.get("expires"), "approval.expires")
    assert expires_text is not None
    if not _EXPIRES.fullmatch(expires_text):
        raise InvalidNotification(
            f"approval.expires is not a UTC time like 2016-07-07T20:22Z: {expires_text[:40]!r}"
        )
    try:
        expires = parse_iso(expires_text)
    except ValueError:
        raise InvalidNotification(
            f"approval.expires is not a valid time: {expires_text!r}"
        ) from None
    if not EARLIEST <= expires < LATEST:
        raise InvalidNotification(f"approval.expires is out of range: {expires_text!r}")

    region = _text(doc.get("region"), "region")
    assert region is not None
    if not _REGION.fullmatch(region):
        raise InvalidNotification(f"region is not an AWS region: {region[:40]!r}")

    custom_data = _text(approval.get("customData"), "approval.customData", required=False)
    if custom_data is not None and len(custom_data) > MAX_CUSTOM_DATA:
        raise InvalidNotification(
            f"approval.customData is longer than CodePipeline allows ({MAX_CUSTOM_DATA})"
        )

    return ApprovalRequest(
        pipeline=_name(approval.get("pipelineName"), "approval.pipelineName"),
        stage=_name(approval.get("stageName"), "approval.stageName"),
        action=_name(approval.get("actionName"), "approval.actionName"),
        token=token,
        expires=expires,
        region=region,
        console_link=_link(doc.get("consoleLink"), "consoleLink"),
        external_entity_link=_link(
            approval.get("externalEntityLink"), "approval.externalEntityLink"
        ),
        custom_data=custom_data,
    )


@dataclass(frozen=True)
class SnsMessage:
    message_id: str
    timestamp: datetime | None
    body: Any


def sns_messages(event: Any) -> list[SnsMessage]:
    """The messages of an SNS → Lambda event; raises InvalidNotification if it is not one."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not isinstance(records, list) or not records:
        raise InvalidNotification("the event has no SNS records")
    messages = []
    for index, record in enumerate(records):
        sns = record.get("Sns") if isinstance(record, dict) else None
        if not isinstance(sns, dict):
            raise InvalidNotification(f"Records[{index}] is not an SNS record")
        timestamp = None
        if isinstance(sns.get("Timestamp"), str):
            try:
                timestamp = parse_iso(sns["Timestamp"])
            except ValueError:
                timestamp = None
            if timestamp is not None and not EARLIEST <= timestamp < LATEST:
                timestamp = None  # not SNS's: the request time is taken from the clock
        messages.append(
            SnsMessage(
                message_id=str(sns.get("MessageId", ""))[:100],
                timestamp=timestamp,
                body=sns.get("Message"),
            )
        )
    return messages
