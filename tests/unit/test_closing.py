"""The close step after PutApprovalResult met ApprovalAlreadyCompletedException: the gate's
own decision (recorded by CodePipeline, its answer lost) closes as decided; another
decision, or none CodePipeline can tell, closes as decided elsewhere."""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.closing import close
from approval_gate.reporting import summary
from approval_gate.store import APPROVED, DECIDED_ELSEWHERE, ApprovalStore

from tests.unit.fakes import (
    APPROVAL_ID,
    EXECUTION_ID,
    FIXED,
    ActionExecutions,
    RecordingSlack,
    clock_at,
    make_approval,
)

ALREADY_COMPLETED = "CodePipeline.ApprovalAlreadyCompletedException"


def _approved_by_alice(store: ApprovalStore) -> str:
    """An approval approved in Slack by U0ALICE; returns the summary the gate sent."""
    store.create(make_approval())
    store.save_message(APPROVAL_ID, "C0DEPLOYS", "1796144400.000100")
    decided = store.decide(
        APPROVAL_ID,
        status=APPROVED,
        decided_by=("U0ALICE",),
        reason=None,
        at=FIXED + timedelta(minutes=5),
    )
    return summary(decided)


def _close(store: ApprovalStore, codepipeline: ActionExecutions) -> dict[str, Any]:
    return close(
        APPROVAL_ID,
        report_error=ALREADY_COMPLETED,
        store=store,
        slack=RecordingSlack(),
        codepipeline=codepipeline,
        clock=clock_at(FIXED + timedelta(minutes=6)),
    )


def test_the_gates_own_decision_recorded_closes_as_decided(store, gate_log):
    sent = _approved_by_alice(store)
    codepipeline = ActionExecutions("Succeeded", sent)

    record = _close(store, codepipeline)

    assert record["outcome"] == "approved"
    assert record["decided_by"] == ["U0ALICE"]
    assert store.get(APPROVAL_ID).status == APPROVED
    assert codepipeline.calls[0]["filter"] == {"pipelineExecutionId": EXECUTION_ID}
    assert "CodePipeline already holds the gate's own decision" in gate_log.messages


@pytest.mark.parametrize(
    ("status", "held"),
    [
        ("Succeeded", "Approved in the console"),  # another approver's summary
        ("Failed", None),  # the opposite decision
    ],
)
def test_another_decision_closes_as_decided_elsewhere(store, status, held):
    sent = _approved_by_alice(store)
    codepipeline = ActionExecutions(status, held if held is not None else sent)

    record = _close(store, codepipeline)

    assert record["outcome"] == "decided_elsewhere"
    assert record["decided_by"] == []
    assert store.get(APPROVAL_ID).status == DECIDED_ELSEWHERE
    assert store.get(APPROVAL_ID).note == "Already decided in CodePipeline"


def test_an_unreadable_record_closes_as_decided_elsewhere_with_a_warning(store, gate_log):
    _approved_by_alice(store)
    codepipeline = ActionExecutions("Succeeded", None, error="AccessDeniedException")

    record = _close(store, codepipeline)

    assert record["outcome"] == "decided_elsewhere"
    assert store.get(APPROVAL_ID).status == DECIDED_ELSEWHERE
    warnings = [r for r in gate_log.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "could not read CodePipeline's record of the approval"
    ]
    assert getattr(warnings[0], "error", None) == "AccessDeniedException"
