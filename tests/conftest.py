"""Shared fixtures: a sandbox per test module, and a `gate` helper that drives it over HTTP
the way Slack and CodePipeline would."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sandbox.client import SandboxClient, has_buttons, request_message, wait_for
from sandbox.fake_slack import (
    form_body,
    signed_request,
    view_submission_payload,
)
from sandbox.server import SandboxServer, post_interaction

TESTS = Path(__file__).parent
POLICIES = TESTS / "policies"
#: Users the policies do not name, so the sandbox's workspace knows them too.
SLACK_FIXTURE = {
    "users": [
        {
            "id": "U0MALLORY",
            "name": "mallory",
            "real_name": "Mallory",
            "email": "mallory@example.com",
        }
    ],
    "groups": [],
}


class Gate:
    """Drives one sandbox like its users: CodePipeline runs, Slack clicks, HTTP only."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.client = SandboxClient(server.url)
        self.secret = server.sandbox.signing_secret

    # --- CodePipeline -----------------------------------------------------------------

    def start_run(self, pipeline: str = "web-app", **body: Any) -> dict[str, Any]:
        return self.client.start_run(pipeline, **body)

    def approval_for(self, token: str, timeout: float = 10.0) -> dict[str, Any]:
        """The decision record of the approval CodePipeline asked with `token`."""
        run = self.server.sandbox.codepipeline.run_by_token(token)
        assert run is not None
        return wait_for(
            lambda: next(
                (
                    a
                    for a in self.client.approvals()
                    if a["pipeline_execution_id"] == run.execution_id
                ),
                None,
            ),
            timeout=timeout,
            what="the approval record",
        )

    def results_for(self, token: str) -> list[dict[str, Any]]:
        return [r for r in self.client.approval_results() if r["token"] == token]

    def wait_result(self, token: str, timeout: float = 10.0) -> dict[str, Any]:
        return wait_for(
            lambda: next(iter(self.results_for(token)), None),
            timeout=timeout,
            what="PutApprovalResult",
        )

    # --- Slack --------------------------------------------------------------------------

    def request_message(self, approval_id: str, timeout: float = 10.0) -> dict[str, Any]:
        """The open request in Slack (with its buttons)."""

        def probe() -> dict[str, Any] | None:
            message = request_message(self.client.messages(), approval_id)
            return message if message and has_buttons(message) else None

        return wait_for(probe, timeout=timeout, what="the Slack request")

    def message_at(self, channel: str, ts: str) -> dict[str, Any]:
        return next(m for m in self.client.messages() if (m["channel"], m["ts"]) == (channel, ts))

    def buttons(self, message: dict[str, Any]) -> list[str]:
        """The action ids of the buttons `message` shows now, in order."""
        current = self.message_at(message["channel"], message["ts"])
        return [
            element["action_id"]
            for block in current["blocks"]
            if block["type"] == "actions"
            for element in block["elements"]
        ]

    def wait_closed(self, message: dict[str, Any], timeout: float = 10.0) -> dict[str, Any]:
        def probe() -> dict[str, Any] | None:
            current = self.message_at(message["channel"], message["ts"])
            return None if has_buttons(current) else current

        return wait_for(probe, timeout=timeout, what="the request to close")

    def ephemerals(self, user: str) -> list[dict[str, Any]]:
        return [m for m in self.client.messages() if m["ephemeral_user"] == user]

    def click_payload(self, message: dict[str, Any], user: str, action: str) -> dict[str, Any]:
        return self.server.click_payload(message, user, action)

    def post_interaction(
        self,
        payload: dict[str, Any],
        *,
        secret: str | None = None,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
        body: bytes | None = None,
    ) -> tuple[int, str]:
        """POST to /slack/interactions, signed as Slack signs (or as told)."""
        raw = body if body is not None else form_body(payload)
        sent = signed_request(raw, secret or self.secret, timestamp or int(time.time()))
        # As long as the gate's client waits (a test of retried calls may lengthen it).
        return post_interaction(
            self.url, raw, sent if headers is None else headers, self.client.timeout
        )

    def click(self, message: dict[str, Any], user: str, action: str, **kwargs: Any) -> int:
        status, _ = self.post_interaction(self.click_payload(message, user, action), **kwargs)
        return status

    def opened_view(self, approval_id: str, user: str) -> dict[str, Any]:
        """The newest modal the gate opened for `user` about this approval."""

        def probe() -> dict[str, Any] | None:
            views = [
                v
                for v in self.server.sandbox.slack.views()
                if v["view"].get("private_metadata") == approval_id
                and v.get("user") in (user, None)
            ]
            return views[-1] if views else None

        return wait_for(probe, what="the modal to open")

    def submit_view(self, view: dict[str, Any], user: str, reason: str | None) -> tuple[int, str]:
        """Submit a modal as `user` typing `reason` (None leaves it empty)."""
        payload = view_submission_payload(
            self.server.sandbox.slack,
            view_id=view["id"],
            user_id=user,
            values={"reason": {"reason": reason}} if reason is not None else {},
        )
        return self.post_interaction(payload)

    def reject(self, message: dict[str, Any], user: str, reason: str) -> int:
        """Click Reject, then say why in the modal that opens, as a person would."""
        assert self.click(message, user, "reject") == 200
        approval_id = button_value(message)
        status, _ = self.submit_view(self.opened_view(approval_id, user), user, reason)
        return status

    # --- the workflow -----------------------------------------------------------------

    def execution_for(self, approval_id: str) -> dict[str, Any]:
        return next(e for e in self.server.sandbox.executions() if e["name"].endswith(approval_id))

    def wait_execution(self, approval_id: str, timeout: float = 15.0) -> dict[str, Any]:
        sfn = self.server.sandbox.client("stepfunctions")

        def probe() -> dict[str, Any] | None:
            arn = self.execution_for(approval_id)["executionArn"]
            described = sfn.describe_execution(executionArn=arn)
            return None if described["status"] == "RUNNING" else described

        return wait_for(probe, timeout=timeout, what="the execution to finish")

    def history(self, approval_id: str) -> list[dict[str, Any]]:
        sfn = self.server.sandbox.client("stepfunctions")
        arn = self.execution_for(approval_id)["executionArn"]
        return sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]

    def open_approval(
        self, pipeline: str = "web-app", **body: Any
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        """Start a run and wait for its request in Slack: (run, approval, message)."""
        run = self.start_run(pipeline, **body)
        approval = self.approval_for(run["approvalToken"])
        message = self.request_message(approval["approval_id"])
        return run, approval, message

    def logs(self) -> str:
        return "\n".join(self.server.sandbox.logs.lines)


def button_value(message: dict[str, Any]) -> str:
    """The approval id a request message's buttons carry."""
    for block in message["blocks"]:
        if block["type"] == "actions":
            return str(block["elements"][0]["value"])
    raise ValueError("the message has no buttons")


def start_sandbox(policy: Path, fixture: dict[str, Any] | None = SLACK_FIXTURE) -> SandboxServer:
    return SandboxServer(policy_file=policy, port=0, slack_fixture=fixture).start()


@pytest.fixture(scope="module")
def sandbox_server(request: pytest.FixtureRequest) -> Iterator[SandboxServer]:
    """One sandbox per test module (moto's patches are process-wide: one at a time).

    A module may set SANDBOX_POLICY and SLACK_FIXTURE to run with another policy or
    workspace.
    """
    policy = getattr(request.module, "SANDBOX_POLICY", POLICIES / "standard.yaml")
    server = start_sandbox(policy, getattr(request.module, "SLACK_FIXTURE", SLACK_FIXTURE))
    try:
        yield server
    finally:
        finished = server.sandbox.wait_for_executions(timeout=30)
        server.stop()
        assert finished, "a test left an execution running or an EventBridge event undelivered"


@pytest.fixture
def gate(sandbox_server: SandboxServer) -> Gate:
    return Gate(sandbox_server)
