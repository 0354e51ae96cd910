"""The fake Slack Web API, driven through the real slack_sdk clients over 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qs

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.signature import SignatureVerifier
from slack_sdk.webhook import WebhookClient
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from sandbox.fake_slack import (
    FakeSlack,
    block_actions_payload,
    form_body,
    signed_request,
    view_submission_payload,
)

TOKEN = "xoxb-test-token-123"
START = 1_700_000_000.25
TS_RE = re.compile(r"^\d{10}\.\d{6}$")

APPROVE_BLOCKS: list[dict[str, Any]] = [
    {"type": "section", "text": {"type": "mrkdwn", "text": "*deploy* waits for approval"}},
    {
        "type": "actions",
        "block_id": "decide",
        "elements": [
            {
                "type": "button",
                "action_id": "approve",
                "text": {"type": "plain_text", "text": "Approve"},
                "value": "token-123",
                "style": "primary",
            },
            {
                "type": "button",
                "action_id": "reject",
                "text": {"type": "plain_text", "text": "Reject"},
                "value": "token-123",
                "style": "danger",
            },
        ],
    },
]

MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "reason",
    "title": {"type": "plain_text", "text": "Reject deploy"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "blocks": [
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "reason"},
        }
    ],
}


def slack_stored(value: Any) -> Any:
    """`value` as Slack stores and sends it back: "emoji": true on each plain_text object."""
    if isinstance(value, list):
        return [slack_stored(v) for v in value]
    if not isinstance(value, dict):
        return value
    stored = {k: slack_stored(v) for k, v in value.items()}
    if stored.get("type") == "plain_text":
        stored.setdefault("emoji", True)
    return stored


class Clock:
    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class Sandbox:
    fake: FakeSlack
    clock: Clock
    base: str
    seen: list[tuple[str, str, str]] = field(default_factory=list)

    def client(self, token: str | None = TOKEN) -> WebClient:
        return WebClient(token=token, base_url=f"{self.base}/slack/api/", timeout=5)

    def response_url(self, key: str) -> str:
        return f"{self.base}/response-url/{key}"


def _wsgi_app(sandbox: Sandbox) -> Any:
    @Request.application
    def app(request: Request) -> Response:
        if request.path.startswith("/slack/api/"):
            method = request.path.removeprefix("/slack/api/")
            args: dict[str, Any] = dict(request.args.items())
            args.update(request.form.items())
            if request.is_json:  # slack_sdk may send an empty body labelled JSON
                args.update(request.get_json(silent=True) or {})
            sandbox.seen.append((method, request.method, request.mimetype))
            auth = request.headers.get("Authorization")
            status, headers, body = sandbox.fake.api(method, args, auth)
        elif request.path.startswith("/response-url/"):
            key = request.path.rsplit("/", 1)[-1]
            status, body = sandbox.fake.apply_response_url(key, request.get_json(force=True))
            headers = {}
        else:
            status, headers, body = 404, {}, {"ok": False}
        return Response(json.dumps(body), status, headers, mimetype="application/json")

    return app


@pytest.fixture
def sb() -> Iterator[Sandbox]:
    clock = Clock()
    fake = FakeSlack(bot_token=TOKEN, clock=clock)
    fake.add_user("U0ALICE")
    fake.add_user("U0BOB", real_name="Bob Builder", email="Bob@Example.org")
    fake.add_group("S0RELEASE", users=["U0ALICE", "U0CAROL"])
    # Slack answers only for channels the workspace has (C0DEPLOYS is there from the start).
    for channel in ("C0ONCALL", "C0OTHER", "C0ELSEWHERE", "G0PRIVATE"):
        fake.add_channel(channel)
    sandbox = Sandbox(fake=fake, clock=clock, base="")
    server = make_server("127.0.0.1", 0, _wsgi_app(sandbox), threaded=True)
    sandbox.base = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sandbox
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def _error(call: Any) -> str:
    with pytest.raises(SlackApiError) as caught:
        call()
    return str(caught.value.response["error"])


# ---------------------------------------------------------------------- messages


def test_post_message_is_shown_and_sent_as_json(sb: Sandbox) -> None:
    reply = sb.client().chat_postMessage(channel="C0DEPLOYS", text="deploy", blocks=APPROVE_BLOCKS)
    assert ("chat.postMessage", "POST", "application/json") in sb.seen
    assert reply["ok"] is True and reply["channel"] == "C0DEPLOYS"
    assert TS_RE.match(reply["ts"])
    assert reply["message"]["user"] == "U0GATEBOT" and reply["message"]["blocks"] == APPROVE_BLOCKS
    assert sb.fake.messages() == [
        {
            "channel": "C0DEPLOYS",
            "ts": reply["ts"],
            "thread_ts": None,
            "text": "deploy",
            "blocks": APPROVE_BLOCKS,
            "ephemeral_user": None,
        }
    ]
    # deep copies: changing what was read changes nothing
    sb.fake.messages()[0]["blocks"].clear()
    assert sb.fake.messages()[0]["blocks"] == APPROVE_BLOCKS


def test_messages_of_one_channel_posted_after_a_ts(sb: Sandbox) -> None:
    client = sb.client()
    first = client.chat_postMessage(channel="C0DEPLOYS", text="one")["ts"]
    client.chat_postMessage(channel="C0ONCALL", text="elsewhere")
    second = client.chat_postMessage(channel="C0DEPLOYS", text="two")["ts"]
    client.chat_postMessage(channel="C0DEPLOYS", text="reply", thread_ts=first)
    client.chat_update(channel="C0DEPLOYS", ts=first, text="one, updated")

    def texts(**query: str) -> list[str]:
        return [m["text"] for m in sb.fake.messages(**query)]

    assert texts() == ["one, updated", "elsewhere", "two", "reply"]
    assert texts(channel="C0DEPLOYS") == ["one, updated", "two", "reply"]
    # oldest is exclusive, as in conversations.history, and goes by when a message was
    # posted: updating the first does not make it new.
    assert texts(oldest=first) == ["elsewhere", "two", "reply"]
    assert texts(channel="C0DEPLOYS", oldest=second) == ["reply"]
    assert texts(oldest="0") == texts()
    assert texts(oldest="9999999999.999999") == []
    for bad in ("", "yesterday", "1.2.3", "-1", "1795806333.0000001"):
        with pytest.raises(ValueError, match="Slack timestamp"):
            sb.fake.messages(oldest=bad)


def test_conversations_history_pages_newest_first_with_metadata_only_when_asked(
    sb: Sandbox,
) -> None:
    client = sb.client()
    marked = {"event_type": "approval_gate_request", "event_payload": {"approval_id": "a1"}}
    first = client.chat_postMessage(channel="C0DEPLOYS", text="one", metadata=marked)["ts"]
    client.chat_postMessage(channel="C0ONCALL", text="elsewhere")
    client.chat_postMessage(channel="C0DEPLOYS", text="reply", thread_ts=first)
    client.chat_postMessage(channel="C0DEPLOYS", text="two")
    client.chat_postMessage(channel="C0DEPLOYS", text="three")

    plain = client.conversations_history(channel="C0DEPLOYS")
    assert [m["text"] for m in plain["messages"]] == ["three", "two", "one"]
    assert all("metadata" not in m for m in plain["messages"])  # Slack: only when asked
    assert plain["has_more"] is False and plain["response_metadata"]["next_cursor"] == ""

    pages, cursor = [], None
    while True:
        page = client.conversations_history(
            channel="C0DEPLOYS", limit=2, include_all_metadata=True, cursor=cursor
        )
        pages.append([(m["text"], m.get("metadata")) for m in page["messages"]])
        cursor = page["response_metadata"]["next_cursor"] or None
        if cursor is None:
            break
    assert pages == [[("three", None), ("two", None)], [("one", marked)]]
    # oldest is exclusive unless inclusive
    assert [
        m["text"]
        for m in client.conversations_history(channel="C0DEPLOYS", oldest=first)["messages"]
    ] == ["three", "two"]
    inclusive = client.conversations_history(channel="C0DEPLOYS", oldest=first, inclusive=True)
    assert [m["text"] for m in inclusive["messages"]] == ["three", "two", "one"]
    bad = {"event_type": "x"}
    assert _error(lambda: client.chat_postMessage(channel="C0DEPLOYS", text="x", metadata=bad)) == (
        "invalid_metadata_format"
    )
    assert _error(lambda: client.conversations_history(channel="C0DEPLOYS", cursor="junk")) == (
        "invalid_cursor"
    )
    assert _error(lambda: client.conversations_history(channel="C0NOPE")) == "channel_not_found"


def test_update_changes_what_is_shown(sb: Sandbox) -> None:
    client = sb.client()
    ts = client.chat_postMessage(channel="C0DEPLOYS", text="waiting", blocks=APPROVE_BLOCKS)["ts"]
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved by <@U0ALICE>"}}]
    reply = client.chat_update(channel="C0DEPLOYS", ts=ts, text="approved", blocks=done)
    assert (reply["ok"], reply["channel"], reply["ts"], reply["text"]) == (
        True,
        "C0DEPLOYS",
        ts,
        "approved",
    )
    shown = sb.fake.find_message("C0DEPLOYS", ts)
    assert shown is not None
    assert (shown["text"], shown["blocks"]) == ("approved", done)
    # text only: the blocks stay, as on Slack
    client.chat_update(channel="C0DEPLOYS", ts=ts, text="approved!")
    assert sb.fake.messages()[0]["text"] == "approved!"
    assert sb.fake.messages()[0]["blocks"] == done
    assert len(sb.fake.messages()) == 1


def test_blocks_as_a_form_encoded_json_string(sb: Sandbox) -> None:
    reply = sb.client().api_call(
        "chat.postMessage", data={"channel": "C0DEPLOYS", "blocks": json.dumps(APPROVE_BLOCKS)}
    )
    assert ("chat.postMessage", "POST", "application/x-www-form-urlencoded") in sb.seen
    assert sb.fake.find_message("C0DEPLOYS", reply["ts"])["blocks"] == APPROVE_BLOCKS  # type: ignore[index]
    assert sb.fake.calls()[-1]["args"]["blocks"] == APPROVE_BLOCKS


def test_thread_replies(sb: Sandbox) -> None:
    client = sb.client()
    parent = client.chat_postMessage(channel="C0DEPLOYS", text="parent")["ts"]
    reply = client.chat_postMessage(channel="C0DEPLOYS", text="reply", thread_ts=parent)
    assert reply["message"]["thread_ts"] == parent
    # a reply to a reply lands in the same thread
    nested = client.chat_postMessage(channel="C0DEPLOYS", text="again", thread_ts=reply["ts"])
    shown = sb.fake.messages()
    assert [m["thread_ts"] for m in shown] == [None, parent, parent]
    assert shown[2]["ts"] == nested["ts"]
    assert sb.fake.find_message("C0DEPLOYS", parent)["reply_count"] == 2  # type: ignore[index]
    assert sb.fake.find_message("C0DEPLOYS", reply["ts"])["reply_count"] == 0  # type: ignore[index]
    missing = "1600000000.000001"
    post = client.chat_postMessage
    assert _error(lambda: post(channel="C0DEPLOYS", text="x", thread_ts=missing)) == (
        "thread_not_found"
    )
    assert _error(lambda: post(channel="C0OTHER", text="x", thread_ts=parent)) == (
        "thread_not_found"
    )
    link = client.chat_getPermalink(channel="C0DEPLOYS", message_ts=reply["ts"])
    assert link["permalink"].startswith(
        f"https://sandbox.slack.local/archives/C0DEPLOYS/p{reply['ts'].replace('.', '')}"
    )
    assert f"thread_ts={parent}" in link["permalink"]


def test_ephemeral_messages(sb: Sandbox) -> None:
    client = sb.client()
    reply = client.chat_postEphemeral(channel="C0DEPLOYS", user="U0BOB", text="only you")
    assert reply["ok"] is True and TS_RE.match(reply["message_ts"])
    [shown] = sb.fake.messages()
    assert shown["ephemeral_user"] == "U0BOB" and shown["ts"] == reply["message_ts"]
    assert shown["thread_ts"] is None and shown["text"] == "only you"
    post = client.chat_postEphemeral
    assert _error(lambda: post(channel="C0DEPLOYS", user="U0NOBODY", text="x")) == (
        "user_not_found"
    )
    # an ephemeral message cannot be updated or linked to
    update = client.chat_update
    assert _error(lambda: update(channel="C0DEPLOYS", ts=reply["message_ts"], text="x")) == (
        "message_not_found"
    )


def test_permalink_and_auth_test(sb: Sandbox) -> None:
    client = sb.client()
    ts = client.chat_postMessage(channel="G0PRIVATE", text="hi")["ts"]
    sb.fake.permalink_base = "http://127.0.0.1:9999/sandbox/"
    link = client.chat_getPermalink(channel="G0PRIVATE", message_ts=ts)
    assert link["channel"] == "G0PRIVATE"
    assert link["permalink"] == (
        f"http://127.0.0.1:9999/sandbox/archives/G0PRIVATE/p{ts.replace('.', '')}"
    )
    assert ("chat.getPermalink", "POST", "application/x-www-form-urlencoded") in sb.seen
    me = client.auth_test()
    assert me["user_id"] == "U0GATEBOT" and me["team_id"] == "T0SANDBOX"
    assert {"url", "team", "user", "bot_id"} <= set(me.data)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- errors and calls


def test_calls_are_recorded_with_tokens_redacted(sb: Sandbox) -> None:
    sb.client().chat_postMessage(channel="C0DEPLOYS", text=f"leak {TOKEN} here?")
    status, _, body = sb.fake.api("auth.test", {"token": TOKEN}, None)
    assert (status, body["ok"]) == (200, True)
    calls = sb.fake.calls()
    assert [c["method"] for c in calls] == ["chat.postMessage", "auth.test"]
    assert TOKEN not in json.dumps(calls)
    assert calls[0]["args"]["text"] == "leak [redacted] here?"
    assert calls[1]["args"] == {"token": "[redacted]"}
    at = datetime.fromisoformat(calls[0]["at"].replace("Z", "+00:00"))
    assert at.tzinfo is not None and at.utcoffset() == UTC.utcoffset(None)
    assert at.timestamp() == pytest.approx(START, abs=0.001)


def test_missing_or_wrong_token(sb: Sandbox) -> None:
    wrong = sb.client("xoxb-wrong")
    assert _error(lambda: wrong.chat_postMessage(channel="C0DEPLOYS", text="x")) == "invalid_auth"
    nobody = sb.client(None)
    assert _error(lambda: nobody.auth_test()) == "not_authed"
    assert sb.fake.messages() == []
    calls = sb.fake.calls()
    assert [c["method"] for c in calls] == ["chat.postMessage", "auth.test"]
    assert "xoxb-wrong" not in json.dumps(calls)
    assert sb.fake.api("users.info", {"user": "U0ALICE", "token": "nope"}, None)[2] == {
        "ok": False,
        "error": "invalid_auth",
    }


def test_unknown_method(sb: Sandbox) -> None:
    assert _error(lambda: sb.client().api_call("chat.scheduleMessage")) == "unknown_method"
    assert sb.fake.calls()[-1]["method"] == "chat.scheduleMessage"


@pytest.mark.parametrize("channel", ["general", "#deploys", "U0ALICE", "c0lower", "C"])
def test_channel_not_found(sb: Sandbox, channel: str) -> None:
    post = sb.client().chat_postMessage
    assert _error(lambda: post(channel=channel, text="x")) == "channel_not_found"


def test_message_not_found(sb: Sandbox) -> None:
    client = sb.client()
    ts = client.chat_postMessage(channel="C0DEPLOYS", text="x")["ts"]
    assert _error(lambda: client.chat_update(channel="C0DEPLOYS", ts="1.000001", text="y")) == (
        "message_not_found"
    )
    # right ts, wrong channel
    assert _error(lambda: client.chat_update(channel="C0ELSEWHERE", ts=ts, text="y")) == (
        "message_not_found"
    )
    link = client.chat_getPermalink
    assert _error(lambda: link(channel="C0DEPLOYS", message_ts="1.000001")) == ("message_not_found")


def test_limits(sb: Sandbox) -> None:
    post = sb.client().chat_postMessage
    assert _error(lambda: post(channel="C0DEPLOYS", text="x" * 40_001)) == "msg_too_long"
    post(channel="C0DEPLOYS", text="x" * 40_000)
    section = {"type": "section", "text": {"type": "mrkdwn", "text": "hi"}}
    assert _error(lambda: post(channel="C0DEPLOYS", text="x", blocks=[section] * 51)) == (
        "invalid_blocks"
    )
    post(channel="C0DEPLOYS", text="fifty", blocks=[section] * 50)
    long_button = {
        "type": "actions",
        "elements": [
            {"type": "button", "action_id": "a", "text": {"type": "plain_text", "text": "x" * 76}}
        ],
    }
    with pytest.raises(SlackApiError) as caught:
        post(channel="C0DEPLOYS", text="x", blocks=[long_button])
    assert caught.value.response["error"] == "invalid_blocks"
    assert "/blocks/0/elements/0/text" in caught.value.response["response_metadata"]["messages"][0]
    with pytest.warns(UserWarning):  # slack_sdk warns about a message without text, too
        assert _error(lambda: post(channel="C0DEPLOYS")) == "no_text"
    assert len(sb.fake.messages()) == 2


def test_ts_unique_and_increasing_across_200_rapid_posts(sb: Sandbox) -> None:
    client = sb.client()
    stamps = [client.chat_postMessage(channel="C0DEPLOYS", text=str(i))["ts"] for i in range(200)]
    assert all(TS_RE.match(ts) for ts in stamps)
    assert all(ts.startswith("1700000000.") for ts in stamps)  # the clock stood still
    assert len(set(stamps)) == 200
    assert [Decimal(t) for t in stamps] == sorted(Decimal(t) for t in stamps)
    assert [m["ts"] for m in sb.fake.messages()] == stamps
    # a clock that steps back never makes a ts go back
    sb.clock.advance(-60)
    later = client.chat_postMessage(channel="C0DEPLOYS", text="later")["ts"]
    assert Decimal(later) > Decimal(stamps[-1])


def test_ts_unique_under_concurrent_posts(sb: Sandbox) -> None:
    stamps: list[str] = []
    lock = threading.Lock()

    def post() -> None:
        for _ in range(25):
            _, _, body = sb.fake.api(
                "chat.postMessage", {"channel": "C0DEPLOYS", "text": "x"}, f"Bearer {TOKEN}"
            )
            with lock:
                stamps.append(body["ts"])

    threads = [threading.Thread(target=post) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(stamps)) == 200
    shown = [m["ts"] for m in sb.fake.messages()]
    assert shown == sorted(shown, key=Decimal)


# ---------------------------------------------------------------------- workspace


def test_usergroups_and_users(sb: Sandbox) -> None:
    client = sb.client()
    assert client.usergroups_users_list(usergroup="S0RELEASE")["users"] == ["U0ALICE", "U0CAROL"]
    assert ("usergroups.users.list", "POST", "application/x-www-form-urlencoded") in sb.seen
    nope = client.usergroups_users_list
    assert _error(lambda: nope(usergroup="S0NOPE")) == "no_such_subteam"

    alice = client.users_info(user="U0ALICE")["user"]
    assert alice["id"] == "U0ALICE" and alice["name"] == "alice"
    assert alice["real_name"] == "Alice" and alice["is_bot"] is False
    assert alice["tz"] == "Europe/London"
    assert alice["profile"]["email"] == "alice@example.com"
    assert alice["profile"]["real_name"] == "Alice" and alice["profile"]["display_name"] == "alice"
    carol = client.users_info(user="U0CAROL")["user"]  # added as a member of the group
    assert carol["name"] == "carol"
    assert client.users_info(user="U0GATEBOT")["user"]["is_bot"] is True
    assert _error(lambda: client.users_info(user="U0NOBODY")) == "user_not_found"

    bob = client.users_lookupByEmail(email="bob@example.ORG")["user"]
    assert bob["id"] == "U0BOB" and bob["real_name"] == "Bob Builder"
    lookup = client.users_lookupByEmail
    assert _error(lambda: lookup(email="who@example.com")) == "users_not_found"


def test_a_user_has_every_member_slack_always_sends(sb: Sandbox) -> None:
    """users.info and users.lookupByEmail answer a full user: `updated`, `is_app_user`
    and the profile's fields (tests/sandbox/slack_members.json has the whole list)."""
    client = sb.client()
    bob = client.users_lookupByEmail(email="bob@example.org")["user"]
    assert bob == client.users_info(user="U0BOB")["user"]
    assert bob["updated"] == int(START) and bob["is_app_user"] is False
    assert bob["deleted"] is False and bob["is_admin"] is False and bob["team_id"] == "T0SANDBOX"
    assert (bob["tz"], bob["tz_label"], bob["tz_offset"]) == (
        "Europe/London",
        "Greenwich Mean Time",  # START is in November
        0,
    )
    assert re.fullmatch(r"[0-9a-f]{6}", bob["color"])
    profile = bob["profile"]
    assert profile["real_name"] == profile["real_name_normalized"] == "Bob Builder"
    assert profile["display_name"] == profile["display_name_normalized"] == "bob"
    assert (profile["first_name"], profile["last_name"]) == ("Bob", "Builder")
    assert profile["email"] == "Bob@Example.org" and profile["team"] == "T0SANDBOX"
    for empty in ("title", "phone", "skype", "status_text", "status_emoji"):
        assert profile[empty] == ""
    assert profile["fields"] is None and re.fullmatch(r"g[0-9a-f]{11}", profile["avatar_hash"])
    assert profile["image_72"].startswith("https://")
    # a change to the user moves `updated`
    sb.clock.advance(60)
    sb.fake.add_user("U0BOB", real_name="Robert Builder")
    assert client.users_info(user="U0BOB")["user"]["updated"] == int(START) + 60
    bot = client.users_info(user="U0GATEBOT")["user"]
    assert bot["is_bot"] is True and bot["is_app_user"] is False and "email" not in bot["profile"]
    assert bot["profile"]["bot_id"] == "B0GATEBOT" and bot["profile"]["api_app_id"] == "A0SANDBOX"


