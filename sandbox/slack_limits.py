"""Slack's Web API rate limits, as the fake Slack applies them when asked to.

Slack limits each Web API method per app per workspace by tier (Tier 1: 1+ per minute,
Tier 2: 20+, Tier 3: 50+, Tier 4: 100+), and a few methods specially: ``chat.postMessage``
about one message per second per channel with short bursts, under a workspace-wide limit
of several hundred a minute (https://docs.slack.dev/apis/web-api/rate-limits; each
method's tier from its page, and from Slack's Java SDK ``MethodsRateLimits``). A refused
call is answered ``429``, ``Retry-After: <whole seconds>``, ``{"ok": false, "error":
"ratelimited"}``. :class:`SlackLimits` keeps one token bucket per method (and per channel
for ``chat.postMessage``): a bucket holds up to ``burst`` calls, refills evenly at the
tier's rate, and a ``time_scale`` of N refills it N times faster, so tests run in seconds.
The fake asks :meth:`SlackLimits.check` before it answers a call; it is off until
:meth:`SlackLimits.enforce`. Thread-safe; the clock is injected.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["LIMITS", "POST_MESSAGE_WORKSPACE", "Limit", "SlackLimits", "retry_after_header"]

#: The largest time_scale accepted: a minute's window then lasts 1/60 s.
MAX_TIME_SCALE = 3600.0


@dataclass(frozen=True)
class Limit:
    """One documented limit: ``per_minute`` calls, up to ``burst`` of them at once."""

    tier: str
    per_minute: float
    burst: int
    #: ``workspace``: one bucket for the method; ``channel``: one per channel argument.
    per: str = "workspace"

    def describe(self) -> dict[str, Any]:
        return {
            "tier": self.tier,
            "per_minute": self.per_minute,
            "burst": self.burst,
            "per": self.per,
        }


def _tier(number: int, per_minute: int) -> Limit:
    # Slack documents no burst sizes; a tier may spend a whole minute's quota at once
    # ("sporadic bursts are welcome"), then waits for the bucket to refill.
    return Limit(f"Tier {number}", per_minute, per_minute)


_TIER_2 = _tier(2, 20)
_TIER_3 = _tier(3, 50)
_TIER_4 = _tier(4, 100)
#: auth.test and chat.getPermalink: "hundreds of requests per minute" (Slack's Java SDK: 600).
_HUNDREDS = Limit("Special", 600, 600)

#: The limits of the methods the fake Slack answers (docs/sandbox.md#slacks-rate-limits).
LIMITS: dict[str, Limit] = {
    # "1 per second per channel. Short bursts >1 allowed": three at once, then one a second.
    "chat.postMessage": Limit("Special", 60, 3, per="channel"),
    "chat.update": _TIER_3,
    "chat.postEphemeral": _TIER_4,
    "chat.getPermalink": _HUNDREDS,
    "views.open": _TIER_4,
    "usergroups.users.list": _TIER_2,
    "users.info": _TIER_4,
    "users.lookupByEmail": _TIER_3,
    "auth.test": _HUNDREDS,
    "conversations.list": _TIER_2,
    "conversations.info": _TIER_3,
    "conversations.history": _TIER_3,
}

#: chat.postMessage's workspace-wide limit over every channel: "several hundred a minute".
POST_MESSAGE_WORKSPACE = Limit("Special", 300, 300)


def retry_after_header(wait: float) -> int:
    """Slack's Retry-After for a wait of ``wait`` seconds: whole seconds, rounded up, at
    least 1 (a client that reads 0 would retry at once and be refused again)."""
    return max(1, math.ceil(wait - 1e-9))


class _Bucket:
    """Up to ``limit.burst`` tokens, refilled at ``limit.per_minute`` / 60 per second."""

    def __init__(self, limit: Limit, now: float) -> None:
        self.limit = limit
        self.tokens = float(limit.burst)
        self.at = now

    def refill(self, now: float, time_scale: float) -> None:
        rate = self.limit.per_minute / 60.0 * time_scale
        self.tokens = min(float(self.limit.burst), self.tokens + max(0.0, now - self.at) * rate)
        self.at = now

    def wait(self, time_scale: float) -> float:
        """Seconds until one token is there (0 if it is now)."""
        if self.tokens >= 1.0:
            return 0.0
        return (1.0 - self.tokens) / (self.limit.per_minute / 60.0 * time_scale)


class SlackLimits:
    """Slack's per-method rate limits, off until :meth:`enforce`. Thread-safe."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._enforced = False
        self._time_scale = 1.0
        self._buckets: dict[tuple[str, str], _Bucket] = {}
        self._refused: dict[str, int] = {}

    # ------------------------------------------------------------------ switching

    def enforce(self, time_scale: float = 1.0) -> None:
        """Apply the limits from now on, every window ``time_scale`` times shorter; the
        buckets start full. ``ValueError`` unless 1 <= time_scale <= 3600."""
        scale = _time_scale(time_scale)
        with self._lock:
            self._enforced = True
            self._time_scale = scale
            self._buckets.clear()

    def off(self) -> None:
        """Stop applying the limits (the 429 counts are kept until :meth:`reset`)."""
        with self._lock:
            self._enforced = False
            self._time_scale = 1.0
            self._buckets.clear()

    def reset(self) -> None:
        """Off, and forget the 429 counts."""
        with self._lock:
            self._enforced = False
            self._time_scale = 1.0
            self._buckets.clear()
            self._refused.clear()

    @property
    def enforced(self) -> bool:
        return self._enforced

    @property
    def time_scale(self) -> float:
        return self._time_scale

    # ------------------------------------------------------------------ asking

    def check(self, method: str, channel: str | None = None) -> int | None:
        """Whether a call of ``method`` (to ``channel``, for chat.postMessage) may go ahead
        now. ``None``: yes, and it is counted; otherwise the Retry-After (whole seconds) to
        answer with its 429, and the refusal is counted, not the call."""
        with self._lock:
            limit = LIMITS.get(method)
            if not self._enforced or limit is None:
                return None
            now = self._clock()
            key = (channel or "") if limit.per == "channel" else ""
            buckets = [self._bucket((method, key), limit, now)]
            if method == "chat.postMessage":
                # The workspace-wide limit over every channel (key "*": no channel id).
                buckets.append(self._bucket((method, "*"), POST_MESSAGE_WORKSPACE, now))
            for bucket in buckets:
                bucket.refill(now, self._time_scale)
            wait = max(bucket.wait(self._time_scale) for bucket in buckets)
            if wait > 0:
                self._refused[method] = self._refused.get(method, 0) + 1
                return retry_after_header(wait)
            for bucket in buckets:
                bucket.tokens -= 1.0
            return None

    def refused(self) -> dict[str, int]:
        """How many calls of each method were answered 429 since the last reset."""
        with self._lock:
            return dict(self._refused)

    def snapshot(self) -> dict[str, Any]:
        """What ``GET /_sandbox/slack/limits`` answers."""
        with self._lock:
            limits = {method: limit.describe() for method, limit in LIMITS.items()}
            limits["chat.postMessage"]["workspace"] = POST_MESSAGE_WORKSPACE.describe()
            return {
                "enforce": self._enforced,
                "time_scale": self._time_scale,
                "ratelimited": dict(self._refused),
                "limits": limits,
            }

    def configure(self, body: Any) -> dict[str, Any]:
        """Apply ``{enforce, time_scale}`` (the HTTP body) and answer as :meth:`snapshot`.
        ``ValueError`` (and nothing changes) for a body that is not one."""
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        unknown = sorted(set(body) - {"enforce", "time_scale"})
        if unknown:
            raise ValueError(f"unknown field: {unknown[0]}")
        enforce = body.get("enforce")
        if not isinstance(enforce, bool):
            raise ValueError("enforce must be true or false")
        if enforce:
            self.enforce(body.get("time_scale", 1.0))
        elif "time_scale" in body:
            raise ValueError("time_scale applies only with enforce: true")
        else:
            self.off()
        return self.snapshot()

    def _bucket(self, key: tuple[str, str], limit: Limit, now: float) -> _Bucket:
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket(limit, now)
        return bucket


def _time_scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError("time_scale must be a number from 1 to 3600")
    scale = float(value)
    if not 1.0 <= scale <= MAX_TIME_SCALE:  # NaN fails this too
        raise ValueError("time_scale must be a number from 1 to 3600")
    return scale
