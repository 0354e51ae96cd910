"""start_requests: each record of an SNS event started once, counted, and logged."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from approval_gate.policy import Policy, PolicyError, load_policy_file
from approval_gate.starting import start_requests
from approval_gate.store import PENDING, ApprovalStore

from tests.unit.events import SAMPLE_APPROVAL_ID, SAMPLE_TOKEN, load_event
from tests.unit.fakes import EXECUTION_ID, FIXED, REPO, clock_at

STATE_MACHINE_ARN = "arn:aws:states:us-east-2:123456789012:stateMachine:approval-gate"
#: Who started the run: an SSO session named by the person's email.
STARTED_BY = "arn:aws:sts::123456789012:assumed-role/AWSReservedSSO_Dev/alice@example.com"


class FakeCodePipeline:
    """The sample request's pipeline: its approval waits in EXECUTION_ID, started by Alice."""

    def get_pipeline_state(self, name: str) -> dict[str, Any]:
        action = {"actionName": "ProductionGate", "latestExecution": {"token": SAMPLE_TOKEN}}
        stage = {
            "stageName": "Approve",
            "latestExecution": {"pipelineExecutionId": EXECUTION_ID},
            "actionStates": [action],
        }
        return {"stageStates": [stage]}

    def get_pipeline_execution(self, pipelineName: str, pipelineExecutionId: str) -> dict:
        trigger = {"triggerType": "StartPipelineExecution", "triggerDetail": STARTED_BY}
        return {"pipelineExecution": {"artifactRevisions": [], "trigger": trigger}}


class FakeSfn:
    def __init__(self) -> None:
        self.started: list[dict[str, Any]] = []

    def start_execution(self, **kwargs: Any) -> dict[str, Any]:
        self.started.append(kwargs)
        return {}


class LookupSlack:
    def users_lookupByEmail(self, email: str) -> dict[str, Any]:
        return {"ok": True, "user": {"id": "U0ALICE"}}


class Collaborators:
    """start_requests' collaborators; `asked` records each time the Slack client is asked for."""

    def __init__(self, store: ApprovalStore) -> None:
        self.store = store
        self.sfn = FakeSfn()
        self.asked: list[str] = []

    def slack_client(self) -> LookupSlack:
        self.asked.append("slack")
        return LookupSlack()

    def start(self, event: Any, load_policy: Any = None) -> dict[str, int]:
        return start_requests(
            event,
            load_policy=load_policy or standard_policy,
            store=self.store,
            codepipeline=FakeCodePipeline(),
            codecommit=None,
            sfn=self.sfn,
            slack_client=self.slack_client,
            state_machine_arn=STATE_MACHINE_ARN,
            clock=clock_at(FIXED),
        )


def standard_policy() -> Policy:
    return load_policy_file(REPO / "tests" / "policies" / "standard.yaml")


def test_a_request_starts_once_and_a_redelivery_is_counted_as_a_duplicate(
    store: ApprovalStore, gate_log: pytest.LogCaptureFixture
) -> None:
    gate = Collaborators(store)

    first = gate.start(load_event("sns_approval"))
    again = gate.start(load_event("sns_approval"))

    assert first == {"started": 1, "duplicates": 0, "rejected": 0}
    assert again == {"started": 0, "duplicates": 1, "rejected": 0}
    stored = store.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.pipeline_execution_id) == (PENDING, EXECUTION_ID)
    assert (stored.authors, stored.author_users) == ((STARTED_BY,), ("U0ALICE",))
    assert gate.asked == ["slack"]  # only the new request looked its author up
    (execution,) = {call["name"] for call in gate.sfn.started}  # the same one, twice
    assert execution.endswith(SAMPLE_APPROVAL_ID)
    assert len(gate.sfn.started) == 2
    assert json.loads(gate.sfn.started[0]["input"])["approval_id"] == SAMPLE_APPROVAL_ID
    started, duplicate = gate_log.records
    assert (started.levelno, started.getMessage()) == (logging.INFO, "approval request started")
    assert duplicate.getMessage() == "duplicate delivery ignored"
    for record in (started, duplicate):
        assert (record.approval_id, record.execution) == (SAMPLE_APPROVAL_ID, execution)
        assert (record.pipeline, record.stage, record.action) == (
            "prod-web",
            "Approve",
            "ProductionGate",
        )