def test_channels_the_bot_may_see_and_post_in(sb: Sandbox) -> None:
    client = sb.client()
    sb.fake.add_channel("G0SECRET", bot_member=False)  # private, the bot not invited
    sb.fake.set_bot_member("C0ONCALL", False)

    # an id the workspace lacks, or a private channel the bot is not in: not found
    for channel in ("C0NOWHERE", "G0SECRET"):
        assert _error(lambda c=channel: client.chat_postMessage(channel=c, text="x")) == (
            "channel_not_found"
        )
        assert _error(lambda c=channel: client.conversations_info(channel=c)) == (
            "channel_not_found"
        )
    # a public channel the bot left: seen, but no posting there
    assert _error(lambda: client.chat_postMessage(channel="C0ONCALL", text="x")) == (
        "not_in_channel"
    )
    oncall = client.conversations_info(channel="C0ONCALL")["channel"]
    assert (oncall["name"], oncall["is_member"], oncall["is_private"]) == ("oncall", False, False)
    private = client.conversations_info(channel="G0PRIVATE", include_num_members=True)["channel"]
    assert (private["is_private"], private["is_group"], private["is_channel"]) == (
        True,
        True,
        False,
    )
    assert private["num_members"] == 4  # alice, bob, carol and the bot

    def listed(**args: Any) -> list[str]:
        return [c["id"] for c in client.conversations_list(**args)["channels"]]

    assert listed() == ["C0DEPLOYS", "C0ELSEWHERE", "C0ONCALL", "C0OTHER"]
    assert listed(types="private_channel") == ["G0PRIVATE"]
    first = client.conversations_list(limit=3, types="public_channel,private_channel")
    assert [c["id"] for c in first["channels"]] == ["C0DEPLOYS", "C0ELSEWHERE", "C0ONCALL"]
    cursor = first["response_metadata"]["next_cursor"]
    assert listed(limit=3, cursor=cursor, types="public_channel,private_channel") == [
        "C0OTHER",
        "G0PRIVATE",
    ]
    assert _error(lambda: client.conversations_list(cursor="nonsense")) == "invalid_cursor"
    assert _error(lambda: client.conversations_list(types="rooms")) == "invalid_types"


