"""The fuzzer's judges: what a request may do, what it did, and what it let slip.

The signature and authorization oracles re-derive from the raw event alone, by Slack's
documented rules, whether a request is validly signed and whether its user may decide the
approval it names. They are strict on purpose: a request the handler refuses for a reason
the oracle does not know is fine (nothing changes), but a request the oracle calls forged
or unauthorized that changes anything is a defect.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote_plus

#: Slack's replay window.
WINDOW_SECONDS = 300
#: Slack's interaction payloads are a few kilobytes; the oracle reads nothing larger.
MAX_PAYLOAD = 256 * 1024
_SIGNATURE = "x-slack-signature"
_TIMESTAMP = "x-slack-request-timestamp"
APPROVE = "approve"
REJECT = "reject"
_VIEWS = ("approval_gate_reject", "approval_gate_approve")
PENDING = "PENDING"


# --------------------------------------------------------------------------- signature


def signed_body(event: Any, secret: str, now: float) -> bytes | None:
    """The raw body, if the event carries Slack's valid v0 signature over it; else None.

    Headers are matched without regard to case (one of each); the timestamp must be ASCII
    decimal digits within five minutes of `now`; a base64 body (isBase64Encoded true, and
    only then) is decoded first; the signature is exactly `v0=` and the lower-case hex.
    """
    if not isinstance(event, dict) or not isinstance(event.get("headers"), dict):
        return None
    found: dict[str, str] = {}
    for key, value in event["headers"].items():
        name = key.lower() if isinstance(key, str) else None
        if name in (_SIGNATURE, _TIMESTAMP):
            if name in found or not isinstance(value, str):
                return None
            found[name] = value
    timestamp, signature = found.get(_TIMESTAMP), found.get(_SIGNATURE)
    if timestamp is None or signature is None:
        return None
    if not (timestamp.isascii() and timestamp.isdigit()) or len(timestamp) > 15:
        return None
    if abs(now - int(timestamp)) > WINDOW_SECONDS:
        return None
    body = event.get("body")
    if not isinstance(body, str):
        return None
    if event.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            return None
    else:
        try:
            raw = body.encode("utf-8")
        except UnicodeEncodeError:
            return None
    base = b"v0:" + timestamp.encode() + b":" + raw
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return (
        raw
        if hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace"))
        else None
    )


def interaction_payload(raw: bytes) -> dict[str, Any] | None:
    """Slack's `payload=<JSON object>` form body, strictly; None for anything else
    (a body far larger than Slack sends included)."""
    if len(raw) > MAX_PAYLOAD:
        return None
    try:
        form = parse_qs(raw.decode("utf-8"), strict_parsing=True)
    except (UnicodeDecodeError, ValueError):
        return None
    values = form.get("payload")
    if not values or len(values) != 1:
        return None
    try:
        payload = json.loads(values[0])
    except (ValueError, RecursionError):
        return None
    return payload if isinstance(payload, dict) else None


def _field(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


@dataclass(frozen=True)
class Verdict:
    """What a Slack request is entitled to: `authorized` requests may change the approval
    they name (`approval_id`), and nothing else; all others may change nothing."""

    signed: bool
    approval_id: str | None = None
    user_id: str | None = None
    authorized: bool = False


def judge(
    event: Any,
    *,
    secret: str,
    now: float,
    team_id: str,
    app_id: str,
    approvers: Mapping[str, Iterable[str]],
) -> Verdict:
    """Signed by Slack, from our workspace and app, by an approver of the named approval?"""
    raw = signed_body(event, secret, now)
    if raw is None:
        return Verdict(signed=False)
    payload = interaction_payload(raw)
    if payload is None:
        return Verdict(signed=True)
    kind = payload.get("type")
    approval_id: Any = None
    if kind == "block_actions":
        actions = payload.get("actions")
        one = actions[0] if isinstance(actions, list) and len(actions) == 1 else None
        if isinstance(one, dict) and one.get("action_id") in (APPROVE, REJECT):
            approval_id = one.get("value")
    elif kind == "view_submission" and _field(payload, "view", "callback_id") in _VIEWS:
        approval_id = _field(payload, "view", "private_metadata")
    user = _field(payload, "user", "id")
    team = _field(payload, "team", "id") or _field(payload, "user", "team_id")
    if not isinstance(approval_id, str) or not isinstance(user, str):
        return Verdict(signed=True)
    allowed = (
        team == team_id
        and payload.get("api_app_id") == app_id
        and user in set(approvers.get(approval_id, ()))
    )
    return Verdict(signed=True, approval_id=approval_id, user_id=user, authorized=allowed)


# --------------------------------------------------------------------------- state


@dataclass(frozen=True)
class State:
    """What a request could change: the approvals table, the workflows, Slack's messages."""

    #: approval id -> (status, votes, decided_by, reason), as stored.
    approvals: dict[str, str]
    #: (channel, message ts) -> the approval whose request message it is.
    places: dict[tuple[str, str], str]
    #: execution name -> status (as last read: workflows change on their own time).
    executions: dict[str, str]
    #: (channel, ts) -> (thread_ts, text, blocks) of every message but ephemeral ones
    #: (as last read in full).
    messages: dict[tuple[str, str], tuple[str | None, str, Any]]
    ephemerals: int
    #: The read approvals' request messages: (channel, ts) -> (text, blocks, replies).
    requests: dict[tuple[str, str], tuple[str, Any, int]]
    #: The CodePipeline tokens and task tokens read so far.
    tokens: frozenset[str]

    def status(self, approval_id: str) -> str | None:
        stored = self.approvals.get(approval_id)
        return json.loads(stored)[0] if stored is not None else None


