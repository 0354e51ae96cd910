"""Drives a sandbox the way Slack and CodePipeline would, over HTTP on loopback (after
tests/conftest.py's `Gate`, without pytest)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bench import ROOT
from sandbox import patches
from sandbox.client import SandboxClient, has_buttons, request_message, wait_for
from sandbox.fake_slack import (
    form_body,
    signed_request,
    view_submission_payload,
)
from sandbox.server import SandboxServer, post_interaction

STANDARD_POLICY = ROOT / "tests" / "policies" / "standard.yaml"
BENCH_POLICY = Path(__file__).with_name("policy.yaml")
APPROVER = "U0ALICE"


class Driver:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.client = SandboxClient(server.url, timeout=300)
        self.secret = server.sandbox.signing_secret

    # --- CodePipeline -------------------------------------------------------------------

    def start_run(self, pipeline: str) -> dict[str, Any]:
        return self.client.start_run(pipeline)

    def open_requests(self, pipelines: list[str], timeout: float = 60.0) -> dict[str, Any]:
        """Wait for each pipeline's open request in Slack: {pipeline: message}."""
        wanted = set(pipelines)

        def probe() -> dict[str, Any] | None:
            ids = {
                a["pipeline"]: a["approval_id"]
                for a in self.client.approvals()
                if a["pipeline"] in wanted
            }
            if len(ids) < len(wanted):
                return None
            messages = self.client.messages()
            found = {p: request_message(messages, ids[p]) for p in wanted}
            if all(m is not None and has_buttons(m) for m in found.values()):
                return found
            return None

        return wait_for(probe, timeout=timeout, interval=0.05, what="the Slack requests")

    def open(self, pipelines: list[str], timeout: float = 60.0) -> dict[str, Any]:
        for pipeline in pipelines:
            self.start_run(pipeline)
        return self.open_requests(pipelines, timeout)

    # --- Slack --------------------------------------------------------------------------

    def click_body(
        self, message: dict[str, Any], action: str = "approve", user: str = APPROVER
    ) -> tuple[bytes, dict[str, str]]:
        """A signed block_actions request, ready to send (built outside any timing)."""
        return self._signed(self.server.click_payload(message, user, action))

    def _signed(self, payload: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
        body = form_body(payload)
        return body, signed_request(body, self.secret, int(time.time()))

    def send(self, body: bytes, headers: dict[str, str]) -> tuple[int, float]:
        """POST to /slack/interactions: (status, seconds from request sent to response)."""
        started = time.perf_counter()
        status, _ = post_interaction(self.url, body, headers)
        return status, time.perf_counter() - started

    def click(self, message: dict[str, Any], action: str = "approve") -> float:
        status, seconds = self.send(*self.click_body(message, action))
        if status != 200:
            raise RuntimeError(f"the click answered HTTP {status}")
        return seconds

    def reject_with_reason(self, message: dict[str, Any], reason: str) -> None:
        """Click Reject, then say why in the modal it opens (as conftest's Gate.reject)."""
        self.click(message, "reject")
        self.submit_modal(button_value(message), {"reason": {"reason": reason}})

    def submit_modal(self, approval_id: str, values: dict[str, Any]) -> None:
        """Submit the modal the gate last opened for this approval, as APPROVER filling
        `values` (block id → action id → text, or epoch seconds for a date-time picker)."""
        view = wait_for(
            lambda: next(
                (
                    v
                    for v in reversed(self.server.sandbox.slack.views())
                    if v["view"].get("private_metadata") == approval_id
                ),
                None,
            ),
            what="the modal to open",
        )
        payload = view_submission_payload(
            self.server.sandbox.slack, view_id=view["id"], user_id=APPROVER, values=values
        )
        status, _ = self.send(*self._signed(payload))
        if status != 200:
            raise RuntimeError(f"the modal submission answered HTTP {status}")

    # --- the workflow -------------------------------------------------------------------

    def execution_arn(self, approval_id: str) -> str:
        return next(
            e["executionArn"]
            for e in self.server.sandbox.executions()
            if e["name"].endswith(approval_id)
        )

    def history(self, approval_id: str) -> list[dict[str, Any]]:
        sfn = self.server.sandbox.client("stepfunctions")
        arn = self.execution_arn(approval_id)
        return list(sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"])

    def wait_finished(self, approval_id: str, timeout: float = 30.0) -> dict[str, Any]:
        sfn = self.server.sandbox.client("stepfunctions")
        arn = self.execution_arn(approval_id)

        def probe() -> dict[str, Any] | None:
            described = sfn.describe_execution(executionArn=arn)
            return None if described["status"] == "RUNNING" else described

        finished = wait_for(probe, timeout=timeout, interval=0.05, what="the execution to finish")
        # ...and the pipeline events its decision set off (the status feed), delivered.
        patches.wait_for_events(timeout)
        return finished


def button_value(message: dict[str, Any]) -> str:
    """The approval id a request message's buttons carry."""
    for block in message["blocks"]:
        if block["type"] == "actions":
            return str(block["elements"][0]["value"])
    raise ValueError("the message has no buttons")


@contextmanager
def sandbox(policy: Path, settle: float = 60.0) -> Iterator[Driver]:
    """A running sandbox on a free loopback port. Before it stops, every EventBridge event
    put is delivered and every execution has finished, waiting at most ``settle`` seconds."""
    server = SandboxServer(policy_file=policy, port=0).start()
    try:
        yield Driver(server)
    finally:
        finished = server.sandbox.wait_for_executions(timeout=settle)
        server.stop()
        if not finished:
            raise RuntimeError(
                f"the sandbox had not settled after {settle:.0f} s (an EventBridge event not "
                "yet delivered, or an execution still running)"
            )


def dumps(value: Any) -> str:
    return json.dumps(value, default=str)