def test_the_default_bot_token_is_the_sandboxs() -> None:
    fake = FakeSlack()
    status, _, body = fake.api("auth.test", {}, "Bearer xoxb-sandbox-bot-token")
    assert (status, body["ok"], body["user_id"]) == (200, True, "U0GATEBOT")


def test_workspace_fixture_and_idempotence(sb: Sandbox) -> None:
    fake = sb.fake
    fake.add_user("U0ALICE")  # again: nothing changes
    fake.add_group("S0RELEASE", users=["U0ALICE"])
    fake.load_fixture(
        {
            "users": [
                {"id": "U0DAN", "name": "dan.o", "real_name": "Dan O", "email": "dan@corp.test"}
            ],
            "groups": [{"id": "S0SRE", "handle": "sre-oncall", "users": ["U0DAN", "U0ERIN"]}],
        }
    )
    ws = fake.workspace()
    assert (ws["team_id"], ws["app_id"], ws["bot_user_id"]) == (
        "T0SANDBOX",
        "A0SANDBOX",
        "U0GATEBOT",
    )
    assert [u["id"] for u in ws["users"]] == ["U0ALICE", "U0BOB", "U0CAROL", "U0DAN", "U0ERIN"]
    assert ws["groups"] == [
        {"id": "S0RELEASE", "handle": "release", "users": ["U0ALICE", "U0CAROL"]},
        {"id": "S0SRE", "handle": "sre-oncall", "users": ["U0DAN", "U0ERIN"]},
    ]
    assert fake.user("U0DAN")["profile"]["email"] == "dan@corp.test"  # type: ignore[index]
    assert fake.user("U0ERIN")["profile"]["email"] == "erin@example.com"  # type: ignore[index]
    assert fake.user("U0NOBODY") is None
    with pytest.raises(ValueError):
        fake.load_fixture({"users": [{"name": "no id"}]})