def _plain(value: dict[str, Any]) -> Any:
    """A DynamoDB attribute value as plain JSON (enough to compare and to read)."""
    (kind, inner), *_ = value.items()
    if kind == "M":
        return {k: _plain(v) for k, v in sorted(inner.items())}
    if kind == "L":
        return [_plain(v) for v in inner]
    if kind in ("SS", "NS"):
        return sorted(inner)
    return inner


def moto_race(exc: BaseException) -> bool:
    """moto serialises a DynamoDB answer outside the sandbox's lock (patch 7), while a
    workflow thread may be changing that same item: "dictionary changed size during
    iteration", raised in moto. A fault of the sandbox, not of the code under test."""
    if not isinstance(exc, RuntimeError) or "changed size during iteration" not in str(exc):
        return False
    frame = exc.__traceback__
    while frame is not None:
        if "/moto/" in frame.tb_frame.f_code.co_filename:
            return True
        frame = frame.tb_next
    return False


def _calm(call: Any, **kwargs: Any) -> Any:
    """A boto3 call against moto, retried while it trips over `moto_race`."""
    for attempt in range(20):
        try:
            return call(**kwargs)
        except RuntimeError as exc:
            if not moto_race(exc) or attempt == 19:
                raise
    raise AssertionError("unreachable")


