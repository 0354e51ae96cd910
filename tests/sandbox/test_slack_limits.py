"""Slack's rate limits in the fake Slack (sandbox/slack_limits.py, docs/sandbox.md).

The limiter is tested with an injected clock (no sleeps); the fake's 429 answers in
process; the switch (POST /_sandbox/slack/limits) and what a slack_sdk client makes of
the answers over HTTP.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from typing import Any

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_handlers import RateLimitErrorRetryHandler

from sandbox.fake_slack import FakeSlack
from sandbox.faults import Faults
from sandbox.services import SLACK_METHODS
from sandbox.slack_limits import LIMITS, SlackLimits, retry_after_header
from tests.conftest import Gate

TOKEN = "xoxb-sandbox-bot-token"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def limits(clock: Clock) -> SlackLimits:
    return SlackLimits(clock=clock)


def allowed(limits: SlackLimits, method: str, times: int, channel: str | None = None) -> int:
    """How many of `times` calls at this instant go ahead."""
    return sum(limits.check(method, channel) is None for _ in range(times))


# ---------------------------------------------------------------------- the limiter


def test_off_until_enforced_and_after_off(limits: SlackLimits) -> None:
    assert allowed(limits, "chat.update", 500) == 500
    limits.enforce()
    assert allowed(limits, "chat.update", 500) == 50
    limits.off()
    assert allowed(limits, "chat.update", 500) == 500
    assert limits.refused() == {"chat.update": 450}  # kept until reset
    limits.reset()
    assert limits.refused() == {} and not limits.enforced


def test_each_tier_allows_a_minutes_quota_at_once_then_refills_evenly(
    limits: SlackLimits, clock: Clock
) -> None:
    limits.enforce()
    for method, quota in (
        ("usergroups.users.list", 20),
        ("conversations.list", 20),
        ("chat.update", 50),
        ("users.lookupByEmail", 50),
        ("conversations.info", 50),
        ("chat.postEphemeral", 100),
        ("views.open", 100),
        ("users.info", 100),
        ("auth.test", 600),
        ("chat.getPermalink", 600),
    ):
        assert allowed(limits, method, quota + 5) == quota, method
    # Tier 3: 50 a minute, so one more every 1.2 s; the next is 1.2 s away: Retry-After 2
    assert limits.check("chat.update") == 2
    clock.now += 1.19
    assert limits.check("chat.update") == 1
    clock.now += 0.02
    assert limits.check("chat.update") is None
    assert limits.check("chat.update") == 2
    clock.now += 60
    assert allowed(limits, "chat.update", 60) == 50  # never more than the burst


def test_post_message_is_one_a_second_per_channel_with_short_bursts(
    limits: SlackLimits, clock: Clock
) -> None:
    limits.enforce()
    assert allowed(limits, "chat.postMessage", 10, "C0DEPLOYS") == 3
    assert limits.check("chat.postMessage", "C0DEPLOYS") == 1
    assert allowed(limits, "chat.postMessage", 10, "C0ONCALL") == 3  # another channel
    clock.now += 1.0
    assert allowed(limits, "chat.postMessage", 10, "C0DEPLOYS") == 1
    clock.now += 2.5
    assert allowed(limits, "chat.postMessage", 10, "C0DEPLOYS") == 2
    assert limits.refused() == {"chat.postMessage": 7 + 1 + 7 + 9 + 8}


def test_post_message_has_a_workspace_wide_limit_too(limits: SlackLimits, clock: Clock) -> None:
    limits.enforce()
    channels = [f"C0{n:04d}" for n in range(101)]
    assert sum(allowed(limits, "chat.postMessage", 3, c) for c in channels[:100]) == 300
    assert limits.check("chat.postMessage", channels[100]) == 1  # 300 a minute: 0.2 s
    clock.now += 0.21
    assert limits.check("chat.postMessage", channels[100]) is None


def test_time_scale_shortens_every_window_and_retry_after_stays_a_whole_second(
    limits: SlackLimits, clock: Clock
) -> None:
    limits.enforce(time_scale=60)
    assert allowed(limits, "chat.update", 60) == 50  # the same quota
    assert limits.check("chat.update") == 1  # 1.2 s / 60 = 0.02 s, said as 1 s
    clock.now += 0.021
    assert limits.check("chat.update") is None
    assert allowed(limits, "chat.postMessage", 5, "C0DEPLOYS") == 3
    clock.now += 0.021  # a second's refill takes 1/60 s
    assert allowed(limits, "chat.postMessage", 5, "C0DEPLOYS") == 1
    assert limits.time_scale == 60.0


def test_enforcing_again_starts_with_full_buckets(limits: SlackLimits) -> None:
    limits.enforce()
    assert allowed(limits, "chat.update", 60) == 50
    limits.enforce(time_scale=10)
    assert allowed(limits, "chat.update", 60) == 50
    assert limits.refused() == {"chat.update": 20}


def test_every_method_the_fake_answers_has_its_documented_limit() -> None:
    assert set(LIMITS) == SLACK_METHODS
    assert {m: LIMITS[m].tier for m in ("chat.update", "chat.postEphemeral", "views.open")} == {
        "chat.update": "Tier 3",
        "chat.postEphemeral": "Tier 4",
        "views.open": "Tier 4",
    }
    assert LIMITS["chat.postMessage"].per == "channel"
    assert LIMITS["chat.postMessage"].per_minute == 60


def test_retry_after_is_whole_seconds_rounded_up_and_at_least_one() -> None:
    assert [retry_after_header(w) for w in (0.001, 0.5, 1.0, 1.01, 1.2, 59.99)] == [
        1,
        1,
        1,
        2,
        2,
        60,
    ]


@pytest.mark.parametrize(
    ("body", "error"),
    [
        ([], "the body must be a JSON object"),
        ({}, "enforce must be true or false"),
        ({"enforce": "yes"}, "enforce must be true or false"),
        ({"enforce": True, "time_scale": 0}, "time_scale must be a number from 1 to 3600"),
        ({"enforce": True, "time_scale": 5000}, "time_scale must be a number from 1 to 3600"),
        ({"enforce": True, "time_scale": "10"}, "time_scale must be a number from 1 to 3600"),
        ({"enforce": True, "time_scale": True}, "time_scale must be a number from 1 to 3600"),
        ({"enforce": False, "time_scale": 10}, "time_scale applies only with enforce: true"),
        ({"enforce": True, "scale": 10}, "unknown field: scale"),
    ],
)
def test_a_bad_body_changes_nothing(limits: SlackLimits, body: Any, error: str) -> None:
    with pytest.raises(ValueError, match=error):
        limits.configure(body)
    assert not limits.enforced


# ---------------------------------------------------------------------- the fake's answers


@pytest.fixture
def fake(clock: Clock) -> FakeSlack:
    slack = FakeSlack(bot_token=TOKEN, faults=Faults())
    slack.limits = SlackLimits(clock=clock)
    slack.limits.enforce()
    return slack


def post(fake: FakeSlack, text: str, token: str = TOKEN) -> tuple[int, dict[str, str], Any]:
    return fake.api("chat.postMessage", {"channel": "C0DEPLOYS", "text": text}, f"Bearer {token}")


def test_a_call_over_the_limit_is_answered_as_slack_does_and_not_carried_out(
    fake: FakeSlack,
) -> None:
    answers = [post(fake, str(n)) for n in range(4)]

    assert [status for status, _, _ in answers] == [200, 200, 200, 429]
    assert answers[3][1:] == ({"Retry-After": "1"}, {"ok": False, "error": "ratelimited"})
    assert [m["text"] for m in fake.messages()] == ["0", "1", "2"]
    last = fake.calls()[-1]
    assert (last["status"], last["response"]) == (429, {"ok": False, "error": "ratelimited"})
    assert "fault" not in last
    assert fake.limits.refused() == {"chat.postMessage": 1}


def test_only_calls_slack_would_count_are_counted(fake: FakeSlack) -> None:
    """Slack counts a call once it knows whose it is: a refused token or an unknown
    method is not counted, and a faulted call never reached the limit."""
    for _ in range(5):
        assert post(fake, "x", token="xoxb-wrong")[2]["error"] == "invalid_auth"
        assert fake.api("chat.unknown", {}, f"Bearer {TOKEN}")[2]["error"] == "unknown_method"
    assert fake.faults is not None
    fake.faults.set("slack", "chat.postMessage", "server_error", 1, 1)
    assert [post(fake, "x")[0] for _ in range(5)] == [503] * 5
    fake.faults.reset()
    assert [post(fake, str(n))[0] for n in range(3)] == [200] * 3


def test_reset_turns_the_limits_off_and_forgets_their_counts(fake: FakeSlack) -> None:
    [post(fake, str(n)) for n in range(5)]
    assert fake.limits.refused() == {"chat.postMessage": 2}
    fake.reset()
    assert not fake.limits.enforced and fake.limits.refused() == {}
    assert [post(fake, str(n))[0] for n in range(5)] == [200] * 5


# ---------------------------------------------------------------------- over HTTP


def _post(gate: Gate, path: str, body: Any) -> tuple[int, dict[str, str], Any]:
    request = urllib.request.Request(
        gate.url + path,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), json.loads(error.read())


def test_limits_are_switched_over_http_and_reset_turns_them_off(gate: Gate) -> None:
    gate.client.reset()
    shown = gate.client.get("/_sandbox/slack/limits")
    assert (shown["enforce"], shown["time_scale"], shown["ratelimited"]) == (False, 1.0, {})
    assert shown["limits"]["chat.update"] == {
        "tier": "Tier 3",
        "per_minute": 50,
        "burst": 50,
        "per": "workspace",
    }
    assert shown["limits"]["chat.postMessage"]["per"] == "channel"
    assert shown["limits"]["chat.postMessage"]["workspace"]["per_minute"] == 300

    enforced = gate.client.set_slack_limits(True, time_scale=2)
    assert (enforced["enforce"], enforced["time_scale"]) == (True, 2.0)
    # Three at once in one channel, then one every half second at time_scale 2: the
    # fourth of a quick burst is refused (a slow machine needs 0.5 s between them).
    answers = [
        _post(gate, "/slack/api/chat.postMessage", {"channel": "C0DEPLOYS", "text": "x"})
        for _ in range(8)
    ]
    refused = [a for a in answers if a[0] == 429]
    assert refused, [a[0] for a in answers]
    for _status, headers, body in refused:
        assert (headers["Retry-After"], body) == ("1", {"ok": False, "error": "ratelimited"})
    counted = gate.client.slack_limits()["ratelimited"]
    assert counted == {"chat.postMessage": len(refused)}
    assert [c["status"] for c in gate.client.calls()].count(429) == len(refused)

    assert gate.client.request("POST", "/_sandbox/slack/limits", {"enforce": 1}) == (
        400,
        {"error": "enforce must be true or false"},
    )
    gate.client.reset()
    assert gate.client.get("/_sandbox/slack/limits")["enforce"] is False


def test_slack_sdk_waits_out_a_429_and_gets_through(gate: Gate) -> None:
    """The SDK's RateLimitErrorRetryHandler reads Retry-After and tries again: every post
    of a burst lands, some of them after a 429."""
    gate.client.reset()
    gate.client.post("/_sandbox/slack/limits", {"enforce": True, "time_scale": 60})
    client = WebClient(
        token=TOKEN,
        base_url=f"{gate.url}/slack/api/",
        retry_handlers=[RateLimitErrorRetryHandler(max_retry_count=3)],
    )
    posted = [client.chat_postMessage(channel="C0DEPLOYS", text=str(n))["ts"] for n in range(6)]
    refused = gate.client.get("/_sandbox/slack/limits")["ratelimited"]
    gate.client.reset()

    assert len(set(posted)) == 6
    assert refused.get("chat.postMessage", 0) >= 1
    plain = WebClient(token=TOKEN, base_url=f"{gate.url}/slack/api/")
    gate.client.post("/_sandbox/slack/limits", {"enforce": True})
    try:
        with pytest.raises(SlackApiError) as raised:
            for n in range(10):
                plain.chat_postMessage(channel="C0DEPLOYS", text=str(n))
        assert raised.value.response.status_code == 429
        assert raised.value.response["error"] == "ratelimited"
        assert raised.value.response.headers["Retry-After"] == "1"
    finally:
        gate.client.reset()