# ---------------------------------------------------------------------- views


def _clicked(sb: Sandbox, user: str = "U0BOB") -> dict[str, Any]:
    ts = sb.client().chat_postMessage(channel="C0DEPLOYS", text="x", blocks=APPROVE_BLOCKS)["ts"]
    message = sb.fake.find_message("C0DEPLOYS", ts)
    assert message is not None
    key = sb.fake.new_response_url_key(channel="C0DEPLOYS", message_ts=ts, user=user)
    return block_actions_payload(
        sb.fake,
        message=message,
        user_id=user,
        action_id="reject",
        response_url=sb.response_url(key),
    )


def test_views_open_fresh_trigger_once(sb: Sandbox) -> None:
    client = sb.client()
    payload = _clicked(sb)
    sb.clock.advance(2.5)
    opened = client.views_open(trigger_id=payload["trigger_id"], view=MODAL)
    assert ("views.open", "POST", "application/json") in sb.seen
    view = opened["view"]
    assert view["id"].startswith("V") and view["callback_id"] == "reason"
    assert view["blocks"] == slack_stored(MODAL["blocks"]) and view["state"] == {"values": {}}
    [listed] = sb.fake.views()
    assert listed["id"] == view["id"] and listed["trigger_id"] == payload["trigger_id"]
    assert listed["user"] == "U0BOB" and listed["view"]["title"] == slack_stored(MODAL["title"])
    assert sb.fake.calls()[-1]["args"]["view"] == MODAL
    again = client.views_open
    # Slack: "The trigger_id was already exchanged in a previous call"
    assert _error(lambda: again(trigger_id=payload["trigger_id"], view=MODAL)) == (
        "exchanged_trigger_id"
    )
    assert len(sb.fake.views()) == 1


