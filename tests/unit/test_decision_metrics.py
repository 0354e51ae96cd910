"""The decision metrics (EMF): what a closed request and a reminder cycle print, once.

Each test runs the domain step as the workflow does (close, remind) on moto's DynamoDB,
captures the EMF lines printed, and reads their `_aws` blocks back.
"""

from __future__ import annotations

import io
import json
import logging
from datetime import datetime, timedelta
from typing import Any

import pytest
from approval_gate.closing import at_deadline, close, settle_elsewhere
from approval_gate.decision_metrics import MeteredStore, at_close, at_reminder, emit
from approval_gate.metering import emit_metrics
from approval_gate.policy import Escalation
from approval_gate.reminders import remind
from approval_gate.runtime import METRICS_NAMESPACE
from approval_gate.store import APPROVED, HELD, REJECTED, Approval, ApprovalStore, Hold

from tests.unit.conftest import TABLE
from tests.unit.fakes import (
    APPROVAL_ID,
    EXECUTION_ID,
    FIXED,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)

SERVICE = "approval-gate"


def _measure(approval: Approval) -> None:
    emit(at_close(approval), namespace=METRICS_NAMESPACE, service=SERVICE)  # prints


@pytest.fixture
def metered(dynamodb) -> MeteredStore:
    return MeteredStore(TABLE, dynamodb, 400, measure=_measure)


def _metrics(printed: str) -> dict[str, dict[str, Any]]:
    """Each metric in the EMF lines printed: {name: {unit, value, dimensions, namespace}}."""
    found: dict[str, dict[str, Any]] = {}
    for line in printed.splitlines():
        blob = json.loads(line)
        assert blob["message"] == "metrics" and blob["level"] == "INFO"  # reads as a log line
        (directive,) = blob["_aws"]["CloudWatchMetrics"]
        (dimensions,) = directive["Dimensions"]
        assert isinstance(blob["_aws"]["Timestamp"], int)
        for metric in directive["Metrics"]:
            name = metric["Name"]
            assert name not in found, f"{name} emitted twice"
            values = blob[name] if isinstance(blob[name], list) else [blob[name]]
            assert len(values) == 1, f"{name} recorded {len(values)} times in one line"
            found[name] = {
                "unit": metric["Unit"],
                "value": values[0],
                "dimensions": {key: blob[key] for key in dimensions},
                "namespace": directive["Namespace"],
            }
    return found


def _by_outcome(outcome: str) -> dict[str, str]:
    return {"pipeline": "prod-web", "outcome": outcome, "service": SERVICE}


BY_PIPELINE = {"pipeline": "prod-web", "service": SERVICE}


def _close(store: ApprovalStore, at: datetime, **kwargs: Any) -> dict[str, Any]:
    return close(
        APPROVAL_ID,
        report_error=kwargs.pop("report_error", None),
        store=store,
        slack=RecordingSlack(),
        codepipeline=None,
        clock=clock_at(at),
        **kwargs,
    )


def _decide(store: ApprovalStore, status: str, after: timedelta, **kwargs: Any) -> None:
    store.create(make_approval())
    store.save_message(APPROVAL_ID, "C0DEPLOYS", "1796144400.000100")
    store.decide(
        APPROVAL_ID, status=status, decided_by=("U0ALICE",), reason=None, at=FIXED + after, **kwargs
    )


@pytest.mark.parametrize(("status", "outcome"), [(APPROVED, "approved"), (REJECTED, "rejected")])
def test_a_decision_in_slack_counts_once_with_its_time_to_decision(
    metered, capsys, status, outcome
):
    _decide(metered, status, timedelta(minutes=7, seconds=30))

    record = _close(metered, FIXED + timedelta(minutes=8), reported=True)

    assert record["outcome"] == outcome
    assert _metrics(capsys.readouterr().out) == {
        "Decisions": {
            "unit": "Count",
            "value": 1,
            "dimensions": _by_outcome(outcome),
            "namespace": "ApprovalGate",
        },
        "TimeToDecision": {
            "unit": "Seconds",
            "value": 450.0,  # decided_at - requested_at, not the close's time
            "dimensions": _by_outcome(outcome),
            "namespace": "ApprovalGate",
        },
    }


def test_an_approval_that_ran_out_of_time_counts_as_expired(metered, capsys):
    metered.create(make_approval())
    deadline = FIXED + timedelta(hours=1)
    at_deadline(APPROVAL_ID, store=metered, clock=clock_at(deadline))

    _close(metered, deadline + timedelta(seconds=2), reported=True)

    found = _metrics(capsys.readouterr().out)
    assert set(found) == {"Decisions", "TimeToDecision", "Expired"}
    assert found["Decisions"]["dimensions"] == _by_outcome("expired")
    assert found["TimeToDecision"]["value"] == 3600.0
    assert found["Expired"] == {
        "unit": "Count",
        "value": 1,
        "dimensions": BY_PIPELINE,  # no outcome: it is one
        "namespace": "ApprovalGate",
    }


def test_an_approval_decided_in_the_console_counts_as_decided_elsewhere(metered, capsys):
    metered.create(make_approval())
    settled_at = FIXED + timedelta(minutes=3)
    settle_elsewhere(
        pipeline_execution_id=EXECUTION_ID,
        stage="Approve",
        action="ProductionGate",
        note="Approved in the CodePipeline console",
        store=metered,
        sfn=RecordingSfn(),
        clock=clock_at(settled_at),
        sleep=lambda _: None,
    )
    assert capsys.readouterr().out == ""  # the close measures it, not the settling

    _close(metered, settled_at + timedelta(seconds=1))

    found = _metrics(capsys.readouterr().out)
    assert set(found) == {"Decisions", "TimeToDecision"}
    assert found["Decisions"]["dimensions"] == _by_outcome("decided_elsewhere")
    assert found["TimeToDecision"]["value"] == 180.0


