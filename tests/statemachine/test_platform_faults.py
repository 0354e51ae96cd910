"""AWS platform faults (sandbox/faults.py's dynamodb, stepfunctions and lambda services), and
what the gate then does: every approval is still asked, decided once, and closed.

Lambda: a function that raised (``error``) or ran past its timeout (``timeout``); Step
Functions and DynamoDB: throttled calls (botocore's standard retries, five attempts, see
template.yaml); DynamoDB's execution index lagging the table (``index_lag``). A Lambda fault
fails every function's invocations, so the tests set it for a moment, wait until it hit the
function they mean, then lift it. Every wait is bounded.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from approval_gate import closing

from reliability.observed import run_attempts
from sandbox.client import wait_for
from sandbox.engine import LambdaContext
from tests.conftest import Gate
from tests.statemachine.test_fault_outcomes import request_posts

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "faults.yaml"
SEED = "platform"


@pytest.fixture(autouse=True)
def no_faults_after(gate: Gate) -> Iterator[None]:
    yield
    gate.server.sandbox.faults.reset()


def set_fault(
    gate: Gate, service: str, method: str, kind: str, rate: float, **options: Any
) -> None:
    gate.client.set_fault(service, method, kind, rate, seed=SEED, **options)


def injected(gate: Gate, service: str, method: str, kind: str) -> int:
    return int(gate.client.faults()["injected"].get(service, {}).get(method, {}).get(kind, 0))


def invocations_of(gate: Gate, function: str) -> int:
    return sum(1 for i in gate.server.sandbox.invocations() if i["function"] == function)


def only_on(gate: Gate, monkeypatch: pytest.MonkeyPatch, function: str) -> None:
    """Let Lambda faults hit `function` alone (a Lambda fault names no function: it fails
    every function's invocations). The DynamoDB and Step Functions hook keeps the
    sandbox's own ``choose``."""
    faults = gate.server.sandbox.faults
    choose = faults.choose

    def scoped(service: str, method: str, body: Any) -> Any:
        if service == "lambda" and body.get("function") != function:
            return None
        return choose(service, method, body)

    monkeypatch.setattr(faults, "choose", scoped)


def attempts(gate: Gate, token: str) -> list[dict[str, Any]]:
    """The gate's PutApprovalResult attempts for this run that may have taken effect."""
    return run_attempts(
        gate.client.codepipeline_calls(), gate.server.sandbox.codepipeline.run_by_token(token)
    )


def approve_and_check_once(gate: Gate, run: dict[str, Any], approval_id: str) -> None:
    """Wait for the workflow to report and end; CodePipeline heard one decision, once."""
    token = run["approvalToken"]
    assert gate.wait_result(token, timeout=30)["result"]["status"] == "Approved"
    gate.wait_execution(approval_id, timeout=40)
    assert [r["result"]["status"] for r in gate.results_for(token)] == ["Approved"]
    assert len(attempts(gate, token)) == 1
    record = gate.approval_for(token)
    assert record["outcome"] == "approved"


def failed_tasks(gate: Gate, approval_id: str) -> list[str]:
    """The error of each failed task of the approval's execution, oldest first."""
    return [
        e["taskFailedEventDetails"]["error"]
        for e in gate.history(approval_id)
        if e["type"] == "TaskFailed"
    ]


# ---------------------------------------------------------------------- Lambda


def test_start_approval_that_raised_is_retried_asynchronously_and_asks_once(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The SNS-invoked start_approval fails (the function raised): Lambda's asynchronous
    retry (patch 24) invokes it again, and the request is posted once and decided."""
    only_on(gate, monkeypatch, "StartApprovalFunction")
    before = invocations_of(gate, "StartApprovalFunction")
    set_fault(gate, "lambda", "Invoke", "error", 1)
    try:
        run = gate.start_run()
        wait_for(
            lambda: injected(gate, "lambda", "Invoke", "error") or None,
            timeout=15,
            what="start_approval to fail",
        )
    finally:
        set_fault(gate, "lambda", "Invoke", "error", 0)

    approval = gate.approval_for(run["approvalToken"], timeout=15)
    message = gate.request_message(approval["approval_id"], timeout=20)
    assert invocations_of(gate, "StartApprovalFunction") - before == 2  # failed, then retried
    assert gate.click(message, "U0ALICE", "approve") == 200
    approve_and_check_once(gate, run, approval["approval_id"])
    assert len(request_posts(gate, approval["approval_id"])) == 1, "posted more than once"


def test_the_ask_state_retries_a_function_that_raised(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ask function raises on its first invocation: the Ask state's retry asks again,
    the request is posted, and a click decides it."""
    only_on(gate, monkeypatch, "AskApproversFunction")
    set_fault(gate, "lambda", "Invoke", "error", 1)
    try:
        run = gate.start_run()
        wait_for(
            lambda: injected(gate, "lambda", "Invoke", "error") or None,
            timeout=15,
            what="the ask to fail",
        )
    finally:
        set_fault(gate, "lambda", "Invoke", "error", 0)

    approval = gate.approval_for(run["approvalToken"])
    approval_id = approval["approval_id"]
    message = gate.request_message(approval_id, timeout=20)
    assert failed_tasks(gate, approval_id) == ["InjectedFunctionError"]
    assert gate.click(message, "U0ALICE", "approve") == 200
    approve_and_check_once(gate, run, approval_id)


def test_a_click_whose_function_timed_out_still_decides_once(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Lambda stops the click's function past its timeout, after it did its work: the vote
    counts, and CodePipeline hears the decision once."""
    only_on(gate, monkeypatch, "SlackInteractionsFunction")
    run, approval, message = gate.open_approval()
    approval_id = approval["approval_id"]
    before = invocations_of(gate, "SlackInteractionsFunction")
    set_fault(gate, "lambda", "Invoke", "timeout", 1, delay=0.5)
    try:
        status = gate.click(message, "U0ALICE", "approve")
        wait_for(
            lambda: invocations_of(gate, "SlackInteractionsFunction") > before or None,
            timeout=15,
            what="the click's function to run",
        )
    finally:
        set_fault(gate, "lambda", "Invoke", "timeout", 0)

    assert status != 200  # API Gateway saw the function fail
    assert injected(gate, "lambda", "Invoke", "timeout") >= 1
    approve_and_check_once(gate, run, approval_id)
    assert gate.approval_for(run["approvalToken"])["decided_by"] == ["U0ALICE"]


# ---------------------------------------------------------------------- throttling


def test_throttled_send_task_success_still_decides_each_approval_once(gate: Gate) -> None:
    """Half the clicks' SendTaskSuccess calls are throttled: botocore retries them (five
    attempts), and every approval is decided exactly once, by its click. Approvals go on
    until a click was throttled and still answered 200 (botocore's retry delivered it). A
    click whose five attempts were all throttled answers 500; its vote was recorded, and
    the next reminder cycle hands it on: still decided once."""
    set_fault(gate, "stepfunctions", "SendTaskSuccess", "throttled", 0.5)
    # Five attempts back off up to 1 + 2 + 4 + 8 s: a click may take that long to answer
    # here (Slack would show its error after 3 s; the vote is recorded all the same).
    gate.client.timeout = 30.0
    for _ in range(10):
        run, approval, message = gate.open_approval()
        before = injected(gate, "stepfunctions", "SendTaskSuccess", "throttled")
        status = gate.click(message, "U0ALICE", "approve")
        throttled = injected(gate, "stepfunctions", "SendTaskSuccess", "throttled") > before
        approve_and_check_once(gate, run, approval["approval_id"])
        assert gate.approval_for(run["approvalToken"])["decided_by"] == ["U0ALICE"]
        if throttled and status == 200:
            return
    pytest.fail("no throttled click was delivered by a retry in 10 approvals at rate 0.5")


def test_throttled_dynamodb_still_asks_and_decides_once(gate: Gate) -> None:
    """A third of the gate functions' DynamoDB calls are throttled (botocore retries each up
    to five attempts; a step or an SNS invocation that still fails is retried by the
    workflow or by Lambda): the run is asked and decided once. A click that still failed
    (500, about 1 % here) is clicked again, as a person would."""
    set_fault(gate, "dynamodb", "*", "throttled", 0.3)
    run, approval, message = gate.open_approval()
    if gate.click(message, "U0ALICE", "approve") != 200:
        assert gate.click(message, "U0ALICE", "approve") == 200
    approve_and_check_once(gate, run, approval["approval_id"])
    thrown = gate.client.faults()["injected"]["dynamodb"]
    assert sum(kinds.get("throttled", 0) for kinds in thrown.values()) >= 1


# ---------------------------------------------------------------------- index lag


def console_decision_right_after_the_request(
    gate: Gate,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """The execution index lags 2 s; CodePipeline's console approves as soon as the request
    is in Slack, so pipeline_events' first query does not see the approval yet."""
    set_fault(gate, "dynamodb", "Query", "index_lag", 1, delay=2)
    run, approval, message = gate.open_approval()
    answer = gate.client.post(f"/_sandbox/pipelines/web-app/approvals/{run['approvalToken']}", {})
    assert "approvedAt" in answer
    return run, approval, message


def test_a_console_decision_within_the_index_lag_closes_the_request(gate: Gate) -> None:
    run, approval, message = console_decision_right_after_the_request(gate)
    closed = gate.wait_closed(message, timeout=8)
    assert "approved in the codepipeline console" in str(closed["blocks"]).lower()
    gate.wait_execution(approval["approval_id"], timeout=20)
    assert gate.approval_for(run["approvalToken"])["outcome"] == "decided_elsewhere"
    assert [r["source"] for r in gate.results_for(run["approvalToken"])] == ["console"]
    assert injected(gate, "dynamodb", "Query", "index_lag") >= 1


def test_without_looking_again_the_lagging_index_misses_the_console_decision(
    gate: Gate, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same with closing's second looks removed (the handlers import this very
    module): the request is still open past the bound, so the test above depends on them
    and the sandbox's lag is real."""
    monkeypatch.setattr(closing, "INDEX_LAG_WAITS", ())
    _, approval, message = console_decision_right_after_the_request(gate)
    try:
        with pytest.raises(TimeoutError):
            gate.wait_closed(message, timeout=8)
        assert injected(gate, "dynamodb", "Query", "index_lag") >= 1
    finally:  # the workflow would wait for its deadline: end it
        arn = gate.execution_for(approval["approval_id"])["executionArn"]
        gate.server.sandbox.client("stepfunctions").stop_execution(executionArn=arn)


# ---------------------------------------------------------------------- the context


def test_a_lambda_context_counts_down() -> None:
    context = LambdaContext(function_name="f", invoked_function_arn="arn", timeout_ms=3_000)
    first = context.get_remaining_time_in_millis()
    started = time.monotonic()
    while time.monotonic() - started < 0.05:  # bounded spin: 50 ms of monotonic time
        pass
    later = context.get_remaining_time_in_millis()
    assert first <= 3_000
    assert later <= first - 50
    assert later >= 3_000 - int((time.monotonic() - started) * 1000) - 50
    spent = LambdaContext(function_name="f", invoked_function_arn="arn", timeout_ms=0)
    assert spent.get_remaining_time_in_millis() == 0