def test_views_open_rejects_expired_and_unknown_triggers(sb: Sandbox) -> None:
    client = sb.client()
    payload = _clicked(sb)
    sb.clock.advance(3.5)
    opening = client.views_open
    assert _error(lambda: opening(trigger_id=payload["trigger_id"], view=MODAL)) == (
        "expired_trigger_id"
    )
    assert _error(lambda: opening(trigger_id="123.456.abc", view=MODAL)) == "invalid_trigger_id"
    bad = {**MODAL, "title": {"type": "plain_text", "text": "A title longer than 24 chars"}}
    fresh = sb.fake.issue_trigger_id()
    assert _error(lambda: opening(trigger_id=fresh, view=bad)) == "invalid_arguments"
    assert sb.fake.views() == []
    # the sandbox may relax Slack's 3 s
    sb.fake.trigger_ttl = 60.0
    relaxed = _clicked(sb)
    sb.clock.advance(30)
    assert opening(trigger_id=relaxed["trigger_id"], view=MODAL)["ok"] is True
    # a form-encoded view (a JSON string) is understood too
    status, _, body = sb.fake.api(
        "views.open",
        {"trigger_id": sb.fake.issue_trigger_id(), "view": json.dumps(MODAL)},
        f"Bearer {TOKEN}",
    )
    assert (status, body["ok"]) == (200, True)


REASON_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "reject_reason",
    "private_metadata": '{"approval_id": "a-1"}',
    "title": {"type": "plain_text", "text": "Reject deploy"},
    "submit": {"type": "plain_text", "text": "Reject"},
    "close": {"type": "plain_text", "text": "Cancel"},
    "blocks": [
        {"type": "section", "text": {"type": "mrkdwn", "text": "Rejecting *web*"}},
        {
            "type": "input",
            "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why?"},
            "element": {"type": "plain_text_input", "action_id": "reason", "multiline": True},
        },
        {
            "type": "input",
            "block_id": "ticket",
            "optional": True,
            "label": {"type": "plain_text", "text": "Ticket"},
            "element": {"type": "plain_text_input", "action_id": "ticket"},
        },
        {
            "type": "input",
            "optional": True,
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input"},
        },
    ],
}


def _opened(sb: Sandbox, user: str = "U0BOB") -> str:
    clicked = _clicked(sb, user)
    return str(
        sb.client().views_open(trigger_id=clicked["trigger_id"], view=REASON_MODAL)["view"]["id"]
    )


def test_view_submission_payload_carries_the_typed_values(sb: Sandbox) -> None:
    view_id = _opened(sb)
    [listed] = sb.fake.views()
    assert listed["closed"] is False
    # Slack names the input block (and element) the app left unnamed
    unnamed = listed["view"]["blocks"][3]
    note_block, note_action = unnamed["block_id"], unnamed["element"]["action_id"]
    assert note_block and note_action and "block_id" not in listed["view"]["blocks"][0]

    payload = view_submission_payload(
        sb.fake,
        view_id=view_id,
        user_id="U0BOB",
        values={"reason": {"reason": "canary is red\nsee dashboard"}, "ticket": {"ticket": ""}},
    )

    assert payload["type"] == "view_submission"
    assert payload["team"] == {"id": "T0SANDBOX", "domain": "sandbox"}
    assert payload["user"] == {
        "id": "U0BOB",
        "username": "bob",
        "name": "bob",
        "team_id": "T0SANDBOX",
    }
    assert payload["api_app_id"] == "A0SANDBOX"
    assert payload["token"] == "legacy-verification-token"
    assert payload["response_urls"] == [] and payload["enterprise"] is None
    assert payload["is_enterprise_install"] is False
    view = payload["view"]
    assert view["id"] == view_id and view["type"] == "modal" and view["team_id"] == "T0SANDBOX"
    assert view["callback_id"] == "reject_reason"
    assert view["private_metadata"] == '{"approval_id": "a-1"}'
    # title, submit and close as Slack sends them: with "emoji"
    assert view["title"] == {"type": "plain_text", "text": "Reject deploy", "emoji": True}
    assert view["submit"] == slack_stored(REASON_MODAL["submit"])
    assert view["close"] == slack_stored(REASON_MODAL["close"])
    assert view["previous_view_id"] is None
    assert view["root_view_id"] == view_id and view["app_id"] == "A0SANDBOX"
    assert view["bot_id"] == "B0GATEBOT" and view["app_installed_team_id"] == "T0SANDBOX"
    assert view["external_id"] == "" and view["hash"] == listed["view"]["hash"]
    assert view["blocks"] == listed["view"]["blocks"]
    assert view["state"] == {
        "values": {
            "reason": {
                "reason": {"type": "plain_text_input", "value": "canary is red\nsee dashboard"}
            },
            "ticket": {"ticket": {"type": "plain_text_input", "value": None}},
            note_block: {note_action: {"type": "plain_text_input", "value": None}},
        }
    }
    # the payload's trigger_id is fresh: it opens another modal, once
    assert payload["trigger_id"] != listed["trigger_id"]
    assert sb.client().views_open(trigger_id=payload["trigger_id"], view=MODAL)["ok"] is True
    # and the payload travels as Slack sends it
    assert json.loads(parse_qs(form_body(payload).decode())["payload"][0]) == payload


