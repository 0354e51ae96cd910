"""Slack credentials, the Web API client and request verification.

Credentials live in one Secrets Manager secret (JSON: bot_token, signing_secret, team_id,
app_id), read at run time through Powertools' parameters utility and cached.
"""

import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NamedTuple, Self

from slack_sdk import WebClient
from slack_sdk.http_retry.builtin_handlers import (
    ConnectionErrorRetryHandler,
    RateLimitErrorRetryHandler,
)
from slack_sdk.http_retry.handler import RetryHandler
from slack_sdk.http_retry.request import HttpRequest
from slack_sdk.http_retry.response import HttpResponse
from slack_sdk.http_retry.state import RetryState
from slack_sdk.signature import SignatureVerifier

#: How long a cached copy of the secret is trusted.
SECRET_MAX_AGE = 300
#: A failed signature may refresh the signing secret (rotation), at most this often.
SECRET_REFRESH_INTERVAL = 60
#: Slack's Web API answers in well under a second; never wait 30 s (the SDK's default).
CLIENT_TIMEOUT = 5.0
#: A Retry-After is waited out in the function only if this much time is left after it.
RETRY_AFTER_MARGIN = 2.0


class SlackCredentials(NamedTuple):
    """The Slack app's secrets, as stored in Secrets Manager (never logged: no ``repr``
    shows the token or the signing secret)."""

    bot_token: str
    signing_secret: str
    team_id: str | None = None
    app_id: str | None = None

    def __repr__(self) -> str:
        return f"SlackCredentials(team_id={self.team_id!r}, app_id={self.app_id!r})"

    @classmethod
    def from_secret(cls, value: Any) -> Self:
        if not isinstance(value, dict):
            raise ValueError("the Slack secret is not a JSON object")
        missing = [
            k
            for k in ("bot_token", "signing_secret")
            if not isinstance(value.get(k), str) or not value[k].strip()
        ]
        if missing:
            raise ValueError(f"the Slack secret lacks {', '.join(missing)}")
        return cls(
            bot_token=str(value["bot_token"]),
            signing_secret=str(value["signing_secret"]),
            team_id=value.get("team_id") or None,
            app_id=value.get("app_id") or None,
        )


