"""Who decided in the CodePipeline console, and why: the decision record names them.

A console decision reaches the gate as the approval action's end event; the
pipeline_events function reads the action's execution (ListActionExecutions' `updatedBy`
and the comment) and records both, in the write that closes the request.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.client import wait_for
from tests.conftest import Gate

JANE = "arn:aws:sts::123456789012:assumed-role/Dev/jane"
OPS = "arn:aws:iam::123456789012:user/ops-lead"


@pytest.fixture(autouse=True)
def no_faults_after(gate: Gate) -> Iterator[None]:
    yield
    gate.server.sandbox.faults.reset()


def decide_in_console(gate: Gate, run: dict[str, Any], **body: Any) -> None:
    gate.client.post(f"/_sandbox/pipelines/web-app/approvals/{run['approvalToken']}", body)


def closed_record(gate: Gate, approval: dict[str, Any]) -> dict[str, Any]:
    execution = gate.wait_execution(approval["approval_id"])
    assert execution["status"] == "SUCCEEDED"
    record: dict[str, Any] = json.loads(execution["output"])
    assert record["outcome"] == "decided_elsewhere"
    return record


def test_a_console_approval_records_who_approved_and_their_comment(gate):
    run, approval, message = gate.open_approval()

    decide_in_console(gate, run, status="Approved", summary="Hotfix verified on staging", by=JANE)

    record = closed_record(gate, approval)
    assert record["decided_by"] == [JANE]
    assert record["reason"] == "Hotfix verified on staging"
    shown = json.dumps(gate.wait_closed(message)["blocks"])
    assert "Approved in the CodePipeline console by jane" in shown
    assert "Hotfix verified on staging" in shown
    assert [r["source"] for r in gate.results_for(run["approvalToken"])] == ["console"]
    listed = next(a for a in gate.client.approvals() if a["approval_id"] == approval["approval_id"])
    assert (listed["decided_by"], listed["reason"]) == ([JANE], "Hotfix verified on staging")


def test_a_console_rejection_records_who_rejected_and_why_on_one_line(gate):
    run, approval, message = gate.open_approval()

    decide_in_console(gate, run, status="Rejected", summary="Error rate\nis up", by=OPS)

    record = closed_record(gate, approval)
    assert record["decided_by"] == [OPS]
    assert record["reason"] == "Error rate is up"  # one line, as the gate keeps reasons
    shown = json.dumps(gate.wait_closed(message)["blocks"])
    assert "Rejected in the CodePipeline console by ops-lead" in shown
    assert "Error rate is up" in shown


def test_codepipeline_failing_to_say_who_closes_it_as_before_and_logs_why(gate):
    run, approval, message = gate.open_approval()
    gate.client.set_fault("codepipeline", "ListActionExecutions", "throttled", 1, seed="who")

    decide_in_console(gate, run, status="Approved", summary="looked fine", by=JANE)

    record = closed_record(gate, approval)
    assert (record["decided_by"], record["reason"]) == ([], None)
    shown = json.dumps(gate.wait_closed(message)["blocks"])
    assert "Approved in the CodePipeline console" in shown and "jane" not in shown
    wait_for(
        lambda: "could not read the action's details" in gate.logs() or None,
        what="the warning that CodePipeline did not say who decided",
    )
    assert run["approvalToken"] not in gate.logs()


def test_a_gate_decision_is_not_rewritten_by_its_own_end_event(gate):
    run, approval, message = gate.open_approval()

    assert gate.click(message, "U0ALICE", "approve") == 200

    record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
    assert (record["outcome"], record["decided_by"]) == ("approved", ["U0ALICE"])
    # The approval's end event reaches pipeline_events and changes nothing; with no open
    # approval left to settle, it reads nobody's decision from CodePipeline.
    wait_for(
        lambda: (
            any(
                d["target"] == "PipelineEventsFunction"
                and d["event"]["detail"].get("execution-id") == run["pipelineExecutionId"]
                and d["event"]["detail"].get("stage") == approval["stage"]
                and d["event"]["detail"].get("state") == "SUCCEEDED"
                and "action" in d["event"]["detail"]
                for d in gate.client.get("/_sandbox/events")
            )
            or None
        ),
        what="the approval's end event delivered",
    )
    assert gate.server.sandbox.wait_for_events(timeout=10)
    assert not any(
        c["method"] == "ListActionExecutions"
        and c["args"].get("filter", {}).get("pipelineExecutionId") == run["pipelineExecutionId"]
        for c in gate.client.codepipeline_calls()
    )
    gate.server.sandbox.wait_for_executions(timeout=10)
    listed = next(a for a in gate.client.approvals() if a["approval_id"] == approval["approval_id"])
    assert (listed["outcome"], listed["decided_by"]) == ("approved", ["U0ALICE"])