def test_view_submission_payload_refuses_unknown_closed_and_foreign_views(sb: Sandbox) -> None:
    with pytest.raises(ValueError, match="no view"):
        view_submission_payload(sb.fake, view_id="V404", user_id="U0BOB", values={})
    view_id = _opened(sb)
    wrong: list[Any] = [
        {"nope": {"reason": "x"}},  # no such block
        {"reason": {"other": "x"}},  # no such element
        {"reason": "x"},  # not block -> action -> text
        {"reason": {"reason": 42}},  # not text
    ]
    for values in wrong:
        with pytest.raises(ValueError):
            view_submission_payload(sb.fake, view_id=view_id, user_id="U0BOB", values=values)
    with pytest.raises(ValueError, match="opened for U0BOB"):
        view_submission_payload(sb.fake, view_id=view_id, user_id="U0ALICE", values={})
    # an empty answer (no response_action) closes the modal; it cannot be submitted again
    sb.fake.close_view(view_id)
    sb.fake.close_view(view_id)  # closing twice is harmless
    assert sb.fake.views()[0]["closed"] is True
    with pytest.raises(ValueError, match="closed"):
        view_submission_payload(sb.fake, view_id=view_id, user_id="U0BOB", values={})
    with pytest.raises(ValueError):
        sb.fake.close_view("V404")


DEPLOY_AT = 1_798_794_000  # 2027-01-01T09:00:00Z

SCHEDULE_MODAL: dict[str, Any] = {
    "type": "modal",
    "callback_id": "approve_later",
    "title": {"type": "plain_text", "text": "Approve for later"},
    "submit": {"type": "plain_text", "text": "Approve"},
    "blocks": [
        {
            "type": "input",
            "block_id": "deploy_at",
            "label": {"type": "plain_text", "text": "Deploy at"},
            "element": {
                "type": "datetimepicker",
                "action_id": "deploy_at",
                "initial_date_time": DEPLOY_AT,
            },
        },
        {
            "type": "input",
            "block_id": "env",
            "optional": True,
            "label": {"type": "plain_text", "text": "Where"},
            "element": {
                "type": "static_select",
                "action_id": "env",
                "options": [
                    {"text": {"type": "plain_text", "text": "Staging"}, "value": "staging"},
                ],
                "option_groups": [
                    {
                        "label": {"type": "plain_text", "text": "Live"},
                        "options": [
                            {"text": {"type": "plain_text", "text": "EU"}, "value": "prod-eu"}
                        ],
                    }
                ],
            },
        },
        {
            "type": "input",
            "block_id": "note",
            "optional": True,
            "label": {"type": "plain_text", "text": "Note"},
            "element": {"type": "plain_text_input", "action_id": "note"},
        },
    ],
}


def _schedule_modal(sb: Sandbox) -> str:
    clicked = _clicked(sb)
    opened = sb.client().views_open(trigger_id=clicked["trigger_id"], view=SCHEDULE_MODAL)
    return str(opened["view"]["id"])


def test_a_submitted_datetimepicker_and_static_select_carry_slacks_state(sb: Sandbox) -> None:
    view_id = _schedule_modal(sb)
    picked = DEPLOY_AT + 3 * 3600 + 17  # to the second, as Slack sends it
    payload = view_submission_payload(
        sb.fake,
        view_id=view_id,
        user_id="U0BOB",
        values={"deploy_at": {"deploy_at": picked}, "env": {"env": "prod-eu"}},
    )
    assert payload["view"]["state"]["values"] == {
        "deploy_at": {"deploy_at": {"type": "datetimepicker", "selected_date_time": picked}},
        # the option object itself, as Slack stored it (from an option group too)
        "env": {
            "env": {
                "type": "static_select",
                "selected_option": {
                    "text": {"type": "plain_text", "text": "EU", "emoji": True},
                    "value": "prod-eu",
                },
            }
        },
        "note": {"note": {"type": "plain_text_input", "value": None}},
    }
    untouched = view_submission_payload(sb.fake, view_id=view_id, user_id="U0BOB", values={})
    assert untouched["view"]["state"]["values"] == {
        "deploy_at": {"deploy_at": {"type": "datetimepicker", "selected_date_time": None}},
        "env": {"env": {"type": "static_select", "selected_option": None}},
        "note": {"note": {"type": "plain_text_input", "value": None}},
    }
    staging = view_submission_payload(
        sb.fake, view_id=view_id, user_id="U0BOB", values={"env": {"env": "staging"}}
    )
    selected = staging["view"]["state"]["values"]["env"]["env"]["selected_option"]
    assert selected["value"] == "staging"


@pytest.mark.parametrize(
    ("values", "complaint"),
    [
        ({"deploy_at": {"deploy_at": str(DEPLOY_AT)}}, "epoch seconds, an integer"),
        ({"deploy_at": {"deploy_at": "2027-01-01T09:00"}}, "epoch seconds, an integer"),
        ({"deploy_at": {"deploy_at": float(DEPLOY_AT)}}, "epoch seconds, an integer"),
        ({"deploy_at": {"deploy_at": True}}, "epoch seconds, an integer"),
        ({"note": {"note": 42}}, "must be a string"),
        ({"env": {"env": "prod-us"}}, "no option with value 'prod-us'"),
        ({"env": {"env": 1}}, "give an option's value"),
    ],
)
def test_a_submission_no_person_could_make_is_refused(
    sb: Sandbox, values: dict[str, Any], complaint: str
) -> None:
    view_id = _schedule_modal(sb)
    with pytest.raises(ValueError, match=re.escape(complaint)):
        view_submission_payload(sb.fake, view_id=view_id, user_id="U0BOB", values=values)


def test_block_kit_takes_a_datetimepicker_where_slack_does(sb: Sandbox) -> None:
    client = sb.client()
    picker = {"type": "datetimepicker", "action_id": "when", "initial_date_time": DEPLOY_AT}
    text = {"type": "mrkdwn", "text": "When?"}
    # in an actions block of a message, and in a modal's input block
    assert client.chat_postMessage(
        channel="C0DEPLOYS", text="when", blocks=[{"type": "actions", "elements": [picker]}]
    )["ok"]
    assert client.views_open(trigger_id=_clicked(sb)["trigger_id"], view=SCHEDULE_MODAL)["ok"]
    # initial_date_time is epoch seconds as a JSON integer: a string of digits is refused
    as_text = {**picker, "initial_date_time": str(DEPLOY_AT)}
    in_millis = {**picker, "initial_date_time": DEPLOY_AT * 1000}
    refused = [
        ([{"type": "actions", "elements": [as_text]}], "/blocks/0/elements/0/initial_date_time"),
        ([{"type": "actions", "elements": [in_millis]}], "/blocks/0/elements/0/initial_date_time"),
        # Slack's section block does not take a datetime picker as its accessory
        ([{"type": "section", "text": text, "accessory": picker}], "/blocks/0/accessory"),
    ]
    for blocks, pointer in refused:
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel="C0DEPLOYS", text="when", blocks=blocks)
        assert caught.value.response["error"] == "invalid_blocks"
        [message] = caught.value.response["response_metadata"]["messages"]
        assert message.endswith(f"[json-pointer:{pointer}]")
    view = {**SCHEDULE_MODAL, "blocks": [{**SCHEDULE_MODAL["blocks"][0], "element": as_text}]}
    opening = client.views_open
    fresh = _clicked(sb)["trigger_id"]
    assert _error(lambda: opening(trigger_id=fresh, view=view)) == "invalid_arguments"