class StateReader:
    """Reads `State` from a running sandbox: the table, the workflows, the fake Slack.

    `read()` reads everything (a scan, every execution); `read(watched)` only the given
    approvals and their executions, which keeps a snapshot cheap however large the table
    grows. Where request messages are, and every token seen, is remembered across reads.
    """

    def __init__(self, sandbox: Any) -> None:
        self.sandbox = sandbox
        self.dynamodb = sandbox.client("dynamodb")
        self.stepfunctions = sandbox.client("stepfunctions")
        #: (channel, ts) of each approval's request message, once it was seen.
        self.places: dict[tuple[str, str], str] = {}
        #: Every CodePipeline token and task token ever read.
        self.tokens: set[str] = set()
        self._arns: dict[str, str] = {}

    def items(self, watched: Iterable[str] | None = None) -> list[dict[str, Any]]:
        table = self.sandbox.table_name
        if watched is not None:
            keys = [{"approval_id": {"S": approval_id}} for approval_id in watched]
            items: list[dict[str, Any]] = []
            for start in range(0, len(keys), 100):
                request = {table: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
                while request:
                    answer = _calm(self.dynamodb.batch_get_item, RequestItems=request)
                    items.extend(answer.get("Responses", {}).get(table, []))
                    request = answer.get("UnprocessedKeys") or {}
            return items
        items = []
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True}
        while True:
            page = _calm(self.dynamodb.scan, **kwargs)
            items.extend(page.get("Items", []))
            if "LastEvaluatedKey" not in page:
                return items
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def arn(self, approval_id: str) -> str:
        """The execution ARN of an approval's workflow (listed once if not yet known)."""
        if approval_id not in self._arns:
            self.executions()
        return self._arns[approval_id]

    def executions(self, watched: Iterable[str] | None = None) -> dict[str, str]:
        """Execution name -> status: of every execution, or of the watched approvals'."""
        if watched is not None:
            wanted = list(watched)
            if any(approval_id not in self._arns for approval_id in wanted):
                self.executions()
            found: dict[str, str] = {}
            for approval_id in wanted:
                if approval_id in self._arns:
                    described = _calm(
                        self.stepfunctions.describe_execution, executionArn=self._arns[approval_id]
                    )
                    found[described["name"]] = described["status"]
            return found
        found = {}
        kwargs: dict[str, Any] = {
            "stateMachineArn": self.sandbox.state_machine_arn,
            "maxResults": 1000,
        }
        while True:
            page = _calm(self.stepfunctions.list_executions, **kwargs)
            for execution in page["executions"]:
                found[execution["name"]] = execution["status"]
                self._arns[execution["name"].rsplit("-", 1)[-1]] = execution["executionArn"]
            if not page.get("nextToken"):
                return found
            kwargs["nextToken"] = page["nextToken"]

    def get_item(self, approval_id: str) -> dict[str, Any] | None:
        item: dict[str, Any] | None = _calm(
            self.dynamodb.get_item,
            TableName=self.sandbox.table_name,
            Key={"approval_id": {"S": approval_id}},
            ConsistentRead=True,
        ).get("Item")
        return item

    def read(
        self,
        watched: Iterable[str] | None = None,
        slack: bool = True,
        carry: State | None = None,
    ) -> State:
        """A snapshot: of everything, or of the `watched` approvals and all of Slack.

        Given `carry` (an earlier read), only the approvals and their request messages
        are read; every message and the workflows are the earlier read's. (Reading all
        of Slack costs more as messages pile up; workflows move on moto's threads, so a
        read right after a request proves little. A full read at the end of a batch
        sees what the batch did to them.)
        """
        watched = None if watched is None else list(watched)
        approvals: dict[str, str] = {}
        tokens: set[str] = set()
        for item in self.items(watched):
            if "token" not in item:
                continue  # a status-feed item, not an approval
            approval_id = item["approval_id"]["S"]
            record = [_plain(item[k]) if k in item else None for k in _COMPARED]
            approvals[approval_id] = json.dumps(record, sort_keys=True)
            for key in ("token", "task_token"):
                if "S" in item.get(key, {}):
                    tokens.add(item[key]["S"])
            if "S" in item.get("channel", {}) and "S" in item.get("message_ts", {}):
                self.places[(item["channel"]["S"], item["message_ts"]["S"])] = approval_id
        self.tokens |= tokens
        requests: dict[tuple[str, str], tuple[str, Any, int]] = {}
        if slack:
            for place, approval_id in self.places.items():
                if approval_id not in approvals:
                    continue
                shown = self.sandbox.slack.find_message(*place)
                if shown is not None:
                    requests[place] = (shown["text"], shown["blocks"], shown["reply_count"])
        if carry is not None:
            return State(
                approvals=approvals,
                places=dict(self.places),
                executions=carry.executions,
                messages=carry.messages,
                ephemerals=carry.ephemerals,
                requests=requests,
                tokens=frozenset(self.tokens),
            )
        messages: dict[tuple[str, str], tuple[str | None, str, Any]] = {}
        ephemerals = 0
        if slack:
            for message in self.sandbox.slack.messages():
                if message.get("ephemeral_user"):
                    ephemerals += 1
                    continue
                messages[(message["channel"], message["ts"])] = (
                    message.get("thread_ts"),
                    message.get("text") or "",
                    message.get("blocks") or [],
                )
        return State(
            approvals=approvals,
            places=dict(self.places),
            executions=self.executions(watched),
            messages=messages,
            ephemerals=ephemerals,
            requests=requests,
            tokens=frozenset(self.tokens),
        )


