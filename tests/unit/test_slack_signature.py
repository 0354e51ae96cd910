"""Slack request verification and the Slack secret: fail closed, never leak."""

from __future__ import annotations

from typing import Any

import pytest
from approval_gate.slack import (
    CLIENT_TIMEOUT,
    SECRET_MAX_AGE,
    SlackCredentials,
    SlackCredentialsSource,
    signature_is_valid,
    web_client,
)
from hypothesis import given
from hypothesis import strategies as st
from slack_sdk.signature import SignatureVerifier

SECRET = "8f742231b10e8888abcd99yyyzzz85a5"
NOW = 1796144700
BODY = b"payload=%7B%22type%22%3A%22block_actions%22%7D"


def sign(body: bytes = BODY, timestamp: int | str = NOW, secret: str = SECRET) -> str:
    signature = SignatureVerifier(secret).generate_signature(timestamp=str(timestamp), body=body)
    assert signature is not None
    return signature


def headers(timestamp: int | str = NOW, signature: str | None = None) -> dict[str, str]:
    return {
        "X-Slack-Request-Timestamp": str(timestamp),
        "X-Slack-Signature": signature if signature is not None else sign(timestamp=timestamp),
    }


def valid(sent_headers: Any, body: bytes = BODY, secret: str = SECRET, now: float = NOW) -> bool:
    return signature_is_valid(secret, sent_headers, body, now=lambda: now)


# --------------------------------------------------------------------------- signatures


def test_a_correctly_signed_request_is_valid() -> None:
    assert valid(headers()) is True


def test_a_request_signed_with_another_secret_is_invalid() -> None:
    assert valid(headers(signature=sign(secret="another-secret"))) is False


def test_a_tampered_body_is_invalid() -> None:
    tampered = BODY.replace(b"block_actions", b"view_submission")
    assert valid(headers(), body=tampered) is False


@pytest.mark.parametrize(
    ("now", "expected"),
    [
        (NOW + 300, True),
        (NOW - 300, True),
        (NOW + 301, False),  # replayed more than five minutes later
        (NOW - 301, False),  # stamped more than five minutes in the future
        (NOW + 86400, False),
    ],
    ids=["5-min-old", "5-min-ahead", "stale", "future", "a-day-old"],
)
def test_only_a_five_minute_window_is_accepted(now: float, expected: bool) -> None:
    assert valid(headers(), now=now) is expected


@pytest.mark.parametrize(
    "sent",
    [
        {},
        {"X-Slack-Request-Timestamp": str(NOW)},
        {"X-Slack-Signature": sign()},
        {"X-Slack-Request-Timestamp": "", "X-Slack-Signature": sign()},
        {"X-Slack-Request-Timestamp": str(NOW), "X-Slack-Signature": ""},
    ],
    ids=["none", "no-signature", "no-timestamp", "empty-timestamp", "empty-signature"],
)
def test_missing_headers_are_invalid(sent: dict[str, str]) -> None:
    assert valid(sent) is False


@pytest.mark.parametrize(
    "timestamp",
    ["abc", "-1", "1.5", " 1796144700", "1796144700 ", "0x6b0f", "9" * 40, "²", "١٧٩٦١٤٤٧٠٠"],
    ids=[
        "letters",
        "negative",
        "float",
        "lead-space",
        "trail-space",
        "hex",
        "huge",
        "sup",
        "arabic",
    ],
)
def test_a_malformed_timestamp_is_invalid_without_raising(timestamp: str) -> None:
    sent = {"X-Slack-Request-Timestamp": timestamp, "X-Slack-Signature": sign()}
    assert valid(sent) is False


@pytest.mark.parametrize("signature", ["v0=é" + "0" * 63, "v0=" + "ü" * 64, "v0=\u0000", "v1=abc"])
def test_a_malformed_signature_is_invalid_without_raising(signature: str) -> None:
    assert valid(headers(signature=signature)) is False


def test_a_body_that_is_not_utf8_is_invalid_without_raising() -> None:
    assert valid(headers(), body=b"payload=\xff\xfe\xfd") is False


@pytest.mark.parametrize(
    ("timestamp_name", "signature_name"),
    [
        ("x-slack-request-timestamp", "x-slack-signature"),
        ("X-SLACK-REQUEST-TIMESTAMP", "X-SLACK-SIGNATURE"),
        ("x-Slack-Request-Timestamp", "X-slack-signature"),
    ],
)
def test_header_names_are_case_insensitive(timestamp_name: str, signature_name: str) -> None:
    sent = {timestamp_name: str(NOW), signature_name: sign()}
    assert valid(sent) is True


@given(
    st.dictionaries(
        st.sampled_from(["X-Slack-Request-Timestamp", "X-Slack-Signature", "Content-Type"])
        | st.text(max_size=20),
        st.text(max_size=80) | st.integers().map(str),
        max_size=4,
    ),
    st.binary(max_size=200),
)
def test_random_headers_and_body_are_invalid_never_an_exception(
    sent: dict[str, str], body: bytes
) -> None:
    """Nothing but Slack's HMAC passes: a random signature is refused, and no malformed
    header or body makes the check raise (slack_sdk's verifier does on some)."""
    assert valid(sent, body=body) is False