# ---------------------------------------------------------------------- response_url


def _posted_with_key(sb: Sandbox, user: str = "U0ALICE") -> tuple[str, str]:
    ts = sb.client().chat_postMessage(channel="C0DEPLOYS", text="x", blocks=APPROVE_BLOCKS)["ts"]
    return ts, sb.fake.new_response_url_key(channel="C0DEPLOYS", message_ts=ts, user=user)


def test_response_url_replace_ephemeral_in_channel_delete(sb: Sandbox) -> None:
    ts, key = _posted_with_key(sb)
    hook = WebhookClient(sb.response_url(key), timeout=5)
    done = [{"type": "section", "text": {"type": "mrkdwn", "text": "Approved"}}]
    reply = hook.send(text="approved", blocks=done, replace_original=True)
    assert (reply.status_code, json.loads(reply.body)) == (200, {"ok": True})
    assert sb.fake.messages()[0] == {
        "channel": "C0DEPLOYS",
        "ts": ts,
        "thread_ts": None,
        "text": "approved",
        "blocks": done,
        "ephemeral_user": None,
    }
    assert hook.send(text="just for you").status_code == 200
    assert (
        hook.send_dict(
            {"text": "for all", "response_type": "in_channel", "thread_ts": ts}
        ).status_code
        == 200
    )
    shown = sb.fake.messages()
    assert [(m["text"], m["ephemeral_user"], m["thread_ts"]) for m in shown] == [
        ("approved", None, None),
        ("just for you", "U0ALICE", None),
        ("for all", None, ts),
    ]
    assert hook.send(text="", delete_original=True).status_code == 200
    assert [m["text"] for m in sb.fake.messages()] == ["just for you", "for all"]
    recorded = [c for c in sb.fake.calls() if c["method"] == "response_url"]
    assert len(recorded) == 4 and recorded[0]["args"]["replace_original"] is True
    assert recorded[0]["args"]["blocks"] == done


def test_response_url_five_uses_then_expired(sb: Sandbox) -> None:
    _, key = _posted_with_key(sb)
    hook = WebhookClient(sb.response_url(key), timeout=5)
    for i in range(5):
        assert hook.send(text=f"note {i}").status_code == 200
    sixth = hook.send(text="one too many")
    assert (sixth.status_code, json.loads(sixth.body)["error"]) == (404, "expired_url")
    assert len(sb.fake.messages()) == 6  # the original and five notes
    assert sb.fake.calls()[-1]["method"] == "response_url"


def test_response_url_expires_after_30_minutes_and_unknown_keys(sb: Sandbox) -> None:
    _, key = _posted_with_key(sb)
    sb.clock.advance(30 * 60 + 1)
    late = WebhookClient(sb.response_url(key), timeout=5).send(text="late")
    assert (late.status_code, json.loads(late.body)["error"]) == (404, "expired_url")
    assert sb.fake.apply_response_url("no-such-key", {"text": "x"}) == (
        404,
        {"ok": False, "error": "expired_url"},
    )
    assert len(sb.fake.messages()) == 1


# ---------------------------------------------------------------------- acting as Slack


def test_block_actions_payload_finds_the_button(sb: Sandbox) -> None:
    ts, key = _posted_with_key(sb)
    message = sb.fake.find_message("C0DEPLOYS", ts)
    assert message is not None
    url = sb.response_url(key)
    payload = block_actions_payload(
        sb.fake, message=message, user_id="U0ALICE", action_id="approve", response_url=url
    )
    assert payload["type"] == "block_actions"
    assert payload["user"] == {
        "id": "U0ALICE",
        "username": "alice",
        "name": "alice",
        "team_id": "T0SANDBOX",
    }
    assert payload["api_app_id"] == "A0SANDBOX" and payload["team"]["id"] == "T0SANDBOX"
    assert payload["container"] == {
        "type": "message",
        "message_ts": ts,
        "channel_id": "C0DEPLOYS",
        "is_ephemeral": False,
    }
    # the channel's name, not its id lower-cased
    assert payload["channel"] == {"id": "C0DEPLOYS", "name": "deploys"}
    assert payload["response_url"] == url
    assert payload["message"]["ts"] == ts and payload["message"]["user"] == "U0GATEBOT"
    assert payload["message"]["blocks"] == slack_stored(APPROVE_BLOCKS)
    [action] = payload["actions"]
    assert action["action_id"] == "approve" and action["block_id"] == "decide"
    assert action["value"] == "token-123" and action["style"] == "primary"
    assert action["text"] == {"type": "plain_text", "text": "Approve", "emoji": True}
    assert action["type"] == "button" and action["action_ts"]
    assert re.match(r"^\d+\.\d+\.[0-9a-f]+$", payload["trigger_id"])
    # its trigger opens a modal, once
    assert sb.client().views_open(trigger_id=payload["trigger_id"], view=MODAL)["ok"] is True
    with pytest.raises(ValueError):
        block_actions_payload(
            sb.fake, message=message, user_id="U0ALICE", action_id="nope", response_url=url
        )


def test_signed_request_verifies_with_slack_sdk(sb: Sandbox) -> None:
    payload = _clicked(sb)
    body = form_body(payload)
    assert json.loads(parse_qs(body.decode())["payload"][0]) == payload
    headers = signed_request(body, "sandbox-signing-secret")
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert headers["X-Slack-Signature"].startswith("v0=")
    verifier = SignatureVerifier("sandbox-signing-secret")
    ts = headers["X-Slack-Request-Timestamp"]
    assert verifier.is_valid(body, ts, headers["X-Slack-Signature"])
    assert verifier.is_valid_request(body, headers)
    assert not SignatureVerifier("another-secret").is_valid_request(body, headers)
    assert not verifier.is_valid(body + b"x", ts, headers["X-Slack-Signature"])
    old = signed_request(body, "sandbox-signing-secret", timestamp=int(ts) - 600)
    assert old["X-Slack-Request-Timestamp"] == str(int(ts) - 600)
    assert not verifier.is_valid_request(body, old)