#: What an approval's state is, for "did it change": the brief's fields and the reason.
_COMPARED = ("status", "votes", "decided_by", "reason")


def changes(before: State, after: State) -> dict[str, list[str]]:
    """What changed, by approval id ("" for a change no approval explains)."""
    found: dict[str, list[str]] = {}

    def note(approval_id: str, what: str) -> None:
        found.setdefault(approval_id, []).append(what)

    for approval_id in before.approvals.keys() | after.approvals.keys():
        old, new = before.approvals.get(approval_id), after.approvals.get(approval_id)
        if old != new:
            note(approval_id, "approvals item " + ("created" if old is None else "changed"))
    for name in before.executions.keys() | after.executions.keys():
        old, new = before.executions.get(name), after.executions.get(name)
        if old != new:
            note(name.rsplit("-", 1)[-1], f"execution {name} {old} -> {new}")
    known = after.approvals.keys() | before.approvals.keys()
    places = {**before.places, **after.places}
    for key in before.requests.keys() & after.requests.keys():
        if before.requests[key] != after.requests[key]:
            note(places.get(key, ""), f"request message {key[0]}/{key[1]} or its thread changed")
    for key in before.messages.keys() | after.messages.keys():
        old_message, new_message = before.messages.get(key), after.messages.get(key)
        if old_message == new_message:
            continue
        shown = new_message or old_message
        assert shown is not None
        note(_owner(key, shown, places, known), f"Slack message {key[0]}/{key[1]} changed")
    if after.ephemerals != before.ephemerals:
        note("", f"{after.ephemerals - before.ephemerals} ephemeral message(s) posted")
    return found


def _owner(
    key: tuple[str, str],
    message: tuple[str | None, str, Any],
    places: Mapping[tuple[str, str], str],
    known: Iterable[str],
) -> str:
    channel, _ = key
    thread_ts, text, blocks = message
    owner = places.get(key) or (places.get((channel, thread_ts)) if thread_ts else None)
    if owner:
        return owner
    shown = json.dumps(blocks, default=str) + text
    return next((a for a in known if a in shown), "")


# --------------------------------------------------------------------------- secrets


def find_secrets(texts: Iterable[str], secrets: Mapping[str, str]) -> list[str]:
    """The labels of the secrets (value -> label) that occur in any of `texts`."""
    found: list[str] = []
    joined = "\n".join(texts)
    for value, label in secrets.items():
        if value and value in joined:
            found.append(label)
    return found


def request_text(event: Any) -> str:
    """Everything a request carries, also decoded, so an echo of its own input is told
    apart from a leak."""
    try:
        text = json.dumps(event, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        text = repr(event)
    parts = [text, unquote_plus(text)]
    body = event.get("body") if isinstance(event, dict) else None
    if isinstance(body, str):
        try:
            decoded = base64.b64decode(body).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            decoded = ""
        parts += [decoded, unquote_plus(decoded)]
    return "\n".join(parts)
