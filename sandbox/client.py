"""A small client for the sandbox's HTTP paths, used by the demo, the tests and scripts."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class SandboxClient:
    def __init__(self, base_url: str, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(  # noqa: S310 - the sandbox is on loopback
            self.base_url + path,
            data=data,
            method=method,
            headers={"Content-Type": "application/json"} if data is not None else {},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw = response.read()
                status = response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def post_text(self, path: str, text: str) -> tuple[int, Any]:
        """POST a text body (a YAML policy, say) as it is: ``(status, answer)``."""
        request = urllib.request.Request(  # noqa: S310 - the sandbox is on loopback
            self.base_url + path,
            data=text.encode(),
            method="POST",
            headers={"Content-Type": "text/yaml"},
        )
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                raw, status = response.read(), response.status
        except urllib.error.HTTPError as exc:
            raw, status = exc.read(), exc.code
        try:
            return status, json.loads(raw) if raw else None
        except ValueError:
            return status, raw.decode(errors="replace")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        if status != 200:
            raise RuntimeError(f"GET {path} answered {status}: {body}")
        return body

    def post(self, path: str, body: Any = None) -> Any:
        status, answer = self.request("POST", path, {} if body is None else body)
        if status != 200:
            raise RuntimeError(f"POST {path} answered {status}: {answer}")
        return answer

    # --- the paths of DESIGN §6 --------------------------------------------------------

    def messages(
        self, channel: str | None = None, oldest: str | None = None
    ) -> list[dict[str, Any]]:
        """Messages as Slack shows them, oldest first: ``channel``'s only, and only those
        posted after the ts ``oldest``, when given."""
        query = urllib.parse.urlencode(
            {k: v for k, v in (("channel", channel), ("oldest", oldest)) if v is not None}
        )
        return list(self.get("/_sandbox/slack/messages" + (f"?{query}" if query else "")))

    def calls(self) -> list[dict[str, Any]]:
        return list(self.get("/_sandbox/slack/calls"))

    def interactions(self) -> list[dict[str, Any]]:
        """What the sandbox, acting as Slack, sent to /slack/interactions: ``{type,
        payload, at}``, oldest first."""
        return list(self.get("/_sandbox/slack/interactions"))

    def set_bot_member(self, channel: str, member: bool) -> dict[str, Any]:
        """The bot joins or leaves a channel of the fake workspace; its conversation."""
        return dict(self.post(f"/_sandbox/slack/channels/{channel}", {"bot_member": member}))

    def set_scopes(self, scopes: list[str]) -> list[str]:
        """``POST /_sandbox/slack/scopes``: the bot token's scopes from now on (until a
        reset); answers them. RuntimeError (with the 400's error) if refused."""
        return list(self.post("/_sandbox/slack/scopes", {"scopes": scopes})["scopes"])

    def scopes(self) -> list[str]:
        """``GET /_sandbox/slack/scopes``: the bot token's scopes now."""
        return list(self.get("/_sandbox/slack/scopes")["scopes"])

    def slack_app(self) -> dict[str, Any]:
        """``GET /_sandbox/slack/app``: ``{app_id, request_url, manifest}``, the Slack app
        as apps.manifest.update last left it."""
        return dict(self.get("/_sandbox/slack/app"))

    def set_policy(self, text: str) -> None:
        """``POST /_sandbox/policy``: ``text`` (YAML or JSON) in force from now on;
        RuntimeError with the sandbox's error if refused."""
        status, answer = self.post_text("/_sandbox/policy", text)
        if status != 200:
            raise RuntimeError(f"POST /_sandbox/policy answered {status}: {answer}")

    def aws(self) -> dict[str, Any]:
        """``GET /_sandbox/aws``: ``{endpoint_url, region, resources, parameters,
        slack_api_url, policy}``, for boto3 (``endpoint_url``) and slack_sdk (``base_url``)."""
        return dict(self.get("/_sandbox/aws"))

    def set_slack_limits(self, enforce: bool, time_scale: float | None = None) -> dict[str, Any]:
        """``POST /_sandbox/slack/limits``: Slack's rate limits on (``time_scale`` times
        faster) or off; answers as :meth:`slack_limits`."""
        body: dict[str, Any] = {"enforce": enforce}
        if time_scale is not None:
            body["time_scale"] = time_scale
        return dict(self.post("/_sandbox/slack/limits", body))

    def slack_limits(self) -> dict[str, Any]:
        """``GET /_sandbox/slack/limits``: ``{enforce, time_scale, ratelimited, limits}``;
        ``ratelimited`` counts the 429s answered per method since the last reset."""
        return dict(self.get("/_sandbox/slack/limits"))

    def approval_results(self) -> list[dict[str, Any]]:
        return list(self.get("/_sandbox/codepipeline/approval-results"))

    def approvals(self) -> list[dict[str, Any]]:
        return list(self.get("/_sandbox/approvals"))

    def notifications(self) -> list[dict[str, Any]]:
        """What the gate sent to its FallbackTopic: ``{subject, message}``, oldest first."""
        return list(self.get("/_sandbox/notifications"))

    def start_run(self, pipeline: str, **body: Any) -> dict[str, Any]:
        return dict(self.post(f"/_sandbox/pipelines/{pipeline}/runs", body))

    def reset(self) -> None:
        self.post("/_sandbox/reset")

    def set_fault(
        self,
        service: str,
        method: str,
        kind: str,
        rate: float,
        seed: int | str,
        **options: Any,
    ) -> dict[str, Any]:
        """``POST /_sandbox/faults``; ``options``: ``retry_after``, ``status`` or ``delay``.
        Answers ``{faults, injected, calls}``; RuntimeError (with the 400's error) if refused."""
        body = {"service": service, "method": method, "kind": kind, "rate": rate, "seed": seed}
        return dict(self.post("/_sandbox/faults", {**body, **options}))

    def faults(self) -> dict[str, Any]:
        """``GET /_sandbox/faults``: ``{faults, injected, calls}``."""
        return dict(self.get("/_sandbox/faults"))

    def codepipeline_calls(self) -> list[dict[str, Any]]:
        return list(self.get("/_sandbox/codepipeline/calls"))


def wait_for(
    probe: Callable[[], T | None], *, timeout: float = 10.0, interval: float = 0.02, what: str = ""
) -> T:
    """Poll `probe` until it returns something truthy; TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"gave up after {timeout:g}s waiting for {what or 'a condition'}")
        time.sleep(interval)


def has_buttons(message: dict[str, Any]) -> bool:
    return any(block.get("type") == "actions" for block in message.get("blocks") or [])


def request_message(messages: list[dict[str, Any]], approval_id: str) -> dict[str, Any] | None:
    """The top-level message whose buttons (or record) carry this approval id."""
    for message in messages:
        if message.get("thread_ts") or message.get("ephemeral_user"):
            continue
        if approval_id in json.dumps(message.get("blocks") or []):
            return message
    return None