def test_a_decision_codepipeline_did_not_take_counts_as_decided_elsewhere(metered, capsys):
    _decide(metered, APPROVED, timedelta(minutes=2))

    _close(
        metered,
        FIXED + timedelta(minutes=5),
        report_error="CodePipeline.InvalidApprovalTokenException",
    )

    found = _metrics(capsys.readouterr().out)
    assert found["Decisions"]["dimensions"] == _by_outcome("decided_elsewhere")
    assert found["TimeToDecision"]["value"] == 300.0  # when the gate learnt it


def test_a_held_approval_measures_how_long_it_was_held_when_reported(metered, capsys):
    decided = timedelta(minutes=10)
    hold = Hold(until=FIXED + timedelta(hours=2), why="window")
    _decide(metered, HELD, decided, held=hold)
    metered.release(APPROVAL_ID, status=APPROVED)
    assert capsys.readouterr().out == ""

    _close(metered, FIXED + timedelta(hours=2, seconds=5), reported=True)

    found = _metrics(capsys.readouterr().out)
    assert set(found) == {"Decisions", "TimeToDecision", "HeldSeconds"}
    assert found["Decisions"]["dimensions"] == _by_outcome("approved")
    assert found["TimeToDecision"]["value"] == 600.0
    assert found["HeldSeconds"] == {
        "unit": "Seconds",
        "value": 2 * 3600 + 5 - 600.0,  # reported_at - the hold's start (the decision)
        "dimensions": BY_PIPELINE,
        "namespace": "ApprovalGate",
    }


def test_a_retried_close_finds_the_request_closed_and_emits_nothing(metered, capsys):
    _decide(metered, APPROVED, timedelta(minutes=1))
    _close(metered, FIXED + timedelta(minutes=2), reported=True)
    assert set(_metrics(capsys.readouterr().out)) == {"Decisions", "TimeToDecision"}

    record = _close(metered, FIXED + timedelta(minutes=3), reported=True)

    assert record["outcome"] == "approved"
    assert capsys.readouterr().out == ""


def test_a_close_whose_slack_update_fails_has_measured_already(metered, capsys):
    """The step fails after its write (Slack down) and is retried: counted once."""

    class SlackDown(RecordingSlack):
        def chat_update(self, **kwargs: Any) -> dict[str, Any]:
            raise OSError("connection reset")

    _decide(metered, REJECTED, timedelta(minutes=1))
    with pytest.raises(OSError):
        close(
            APPROVAL_ID,
            report_error=None,
            reported=True,
            store=metered,
            slack=SlackDown(),
            codepipeline=None,
            clock=clock_at(FIXED + timedelta(minutes=2)),
        )
    _close(metered, FIXED + timedelta(minutes=3), reported=True)

    assert set(_metrics(capsys.readouterr().out)) == {"Decisions", "TimeToDecision"}


def _remind(store: ApprovalStore, minutes: int) -> list[str]:
    """One reminder cycle as remind_approvers runs it: the EMF lines it emits."""
    printed: list[str] = []
    before = store.get(APPROVAL_ID)
    result = remind(
        APPROVAL_ID,
        store=store,
        slack=RecordingSlack(),
        clock=clock_at(FIXED + timedelta(minutes=minutes)),
    )
    emit(at_reminder(before, result), namespace=METRICS_NAMESPACE, out=printed.append)
    return printed


def test_each_reminder_counts_once_and_the_escalation_once(store):
    rules = make_rules(escalate_after_reminders=2, escalation=Escalation(channel="C0ONCALL"))
    store.create(make_approval(rules=rules))
    store.save_message(APPROVAL_ID, "C0DEPLOYS", "1796144400.000100")

    cycles = [_metrics("\n".join(_remind(store, n))) for n in (1, 2, 3, 4)]

    assert [sorted(found) for found in cycles] == [
        ["Reminders"],
        ["Escalations", "Reminders"],  # the second reminder escalates
        ["Reminders"],
        ["Reminders"],
    ]
    assert cycles[1]["Escalations"]["unit"] == "Count"
    assert all(found["Reminders"]["value"] == 1 for found in cycles)
    assert cycles[0]["Reminders"]["dimensions"] == {"pipeline": "prod-web"}
    assert store.get(APPROVAL_ID).reminders == 4


def test_a_reminder_cycle_that_finds_the_request_decided_emits_nothing(store):
    _decide(store, APPROVED, timedelta(minutes=1))

    assert _remind(store, 5) == []


def test_the_functions_emit_where_their_log_lines_go(monkeypatch):
    """The sandbox points the gate logger's handler at its captured logs: the EMF lines
    follow it, so they never land in a demo's or a sandbox's stdout."""
    stream = io.StringIO()
    gate = logging.getLogger(SERVICE)
    monkeypatch.setattr(gate, "handlers", [logging.StreamHandler(stream)])

    emit_metrics(at_close(make_approval(status=APPROVED, decided_at=FIXED + timedelta(seconds=9))))

    found = _metrics(stream.getvalue())
    assert found["TimeToDecision"]["value"] == 9.0
    assert found["Decisions"]["namespace"] == "ApprovalGate"
    assert found["Decisions"]["dimensions"] == _by_outcome("approved")
