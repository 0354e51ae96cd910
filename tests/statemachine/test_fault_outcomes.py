"""Every fault the sandbox can inject, and what the gate then does (docs/reliability.md).

Faults come from POST /_sandbox/faults (sandbox/faults.py): a rate of 1 fails every call of
that method until the test lifts it, which is how Slack or CodePipeline trouble looks when
it passes. Each test asserts the outcome a user sees: one request message, the decision
reaching CodePipeline once, or the request kept open and announced by SNS.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from reliability.observed import run_attempts
from sandbox.client import has_buttons, wait_for
from tests.conftest import Gate, button_value

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "faults.yaml"


@pytest.fixture(autouse=True)
def no_faults_after(gate: Gate) -> Iterator[None]:
    yield
    gate.server.sandbox.faults.reset()


def fault(gate: Gate, service: str, method: str, kind: str, **options: Any) -> None:
    gate.client.set_fault(service, method, kind, 1, seed="outcomes", **options)


def attempts(gate: Gate, token: str) -> list[dict[str, Any]]:
    """The gate's PutApprovalResult attempts for this token that were not refused by a
    fault before taking effect (reliability.observed), from the fake's call log."""
    return run_attempts(
        gate.client.codepipeline_calls(), gate.server.sandbox.codepipeline.run_by_token(token)
    )


def lift(gate: Gate, service: str, method: str, kind: str) -> None:
    gate.client.set_fault(service, method, kind, 0, seed="outcomes")


def wait_injected(gate: Gate, service: str, method: str, kind: str, count: int = 1) -> None:
    def probe() -> bool | None:
        injected = gate.client.faults()["injected"]
        return injected.get(service, {}).get(method, {}).get(kind, 0) >= count or None

    wait_for(probe, timeout=15, what=f"{count} {kind} fault(s) on {method}")


def request_posts(gate: Gate, approval_id: str | None = None) -> list[dict[str, Any]]:
    """Every chat.postMessage of a request (the status feed posts too), faulted or not;
    of one approval when given (its buttons carry the id)."""
    return [
        c
        for c in gate.client.calls()
        if c["method"] == "chat.postMessage"
        and not c["args"].get("thread_ts")
        and "Approval needed" in str(c["args"].get("text"))
        and (approval_id is None or approval_id in str(c["args"].get("blocks")))
    ]


def wait_request_faulted(gate: Gate, kind: str) -> None:
    before = len([c for c in request_posts(gate) if c.get("fault") == kind])
    wait_for(
        lambda: len([c for c in request_posts(gate) if c.get("fault") == kind]) > before or None,
        timeout=15,
        what=f"a {kind} fault on the request's post",
    )


def requests_for(gate: Gate, approval_id: str) -> list[dict[str, Any]]:
    """Every top-level request message of this approval (its buttons carry the id)."""
    found = []
    for message in gate.client.messages():
        if message["thread_ts"] or message["ephemeral_user"] or not has_buttons(message):
            continue
        if button_value(message) == approval_id:
            found.append(message)
    return found


def ask_attempts(gate: Gate, approval_id: str) -> int:
    return sum(
        1
        for event in gate.history(approval_id)
        if event["type"] == "TaskScheduled"
        and "AskApprovers" in event["taskScheduledEventDetails"]["parameters"]
    )


def posted_once_after(gate: Gate, kind: str, **options: Any) -> None:
    """Slack fails the first post with `kind`, then recovers: one request, then approve."""
    fault(gate, "slack", "chat.postMessage", kind, **options)
    run = gate.start_run()
    wait_request_faulted(gate, kind)
    lift(gate, "slack", "chat.postMessage", kind)
    approval = gate.approval_for(run["approvalToken"])
    message = gate.request_message(approval["approval_id"], timeout=20)
    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])
    posts = request_posts(gate, approval["approval_id"])
    faulted = [c for c in posts if c.get("fault") == kind]
    carried = [c for c in posts if not c.get("fault")]
    assert faulted, "the fault never hit the request post"
    assert len(carried) == 1, "the request was posted more than once"


def test_rate_limited_the_request_is_posted_once_after_the_limit(gate: Gate) -> None:
    """429 with a Retry-After the function has time for: it waits it out and posts once."""
    posted_once_after(gate, "rate_limited", retry_after=1)


def test_rate_limited_for_longer_than_the_function_has_goes_to_the_workflows_retry(
    gate: Gate,
) -> None:
    """A Retry-After past the function's remaining time is not slept in the Lambda: the
    error goes up and Step Functions' Retry asks again (a second Ask attempt)."""
    fault(gate, "slack", "chat.postMessage", "rate_limited", retry_after=60)
    run = gate.start_run()
    wait_request_faulted(gate, "rate_limited")
    lift(gate, "slack", "chat.postMessage", "rate_limited")
    approval = gate.approval_for(run["approvalToken"])
    message = gate.request_message(approval["approval_id"], timeout=20)
    assert ask_attempts(gate, approval["approval_id"]) >= 2
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_result(run["approvalToken"])
    gate.wait_execution(approval["approval_id"])


