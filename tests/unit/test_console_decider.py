"""Who decided in the CodePipeline console: read from the approval's action execution
(updatedBy and its comment), turned into the settlement, recorded, and shown."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_gate.closed_messages import (
    closed_blocks,
    outcome_line,
)
from approval_gate.closing import settle_elsewhere
from approval_gate.feed.details import ActionDetails, action_details, principal
from approval_gate.feed.events import PipelineEvent
from approval_gate.feed.settlement import (
    APPROVED_IN_CONSOLE,
    REJECTED_BY_SOMEONE,
    REJECTED_IN_CONSOLE,
    SUPERSEDED,
    Settlement,
    settlement,
)
from approval_gate.store import DECIDED_ELSEWHERE, ApprovalStore
from botocore.exceptions import ClientError

from tests.unit.fakes import APPROVAL_ID, EXECUTION_ID, FIXED, RecordingSfn, clock_at, make_approval

JANE = "arn:aws:sts::123456789012:assumed-role/Dev/jane"
GATE = "arn:aws:sts::123456789012:assumed-role/ApprovalGateStateMachineRole/approval-gate"


def approval_event(state: str, kind: str = "action") -> PipelineEvent:
    return PipelineEvent(
        kind=kind,
        event_id="5e1f0c2a-0000-4000-8000-000000000001",
        time=FIXED,
        region="us-east-2",
        account="123456789012",
        pipeline="prod-web",
        execution_id=EXECUTION_ID,
        state=state,
        stage="Approve" if kind == "action" else None,
        action="ProductionGate" if kind == "action" else None,
        category="Approval" if kind == "action" else None,
    )


def execution(status: str, minute: int, by: str | None, summary: str | None) -> dict[str, Any]:
    detail: dict[str, Any] = {
        "pipelineExecutionId": EXECUTION_ID,
        "stageName": "Approve",
        "actionName": "ProductionGate",
        "status": status,
        "lastUpdateTime": datetime(2026, 12, 1, 17, minute, tzinfo=UTC),
        "output": {"executionResult": {"externalExecutionSummary": summary} if summary else {}},
    }
    if by is not None:
        detail["updatedBy"] = by
    return detail


class Executions:
    """ListActionExecutions answering the given details, or raising `error`."""

    def __init__(self, *details: dict[str, Any], error: str | None = None) -> None:
        self.details = list(details)
        self.error = error
        self.calls = 0

    def list_action_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls += 1
        if self.error:
            raise ClientError({"Error": {"Code": self.error, "Message": "slow down"}}, "List")
        return {"actionExecutionDetails": self.details}


# --------------------------------------------------------------------------- reading


@pytest.mark.parametrize(
    "value",
    [
        JANE,
        "arn:aws:iam::123456789012:user/ops/lead",
        "arn:aws:iam::123456789012:root",
        "arn:aws-us-gov:sts::123456789012:federated-user/jane@example.com",
    ],
)
def test_an_iam_or_sts_principal_is_who_decided(value):
    assert principal(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        42,
        "",
        "ops@example.com",
        "U0ALICE",
        "arn:aws:sts::123456789012:assumed-role/Dev/<!channel>",
        "arn:aws:sts::123456789012:assumed-role/Dev/jane\nrm -rf",
        "arn:aws:s3:::bucket/key",
        "arn:aws:sts::123456789012:assumed-role/" + "x" * 1100,
    ],
)
def test_anything_else_names_nobody(value):
    assert principal(value) is None


def test_the_newest_execution_with_the_events_outcome_names_who_and_the_comment():
    codepipeline = Executions(
        execution("Failed", 1, "arn:aws:iam::123456789012:user/old", "an earlier run"),
        execution("Succeeded", 9, JANE, "Canary\nis green " + "ok " * 300),
        execution("Succeeded", 5, GATE, "older"),
    )

    details = action_details(codepipeline, approval_event("SUCCEEDED"))

    assert details is not None
    assert details.updated_by == JANE
    assert details.comment is not None and details.comment.startswith("Canary is green ok")
    assert "\n" not in details.comment and len(details.comment) <= 512
    assert codepipeline.calls == 1


def test_an_execution_that_did_not_end_as_the_event_says_names_nobody():
    codepipeline = Executions(execution("InProgress", 9, JANE, None))

    details = action_details(codepipeline, approval_event("SUCCEEDED"))

    assert details is not None and (details.updated_by, details.comment) == (None, None)


def test_codepipeline_failing_names_nobody_and_warns(gate_log):
    details = action_details(Executions(error="ThrottlingException"), approval_event("FAILED"))

    assert details is None
    assert "could not read the action's details" in gate_log.text
    assert [getattr(r, "error", None) for r in gate_log.records] == ["ThrottlingException"]


# --------------------------------------------------------------------------- settling


def test_a_console_approval_with_its_principal_is_theirs_with_the_comment():
    details = ActionDetails(updated_by=JANE, comment="Canary is green")

    assert settlement(approval_event("SUCCEEDED"), details, "en") == Settlement(
        APPROVED_IN_CONSOLE, decided_by=(JANE,), reason="Canary is green"
    )


def test_a_console_rejection_with_its_principal_keeps_the_comment_out_of_the_note():
    details = ActionDetails(summary="Error rate is up", updated_by=JANE, comment="Error rate is up")

    assert settlement(approval_event("FAILED"), details, "en") == Settlement(
        REJECTED_BY_SOMEONE, decided_by=(JANE,), reason="Error rate is up"
    )


@pytest.mark.parametrize("details", [None, ActionDetails(summary="Approval expired")])
def test_without_a_principal_the_note_alone_as_before(details):
    said = settlement(approval_event("FAILED"), details, "en")

    summary = details.summary if details else None
    assert said == Settlement(
        f"{REJECTED_IN_CONSOLE}: {summary}" if summary else REJECTED_IN_CONSOLE
    )


def test_a_pipeline_event_never_names_a_decider():
    said = settlement(
        approval_event("SUPERSEDED", kind="pipeline"), ActionDetails(updated_by=JANE), "en"
    )

    assert said == Settlement(SUPERSEDED)


def test_settle_elsewhere_records_who_and_why_in_the_closing_write(store: ApprovalStore):
    store.create(make_approval())

    closed = settle_elsewhere(
        pipeline_execution_id=EXECUTION_ID,
        stage="Approve",
        action="ProductionGate",
        note=APPROVED_IN_CONSOLE,
        decided_by=(JANE,),
        reason="Canary is green",
        store=store,
        sfn=RecordingSfn(),
        clock=clock_at(FIXED + timedelta(minutes=3)),
        sleep=lambda _: None,
    )

    assert closed == [APPROVAL_ID]
    record = store.get(APPROVAL_ID)
    assert record is not None and record.status == DECIDED_ELSEWHERE
    assert (record.decided_by, record.reason) == ((JANE,), "Canary is green")
    assert record.decision_record()["decided_by"] == [JANE]


# --------------------------------------------------------------------------- showing


def test_the_closed_message_names_the_principal_by_its_last_segment_and_the_comment():
    approval = make_approval()._replace(
        status=DECIDED_ELSEWHERE,
        note=APPROVED_IN_CONSOLE,
        decided_by=(JANE,),
        reason="Canary is green",
        decided_at=FIXED + timedelta(minutes=3),
    )

    line = outcome_line(approval)

    assert line.startswith(":arrow_right_hook: *Approved in the CodePipeline console by jane* ")
    assert line.endswith("\n>Canary is green")
    assert "Canary is green" in json.dumps(closed_blocks(approval))


def test_a_settlement_without_a_principal_names_nobody():
    approval = make_approval()._replace(status=DECIDED_ELSEWHERE, note=SUPERSEDED, decided_at=FIXED)

    assert outcome_line(approval).startswith(":arrow_right_hook: *Superseded by a newer run* ")