class SlackCredentialsSource:
    """Fetches the Slack secret through Powertools (cached `SECRET_MAX_AGE` seconds)."""

    def __init__(
        self,
        secret_arn: str,
        secrets_client: Any = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._arn = secret_arn
        self._client = secrets_client
        self._provider: Any = None
        self._monotonic = monotonic
        self._last_forced = -float(SECRET_REFRESH_INTERVAL)

    def _get_provider(self) -> Any:
        if self._provider is None:
            from aws_lambda_powertools.utilities.parameters import SecretsProvider

            self._provider = SecretsProvider(boto3_client=self._client)
        return self._provider

    def get(self) -> SlackCredentials:
        value = self._get_provider().get(self._arn, transform="json", max_age=SECRET_MAX_AGE)
        return SlackCredentials.from_secret(value)

    def refreshed(self) -> SlackCredentials | None:
        """A fresh copy for a rotated signing secret; None if one was fetched < 60 s ago."""
        now = self._monotonic()
        if now - self._last_forced < SECRET_REFRESH_INTERVAL:
            return None
        self._last_forced = now
        value = self._get_provider().get(
            self._arn, transform="json", max_age=SECRET_MAX_AGE, force_fetch=True
        )
        return SlackCredentials.from_secret(value)


#: How many times a 429 may be waited out by the calls made in this context (None: once,
#: the handler's own count). Set through `rate_limit_waits`.
_RATE_LIMIT_WAITS: ContextVar[int | None] = ContextVar("rate_limit_waits", default=None)


@contextmanager
def rate_limit_waits(times: int) -> Iterator[None]:
    """Inside, a rate-limited call waits out Retry-After up to `times` times (each only when
    the invocation has the time), instead of once; 0: never, the 429 goes up at once.

    For a caller that knows better than the default: one whose work a later invocation
    completes anyway need not sleep, one that is the last chance may wait a little more.
    """
    token = _RATE_LIMIT_WAITS.set(times)
    try:
        yield
    finally:
        _RATE_LIMIT_WAITS.reset(token)


def is_rate_limited(exc: Exception) -> bool:
    """Did Slack refuse the call for its rate limit (HTTP 429, `ratelimited`)?"""
    response = getattr(exc, "response", None)
    if response is None:
        return False
    return getattr(response, "status_code", None) == 429 or response.get("error") == "ratelimited"


class RateLimitWithinTime(RateLimitErrorRetryHandler):
    """Waits out a 429's Retry-After (once, or as `rate_limit_waits` says) only when the
    function has the time to.

    Past that the error goes up to the workflow, whose Retry backs off without paying
    for a sleeping Lambda. `seconds_left` is the invocation's remaining time.
    """

    def __init__(self, seconds_left: Callable[[], float], timeout: float) -> None:
        super().__init__(max_retry_count=1)
        self._seconds_left = seconds_left
        self._timeout = timeout

    def can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        waits = _RATE_LIMIT_WAITS.get()
        if state.current_attempt >= (self.max_retry_count if waits is None else waits):
            return False
        return self._can_retry(state=state, request=request, response=response, error=error)

    def _can_retry(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> bool:
        if response is None or response.status_code != 429:
            return False
        needed = retry_after(response) + 1 + self._timeout + RETRY_AFTER_MARGIN
        return self._seconds_left() > needed

    def prepare_for_next_attempt(
        self,
        *,
        state: RetryState,
        request: HttpRequest,
        response: HttpResponse | None = None,
        error: Exception | None = None,
    ) -> None:
        # The SDK's own reads Retry-After with int(), which fails on "1.5" or junk.
        state.next_attempt_requested = True
        time.sleep(retry_after(response) + random.random() if response else 1.0)
        state.increment_current_attempt()


def retry_after(response: HttpResponse) -> float:
    """Slack's Retry-After in seconds (1 when absent or unreadable)."""
    for name, values in response.headers.items():
        if name.lower() == "retry-after" and values:
            try:
                return max(0.0, float(values[0]))
            except ValueError:
                break
    return 1.0


def web_client(
    token: str,
    base_url: str,
    timeout: float = CLIENT_TIMEOUT,
    seconds_left: Callable[[], float] | None = None,
) -> WebClient:
    """A Web API client with a short timeout that retries a dropped connection once, and a
    429 once if the function has time for its Retry-After (`seconds_left`)."""
    handlers: list[RetryHandler] = [ConnectionErrorRetryHandler(max_retry_count=1)]
    if seconds_left is not None:
        handlers.append(RateLimitWithinTime(seconds_left, timeout))
    return WebClient(
        token=token,
        base_url=base_url,
        timeout=timeout,  # type: ignore[arg-type]  # urllib takes fractions of a second
        retry_handlers=handlers,
    )


def signature_is_valid(
    signing_secret: str,
    headers: Mapping[str, str],
    body: bytes,
    now: Callable[[], float] = time.time,
) -> bool:
    """Slack's v0 signature over `v0:{timestamp}:{body}`, within five minutes of now.

    Fails closed: a malformed timestamp or signature is simply invalid, never an exception.
    """
    lowered = {str(k).lower(): str(v) for k, v in headers.items()}
    timestamp = lowered.get("x-slack-request-timestamp")
    signature = lowered.get("x-slack-signature")
    # ASCII digits only: str.isdigit() and int() also take Arabic-Indic or fullwidth digits, which
    # Slack never sends.
    if not timestamp or not signature or len(timestamp) > 12:
        return False
    if not (timestamp.isascii() and timestamp.isdigit()):
        return False
    if not signature.isascii():
        return False

    class _Clock:
        def now(self) -> float:
            return now()

    verifier = SignatureVerifier(signing_secret, clock=_Clock())  # type: ignore[arg-type]
    try:
        return verifier.is_valid(body=body, timestamp=timestamp, signature=signature)
    except (ValueError, TypeError, UnicodeError):
        return False