def test_a_record_that_is_no_approval_request_is_counted_as_rejected(
    store: ApprovalStore, gate_log: pytest.LogCaptureFixture
) -> None:
    gate = Collaborators(store)
    event = load_event("sns_not_approval")

    result = gate.start(event)

    assert result == {"started": 0, "duplicates": 0, "rejected": 1}
    assert gate.sfn.started == []
    (record,) = gate_log.records
    assert record.levelno == logging.ERROR
    assert (
        record.getMessage() == "rejected a notification that is not a CodePipeline approval request"
    )
    assert record.message_id == event["Records"][0]["Sns"]["MessageId"]
    assert record.reason


@pytest.mark.parametrize("event", [{}, {"Records": []}, {"Records": ["x"]}, "not a mapping"])
def test_an_event_that_is_not_an_sns_notification_is_rejected(
    store: ApprovalStore, gate_log: pytest.LogCaptureFixture, event: Any
) -> None:
    gate = Collaborators(store)

    assert gate.start(event) == {"started": 0, "duplicates": 0, "rejected": 1}

    (record,) = gate_log.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "rejected an event that is not an SNS notification"
    assert record.reason


def test_an_invalid_policy_is_logged_and_raised_so_sns_delivers_again(
    store: ApprovalStore, gate_log: pytest.LogCaptureFixture
) -> None:
    gate = Collaborators(store)

    def broken() -> Policy:
        raise PolicyError("defaults.deadline: 'soon' is not a duration")

    with pytest.raises(PolicyError):
        gate.start(load_event("sns_approval"), load_policy=broken)

    assert store.get(SAMPLE_APPROVAL_ID) is None
    assert gate.sfn.started == []
    (record,) = gate_log.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "the policy is invalid"
    assert record.reason == "defaults.deadline: 'soon' is not a duration"


def test_the_author_and_changes_lookups_read_the_run_once(store: ApprovalStore) -> None:
    """Both need the run's execution and its main commit: one GetPipelineExecution of the
    run and one GetCommit of its commit, whichever lookup asks first."""
    commit = "9f2c1e7a" + "0" * 32
    url = (
        "https://us-east-2.console.aws.amazon.com/codesuite/codecommit/repositories/web/"
        f"commit/{commit}?region=us-east-2"
    )
    calls: list[str] = []

    class RunCodePipeline(FakeCodePipeline):
        def get_pipeline_execution(self, pipelineName: str, pipelineExecutionId: str) -> dict:
            calls.append(f"GetPipelineExecution {pipelineExecutionId}")
            revision = {"name": "Source", "revisionId": commit, "revisionUrl": url}
            return {"pipelineExecution": {"artifactRevisions": [revision], "trigger": {}}}

        def list_action_executions(self, **kwargs: Any) -> dict[str, Any]:
            calls.append("ListActionExecutions")
            return {"actionExecutionDetails": []}

    class CodeCommit:
        def get_commit(self, repositoryName: str, commitId: str) -> dict[str, Any]:
            calls.append(f"GetCommit {commitId}")
            author = {"name": "Alice", "email": "alice@example.com"}
            return {"commit": {"commitId": commitId, "parents": [], "author": author}}

    started = start_requests(
        load_event("sns_approval"),
        load_policy=standard_policy,
        store=store,
        codepipeline=RunCodePipeline(),
        codecommit=CodeCommit(),
        sfn=FakeSfn(),
        slack_client=LookupSlack,
        state_machine_arn=STATE_MACHINE_ARN,
        clock=clock_at(FIXED),
        lookups=(RunCodePipeline(), CodeCommit()),
    )

    assert started["started"] == 1
    assert sorted(calls) == sorted(
        [f"GetPipelineExecution {EXECUTION_ID}", f"GetCommit {commit}", "ListActionExecutions"]
    )
    stored = store.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert stored.authors == ("alice@example.com",) and stored.author_users == ("U0ALICE",)
    assert [revision.author for revision in stored.revisions] == ["Alice"]
