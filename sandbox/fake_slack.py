"""A fake Slack workspace and Web API for the local sandbox.

``FakeSlack`` holds the state Slack would hold (users, user groups, channels and whether the
bot is in each, messages, opened views, response URLs, trigger ids) and answers Web API
methods exactly as Slack's Web API would, within Slack's rate limits when asked to
(``sandbox.slack_limits``),
so the real handlers run unchanged against it through
``slack_sdk.WebClient(base_url="http://127.0.0.1:PORT/slack/api/")``. It has no HTTP server
of its own: the sandbox's HTTP front merges a request's query, form and JSON arguments and
calls :meth:`FakeSlack.api`. Tests read what Slack would now show with
:meth:`FakeSlack.messages`, :meth:`FakeSlack.calls` (each call with the answer it got) and
:meth:`FakeSlack.views`.

The module also acts as Slack towards the app: :func:`block_actions_payload` builds the
payload Slack sends when a person clicks a button, :func:`view_submission_payload` the one
it sends when a person submits a modal the app opened, and :func:`signed_request` /
:func:`form_body` sign and encode them as Slack's interactivity requests are; what the
sandbox sends is kept (:meth:`FakeSlack.record_interaction`).

All state is guarded by one lock; nothing happens at import time.
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import itertools
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from slack_sdk.signature import SignatureVerifier

from sandbox.services import SLACK_METHODS, Reply
from sandbox.slack_limits import SlackLimits

if TYPE_CHECKING:
    from sandbox.faults import Faults

__all__ = [
    "FakeSlack",
    "block_actions_payload",
    "form_body",
    "signed_request",
    "view_submission_payload",
]

SANDBOX_BOT_TOKEN = "xoxb-sandbox-bot-token"
#: The app configuration token the fake accepts for the App Manifest API (Slack's start
#: with ``xoxe.xoxp-``; docs/sandbox.md).
SANDBOX_CONFIG_TOKEN = "xoxe.xoxp-sandbox-config-token"
#: Methods `approval-gate setup` calls besides the gate's (SLACK_METHODS): bots.info (the
#: app id) with the bot token, the App Manifest API with the configuration token. No fault
#: or rate limit applies to them.
SETUP_METHODS = frozenset({"bots.info", "apps.manifest.export", "apps.manifest.update"})
_MANIFEST_METHODS = ("apps.manifest.export", "apps.manifest.update")
REDACTED = "[redacted]"
TEXT_LIMIT = 40_000
MESSAGE_BLOCK_LIMIT = 50
VIEW_BLOCK_LIMIT = 100
RESPONSE_URL_USES = 5
RESPONSE_URL_TTL = 30 * 60.0
DEFAULT_TZ = "Europe/London"
#: The public channel every fake workspace has, the bot a member (DESIGN §8.6).
DEPLOYS_CHANNEL = ("C0DEPLOYS", "deploys")
#: conversations.list: how many a page holds unless ``limit`` says (Slack: 100, at most 1000).
CONVERSATIONS_PAGE = 100
CONVERSATIONS_PAGE_MAX = 1000

#: The app's manifest, whose bot scopes the sandbox's token has until told otherwise.
MANIFEST = Path(__file__).resolve().parent.parent / "slack-app-manifest.yaml"
#: The bot scope each method needs (Slack's method reference, "Required scopes"); the
#: conversations.* methods need the one of the conversation's type (``_needed_scope``).
#: views.open, chat.getPermalink and auth.test need none.
METHOD_SCOPES = {
    "chat.postMessage": "chat:write",
    "chat.update": "chat:write",
    "chat.postEphemeral": "chat:write",
    "usergroups.users.list": "usergroups:read",
    "users.info": "users:read",
    "users.lookupByEmail": "users:read.email",
    "bots.info": "users:read",
}
#: conversations.list's ``types`` and conversations.info's and conversations.history's
#: channel kinds -> the scope that reads them, and the one that reads their history.
_READ_SCOPES = {
    "public_channel": "channels:read",
    "private_channel": "groups:read",
    "mpim": "mpim:read",
    "im": "im:read",
}
_HISTORY_SCOPES = {"public_channel": "channels:history", "private_channel": "groups:history"}
#: Every scope a method the fake answers may need: a ``FakeSlack`` built without scopes
#: has them all.
ALL_SCOPES = tuple(
    dict.fromkeys([*METHOD_SCOPES.values(), *_READ_SCOPES.values(), *_HISTORY_SCOPES.values()])
)
_SCOPE_RE = re.compile(r"^[a-z][a-z0-9_.-]*(?::[a-z0-9_.-]+)*$")
_CHANNEL_RE = re.compile(r"^[CGD][A-Z0-9]+$")
_TOKEN_RE = re.compile(r"xox[a-z]-[A-Za-z0-9-]+")
_JSON_ARGS = ("blocks", "view", "attachments", "metadata")
#: conversations.history: how many messages a page holds unless ``limit`` says (Slack: 100,
#: at most 999).
HISTORY_PAGE = 100
HISTORY_PAGE_MAX = 999
#: Input elements whose state is the text typed (``{"type": ..., "value": ...}``).
_TEXT_INPUTS = frozenset({"plain_text_input", "email_text_input", "url_text_input", "number_input"})
#: Elements Slack takes in actions and input blocks but not as a section's accessory (its
#: section block reference lists the accessories; the datetime picker is not one).
_NOT_ACCESSORIES = frozenset({"datetimepicker"})

# A per-process sequence for the fractional part of message timestamps, so two messages
# posted within the same second (even by two fakes) never share a ts.
_TS_SEQ = itertools.count(1)
_TS_SEQ_LOCK = threading.Lock()


class _Failure(Exception):
    """A Slack API error: answered as ``{"ok": false, "error": ...}``."""

    def __init__(self, error: str, messages: list[str] | None = None) -> None:
        super().__init__(error)
        self.error = error
        self.messages = messages or []

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": self.error}
        if self.messages:
            body["errors"] = list(self.messages)
            body["response_metadata"] = {"messages": [f"[ERROR] {m}" for m in self.messages]}
        return body


class _MissingScope(_Failure):
    """A method the token's scopes do not cover: Slack names the scope needed and those
    the token has."""

    def __init__(self, needed: str, provided: Iterable[str]) -> None:
        super().__init__("missing_scope")
        self.needed = needed
        self.provided = ",".join(provided)

    def body(self) -> dict[str, Any]:
        return {"ok": False, "error": self.error, "needed": self.needed, "provided": self.provided}


def manifest_bot_scopes(manifest: Path = MANIFEST) -> tuple[str, ...]:
    """The bot scopes the app's manifest asks for (``oauth_config.scopes.bot``), in its
    order: what a bot token of an app installed from it has."""
    import yaml

    document = yaml.safe_load(manifest.read_text(encoding="utf-8")) or {}
    scopes = ((document.get("oauth_config") or {}).get("scopes") or {}).get("bot") or []
    return tuple(str(scope) for scope in scopes)


def _derive_name(object_id: str) -> str:
    """``U0ALICE`` -> ``alice``; ``S0RELEASE`` -> ``release``; ``U123`` -> ``123``."""
    stem = object_id[1:].lstrip("0") if len(object_id) > 1 else object_id
    return (stem or object_id).lower()


def _derive_real_name(name: str) -> str:
    words = re.split(r"[._\-\s]+", name)
    return " ".join(w.capitalize() for w in words if w) or name


def _iso(at: float) -> str:
    return (
        datetime.fromtimestamp(at, tz=UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )


def _redact(value: Any, secret: str) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if k == "token" and value[k] not in (None, "") else _redact(v, secret)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redact(v, secret) for v in value]
    if isinstance(value, str):
        if secret and secret in value:
            value = value.replace(secret, REDACTED)
        return _TOKEN_RE.sub(REDACTED, value)
    return value


def _fault_body(args: dict[str, Any]) -> dict[str, Any]:
    """A call's arguments as a fault draws on them: no token; blocks and views decoded."""
    return {k: _maybe_json(v) if k in _JSON_ARGS else v for k, v in args.items() if k != "token"}