def test_server_error_is_retried_with_backoff_and_posts_once(gate: Gate) -> None:
    posted_once_after(gate, "server_error")


def test_timeout_is_retried_and_posts_once(gate: Gate) -> None:
    """Slack too slow: the client gives up after its short timeout; the call was not
    carried out, the workflow retries, and the request appears once."""
    posted_once_after(gate, "timeout", delay=3.5)


def test_channel_not_found_sends_the_request_by_sns_and_keeps_it_open(
    gate: Gate, capsys: pytest.CaptureFixture[str]
) -> None:
    fault(gate, "slack", "chat.postMessage", "channel_not_found")
    run = gate.start_run()
    approval = gate.approval_for(run["approvalToken"])

    (note,) = wait_for(
        lambda: gate.client.notifications() or None, timeout=15, what="the SNS fallback"
    )
    assert note["subject"] == "Approval needed (Slack unavailable): web-app/Approval"
    assert "channel_not_found" in note["message"]
    assert "/approve/" + run["approvalToken"] in note["message"]  # CodePipeline's review link
    # The function logs and flushes its metric after publishing: wait for both (bounded).
    wait_for(
        lambda: "could not ask in Slack" in gate.logs() or None,
        timeout=15,
        what="the fallback's log line",
    )
    printed: list[str] = []

    def metric_printed() -> bool | None:  # the EMF metric the alarm watches
        printed.append(capsys.readouterr().out)
        return '"SlackFallbacks"' in "".join(printed) or None

    wait_for(metric_printed, timeout=15, what="the SlackFallbacks metric")
    assert run["approvalToken"] not in gate.logs()
    record = gate.approval_for(run["approvalToken"])
    assert record["outcome"] is None  # still open
    assert gate.results_for(run["approvalToken"]) == []

    # Slack is back: the next reminder cycle asks again, and the request appears once.
    lift(gate, "slack", "chat.postMessage", "channel_not_found")
    message = gate.request_message(approval["approval_id"], timeout=20)
    assert gate.click(message, "U0BOB", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])
    assert len(gate.client.notifications()) == 1  # announced once, not at every cycle
    posted = request_posts(gate, approval["approval_id"])
    assert len([c for c in posted if not c.get("fault")]) == 1


def test_a_deleted_request_message_is_replaced_by_one_that_says_so(gate: Gate) -> None:
    run, approval, message = gate.open_approval()
    fault(gate, "slack", "chat.update", "message_not_found")

    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])

    replacement = wait_for(
        lambda: next(
            (
                m
                for m in gate.client.messages()
                if not m["thread_ts"] and "replaces the earlier request message" in str(m)
            ),
            None,
        ),
        timeout=10,
        what="the replacement message",
    )
    assert replacement["channel"] == message["channel"]
    assert replacement["ts"] != message["ts"]
    assert "Approved" in str(replacement["blocks"])
    assert not has_buttons(replacement)


def test_codepipeline_throttling_is_retried_and_the_decision_lands_once(gate: Gate) -> None:
    run, approval, message = gate.open_approval()
    fault(gate, "codepipeline", "PutApprovalResult", "throttled")

    assert gate.click(message, "U0ALICE", "approve") == 200
    wait_injected(gate, "codepipeline", "PutApprovalResult", "throttled")
    lift(gate, "codepipeline", "PutApprovalResult", "throttled")

    assert gate.wait_result(run["approvalToken"], timeout=20)["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"], timeout=20)
    assert len(gate.results_for(run["approvalToken"])) == 1
    assert gate.approval_for(run["approvalToken"])["outcome"] == "approved"
    assert len(attempts(gate, run["approvalToken"])) == 1  # the throttled ones left no trace


@pytest.mark.parametrize(
    ("kind", "words"),
    [
        ("invalid_token", "CodePipeline no longer waits for this approval"),
        ("already_completed", "already decided in CodePipeline"),
    ],
)
def test_codepipeline_refusing_the_token_closes_the_request_as_decided_elsewhere(
    gate: Gate, kind: str, words: str
) -> None:
    run, approval, message = gate.open_approval()
    fault(gate, "codepipeline", "PutApprovalResult", kind)

    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])

    record = gate.approval_for(run["approvalToken"])
    assert record["outcome"] == "decided_elsewhere"
    assert record["decided_by"] == []
    assert gate.results_for(run["approvalToken"]) == []  # the refused call is no result
    asked = gate.server.sandbox.codepipeline.run_by_token(run["approvalToken"])
    tried = [
        c
        for c in gate.client.codepipeline_calls()
        if c["method"] == "PutApprovalResult"
        and c["args"]["pipelineName"] == asked.pipeline
        and datetime.fromisoformat(c["at"]) >= asked.started_at
    ]
    assert [c["fault"] for c in tried] == [kind]  # tried once: retrying cannot help
    closed = gate.wait_closed(message)
    assert words.lower() in str(closed["blocks"]).lower()