# --------------------------------------------------------------------------- credentials


def test_credentials_come_from_the_secret_document() -> None:
    credentials = SlackCredentials.from_secret(
        {
            "bot_token": "xoxb-1-abc",
            "signing_secret": SECRET,
            "team_id": "T0SANDBOX",
            "app_id": "A0SANDBOX",
        }
    )
    assert credentials == SlackCredentials("xoxb-1-abc", SECRET, "T0SANDBOX", "A0SANDBOX")


def test_team_and_app_are_optional() -> None:
    credentials = SlackCredentials.from_secret(
        {"bot_token": "xoxb-1-abc", "signing_secret": SECRET, "team_id": ""}
    )
    assert (credentials.team_id, credentials.app_id) == (None, None)


@pytest.mark.parametrize(
    ("secret", "missing"),
    [
        ({"bot_token": "xoxb-VERY-SECRET-TOKEN", "team_id": "T0SANDBOX"}, "signing_secret"),
        ({"signing_secret": "VERY-SECRET-SIGNING", "app_id": "A0SANDBOX"}, "bot_token"),
        ({"bot_token": "", "signing_secret": "VERY-SECRET-SIGNING"}, "bot_token"),
        ({}, "bot_token, signing_secret"),
    ],
)
def test_a_secret_missing_keys_is_named_without_its_values(
    secret: dict[str, str], missing: str
) -> None:
    with pytest.raises(ValueError) as caught:
        SlackCredentials.from_secret(secret)
    message = str(caught.value)
    assert missing in message
    assert "VERY-SECRET" not in message


def test_a_secret_that_is_not_json_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError) as caught:
        SlackCredentials.from_secret("xoxb-VERY-SECRET-TOKEN")
    assert "VERY-SECRET" not in str(caught.value)


def test_the_repr_of_credentials_hides_the_token_and_signing_secret() -> None:
    credentials = SlackCredentials("xoxb-VERY-SECRET-TOKEN", "VERY-SECRET-SIGNING", "T0X", "A0X")
    for text in (repr(credentials), str(credentials), f"{credentials}"):
        assert "VERY-SECRET" not in text
        assert "T0X" in text


class FakeProvider:
    """Powertools' SecretsProvider.get, recorded."""

    def __init__(self, *values: dict[str, str]) -> None:
        self.values = list(values)
        self.calls: list[dict[str, Any]] = []

    def get(self, name: str, transform: str, max_age: int, force_fetch: bool = False) -> Any:
        self.calls.append(
            {"name": name, "transform": transform, "max_age": max_age, "force_fetch": force_fetch}
        )
        return self.values[min(len(self.calls), len(self.values)) - 1]


ARN = "arn:aws:secretsmanager:us-east-2:123456789012:secret:approval-gate/slack-AbCdEf"
OLD = {"bot_token": "xoxb-1", "signing_secret": "old-secret"}
ROTATED = {"bot_token": "xoxb-1", "signing_secret": "rotated-secret"}


def source_at(times: list[float], provider: FakeProvider) -> SlackCredentialsSource:
    moments = iter(times)
    source = SlackCredentialsSource(ARN, monotonic=lambda: next(moments))
    source._provider = provider
    return source


def test_get_reads_the_cached_secret() -> None:
    provider = FakeProvider(OLD)
    source = source_at([], provider)

    assert source.get().signing_secret == "old-secret"
    assert provider.calls == [
        {"name": ARN, "transform": "json", "max_age": SECRET_MAX_AGE, "force_fetch": False}
    ]


def test_refreshed_fetches_a_rotated_secret_right_after_a_cold_start() -> None:
    provider = FakeProvider(ROTATED)
    source = source_at([3.0], provider)  # a new Lambda sandbox: the monotonic clock is small

    fresh = source.refreshed()

    assert fresh is not None
    assert fresh.signing_secret == "rotated-secret"
    assert provider.calls[0]["force_fetch"] is True


def test_refreshed_fetches_at_most_once_a_minute() -> None:
    provider = FakeProvider(OLD, ROTATED, ROTATED)
    source = source_at([1000.0, 1059.9, 1060.0], provider)

    assert source.refreshed() is not None
    assert source.refreshed() is None  # a flood of bad signatures cannot hammer the API
    assert len(provider.calls) == 1
    assert source.refreshed() is not None
    assert [call["force_fetch"] for call in provider.calls] == [True, True]


def test_the_web_client_never_waits_thirty_seconds() -> None:
    client = web_client("xoxb-1", "http://127.0.0.1:9/api/")
    assert client.timeout == CLIENT_TIMEOUT <= 10
    assert client.base_url == "http://127.0.0.1:9/api/"
    # A dropped connection is retried once; a 429 only when told how long the function has.
    assert [type(h).__name__ for h in client.retry_handlers] == ["ConnectionErrorRetryHandler"]
    timed = web_client("xoxb-1", "http://127.0.0.1:9/api/", seconds_left=lambda: 30.0)
    assert [type(h).__name__ for h in timed.retry_handlers] == [
        "ConnectionErrorRetryHandler",
        "RateLimitWithinTime",
    ]