def _maybe_json(value: Any) -> Any:
    """Form bodies carry ``blocks`` and ``view`` as JSON strings; decode them if possible."""
    if isinstance(value, str | bytes):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _as_str(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        value = value.decode()
    text = str(value).strip()
    return text or None


def _checked_scopes(scopes: Any) -> tuple[str, ...]:
    """A list of Slack scope names (``chat:write``, ``users:read.email``), without repeats;
    ValueError otherwise."""
    if not isinstance(scopes, list | tuple):
        raise ValueError("scopes must be a list of Slack scope names, like chat:write")
    checked = list(scopes)
    for scope in checked:
        if not isinstance(scope, str) or not _SCOPE_RE.match(scope):
            raise ValueError(f"not a Slack scope name: {str(scope)[:80]!r}")
    return tuple(dict.fromkeys(checked))


def _as_bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes", "on")
    return bool(value)


def _as_text_objects(value: Any) -> Any:
    """A copy of ``value`` in which every ``plain_text`` object has ``emoji``: Slack adds
    ``"emoji": true`` to those that lack it when it stores a view or a message, and sends
    them back so (views.open's answer, view_submission and block_actions payloads)."""
    if isinstance(value, dict):
        copied = {key: _as_text_objects(item) for key, item in value.items()}
        if copied.get("type") == "plain_text" and isinstance(copied.get("text"), str):
            copied.setdefault("emoji", True)
        return copied
    if isinstance(value, list):
        return [_as_text_objects(item) for item in value]
    return value


def _digest(*parts: object) -> str:
    """Stable hex for invented values (colours, avatar hashes) of one id."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()


def _zone_now(at: float) -> tuple[str, int]:
    """(tz_label, tz_offset in seconds) of DEFAULT_TZ at ``at``, as Slack reports them."""
    try:
        local = datetime.fromtimestamp(at, tz=ZoneInfo(DEFAULT_TZ))
    except (KeyError, ValueError):  # no tz database here: GMT is right half the year
        return "Greenwich Mean Time", 0
    delta = local.utcoffset()
    offset = int(delta.total_seconds()) if delta is not None else 0
    return ("British Summer Time" if local.dst() else "Greenwich Mean Time"), offset


def _plain_text(obj: Any) -> str | None:
    if isinstance(obj, dict) and isinstance(obj.get("text"), str):
        return str(obj["text"])
    return None


def _check_text_object(obj: Any, pointer: str, limit: int, errors: list[str]) -> None:
    text = _plain_text(obj)
    if text is None:
        errors.append(f"must provide an object with a text string [json-pointer:{pointer}]")
    elif len(text) > limit:
        errors.append(f"must be less than {limit + 1} characters [json-pointer:{pointer}/text]")


#: A confirm dialog's limits (Slack's confirmation dialog object): title 100, text 300,
#: each button 30 characters; title and buttons plain_text, the text either kind.
_CONFIRM_PARTS = (
    ("title", 100, True),
    ("text", 300, False),
    ("confirm", 30, True),
    ("deny", 30, True),
)
#: A static select offers at most 100 options; each one's text 75, its value 150 characters.
SELECT_OPTIONS = 100


def _check_typed_text(obj: Any, pointer: str, limit: int, plain: bool, errors: list[str]) -> None:
    kinds = ("plain_text",) if plain else ("plain_text", "mrkdwn")
    if not isinstance(obj, dict) or obj.get("type") not in kinds:
        wanted = "a plain_text object" if plain else "a text object"
        errors.append(f"must be {wanted} [json-pointer:{pointer}]")
        return
    if not obj.get("text"):
        errors.append(f"must be more than 0 characters [json-pointer:{pointer}/text]")
        return
    _check_text_object(obj, pointer, limit, errors)


def _check_confirm(confirm: Any, pointer: str, errors: list[str]) -> None:
    """Slack's confirmation dialog object: all four parts, within their limits."""
    if not isinstance(confirm, dict):
        errors.append(f"must provide an object [json-pointer:{pointer}]")
        return
    for key, limit, plain in _CONFIRM_PARTS:
        if key not in confirm:
            errors.append(f"must provide {key} [json-pointer:{pointer}]")
        else:
            _check_typed_text(confirm[key], f"{pointer}/{key}", limit, plain, errors)
    if confirm.get("style") not in (None, "primary", "danger"):
        errors.append(f"must be primary or danger [json-pointer:{pointer}/style]")


def _check_options(element: dict[str, Any], pointer: str, errors: list[str]) -> None:
    options = element.get("options")
    if options is None and "option_groups" in element:
        return
    if not isinstance(options, list) or not 1 <= len(options) <= SELECT_OPTIONS:
        errors.append(
            f"must provide 1 to {SELECT_OPTIONS} options [json-pointer:{pointer}/options]"
        )
        return
    for j, option in enumerate(options):
        where = f"{pointer}/options/{j}"
        if not isinstance(option, dict):
            errors.append(f"must provide an object [json-pointer:{where}]")
            continue
        _check_typed_text(option.get("text"), f"{where}/text", 75, True, errors)
        value = option.get("value")
        if not isinstance(value, str) or not 1 <= len(value) <= 150:
            errors.append(f"must be 1 to 150 characters [json-pointer:{where}/value]")


def _check_element(element: Any, pointer: str, errors: list[str]) -> None:
    if not isinstance(element, dict) or not isinstance(element.get("type"), str):
        errors.append(f"must provide a valid element [json-pointer:{pointer}]")
        return
    if "confirm" in element:
        _check_confirm(element["confirm"], f"{pointer}/confirm", errors)
    if element["type"] == "static_select":
        _check_options(element, pointer, errors)
    action_id = element.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(
            f"must be a string of at most 255 characters [json-pointer:{pointer}/action_id]"
        )
    if element["type"] == "datetimepicker":
        # Slack's initial_date_time is epoch seconds, a JSON integer (10 digits); a string,
        # even of digits, is refused.
        initial = element.get("initial_date_time")
        if initial is not None and (
            not isinstance(initial, int) or isinstance(initial, bool) or not 0 <= initial < 10**10
        ):
            where = f"{pointer}/initial_date_time"
            errors.append(f"must be an integer of at most 10 digits [json-pointer:{where}]")
    if element["type"] == "button":
        _check_text_object(element.get("text"), f"{pointer}/text", 75, errors)
        value = element.get("value")
        if value is not None and (not isinstance(value, str) or len(value) > 2000):
            errors.append(f"must be less than 2001 characters [json-pointer:{pointer}/value]")
        url = element.get("url")
        if url is not None and (not isinstance(url, str) or len(url) > 3000):
            errors.append(f"must be less than 3001 characters [json-pointer:{pointer}/url]")


def _check_blocks(blocks: Any, limit: int, root: str = "/blocks") -> list[str]:
    """A light version of Slack's Block Kit validation: the limits the gate can hit."""
    if not isinstance(blocks, list):
        return [f"must be an array [json-pointer:{root}]"]
    errors: list[str] = []
    if len(blocks) > limit:
        errors.append(f"must be at most {limit} items [json-pointer:{root}]")
    block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        pointer = f"{root}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"must provide a valid block [json-pointer:{pointer}]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                errors.append(f"invalid block_id [json-pointer:{pointer}/block_id]")
            elif block_id in block_ids:
                errors.append(f"duplicate block_id [json-pointer:{pointer}/block_id]")
            else:
                block_ids.add(block_id)
        kind = block["type"]
        if kind == "section":
            if "text" not in block and "fields" not in block:
                errors.append(f"must provide text or fields [json-pointer:{pointer}]")
            if "text" in block:
                _check_text_object(block["text"], f"{pointer}/text", 3000, errors)
            fields = block.get("fields")
            if fields is not None:
                if not isinstance(fields, list) or len(fields) > 10:
                    errors.append(f"must be at most 10 items [json-pointer:{pointer}/fields]")
                else:
                    for j, field in enumerate(fields):
                        _check_text_object(field, f"{pointer}/fields/{j}", 2000, errors)
            if "accessory" in block:
                accessory = block["accessory"]
                _check_element(accessory, f"{pointer}/accessory", errors)
                if isinstance(accessory, dict) and accessory.get("type") in _NOT_ACCESSORIES:
                    errors.append(
                        f"failed to match all allowed schemas [json-pointer:{pointer}/accessory]"
                    )
        elif kind == "header":
            _check_text_object(block.get("text"), f"{pointer}/text", 150, errors)
        elif kind == "actions":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 25:
                errors.append(f"must provide 1 to 25 elements [json-pointer:{pointer}/elements]")
                continue
            action_ids: set[str] = set()
            for j, element in enumerate(elements):
                _check_element(element, f"{pointer}/elements/{j}", errors)
                action_id = element.get("action_id") if isinstance(element, dict) else None
                if isinstance(action_id, str):
                    if action_id in action_ids:
                        errors.append(
                            f"duplicate action_id [json-pointer:{pointer}/elements/{j}/action_id]"
                        )
                    action_ids.add(action_id)
        elif kind == "context":
            elements = block.get("elements")
            if not isinstance(elements, list) or not elements or len(elements) > 10:
                errors.append(f"must provide 1 to 10 elements [json-pointer:{pointer}/elements]")
        elif kind == "input":
            _check_text_object(block.get("label"), f"{pointer}/label", 2000, errors)
            if not isinstance(block.get("element"), dict):
                errors.append(f"must provide an element [json-pointer:{pointer}/element]")
            else:
                _check_element(block["element"], f"{pointer}/element", errors)
    return errors


def _check_view(view: Any) -> list[str]:
    if not isinstance(view, dict):
        return ["must provide an object [json-pointer:/view]"]
    errors: list[str] = []
    if view.get("type") != "modal":
        errors.append("must be modal [json-pointer:/view/type]")
    _check_text_object(view.get("title"), "/view/title", 24, errors)
    for key in ("submit", "close"):
        if key in view:
            _check_text_object(view[key], f"/view/{key}", 24, errors)
    for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
        value = view.get(key)
        if value is not None and (not isinstance(value, str) or len(value) > limit):
            errors.append(f"must be less than {limit + 1} characters [json-pointer:/view/{key}]")
    errors.extend(_check_blocks(view.get("blocks"), VIEW_BLOCK_LIMIT, "/view/blocks"))
    if "submit" not in view and any(
        isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or []
    ):
        errors.append("must provide submit when the view has input blocks [json-pointer:/view]")
    return errors


class FakeSlack:
    """A Slack workspace and Web API, in memory. Thread-safe."""

    def __init__(
        self,
        *,
        bot_token: str = SANDBOX_BOT_TOKEN,
        team_id: str = "T0SANDBOX",
        app_id: str = "A0SANDBOX",
        bot_user_id: str = "U0GATEBOT",
        clock: Callable[[], float] = time.time,
        faults: Faults | None = None,
        scopes: Iterable[str] | None = None,
    ) -> None:
        self.bot_token = bot_token
        #: The bot token's scopes (``auth.test``'s ``x-oauth-scopes``); ``reset`` comes back
        #: to these. Without ``scopes``: every scope a method here needs.
        self._default_scopes = _checked_scopes(ALL_SCOPES if scopes is None else scopes)
        self._scopes = self._default_scopes
        self.team_id = team_id
        self.app_id = app_id
        self.bot_user_id = bot_user_id
        self.bot_id = "B" + bot_user_id[1:]
        self.team_domain = "sandbox"
        self.team_name = "Approval Gate Sandbox"
        #: Base of ``chat.getPermalink`` links (the HTTP front may point it at itself).
        self.permalink_base = "https://sandbox.slack.local"
        #: How long a ``trigger_id`` may be used for ``views.open`` (Slack: 3 seconds).
        self.trigger_ttl = 3.0
        #: Injected faults (``sandbox.faults``), asked on each Web API call;
        #: ``None``: nothing fails on purpose.
        self.faults = faults
        #: Slack's rate limits, asked before each call is answered; off until enforced.
        self.limits = SlackLimits()
        self._clock = clock
        self._lock = threading.Lock()
        self._users: dict[str, dict[str, Any]] = {}
        self._groups: dict[str, dict[str, Any]] = {}
        self._channels: dict[str, dict[str, Any]] = {}
        self._interactions: list[dict[str, Any]] = []
        self._messages: list[dict[str, Any]] = []
        #: (channel, ts) -> the message in _messages (finding one is not a scan of them all)
        self._by_ts: dict[tuple[str, str], dict[str, Any]] = {}
        self._calls: list[dict[str, Any]] = []
        self._views: list[dict[str, Any]] = []
        self._triggers: dict[str, dict[str, Any]] = {}
        self._response_urls: dict[str, dict[str, Any]] = {}
        self._last_ts = 0
        self._view_seq = itertools.count(1)
        self._trigger_seq = itertools.count(1)
        #: The app's manifest (apps.manifest.export), slack-app-manifest.yaml until updated.
        self._manifest: dict[str, Any] | None = None
        self.add_channel(DEPLOYS_CHANNEL[0], name=DEPLOYS_CHANNEL[1])

    # ------------------------------------------------------------------ workspace

    def add_channel(
        self,
        channel_id: str,
        *,
        name: str | None = None,
        private: bool | None = None,
        bot_member: bool = True,
    ) -> dict[str, Any]:
        """Add a channel (the bot a member unless told), or rename a known one; its
        conversations.info object. ``private`` defaults to whether the id starts with G,
        as Slack's private channels created before 2021 do."""
        if not isinstance(channel_id, str) or not _CHANNEL_RE.match(channel_id):
            raise ValueError(f"a channel id is C, G or D and capitals or digits: {channel_id!r}")
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                channel = self._channels[channel_id] = {
                    "id": channel_id,
                    "name": name or _derive_name(channel_id),
                    "private": channel_id.startswith("G") if private is None else private,
                    "bot_member": bot_member,
                    "created": int(self._clock()),
                }
            elif name:
                channel["name"] = name
            return self._conversation(channel)

    def set_bot_member(self, channel_id: str, member: bool) -> dict[str, Any]:
        """The bot joins (``True``) or leaves a known channel; ``KeyError`` for another."""
        with self._lock:
            channel = self._channels.get(channel_id)
            if channel is None:
                raise KeyError(channel_id)
            channel["bot_member"] = bool(member)
            return self._conversation(channel)

    def channel_name(self, channel_id: str) -> str:
        """A channel's name (``deploys``); one derived from the id for a channel the
        workspace does not have (only a hand-built message can be in one)."""
        with self._lock:
            channel = self._channels.get(channel_id)
            return str(channel["name"]) if channel else _derive_name(channel_id)

    def channels(self) -> list[dict[str, Any]]:
        """Every channel of the workspace as conversations.info shows it, by id."""
        with self._lock:
            return [self._conversation(c) for _, c in sorted(self._channels.items())]

    def add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
    ) -> None:
        """Add a user, or update the fields given for a known one (idempotent)."""
        with self._lock:
            self._add_user(user_id, name=name, real_name=real_name, email=email)

    def _add_user(
        self,
        user_id: str,
        *,
        name: str | None = None,
        real_name: str | None = None,
        email: str | None = None,
    ) -> None:
        if not user_id:
            raise ValueError("a user needs an id")
        existing = self._users.get(user_id)
        if existing is None:
            derived = name or _derive_name(user_id)
            self._users[user_id] = {
                "id": user_id,
                "name": derived,
                "real_name": real_name or _derive_real_name(derived),
                "email": email or f"{derived}@example.com",
                "updated": int(self._clock()),
            }
            return
        changed = False
        for key, value in (("name", name), ("real_name", real_name), ("email", email)):
            if value and existing[key] != value:
                existing[key] = value
                changed = True
        if changed:
            existing["updated"] = int(self._clock())

    def add_group(
        self, group_id: str, *, handle: str | None = None, users: Iterable[str] = ()
    ) -> None:
        """Add a user group (members are added as users); a known group gains the members."""
        members = [u for u in users if u]
        with self._lock:
            if not group_id:
                raise ValueError("a user group needs an id")
            group = self._groups.get(group_id)
            if group is None:
                group = {"id": group_id, "handle": handle or _derive_name(group_id), "users": []}
                self._groups[group_id] = group
            elif handle:
                group["handle"] = handle
            for user_id in members:
                self._add_user(user_id)
                if user_id not in group["users"]:
                    group["users"].append(user_id)

    def load_fixture(self, doc: dict[str, Any]) -> None:
        """Load ``{"users": [{id, name, real_name, email}], "groups": [{id, handle, users}]}``."""
        if not isinstance(doc, dict):
            raise ValueError("a Slack fixture must be an object")
        users = doc.get("users") or []
        groups = doc.get("groups") or []
        if not isinstance(users, list) or not isinstance(groups, list):
            raise ValueError("a Slack fixture's users and groups must be lists")
        for user in users:
            if not isinstance(user, dict) or not isinstance(user.get("id"), str):
                raise ValueError(f"a fixture user needs an id: {user!r}")
            self.add_user(
                user["id"],
                name=user.get("name"),
                real_name=user.get("real_name"),
                email=user.get("email"),
            )
        for group in groups:
            if not isinstance(group, dict) or not isinstance(group.get("id"), str):
                raise ValueError(f"a fixture group needs an id: {group!r}")
            members = group.get("users") or []
            if not isinstance(members, list):
                raise ValueError(f"a fixture group's users must be a list: {group!r}")
            self.add_group(group["id"], handle=group.get("handle"), users=members)

    def workspace(self) -> dict[str, Any]:
        with self._lock:
            return {
                "team_id": self.team_id,
                "app_id": self.app_id,
                "bot_user_id": self.bot_user_id,
                "users": [self._user_object(u) for u in self._users.values()],
                "groups": [copy.deepcopy(g) for g in self._groups.values()],
                "channels": [self._conversation(c) for _, c in sorted(self._channels.items())],
            }

    def user(self, user_id: str) -> dict[str, Any] | None:
        with self._lock:
            found = self._users.get(user_id)
            return self._user_object(found) if found else None

    def _user_object(self, user: dict[str, Any]) -> dict[str, Any]:
        """A person as users.info and users.lookupByEmail answer: every member Slack sends
        for a full member of the workspace (tests/sandbox/slack_members.json)."""
        first, _, last = user["real_name"].partition(" ")
        profile = self._profile(user["id"], user["real_name"], user["name"])
        profile.update({"email": user["email"], "first_name": first, "last_name": last})
        return self._person(user["id"], user["name"], user["real_name"], user["updated"], profile)

    def _bot_user_object(self) -> dict[str, Any]:
        profile = self._profile(self.bot_user_id, "Approval Gate", "approval-gate")
        profile.update({"bot_id": self.bot_id, "api_app_id": self.app_id, "always_active": True})
        shown = self._person(self.bot_user_id, "approval-gate", "Approval Gate", 0, profile)
        shown.update({"is_bot": True, "is_email_confirmed": False})
        return shown

    def _person(
        self, user_id: str, name: str, real_name: str, updated: int, profile: dict[str, Any]
    ) -> dict[str, Any]:
        tz_label, tz_offset = _zone_now(self._clock())
        return {
            "id": user_id,
            "team_id": self.team_id,
            "name": name,
            "deleted": False,
            "color": _digest("color", user_id)[:6],
            "real_name": real_name,
            "tz": DEFAULT_TZ,
            "tz_label": tz_label,
            "tz_offset": tz_offset,
            "profile": profile,
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            "is_restricted": False,
            "is_ultra_restricted": False,
            "is_bot": False,
            "is_app_user": False,
            "updated": updated,
            "is_email_confirmed": True,
            "who_can_share_contact_card": "EVERYONE",
        }

    def _profile(self, user_id: str, real_name: str, display_name: str) -> dict[str, Any]:
        avatar = _digest("avatar", user_id)
        profile: dict[str, Any] = {
            "title": "",
            "phone": "",
            "skype": "",
            "real_name": real_name,
            "real_name_normalized": real_name,
            "display_name": display_name,
            "display_name_normalized": display_name,
            "fields": None,
            "status_text": "",
            "status_emoji": "",
            "status_emoji_display_info": [],
            "status_expiration": 0,
            "avatar_hash": "g" + avatar[:11],
        }
        for size in (24, 32, 48, 72, 192, 512):
            profile[f"image_{size}"] = (
                f"https://secure.gravatar.com/avatar/{avatar[:32]}.jpg?s={size}"
            )
        profile.update({"status_text_canonical": "", "team": self.team_id})
        return profile

    def _conversation(self, channel: dict[str, Any]) -> dict[str, Any]:
        """A channel as conversations.info and conversations.list show it to the bot."""
        private = bool(channel["private"])
        legacy_group = private and channel["id"].startswith("G")
        nobody = {"value": "", "creator": "", "last_set": 0}
        return {
            "id": channel["id"],
            "name": channel["name"],
            "is_channel": not legacy_group,
            "is_group": legacy_group,
            "is_im": False,
            "is_mpim": False,
            "is_private": private,
            "created": channel["created"],
            "is_archived": False,
            "is_general": False,
            "unlinked": 0,
            "name_normalized": channel["name"],
            "is_shared": False,
            "is_org_shared": False,
            "is_pending_ext_shared": False,
            "pending_shared": [],
            "context_team_id": self.team_id,
            "updated": channel["created"] * 1000,
            "parent_conversation": None,
            "creator": self.bot_user_id,
            "is_ext_shared": False,
            "shared_team_ids": [self.team_id],
            "pending_connected_team_ids": [],
            "is_member": bool(channel["bot_member"]),
            "topic": dict(nobody),
            "purpose": dict(nobody),
            "previous_names": [],
        }

    def _member_count(self, channel: dict[str, Any]) -> int:
        # Everyone in the workspace is in every channel here; the bot only where it is.
        return len(self._users) + (1 if channel["bot_member"] else 0)

    # ------------------------------------------------------------------ reading state

    def messages(
        self, *, channel: str | None = None, oldest: str | None = None
    ) -> list[dict[str, Any]]:
        """Every message as Slack would show it now, oldest first; only ``channel``'s if
        given, and only those posted after ``oldest`` (a ts, exclusive, as Slack's
        conversations.history) if given. Raises ``ValueError`` for an ``oldest`` that is not
        a timestamp."""
        after = _ts_order(oldest) if oldest is not None else None
        with self._lock:
            found = self._messages
            if after is not None:
                # Posted in ts order (each ts is taken and stored under the lock): skip the
                # older ones from the end instead of reading them all.
                start = len(found)
                while start > 0 and _ts_order(found[start - 1]["ts"]) > after:
                    start -= 1
                found = found[start:]
            return [self._public(m) for m in found if channel is None or m["channel"] == channel]

    def find_message(self, channel: str, ts: str) -> dict[str, Any] | None:
        """One message as :meth:`messages` shows it, plus its ``reply_count``."""
        with self._lock:
            found = self._find(channel, ts)
            if found is None:
                return None
            shown = self._public(found)
            shown["reply_count"] = found["reply_count"]
            return shown

    def calls(self) -> list[dict[str, Any]]:
        """Every Web API call, oldest first: ``{method, args, at, status, response}`` (and
        ``fault``), tokens redacted; ``status`` and ``response`` are what the fake
        answered (a held ``timeout`` has them once its answer is given)."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def record_interaction(self, payload: dict[str, Any]) -> None:
        """Keep a payload the sandbox, acting as Slack, sends to the app's Request URL."""
        with self._lock:
            self._interactions.append(
                {
                    "type": payload.get("type"),
                    "payload": copy.deepcopy(payload),
                    "at": _iso(self._clock()),
                }
            )

    def interactions(self) -> list[dict[str, Any]]:
        """Every payload recorded by :meth:`record_interaction`, oldest first:
        ``{type, payload, at}``."""
        with self._lock:
            return copy.deepcopy(self._interactions)

    def views(self) -> list[dict[str, Any]]:
        """Every view opened, oldest first: ``{id, trigger_id, view, closed[, user]}``."""
        with self._lock:
            return copy.deepcopy(self._views)

    def close_view(self, view_id: str) -> None:
        """Close an open modal, as Slack does when the app answers a ``view_submission`` with
        an empty body (or one without ``response_action``). Closing a closed view does
        nothing; an unknown view raises ``ValueError``."""
        with self._lock:
            entry = next((v for v in self._views if v["id"] == view_id), None)
            if entry is None:
                raise ValueError(f"no view {view_id!r} was opened")
            entry["closed"] = True

    def reset(self) -> None:
        """Forget messages, calls, interactions, views, triggers and response URLs; the bot
        is back in every channel and the rate limits are off, their counts forgotten. The
        workspace (users, groups, channels) stays."""
        with self._lock:
            self._messages.clear()
            self._by_ts.clear()
            self._calls.clear()
            self._interactions.clear()
            self._views.clear()
            self._triggers.clear()
            self._response_urls.clear()
            for channel in self._channels.values():
                channel["bot_member"] = True
            self._scopes = self._default_scopes
            self._manifest = None
        self.limits.reset()

    def app(self) -> dict[str, Any]:
        """``GET /_sandbox/slack/app``: the app's id, its manifest as apps.manifest.export
        answers it, and the interactivity request URL the manifest sets."""
        with self._lock:
            manifest = self._app_manifest()
            interactivity = (manifest.get("settings") or {}).get("interactivity") or {}
            return {
                "app_id": self.app_id,
                "request_url": interactivity.get("request_url"),
                "manifest": copy.deepcopy(manifest),
            }

    def _app_manifest(self) -> dict[str, Any]:
        if self._manifest is None:
            import yaml

            document = yaml.safe_load(MANIFEST.read_text(encoding="utf-8")) or {}
            self._manifest = {k: v for k, v in document.items() if k != "_metadata"}
        return self._manifest

    def scopes(self) -> list[str]:
        """The bot token's scopes, as ``auth.test``'s ``x-oauth-scopes`` lists them."""
        with self._lock:
            return list(self._scopes)

    def set_scopes(self, scopes: Any) -> list[str]:
        """The bot token's scopes from now on (``POST /_sandbox/slack/scopes``); until
        ``reset``. ValueError, changing nothing, for anything but a list of scope names."""
        checked = _checked_scopes(scopes)
        with self._lock:
            self._scopes = checked
            return list(checked)

    @staticmethod
    def _public(message: dict[str, Any]) -> dict[str, Any]:
        return {
            "channel": message["channel"],
            "ts": message["ts"],
            "thread_ts": message["thread_ts"],
            "text": message["text"],
            "blocks": copy.deepcopy(message["blocks"]),
            "ephemeral_user": message["ephemeral_user"],
        }

    def _find(self, channel: str | None, ts: str | None) -> dict[str, Any] | None:
        if not isinstance(channel, str) or not isinstance(ts, str):
            return None  # as Slack: no message has such a channel or ts
        return self._by_ts.get((channel, ts))

    # ------------------------------------------------------------------ helpers

    def _next_ts(self) -> str:
        with _TS_SEQ_LOCK:
            seq = next(_TS_SEQ)
        micros = int(self._clock()) * 1_000_000 + seq % 1_000_000
        if micros <= self._last_ts:
            micros = self._last_ts + 1
        self._last_ts = micros
        return f"{micros // 1_000_000}.{micros % 1_000_000:06d}"

    def _record(
        self, method: str, args: dict[str, Any], fault: str | None = None
    ) -> dict[str, Any]:
        shown = {k: _maybe_json(v) if k in _JSON_ARGS else v for k, v in args.items()}
        call = {
            "method": method,
            "args": _redact(copy.deepcopy(shown), self.bot_token),
            "at": _iso(self._clock()),
        }
        if fault is not None:
            call["fault"] = fault
        self._calls.append(call)
        return call

    def _answered(self, call: dict[str, Any], reply: Reply) -> None:
        """Keep what the call was answered with (a copy: the caller keeps its own)."""
        status, _, body = reply
        call["status"] = status
        call["response"] = _redact(body, self.bot_token)

    def _channel(self, args: dict[str, Any], *, posting: bool = False) -> str:
        """The call's channel, as Slack checks it: an id the workspace has, and which the
        bot can see (a private channel only if it is in it); to post, the bot must be in
        it (``chat:write`` without ``chat:write.public``)."""
        channel_id = _as_str(args.get("channel"))
        channel = self._channels.get(channel_id or "")
        if channel_id is None or channel is None:
            raise _Failure("channel_not_found")
        if not channel["bot_member"]:
            if channel["private"]:
                raise _Failure("channel_not_found")
            if posting:
                raise _Failure("not_in_channel")
        return channel_id

    @staticmethod
    def _blocks(value: Any, *, required: bool = False) -> list[dict[str, Any]] | None:
        if value is None or value == "":
            if required:
                raise _Failure("invalid_blocks", ["must provide an array [json-pointer:/blocks]"])
            return None
        blocks = _maybe_json(value)
        if isinstance(value, str | bytes) and blocks is value:
            raise _Failure("invalid_blocks_format")
        errors = _check_blocks(blocks, MESSAGE_BLOCK_LIMIT)
        if errors:
            raise _Failure("invalid_blocks", errors)
        return copy.deepcopy(blocks)

    @staticmethod
    def _text(value: Any) -> str | None:
        if value is None:
            return None
        text = value.decode() if isinstance(value, bytes) else str(value)
        if len(text) > TEXT_LIMIT:
            raise _Failure("msg_too_long")
        return text

    def _thread_root(self, channel: str, thread_ts: Any) -> str | None:
        wanted = _as_str(thread_ts)
        if wanted is None:
            return None
        parent = self._find(channel, wanted)
        if parent is None or parent["ephemeral_user"] is not None:
            raise _Failure("thread_not_found")
        return str(parent["thread_ts"] or parent["ts"])

    def _store(
        self,
        *,
        channel: str,
        text: str | None,
        blocks: list[dict[str, Any]] | None,
        thread_ts: str | None,
        ephemeral_user: str | None,
        metadata: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        ts = self._next_ts()
        message = {
            "channel": channel,
            "ts": ts,
            "thread_ts": thread_ts,
            "text": text or "",
            "blocks": blocks or [],
            "ephemeral_user": ephemeral_user,
            "reply_count": 0,
            "metadata": metadata,
        }
        self._messages.append(message)
        self._by_ts[(channel, ts)] = message
        if thread_ts is not None:
            parent = self._find(channel, thread_ts)
            if parent is not None:
                parent["reply_count"] += 1
        return message

    def _message_object(self, message: dict[str, Any]) -> dict[str, Any]:
        shown: dict[str, Any] = {
            "type": "message",
            "user": self.bot_user_id,
            "bot_id": self.bot_id,
            "app_id": self.app_id,
            "team": self.team_id,
            "ts": message["ts"],
            "text": message["text"],
            "blocks": copy.deepcopy(message["blocks"]),
            "bot_profile": {
                "id": self.bot_id,
                "app_id": self.app_id,
                "name": "Approval Gate",
                "icons": {},
                "deleted": False,
                "updated": 0,
                "team_id": self.team_id,
            },
        }
        if message["thread_ts"] is not None:
            shown["thread_ts"] = message["thread_ts"]
        return shown

    def _permalink(self, channel: str, message: dict[str, Any]) -> str:
        base = self.permalink_base.rstrip("/")
        link = f"{base}/archives/{channel}/p{message['ts'].replace('.', '')}"
        if message["thread_ts"] is not None:
            link += f"?thread_ts={message['thread_ts']}&cid={channel}"
        return link

    # ------------------------------------------------------------------ the Web API

    def api(self, method: str, args: dict[str, Any], authorization: str | None) -> Reply:
        """Answer one Web API request: ``(status, extra headers, JSON body)``.

        Every Web API call, over HTTP or in process, comes here. An injected fault is
        recorded with its ``fault`` kind and answered instead: the call is not carried out;
        except a ``*_after_effect`` one, where the call is carried out and its answer then
        lost (held past the client's timeout, or ``AnswerLost`` raised for the server to
        drop the connection).
        """
        method = (method or "").strip().strip("/")
        args = dict(args or {})
        fault = None
        if self.faults is not None and method in SLACK_METHODS:
            fault = self.faults.choose("slack", method, _fault_body(args))
        with self._lock:
            call = self._record(method, args, None if fault is None else fault.kind)
            if fault is None or fault.after_effect:
                reply = self._answer(method, args, authorization)
                self._answered(call, reply)
                if fault is None:
                    return reply
        if fault.after_effect:
            return fault.lose_answer("slack", reply)  # outside the lock: it may wait
        reply = fault.slack_reply()  # outside the lock: a timeout holds its answer
        with self._lock:
            self._answered(call, reply)
        return reply

    def _answer(self, method: str, args: dict[str, Any], authorization: str | None) -> Reply:
        try:
            if method not in SLACK_METHODS and method not in SETUP_METHODS:
                raise _Failure("unknown_method")
            if method in _MANIFEST_METHODS:
                return 200, {}, self._manifest_call(method, args, authorization)
            self._authenticate(args, authorization)
            # Lower case, as Slack sends it (slack_sdk hands headers over as a plain dict).
            granted = {"x-oauth-scopes": ",".join(self._scopes)}
            needed = self._needed_scope(method, args)
            if needed is not None and needed not in self._scopes:
                return 200, granted, _MissingScope(needed, self._scopes).body()
            # Slack counts a call against its method's limit once it knows whose it is.
            channel = _as_str(args.get("channel")) if method == "chat.postMessage" else None
            retry_after = self.limits.check(method, channel)
            if retry_after is not None:
                return 429, {"Retry-After": str(retry_after)}, {"ok": False, "error": "ratelimited"}
            body = self._dispatch(method, args)
        except _Failure as failure:
            return 200, {}, failure.body()
        return 200, granted, body

    def _needed_scope(self, method: str, args: dict[str, Any]) -> str | None:
        """The scope ``method`` needs for these arguments, or None (Slack's method
        reference): the conversations.* methods need the one of the conversation's kind
        (for conversations.list, the first of the asked ``types`` the token lacks)."""
        if method == "conversations.list":
            types = (_as_str(args.get("types")) or "public_channel").split(",")
            wanted = [_READ_SCOPES[t.strip()] for t in types if t.strip() in _READ_SCOPES]
            return next((s for s in wanted if s not in self._scopes), None)
        if method in ("conversations.info", "conversations.history"):
            channel = self._channels.get(_as_str(args.get("channel")) or "")
            kind = "private_channel" if channel and channel["private"] else "public_channel"
            scopes = _READ_SCOPES if method == "conversations.info" else _HISTORY_SCOPES
            return scopes[kind]
        return METHOD_SCOPES.get(method)

    def _authenticate(self, args: dict[str, Any], authorization: str | None) -> None:
        token = self._token(args, authorization)
        if not secrets.compare_digest(token.encode(), self.bot_token.encode()):
            raise _Failure("invalid_auth")

    @staticmethod
    def _token(args: dict[str, Any], authorization: str | None) -> str:
        token: str | None = None
        header = _as_str(authorization)
        if header is not None:
            scheme, _, rest = header.partition(" ")
            token = rest.strip() if scheme.lower() == "bearer" else header
        if not token:
            token = _as_str(args.get("token"))
        if not token:
            raise _Failure("not_authed")
        return token

    def _manifest_call(
        self, method: str, args: dict[str, Any], authorization: str | None
    ) -> dict[str, Any]:
        """apps.manifest.export and apps.manifest.update, with the app configuration
        token only: the bot token answers ``not_allowed_token_type``, as Slack does."""
        token = self._token(args, authorization)
        if secrets.compare_digest(token.encode(), self.bot_token.encode()):
            raise _Failure("not_allowed_token_type")
        if not secrets.compare_digest(token.encode(), SANDBOX_CONFIG_TOKEN.encode()):
            raise _Failure("invalid_auth")
        if _as_str(args.get("app_id")) != self.app_id:
            raise _Failure("invalid_app_id")
        if method == "apps.manifest.export":
            return {"ok": True, "manifest": copy.deepcopy(self._app_manifest())}
        manifest = _maybe_json(args.get("manifest"))
        if not isinstance(manifest, dict) or not isinstance(manifest.get("settings"), dict):
            raise _Failure("invalid_manifest")
        self._manifest = copy.deepcopy(manifest)
        return {"ok": True, "app_id": self.app_id, "permissions_updated": False}

    def _dispatch(self, method: str, args: dict[str, Any]) -> dict[str, Any]:
        handlers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "chat.postMessage": self._post_message,
            "chat.update": self._update,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.getPermalink": self._get_permalink,
            "views.open": self._views_open,
            "usergroups.users.list": self._usergroup_users,
            "users.info": self._users_info,
            "users.lookupByEmail": self._lookup_by_email,
            "auth.test": self._auth_test,
            "conversations.list": self._conversations_list,
            "conversations.info": self._conversations_info,
            "conversations.history": self._conversations_history,
            "bots.info": self._bots_info,
        }
        return handlers[method](args)

    def _bots_info(self, args: dict[str, Any]) -> dict[str, Any]:
        """The app's bot: its id, user and app id (Slack: users:read)."""
        if _as_str(args.get("bot")) != self.bot_id:
            raise _Failure("bot_not_found")
        return {
            "ok": True,
            "bot": {
                "id": self.bot_id,
                "deleted": False,
                "name": "Approval Gate",
                "updated": 0,
                "app_id": self.app_id,
                "user_id": self.bot_user_id,
                "icons": {},
            },
        }

    def _post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, posting=True)
        text = self._text(args.get("text"))
        blocks = self._blocks(args.get("blocks"))
        if not text and not blocks and not args.get("attachments"):
            raise _Failure("no_text")
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        metadata = _metadata(args.get("metadata"))
        message = self._store(
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            ephemeral_user=None,
            metadata=metadata,
        )
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "message": self._message_object(message),
        }

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        message = self._find(channel, _as_str(args.get("ts")))
        if message is None or message["ephemeral_user"] is not None:
            raise _Failure("message_not_found")
        text = self._text(args.get("text"))
        blocks = self._blocks(args.get("blocks"))
        if text is not None:
            message["text"] = text
        if "blocks" in args and args["blocks"] is not None:
            message["blocks"] = blocks or []
        return {
            "ok": True,
            "channel": channel,
            "ts": message["ts"],
            "text": message["text"],
            "message": self._message_object(message),
        }

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args, posting=True)
        user = _as_str(args.get("user"))
        if user is None or user not in self._users:
            raise _Failure("user_not_found")
        text = self._text(args.get("text"))
        blocks = self._blocks(args.get("blocks"))
        if not text and not blocks and not args.get("attachments"):
            raise _Failure("no_text")
        thread_ts = self._thread_root(channel, args.get("thread_ts"))
        message = self._store(
            channel=channel, text=text, blocks=blocks, thread_ts=thread_ts, ephemeral_user=user
        )
        return {"ok": True, "message_ts": message["ts"]}

    def _get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args)
        message = self._find(channel, _as_str(args.get("message_ts")))
        if message is None or message["ephemeral_user"] is not None:
            raise _Failure("message_not_found")
        return {"ok": True, "channel": channel, "permalink": self._permalink(channel, message)}

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        view = _maybe_json(args.get("view"))
        errors = _check_view(view)
        if errors:
            raise _Failure("invalid_arguments", errors)
        trigger_id = _as_str(args.get("trigger_id"))
        if trigger_id is None:
            raise _Failure("invalid_arguments", ["missing required field: trigger_id"])
        # Slack's views.open and views.push errors: a trigger it never issued, one already
        # exchanged for a view, one older than 3 seconds.
        trigger = self._triggers.get(trigger_id)
        if trigger is None:
            raise _Failure("invalid_trigger_id")
        if trigger["used"]:
            raise _Failure("exchanged_trigger_id")
        if self._clock() - trigger["issued_at"] > self.trigger_ttl:
            raise _Failure("expired_trigger_id")
        trigger["used"] = True
        view_id = f"V{next(self._view_seq):010d}"
        blocks = _as_text_objects(view.get("blocks") or [])
        _name_inputs(blocks, view_id)
        shown: dict[str, Any] = {
            "id": view_id,
            "team_id": self.team_id,
            "type": view["type"],
            "title": _as_text_objects(view.get("title")),
            "submit": _as_text_objects(view.get("submit")),
            "close": _as_text_objects(view.get("close")),
            "blocks": blocks,
            "private_metadata": view.get("private_metadata", ""),
            "callback_id": view.get("callback_id", ""),
            "external_id": view.get("external_id", ""),
            "state": {"values": {}},
            "hash": secrets.token_hex(8),
            "clear_on_close": bool(view.get("clear_on_close", False)),
            "notify_on_close": bool(view.get("notify_on_close", False)),
            "root_view_id": view_id,
            "previous_view_id": None,
            "app_id": self.app_id,
            "app_installed_team_id": self.team_id,
            "bot_id": self.bot_id,
        }
        entry: dict[str, Any] = {
            "id": view_id,
            "trigger_id": trigger_id,
            "view": shown,
            "closed": False,
        }
        if trigger.get("user"):
            entry["user"] = trigger["user"]
        self._views.append(entry)
        return {"ok": True, "view": copy.deepcopy(shown)}

    def _usergroup_users(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self._groups.get(_as_str(args.get("usergroup")) or "")
        if group is None:
            raise _Failure("no_such_subteam")
        return {"ok": True, "users": list(group["users"])}

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user_id = _as_str(args.get("user"))
        if user_id == self.bot_user_id:
            return {"ok": True, "user": self._bot_user_object()}
        user = self._users.get(user_id or "")
        if user is None:
            raise _Failure("user_not_found")
        return {"ok": True, "user": self._user_object(user)}

    def _lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = (_as_str(args.get("email")) or "").lower()
        for user in self._users.values():
            if email and user["email"].lower() == email:
                return {"ok": True, "user": self._user_object(user)}
        raise _Failure("users_not_found")

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = {t.strip() for t in (_as_str(args.get("types")) or "public_channel").split(",")}
        known = {"public_channel", "private_channel", "mpim", "im"}
        if not types <= known:
            raise _Failure("invalid_types")
        limit_arg = _as_str(args.get("limit"))
        try:
            limit = int(limit_arg) if limit_arg is not None else CONVERSATIONS_PAGE
        except ValueError:
            raise _Failure("invalid_limit") from None
        if limit <= 0:
            limit = CONVERSATIONS_PAGE  # Slack reads 0 as "the default"
        limit = min(limit, CONVERSATIONS_PAGE_MAX)
        after = _cursor_id(_as_str(args.get("cursor")))
        visible = [
            channel
            for _, channel in sorted(self._channels.items())
            # The bot sees every public channel, and the private ones it is in.
            if ("private_channel" if channel["private"] else "public_channel") in types
            and (channel["bot_member"] or not channel["private"])
            and (after is None or channel["id"] >= after)
        ]
        page, rest = visible[:limit], visible[limit:]
        channels = []
        for channel in page:
            shown = self._conversation(channel)
            shown["num_members"] = self._member_count(channel)
            channels.append(shown)
        next_cursor = _cursor_for(rest[0]["id"]) if rest else ""
        return {"ok": True, "channels": channels, "response_metadata": {"next_cursor": next_cursor}}

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        """The channel's messages, newest first, as Slack answers them: only those after
        ``oldest`` and before ``latest`` (``inclusive`` keeps the bounds), at most
        ``limit`` a page (default 100, at most 999), the next page by
        ``response_metadata.next_cursor``; thread replies and ephemeral messages are not in
        it; ``metadata`` is shown only with ``include_all_metadata``."""
        channel = self._channel(args)
        try:
            oldest = _ts_order(_as_str(args.get("oldest")) or "0")
            latest_arg = _as_str(args.get("latest"))
            latest = _ts_order(latest_arg) if latest_arg else None
        except ValueError:
            raise _Failure("invalid_ts_oldest") from None
        limit_arg = _as_str(args.get("limit"))
        try:
            limit = int(limit_arg) if limit_arg is not None else HISTORY_PAGE
        except ValueError:
            raise _Failure("invalid_limit") from None
        limit = min(limit if limit > 0 else HISTORY_PAGE, HISTORY_PAGE_MAX)
        start = _history_cursor_ts(_as_str(args.get("cursor")))
        inclusive = _as_bool(args.get("inclusive"))
        with_metadata = _as_bool(args.get("include_all_metadata"))
        found = []
        for message in reversed(self._messages):
            order = _ts_order(message["ts"])
            if message["channel"] != channel or message["ephemeral_user"] is not None:
                continue
            if message["thread_ts"] is not None and message["thread_ts"] != message["ts"]:
                continue
            if start is not None and order > _ts_order(start):
                continue
            if latest is not None and (order > latest or (order == latest and not inclusive)):
                continue
            if order < oldest or (order == oldest and not inclusive):
                break  # newest first: every later one is older still
            found.append(message)
        page, rest = found[:limit], found[limit:]
        shown = []
        for message in page:
            entry = self._message_object(message)
            if with_metadata and message.get("metadata") is not None:
                entry["metadata"] = copy.deepcopy(message["metadata"])
            shown.append(entry)
        return {
            "ok": True,
            "messages": shown,
            "has_more": bool(rest),
            "pin_count": 0,
            "channel_actions_ts": None,
            "channel_actions_count": 0,
            "response_metadata": {"next_cursor": _history_cursor(rest[0]["ts"]) if rest else ""},
        }

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel_id = self._channel(args)
        channel = self._channels[channel_id]
        shown = self._conversation(channel)
        if _as_bool(args.get("include_num_members")):
            shown["num_members"] = self._member_count(channel)
        return {"ok": True, "channel": shown}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "ok": True,
            "url": f"{self.permalink_base.rstrip('/')}/",
            "team": self.team_name,
            "user": "approval-gate",
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    # ------------------------------------------------------------------ triggers

    def now(self) -> float:
        """The fake's clock (injected for tests)."""
        return self._clock()

    def issue_trigger_id(self, user: str | None = None) -> str:
        """Hand out a ``trigger_id`` that ``views.open`` accepts once within ``trigger_ttl``."""
        with self._lock:
            now = self._clock()
            trigger_id = f"{int(now)}.{next(self._trigger_seq)}.{secrets.token_hex(16)}"
            self._triggers[trigger_id] = {"issued_at": now, "used": False, "user": user}
            return trigger_id

    # ------------------------------------------------------------------ response URLs

    def new_response_url_key(self, *, channel: str, message_ts: str | None, user: str) -> str:
        """Remember a response URL's context; the key goes in ``…/response-url/{key}``."""
        with self._lock:
            key = secrets.token_urlsafe(24)
            self._response_urls[key] = {
                "channel": channel,
                "message_ts": message_ts,
                "user": user,
                "created_at": self._clock(),
                "uses": 0,
            }
            return key

    def apply_response_url(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Apply what arrived at a response URL, as Slack would."""
        body = dict(body or {})
        with self._lock:
            self._record("response_url", body)
            context = self._response_urls.get(key)
            if context is None:
                return 404, {"ok": False, "error": "expired_url"}
            if (
                context["uses"] >= RESPONSE_URL_USES
                or self._clock() - context["created_at"] > RESPONSE_URL_TTL
            ):
                return 404, {"ok": False, "error": "expired_url"}
            context["uses"] += 1
            try:
                self._respond(context, body)
            except _Failure as failure:
                status = 404 if failure.error == "message_not_found" else 400
                return status, failure.body()
            return 200, {"ok": True}

    def _respond(self, context: dict[str, Any], body: dict[str, Any]) -> None:
        channel: str = context["channel"]
        original_ts: str | None = context["message_ts"]
        if _as_bool(body.get("delete_original")):
            original = self._find(channel, original_ts)
            if original is None:
                raise _Failure("message_not_found")
            self._messages.remove(original)
            del self._by_ts[(channel, original["ts"])]
            if original["thread_ts"] is not None:
                parent = self._find(channel, original["thread_ts"])
                if parent is not None:
                    parent["reply_count"] = max(0, parent["reply_count"] - 1)
            return
        text = self._text(body.get("text"))
        blocks = self._blocks(body.get("blocks"))
        if not text and not blocks and not body.get("attachments"):
            raise _Failure("no_text")
        if _as_bool(body.get("replace_original")) and original_ts is not None:
            original = self._find(channel, original_ts)
            if original is None:
                raise _Failure("message_not_found")
            original["text"] = text or ""
            original["blocks"] = blocks or []
            return
        thread_ts = self._thread_root(channel, body.get("thread_ts"))
        in_channel = _as_str(body.get("response_type")) == "in_channel"
        self._store(
            channel=channel,
            text=text,
            blocks=blocks,
            thread_ts=thread_ts,
            ephemeral_user=None if in_channel else context["user"],
        )


def _history_cursor(ts: str) -> str:
    """A conversations.history cursor as Slack writes one: base64 of ``next_ts:<ts>``,
    the newest message the next page starts from."""
    return base64.b64encode(f"next_ts:{ts}".encode()).decode()


def _history_cursor_ts(cursor: str | None) -> str | None:
    if not cursor:
        return None
    try:
        kind, _, ts = base64.b64decode(cursor, validate=True).decode().partition(":")
        _ts_order(ts)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise _Failure("invalid_cursor") from None
    if kind != "next_ts":
        raise _Failure("invalid_cursor")
    return ts


def _metadata(value: Any) -> dict[str, Any] | None:
    """chat.postMessage's ``metadata`` as Slack checks it: ``{event_type, event_payload}``,
    an object or its JSON text."""
    if value is None or value == "":
        return None
    metadata = _maybe_json(value)
    if (
        not isinstance(metadata, dict)
        or not isinstance(metadata.get("event_type"), str)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise _Failure("invalid_metadata_format")
    return {"event_type": metadata["event_type"], "event_payload": metadata["event_payload"]}


def _cursor_for(channel_id: str) -> str:
    """A conversations.list cursor as Slack writes one: base64 of ``channel:<next id>``."""
    return base64.b64encode(f"channel:{channel_id}".encode()).decode()


def _cursor_id(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        kind, _, channel_id = base64.b64decode(cursor, validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise _Failure("invalid_cursor") from None
    if kind != "channel" or not _CHANNEL_RE.match(channel_id):
        raise _Failure("invalid_cursor")
    return channel_id


# ---------------------------------------------------------------------- acting as Slack


def _generated_id(*parts: object) -> str:
    """A short, stable id like those Slack invents for blocks and actions the app left unnamed."""
    return hashlib.sha256(":".join(str(p) for p in parts).encode()).hexdigest()[:5]


def _name_inputs(blocks: list[Any], view_id: str) -> None:
    """Give input blocks (and their elements) the ids Slack gives them if the app did not.

    Slack names every block and action; the view's ``state.values`` is keyed by those names,
    so a test needs them (they show in :meth:`FakeSlack.views`).
    """
    for index, block in enumerate(blocks):
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        if not block.get("block_id"):
            block["block_id"] = _generated_id(view_id, index)
        element = block.get("element")
        if isinstance(element, dict) and not element.get("action_id"):
            element["action_id"] = _generated_id(view_id, index, "action")


def _empty_state(element_type: str) -> dict[str, Any]:
    """The state Slack reports for an input element left untouched."""
    if element_type in _TEXT_INPUTS:
        return {"type": element_type, "value": None}
    if element_type.startswith("multi_") or element_type in ("checkboxes",):
        return {"type": element_type, "selected_options": []}
    if element_type.endswith("_select") or element_type == "radio_buttons":
        return {"type": element_type, "selected_option": None}
    if element_type == "datepicker":
        return {"type": element_type, "selected_date": None}
    if element_type == "timepicker":
        return {"type": element_type, "selected_time": None}
    if element_type == "datetimepicker":
        return {"type": element_type, "selected_date_time": None}
    return {"type": element_type, "value": None}


_TS = re.compile(r"\d{1,12}(\.\d{1,6})?")


def _ts_order(ts: str) -> tuple[int, int]:
    """A Slack ts ("1795806333.000001") as (seconds, microseconds), for ordering."""
    if not isinstance(ts, str) or not _TS.fullmatch(ts):
        raise ValueError(f"not a Slack timestamp: {ts!r} (like 1795806333.000001)")
    seconds, _, fraction = ts.partition(".")
    return int(seconds), int(fraction.ljust(6, "0") or 0)


def _find_button(blocks: Any, action_id: str, message_ts: str) -> tuple[dict[str, Any], str] | None:
    for index, block in enumerate(blocks or []):
        if not isinstance(block, dict):
            continue
        candidates: list[Any] = []
        if block.get("type") == "actions":
            candidates = list(block.get("elements") or [])
        elif block.get("type") == "section" and isinstance(block.get("accessory"), dict):
            candidates = [block["accessory"]]
        for element in candidates:
            if (
                isinstance(element, dict)
                and element.get("type") == "button"
                and element.get("action_id") == action_id
            ):
                # Slack gives every block a block_id; invent a stable one if the app did not.
                block_id = (
                    block.get("block_id")
                    or hashlib.sha256(f"{message_ts}:{index}".encode()).hexdigest()[:5]
                )
                return element, str(block_id)
    return None


def block_actions_payload(
    fake: FakeSlack,
    *,
    message: dict[str, Any],
    user_id: str,
    action_id: str,
    response_url: str,
    trigger_id: str | None = None,
) -> dict[str, Any]:
    """The ``block_actions`` payload Slack sends when ``user_id`` clicks a button in ``message``.

    ``message`` is a dict from :meth:`FakeSlack.messages`. Without ``trigger_id`` a fresh one is
    issued (valid for ``views.open`` once, within ``fake.trigger_ttl``); a given one is used as
    is. Raises ``ValueError`` if the message has no button with that ``action_id``.
    """
    found = _find_button(message.get("blocks"), action_id, str(message.get("ts")))
    if found is None:
        raise ValueError(f"no button with action_id {action_id!r} in message {message.get('ts')}")
    button, block_id = found
    fake.add_user(user_id)  # whoever can click is a member of the workspace
    person = fake.user(user_id) or {"name": user_id}
    if trigger_id is None:
        trigger_id = fake.issue_trigger_id(user=user_id)
    channel = str(message["channel"])
    # The message as Slack stores it: plain_text objects carry "emoji".
    shown: dict[str, Any] = {
        "type": "message",
        "user": fake.bot_user_id,
        "bot_id": fake.bot_id,
        "app_id": fake.app_id,
        "team": fake.team_id,
        "ts": message["ts"],
        "text": message.get("text") or "",
        "blocks": _as_text_objects(message.get("blocks") or []),
    }
    container: dict[str, Any] = {
        "type": "message",
        "message_ts": message["ts"],
        "channel_id": channel,
        "is_ephemeral": bool(message.get("ephemeral_user")),
    }
    if message.get("thread_ts"):
        shown["thread_ts"] = message["thread_ts"]
        container["thread_ts"] = message["thread_ts"]
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "text": _as_text_objects(button.get("text")),
        "type": "button",
        "action_ts": f"{fake.now():.6f}",
    }
    if "value" in button:
        action["value"] = button["value"]
    if "style" in button:
        action["style"] = button["style"]
    return {
        "type": "block_actions",
        "user": {
            "id": user_id,
            "username": person["name"],
            "name": person["name"],
            "team_id": fake.team_id,
        },
        "api_app_id": fake.app_id,
        "token": "legacy-verification-token",
        "container": container,
        "trigger_id": trigger_id,
        "team": {"id": fake.team_id, "domain": fake.team_domain},
        "enterprise": None,
        "is_enterprise_install": False,
        "channel": {"id": channel, "name": fake.channel_name(channel)},
        "message": shown,
        "state": {"values": {}},
        "response_url": response_url,
        "actions": [action],
    }


def view_submission_payload(
    fake: FakeSlack,
    *,
    view_id: str,
    user_id: str,
    values: dict[str, dict[str, str | int]],
) -> dict[str, Any]:
    """The ``view_submission`` payload Slack sends when ``user_id`` submits an open modal.

    ``view_id`` names a view the app opened with ``views.open`` (see :meth:`FakeSlack.views`).
    ``values`` maps block_id -> action_id -> what the person entered in that input block's
    element: for a text input the text typed, for a ``static_select`` the ``value`` of the
    option picked, for a ``datetimepicker`` the instant picked in epoch seconds (an int).
    Input blocks not filled (or text filled with ``""``) report the element's empty state
    (``value: None``, ``selected_option: None``, ``selected_date_time: None``), as Slack
    does for an empty optional input. Slack's client would refuse to submit an empty required
    input; the fake lets a test send one anyway, so the app's own checks can be exercised.

    A fresh ``trigger_id`` is issued (valid for ``views.open`` once, within
    ``fake.trigger_ttl``). Raises ``ValueError`` if the view is unknown, closed, shown to
    another user, if ``values`` names an input the view does not have, or gives a value no
    person could enter in that element (an int for text, a string for a datetimepicker, an
    option the select does not offer). The view stays open: the caller closes it
    (:meth:`FakeSlack.close_view`) if the app's answer says so.
    """
    entry = next((v for v in fake.views() if v["id"] == view_id), None)
    if entry is None:
        raise ValueError(f"no view {view_id!r} was opened")
    if entry.get("closed"):
        raise ValueError(f"view {view_id!r} is already closed")
    if entry.get("user") and entry["user"] != user_id:
        raise ValueError(f"view {view_id!r} was opened for {entry['user']}, not {user_id}")
    view: dict[str, Any] = entry["view"]
    state: dict[str, dict[str, Any]] = {}
    inputs: dict[str, dict[str, Any]] = {}
    for block in view.get("blocks") or []:
        if not isinstance(block, dict) or block.get("type") != "input":
            continue
        element = block.get("element")
        if not isinstance(element, dict):
            continue
        block_id, action_id = str(block["block_id"]), str(element["action_id"])
        inputs[block_id] = element
        state[block_id] = {action_id: _empty_state(str(element.get("type")))}
    for block_id, entered in values.items():
        if block_id not in inputs:
            raise ValueError(f"view {view_id!r} has no input block {block_id!r}")
        if not isinstance(entered, dict):
            raise ValueError(f"values[{block_id!r}] must map action_id to what was entered")
        element = inputs[block_id]
        action_id = str(element["action_id"])
        for given_action, value in entered.items():
            if given_action != action_id:
                raise ValueError(f"input block {block_id!r} has no element {given_action!r}")
            state[block_id][action_id] = _entered_state(element, f"{block_id}/{action_id}", value)
    fake.add_user(user_id)  # whoever sees the modal is a member of the workspace
    person = fake.user(user_id) or {"name": user_id}
    trigger_id = fake.issue_trigger_id(user=user_id)
    submitted: dict[str, Any] = {
        "id": view["id"],
        "team_id": view["team_id"],
        "type": "modal",
        "blocks": copy.deepcopy(view.get("blocks") or []),
        "private_metadata": view.get("private_metadata", ""),
        "callback_id": view.get("callback_id", ""),
        "state": {"values": state},
        "hash": view["hash"],
        "title": copy.deepcopy(view.get("title")),
        "clear_on_close": view.get("clear_on_close", False),
        "notify_on_close": view.get("notify_on_close", False),
        "close": copy.deepcopy(view.get("close")),
        "submit": copy.deepcopy(view.get("submit")),
        "previous_view_id": None,
        "root_view_id": view.get("root_view_id", view["id"]),
        "app_id": fake.app_id,
        "external_id": view.get("external_id", ""),
        "app_installed_team_id": fake.team_id,
        "bot_id": fake.bot_id,
    }
    return {
        "type": "view_submission",
        "team": {"id": fake.team_id, "domain": fake.team_domain},
        "user": {
            "id": user_id,
            "username": person["name"],
            "name": person["name"],
            "team_id": fake.team_id,
        },
        "api_app_id": fake.app_id,
        "token": "legacy-verification-token",
        "trigger_id": trigger_id,
        "view": submitted,
        "response_urls": [],
        "is_enterprise_install": False,
        "enterprise": None,
    }


def _entered_state(element: dict[str, Any], where: str, value: Any) -> dict[str, Any]:
    """The state Slack reports for ``element`` once a person entered ``value`` in it."""
    element_type = str(element.get("type"))
    if element_type in _TEXT_INPUTS:
        if not isinstance(value, str):
            raise ValueError(f"input {where}: the text typed must be a string")
        return {"type": element_type, "value": value or None}
    if element_type == "datetimepicker":
        # Slack's client sends the instant picked as epoch seconds, a JSON integer.
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"input {where} is a datetimepicker: give epoch seconds, an integer")
        return {"type": element_type, "selected_date_time": value}
    if element_type == "static_select":
        if not isinstance(value, str):
            raise ValueError(f"input {where} is a static_select: give an option's value")
        options = list(element.get("options") or [])
        for group in element.get("option_groups") or []:
            if isinstance(group, dict):
                options.extend(group.get("options") or [])
        for option in options:
            if isinstance(option, dict) and option.get("value") == value:
                return {"type": element_type, "selected_option": copy.deepcopy(option)}
        raise ValueError(f"input {where} offers no option with value {value!r}")
    raise ValueError(f"input {where} is a {element_type}, not text")


def signed_request(
    body: bytes, signing_secret: str, timestamp: int | None = None
) -> dict[str, str]:
    """The headers Slack sends with an interactivity request whose raw body is ``body``."""
    ts = int(time.time()) if timestamp is None else int(timestamp)
    signature = SignatureVerifier(signing_secret).generate_signature(timestamp=str(ts), body=body)
    if signature is None:  # pragma: no cover - only when timestamp is None
        raise ValueError("could not sign the request")
    return {
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": signature,
    }


def form_body(payload: dict[str, Any]) -> bytes:
    """The form body of an interactivity request: ``payload=<JSON>``."""
    return urlencode({"payload": json.dumps(payload)}).encode()