# ---------------------------------------------------------------------- reset


def test_reset_keeps_the_workspace(sb: Sandbox) -> None:
    payload = _clicked(sb)
    sb.client().views_open(trigger_id=sb.fake.issue_trigger_id(), view=MODAL)
    key = payload["response_url"].rsplit("/", 1)[-1]
    before = sb.fake.workspace()
    sb.fake.reset()
    assert sb.fake.messages() == [] and sb.fake.calls() == [] and sb.fake.views() == []
    assert sb.fake.workspace() == before
    assert sb.fake.apply_response_url(key, {"text": "x"})[0] == 404
    opening = sb.client().views_open
    assert _error(lambda: opening(trigger_id=payload["trigger_id"], view=MODAL)) == (
        "invalid_trigger_id"
    )
    assert sb.client().users_info(user="U0ALICE")["user"]["name"] == "alice"


def test_block_kit_checks_a_buttons_confirm_object_as_slack_does(sb: Sandbox) -> None:
    client = sb.client()

    def plain(text: str) -> dict[str, str]:
        return {"type": "plain_text", "text": text}

    confirm = {
        "title": plain("Deploy?"),
        "text": plain("Deploy web-app a1b2c3d to Prod?"),
        "confirm": plain("Approve"),
        "deny": plain("Cancel"),
    }

    def button(**changes: Any) -> list[dict[str, Any]]:
        element = {
            "type": "button",
            "action_id": "approve",
            "text": plain("Approve"),
            "confirm": {**confirm, **changes},
        }
        return [{"type": "actions", "elements": [element]}]

    assert client.chat_postMessage(channel="C0DEPLOYS", text="x", blocks=button())["ok"]
    assert client.chat_postMessage(
        channel="C0DEPLOYS", text="x", blocks=button(text={"type": "mrkdwn", "text": "*Sure?*"})
    )["ok"]
    where = "/blocks/0/elements/0/confirm"
    refused = [
        (button(title=plain("t" * 101)), f"{where}/title/text"),
        (button(text=plain("x" * 301)), f"{where}/text/text"),
        (button(confirm=plain("c" * 31)), f"{where}/confirm/text"),
        (button(deny=plain("d" * 31)), f"{where}/deny/text"),
        (button(title={"type": "mrkdwn", "text": "*Deploy?*"}), f"{where}/title"),
        (button(style="loud"), f"{where}/style"),
    ]
    for blocks, pointer in refused:
        with pytest.raises(SlackApiError) as caught:
            client.chat_postMessage(channel="C0DEPLOYS", text="x", blocks=blocks)
        assert caught.value.response["error"] == "invalid_blocks"
        [message] = caught.value.response["response_metadata"]["messages"]
        assert message.endswith(f"[json-pointer:{pointer}]"), message
    no_deny = button()
    del no_deny[0]["elements"][0]["confirm"]["deny"]
    with pytest.raises(SlackApiError):
        client.chat_postMessage(channel="C0DEPLOYS", text="x", blocks=no_deny)


# --- the bot token's scopes (DESIGN §8.6) -----------------------------------------------------


def test_every_answer_names_the_token_s_scopes_as_slack_does(sb: Sandbox) -> None:
    client = sb.client()
    every = client.auth_test().headers["x-oauth-scopes"].split(",")
    assert {"chat:write", "users:read.email", "channels:read", "groups:history"} <= set(every)

    assert sb.fake.set_scopes(["chat:write", "users:read", "chat:write"]) == [
        "chat:write",
        "users:read",
    ]
    assert client.auth_test().headers["x-oauth-scopes"] == "chat:write,users:read"
    posted = client.chat_postMessage(channel="C0DEPLOYS", text="hello")
    assert posted.headers["x-oauth-scopes"] == "chat:write,users:read"
    sb.fake.reset()
    assert client.auth_test().headers["x-oauth-scopes"].split(",") == every


@pytest.mark.parametrize(
    ("method", "args", "needed"),
    [
        ("chat.postMessage", {"channel": "C0DEPLOYS", "text": "x"}, "chat:write"),
        ("chat.update", {"channel": "C0DEPLOYS", "ts": "1.000001", "text": "x"}, "chat:write"),
        ("chat.postEphemeral", {"channel": "C0DEPLOYS", "user": "U0ALICE"}, "chat:write"),
        ("usergroups.users.list", {"usergroup": "S0RELEASE"}, "usergroups:read"),
        ("users.info", {"user": "U0ALICE"}, "users:read"),
        ("users.lookupByEmail", {"email": "bob@example.org"}, "users:read.email"),
        ("conversations.info", {"channel": "C0DEPLOYS"}, "channels:read"),
        ("conversations.info", {"channel": "G0PRIVATE"}, "groups:read"),
        ("conversations.list", {}, "channels:read"),
        ("conversations.list", {"types": "public_channel,private_channel"}, "channels:read"),
        ("conversations.history", {"channel": "C0DEPLOYS"}, "channels:history"),
        ("conversations.history", {"channel": "G0PRIVATE"}, "groups:history"),
    ],
)
def test_a_method_needing_a_scope_the_token_lacks_answers_missing_scope(
    sb: Sandbox, method: str, args: dict[str, Any], needed: str
) -> None:
    sb.fake.set_scopes(["identify"])
    status, headers, body = sb.fake.api(method, args, f"Bearer {TOKEN}")
    assert (status, body) == (
        200,
        {"ok": False, "error": "missing_scope", "needed": needed, "provided": "identify"},
    )
    assert headers["x-oauth-scopes"] == "identify"
    assert sb.fake.messages() == []  # nothing was done


def test_conversations_list_needs_the_scope_of_each_type_asked(sb: Sandbox) -> None:
    sb.fake.set_scopes(["channels:read"])
    client = sb.client()
    assert client.conversations_list(types="public_channel")["ok"] is True
    caught = _error(lambda: client.conversations_list(types="public_channel,private_channel"))
    assert caught == "missing_scope"
    # methods that need no scope still answer
    assert client.auth_test()["ok"] is True


@pytest.mark.parametrize(
    "scopes", ["chat:write", ["chat write"], [""], [None], ["chat:write", 3], {"a": 1}]
)
def test_scopes_that_are_no_list_of_scope_names_are_refused(sb: Sandbox, scopes: Any) -> None:
    before = sb.fake.scopes()
    with pytest.raises(ValueError, match="scope"):
        sb.fake.set_scopes(scopes)
    assert sb.fake.scopes() == before


def test_scope_names_as_slack_writes_them_are_taken(sb: Sandbox) -> None:
    names = ["users.profile:read", "chat:write.public", "incoming-webhook", "links.embed:write"]
    assert sb.fake.set_scopes(names) == names
