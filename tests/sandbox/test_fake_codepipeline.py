"""The fake CodePipeline and its CodeCommit-style source (sandbox/fake_codepipeline.py)."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from sandbox import patches
from sandbox.engine import Sandbox
from sandbox.fake_codepipeline import CodePipelineError, FakeAwsError, FakeCodePipeline
from tests.conftest import POLICIES
from tests.sandbox.botocore_shapes import call_problems

REGION = "eu-west-1"
ACCOUNT = "111122223333"
START = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
COMMIT = "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e"
PERSON = "arn:aws:iam::111122223333:user/jane"
HEX40 = re.compile(r"^[0-9a-f]{40}$")


class Clock:
    def __init__(self) -> None:
        self.now = START

    def __call__(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


@pytest.fixture
def published() -> list[dict[str, Any]]:
    return []


@pytest.fixture
def fake(published: list[dict[str, Any]]) -> Iterator[FakeCodePipeline]:
    fake = FakeCodePipeline(
        region=REGION,
        account=ACCOUNT,
        publish=lambda message: published.append(json.loads(message)),
        clock=Clock(),
    )
    yield fake
    # Whatever a test made it answer fits botocore's model of that operation.
    assert call_problems(fake.calls()) == []


def _error(call: Any) -> str:
    with pytest.raises(FakeAwsError) as caught:
        call()
    return caught.value.code


def _execution(fake: FakeCodePipeline, pipeline: str, execution_id: str) -> dict[str, Any]:
    answer = fake.call(
        "GetPipelineExecution", {"pipelineName": pipeline, "pipelineExecutionId": execution_id}
    )
    execution: dict[str, Any] = answer["pipelineExecution"]
    return execution


def _stage(state: dict[str, Any], name: str) -> dict[str, Any]:
    """One stage of a GetPipelineState answer, by name."""
    [stage] = [s for s in state["stageStates"] if s["stageName"] == name]
    return stage


def _approve(fake: FakeCodePipeline, pipeline: str, token: str, **result: Any) -> dict[str, Any]:
    return fake.call(
        "PutApprovalResult",
        {
            "pipelineName": pipeline,
            "stageName": "Approval",
            "actionName": "Approve",
            "token": token,
            "result": result or {"status": "Approved", "summary": "ok"},
        },
    )


# ---------------------------------------------------------------------- runs


def test_a_run_notifies_as_codepipeline_does(
    fake: FakeCodePipeline, published: list[dict[str, Any]]
) -> None:
    run = fake.start_run(
        "web",
        {
            "customData": "Release 2.4",
            "externalEntityLink": "https://example.com/r/2.4",
            "expires": "2024-05-08T09:30Z",
        },
    )
    [note] = published
    assert note["region"] == REGION
    assert note["consoleLink"].endswith("#/view/web")
    approval = note["approval"]
    assert approval["pipelineName"] == "web" and approval["token"] == run.token
    assert (approval["stageName"], approval["actionName"]) == ("Approval", "Approve")
    assert approval["expires"] == "2024-05-08T09:30Z"
    assert approval["customData"] == "Release 2.4"
    assert approval["externalEntityLink"] == "https://example.com/r/2.4"
    assert approval["approvalReviewLink"].endswith(f"/Approval/Approve/approve/{run.token}")


@pytest.mark.parametrize(
    "body",
    [
        {"commit": "abc"},
        {"author": 42},
        {"triggered_by": ["arn"]},
        {"commit": {"id": 7}},
        {"expires": "next tuesday"},
    ],
)
def test_a_run_body_codepipeline_could_not_produce_is_refused(
    fake: FakeCodePipeline, body: dict[str, Any]
) -> None:
    with pytest.raises(ValueError):
        fake.start_run("web", body)
    assert fake.runs() == []


# ---------------------------------------------------------------------- revisions and triggers


def test_a_commit_by_an_author_is_a_codecommit_revision(fake: FakeCodePipeline) -> None:
    run = fake.start_run(
        "web",
        {"author": "jane.doe@example.com", "commit": {"id": COMMIT, "message": "Add checkout"}},
    )

    execution = _execution(fake, "web", run.execution_id)

    assert execution["pipelineExecutionId"] == run.execution_id
    assert execution["status"] == "InProgress"
    assert execution["artifactRevisions"] == [
        {
            "name": "SourceArtifact",
            "revisionId": COMMIT,
            "revisionSummary": "Add checkout",
            "revisionUrl": (
                f"https://{REGION}.console.aws.amazon.com/codesuite/codecommit/repositories/"
                f"web-repo/commit/{COMMIT}?region={REGION}"
            ),
        }
    ]
    assert execution["trigger"] == {
        "triggerType": "CloudWatchEvent",
        "triggerDetail": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/web-source-change",
    }


def test_an_author_without_a_commit_gets_a_generated_commit(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {"author": "sam@example.com"})

    [revision] = _execution(fake, "web", run.execution_id)["artifactRevisions"]
    found = fake.call(
        "GetCommit", {"repositoryName": "web-repo", "commitId": revision["revisionId"]}
    )

    assert HEX40.match(revision["revisionId"])
    assert revision["revisionSummary"] == found["commit"]["message"] != ""
    assert found["commit"]["author"]["email"] == "sam@example.com"


def test_a_run_started_by_a_person_names_the_principal(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {"triggered_by": PERSON})

    execution = _execution(fake, "web", run.execution_id)

    assert execution["trigger"] == {
        "triggerType": "StartPipelineExecution",
        "triggerDetail": PERSON,
    }
    assert execution["artifactRevisions"] == []


def test_a_person_can_start_a_run_of_an_authored_commit(fake: FakeCodePipeline) -> None:
    run = fake.start_run(
        "web",
        {"triggered_by": PERSON, "author": "jane@example.com", "commit": {"id": COMMIT}},
    )

    execution = _execution(fake, "web", run.execution_id)

    assert execution["trigger"]["triggerDetail"] == PERSON
    assert [r["revisionId"] for r in execution["artifactRevisions"]] == [COMMIT]


def test_a_run_without_author_has_no_revision_and_no_commit(fake: FakeCodePipeline) -> None:
    plain = fake.start_run("web", {})
    # a commit without an author models a source that names no author: nothing shows it
    unauthored = fake.start_run("web", {"commit": {"id": COMMIT, "message": "from S3"}})

    for run in (plain, unauthored):
        execution = _execution(fake, "web", run.execution_id)
        assert execution["artifactRevisions"] == []
        assert execution["trigger"]["triggerType"] == "CloudWatchEvent"
    # the repository exists, the commit does not
    assert (
        _error(lambda: fake.call("GetCommit", {"repositoryName": "web-repo", "commitId": COMMIT}))
        == "CommitIdDoesNotExistException"
    )


def test_get_pipeline_execution_of_an_unknown_execution(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    assert _error(lambda: _execution(fake, "api", run.execution_id)) == "PipelineNotFoundException"
    assert (
        _error(lambda: _execution(fake, "web", "no-such-id"))
        == "PipelineExecutionNotFoundException"
    )


# ---------------------------------------------------------------------- CodeCommit


def test_successive_runs_of_a_pipeline_chain_their_commits(fake: FakeCodePipeline) -> None:
    first = fake.start_run("web", {"author": "jane.doe@example.com"})
    second = fake.start_run("web", {"author": "jane.doe@example.com"})
    assert first.commit is not None and second.commit is not None

    def parents(run: Any) -> list[str]:
        asked = {"repositoryName": "web-repo", "commitId": run.commit["id"]}
        return list(fake.call("GetCommit", asked)["commit"]["parents"])

    assert parents(first) == []
    assert parents(second) == [first.commit["id"]]


def test_get_commit_gives_the_author(fake: FakeCodePipeline) -> None:
    run = fake.start_run(
        "web",
        {"author": "jane.doe@example.com", "commit": {"id": COMMIT, "message": "Add checkout"}},
    )

    commit = fake.call("GetCommit", {"repositoryName": "web-repo", "commitId": COMMIT})["commit"]

    assert commit["commitId"] == COMMIT and commit["message"] == "Add checkout"
    assert HEX40.match(commit["treeId"]) and commit["parents"] == []
    assert commit["author"] == {
        "name": "Jane Doe",
        "email": "jane.doe@example.com",
        "date": f"{int(run.started_at.timestamp())} +0000",
    }
    assert commit["committer"] == commit["author"]
    # the same commit run again keeps its author
    fake.start_run("web", {"author": "jane.doe@example.com", "commit": {"id": COMMIT}})
    again = fake.call("GetCommit", {"repositoryName": "web-repo", "commitId": COMMIT})
    assert again["commit"]["author"]["email"] == "jane.doe@example.com"
    assert [c["method"] for c in fake.calls()] == ["GetCommit", "GetCommit"]


def test_get_commit_error_codes(fake: FakeCodePipeline) -> None:
    fake.start_run("web", {"author": "jane@example.com", "commit": {"id": COMMIT}})

    def get(params: dict[str, Any]) -> str:
        return _error(lambda: fake.call("GetCommit", params))

    assert get({"repositoryName": "api-repo", "commitId": COMMIT}) == (
        "RepositoryDoesNotExistException"
    )
    assert get({"repositoryName": "web", "commitId": COMMIT}) == "RepositoryDoesNotExistException"
    assert get({"repositoryName": "web-repo", "commitId": "0" * 40}) == (
        "CommitIdDoesNotExistException"
    )
    assert get({"commitId": COMMIT}) == "RepositoryNameRequiredException"
    assert get({"repositoryName": "web-repo"}) == "CommitIdRequiredException"
    fake.reset()  # forgets the runs, and with them the repository
    assert get({"repositoryName": "web-repo", "commitId": COMMIT}) == (
        "RepositoryDoesNotExistException"
    )


def test_unsupported_operations_and_the_old_error_name(fake: FakeCodePipeline) -> None:
    assert CodePipelineError is FakeAwsError
    assert _error(lambda: fake.call("DeletePipeline", {"name": "web"})) == "ValidationException"
    assert _error(lambda: fake.call("GetPipelineState", {"name": "web"})) == (
        "PipelineNotFoundException"
    )


# ---------------------------------------------------------------------- approvals


def test_the_token_is_in_the_pipeline_state_and_the_action_executions(
    fake: FakeCodePipeline,
) -> None:
    run = fake.start_run("web", {})

    state = fake.call("GetPipelineState", {"name": "web"})
    actions = fake.call("ListActionExecutions", {"pipelineName": "web"})

    [approval] = [s for s in state["stageStates"] if s["stageName"] == "Approval"]
    assert approval["stageName"] == "Approval"
    assert approval["actionStates"][0]["latestExecution"] == {
        "status": "InProgress",
        "token": run.token,
    }
    [detail] = [d for d in actions["actionExecutionDetails"] if d["stageName"] == "Approval"]
    assert detail["output"]["executionResult"]["externalExecutionId"] == run.token


def test_put_approval_result_records_and_completes(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})

    answer = _approve(fake, "web", run.token, status="Rejected", summary="canary red")

    assert answer["approvedAt"] > START.timestamp()
    [result] = fake.approval_results()
    assert result["result"] == {"status": "Rejected", "summary": "canary red"}
    assert (result["source"], result["by"], result["token"]) == ("gate", None, run.token)
    assert result["pipelineExecutionId"] == run.execution_id
    assert _execution(fake, "web", run.execution_id)["status"] == "Failed"
    latest = _stage(fake.call("GetPipelineState", {"name": "web"}), "Approval")["actionStates"]
    assert latest[0]["latestExecution"] == {"status": "Failed"}  # no token once decided
    assert [c["args"]["token"] for c in fake.calls() if c["method"] == "PutApprovalResult"] == [
        "[redacted]"
    ]


def test_put_approval_result_errors(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    invalid = "InvalidApprovalTokenException"

    assert _error(lambda: _approve(fake, "web", "not-a-token")) == invalid
    assert _error(lambda: _approve(fake, "api", run.token)) == invalid  # another pipeline
    wrong_action = {
        "pipelineName": "web",
        "stageName": "Approval",
        "actionName": "Other",
        "token": run.token,
        "result": {"status": "Approved", "summary": ""},
    }
    assert _error(lambda: fake.call("PutApprovalResult", wrong_action)) == invalid
    assert _error(lambda: _approve(fake, "web", run.token, status="Maybe")) == (
        "ValidationException"  # the request is checked first (see the test below)
    )
    assert fake.approval_results() == []

    _approve(fake, "web", run.token)
    assert _error(lambda: _approve(fake, "web", run.token)) == "ApprovalAlreadyCompletedException"
    assert len(fake.approval_results()) == 1


def test_a_decision_in_the_console_completes_the_approval(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})

    fake.decide_in_console("web", run.token, {"status": "Approved", "summary": "LGTM", "by": "ops"})

    [result] = fake.approval_results()
    assert (result["source"], result["by"]) == ("console", "ops")
    assert result["result"] == {"status": "Approved", "summary": "LGTM"}
    assert fake.run_by_token(run.token) is not None
    assert _execution(fake, "web", run.execution_id)["status"] == "Succeeded"
    # the gate's late answer meets a completed approval, and so does a second console click
    assert _error(lambda: _approve(fake, "web", run.token)) == "ApprovalAlreadyCompletedException"
    assert (
        _error(lambda: fake.decide_in_console("web", run.token, {"status": "Rejected"}))
        == "ApprovalAlreadyCompletedException"
    )
    assert (
        _error(lambda: fake.decide_in_console("web", "not-a-token", {}))
        == "InvalidApprovalTokenException"
    )
    assert len(fake.approval_results()) == 1


# ---------------------------------------------------------------------- the pipeline's state


def _latest(state: dict[str, Any], stage: str) -> tuple[Any, Any]:
    """(the stage's latestExecution, its action's latestExecution); None where there is none."""
    found = _stage(state, stage)
    return found.get("latestExecution"), found["actionStates"][0].get("latestExecution")


def test_a_run_that_failed_before_its_approval_asked_nothing(fake: FakeCodePipeline) -> None:
    """No approval was asked, so the approval stage shows no execution and no token, and
    the run's token is no approval's."""
    run = fake.start_run("web", {"fail_at": "Build"})

    state = fake.call("GetPipelineState", {"name": "web"})

    assert [s["stageName"] for s in state["stageStates"]] == [
        "Source",
        "Build",
        "Approval",
        "Deploy",
    ]
    assert _latest(state, "Build") == (
        {"pipelineExecutionId": run.execution_id, "status": "Failed"},
        {"status": "Failed"},
    )
    assert _latest(state, "Approval") == (None, None)
    assert _latest(state, "Deploy") == (None, None)
    assert run.token not in json.dumps(state)
    assert fake.run_by_token(run.token) is None
    assert _error(lambda: _approve(fake, "web", run.token)) == "InvalidApprovalTokenException"
    approvals = [
        d
        for d in fake.call("ListActionExecutions", {"pipelineName": "web"})[
            "actionExecutionDetails"
        ]
        if d["stageName"] == "Approval"
    ]
    assert approvals == []


def test_a_run_that_fails_does_not_hide_the_approval_still_waiting(fake: FakeCodePipeline) -> None:
    """Each stage shows its own latest execution: a newer run that failed at Build leaves
    the Approval stage to the older run waiting there."""
    waiting = fake.start_run("web", {})
    failed = fake.start_run("web", {"fail_at": "Build"})

    state = fake.call("GetPipelineState", {"name": "web"})

    assert _latest(state, "Source")[0] == {
        "pipelineExecutionId": failed.execution_id,
        "status": "Succeeded",
    }
    assert _latest(state, "Build")[0] == {
        "pipelineExecutionId": failed.execution_id,
        "status": "Failed",
    }
    assert _latest(state, "Approval") == (
        {"pipelineExecutionId": waiting.execution_id, "status": "InProgress"},
        {"status": "InProgress", "token": waiting.token},
    )


@pytest.mark.parametrize("how", ["stop", "supersede"])
def test_a_run_ended_while_its_approval_waits_shows_that_stage_stopped(
    fake: FakeCodePipeline, how: str
) -> None:
    """StageExecutionStatus has no `Abandoned`: the abandoned approval action leaves its
    stage `Stopped`, and the token is gone."""
    run = fake.start_run("web", {})

    fake.end_run("web", run.execution_id, how)

    state = fake.call("GetPipelineState", {"name": "web"})
    assert _latest(state, "Approval") == (
        {"pipelineExecutionId": run.execution_id, "status": "Stopped"},
        {"status": "Abandoned"},
    )
    [approval] = [
        d
        for d in fake.call("ListActionExecutions", {"pipelineName": "web"})[
            "actionExecutionDetails"
        ]
        if d["stageName"] == "Approval"
    ]
    assert approval["status"] == "Abandoned"
    assert _error(lambda: _approve(fake, "web", run.token)) == "ApprovalAlreadyCompletedException"


def test_the_deploy_stage_shows_an_execution_once_a_run_reaches_it(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    assert _latest(fake.call("GetPipelineState", {"name": "web"}), "Deploy") == (None, None)

    _approve(fake, "web", run.token)

    state = fake.call("GetPipelineState", {"name": "web"})
    assert _latest(state, "Approval") == (
        {"pipelineExecutionId": run.execution_id, "status": "Succeeded"},
        {"status": "Succeeded"},
    )
    assert _latest(state, "Deploy")[0] == {
        "pipelineExecutionId": run.execution_id,
        "status": "Succeeded",
    }


# ---------------------------------------------------------------------- action executions


def test_a_failed_action_has_its_error_details_in_its_execution_result(
    fake: FakeCodePipeline,
) -> None:
    """botocore's ActionExecutionDetail has no errorDetails: they are in
    output.executionResult (ActionExecutionResult)."""
    run = fake.start_run("web", {"fail_at": "Build"})

    details = fake.call(
        "ListActionExecutions",
        {"pipelineName": "web", "filter": {"pipelineExecutionId": run.execution_id}},
    )["actionExecutionDetails"]

    [build] = [d for d in details if d["stageName"] == "Build"]
    assert "errorDetails" not in build
    assert build["status"] == "Failed"
    assert build["output"]["executionResult"]["errorDetails"] == {
        "code": "JobFailed",
        "message": "Build failed",
    }
    assert build["output"]["executionResult"]["externalExecutionSummary"] == (
        "Build failed: exit status 2 in phase BUILD"
    )
    assert build["input"]["actionTypeId"]["provider"] == "CodeBuild"
    assert build["lastUpdateTime"] >= build["startTime"]


def test_list_action_executions_pages_newest_first(fake: FakeCodePipeline) -> None:
    """At most maxResults a page, a nextToken while more are left, and the token taken
    back for the next page: every action execution once, newest first."""
    for _ in range(3):
        fake.start_run("web", {})  # Source, Build and the approval: 9 action executions
    everything = fake.call("ListActionExecutions", {"pipelineName": "web"})
    assert "nextToken" not in everything
    expected = everything["actionExecutionDetails"]
    assert len(expected) == 9
    starts = [d["startTime"] for d in expected]
    assert starts == sorted(starts, reverse=True)

    pages = []
    params: dict[str, Any] = {"pipelineName": "web", "maxResults": 4}
    while True:
        page = fake.call("ListActionExecutions", params)
        pages.append(page["actionExecutionDetails"])
        if "nextToken" not in page:
            break
        params = {**params, "nextToken": page["nextToken"]}

    assert [len(page) for page in pages] == [4, 4, 1]
    assert [d for page in pages for d in page] == expected


def test_list_action_executions_pages_at_100_by_default(fake: FakeCodePipeline) -> None:
    for _ in range(34):
        fake.start_run("web", {})  # 102 action executions

    first = fake.call("ListActionExecutions", {"pipelineName": "web"})
    second = fake.call(
        "ListActionExecutions", {"pipelineName": "web", "nextToken": first["nextToken"]}
    )

    assert len(first["actionExecutionDetails"]) == 100
    assert len(second["actionExecutionDetails"]) == 2 and "nextToken" not in second


def test_list_action_executions_errors(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    fake.start_run("api", {})

    def listing(**params: Any) -> str:
        return _error(lambda: fake.call("ListActionExecutions", params))

    assert listing(pipelineName="nope") == "PipelineNotFoundException"
    assert listing(pipelineName="web", filter={"pipelineExecutionId": str(uuid.uuid4())}) == (
        "PipelineExecutionNotFoundException"
    )
    assert listing(pipelineName="web", nextToken="made-up") == "InvalidNextTokenException"
    assert listing(pipelineName="web", maxResults=0) == "ValidationException"
    assert listing(pipelineName="web", maxResults=101) == "ValidationException"
    # a token is good for the listing it came from only
    token = fake.call("ListActionExecutions", {"pipelineName": "web", "maxResults": 1})["nextToken"]
    assert listing(pipelineName="api", nextToken=token) == "InvalidNextTokenException"
    assert listing(
        pipelineName="web", filter={"pipelineExecutionId": run.execution_id}, nextToken=token
    ) == ("InvalidNextTokenException")


def test_each_call_is_recorded_with_the_answer_it_got(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    state = fake.call("GetPipelineState", {"name": "web"})
    _error(lambda: fake.call("GetPipelineState", {"name": "nope"}))
    _approve(fake, "web", run.token)

    calls = fake.calls()

    assert [c["method"] for c in calls] == [
        "GetPipelineState",
        "GetPipelineState",
        "PutApprovalResult",
    ]
    # the answer as given then, though the run has moved on since
    assert calls[0]["response"] == state and "error" not in calls[0]
    assert calls[1]["error"] == {
        "code": "PipelineNotFoundException",
        "message": "pipeline nope not found",
    }
    assert "response" not in calls[1]
    assert set(calls[2]["response"]) == {"approvedAt"}
    assert isinstance(calls[2]["response"]["approvedAt"], float)


# ---------------------------------------------------------------------- through boto3


@pytest.fixture
def routed(fake: FakeCodePipeline) -> Iterator[FakeCodePipeline]:
    patches.apply()
    with mock_aws():
        patches.set_codepipeline(fake.call)
        patches.set_codecommit(fake.call)
        try:
            yield fake
        finally:
            patches.set_codepipeline(None)
            patches.set_codecommit(None)


def test_botocore_parses_what_the_fake_answers(routed: FakeCodePipeline) -> None:
    run = routed.start_run(
        "web",
        {"author": "jane@example.com", "commit": {"id": COMMIT, "message": "Add checkout"}},
    )
    other = routed.start_run("web", {"triggered_by": PERSON})
    codepipeline = boto3.client("codepipeline", region_name=REGION)
    codecommit = boto3.client("codecommit", region_name=REGION)

    authored = codepipeline.get_pipeline_execution(
        pipelineName="web", pipelineExecutionId=run.execution_id
    )["pipelineExecution"]
    started = codepipeline.get_pipeline_execution(
        pipelineName="web", pipelineExecutionId=other.execution_id
    )["pipelineExecution"]
    commit = codecommit.get_commit(repositoryName="web-repo", commitId=COMMIT)["commit"]

    assert authored["artifactRevisions"][0]["revisionUrl"].endswith(f"{COMMIT}?region={REGION}")
    assert authored["trigger"]["triggerType"] == "CloudWatchEvent"
    assert started["trigger"] == {"triggerType": "StartPipelineExecution", "triggerDetail": PERSON}
    assert commit["author"]["email"] == "jane@example.com"
    with pytest.raises(codecommit.exceptions.CommitIdDoesNotExistException):
        codecommit.get_commit(repositoryName="web-repo", commitId="0" * 40)
    with pytest.raises(codecommit.exceptions.RepositoryDoesNotExistException):
        codecommit.get_commit(repositoryName="api-repo", commitId=COMMIT)


# ---------------------------------------------------------------------- events


def test_each_step_of_a_run_sends_its_events_together_and_in_order(
    fake: FakeCodePipeline,
) -> None:
    """A run's start and its decision each hand EventBridge one ordered list (the sandbox
    puts them ten to a call): pipeline started first, the approval action waiting last;
    after an approval, the approval action's success first, the pipeline's last."""
    batches: list[list[tuple[str, dict[str, Any]]]] = []
    fake.emit = batches.append
    run = fake.start_run("web", {})
    _approve(fake, "web", run.token)

    started, decided = batches
    assert (started[0][0], started[0][1]["state"]) == (
        "CodePipeline Pipeline Execution State Change",
        "STARTED",
    )
    assert (started[-1][0], started[-1][1]["state"], started[-1][1]["action"]) == (
        "CodePipeline Action Execution State Change",
        "STARTED",
        "Approve",
    )
    assert (decided[0][1]["action"], decided[0][1]["state"]) == ("Approve", "SUCCEEDED")
    assert (decided[-1][0], decided[-1][1]["state"]) == (
        "CodePipeline Pipeline Execution State Change",
        "SUCCEEDED",
    )
    assert {detail["execution-id"] for _, detail in started + decided} == {run.execution_id}


def test_the_sandbox_puts_events_ten_to_a_call_in_order(monkeypatch) -> None:
    calls: list[list[dict[str, Any]]] = []

    class Events:
        def put_events(self, Entries: list[dict[str, Any]]) -> None:
            calls.append(Entries)

    sandbox = Sandbox(policy_file=POLICIES / "standard.yaml", base_url="http://127.0.0.1:9")
    monkeypatch.setattr(sandbox, "client", lambda service: Events())
    events = [
        ("CodePipeline Stage Execution State Change", {"pipeline": "p", "n": i}) for i in range(23)
    ]

    sandbox._emit_pipeline_events(events)

    assert [len(entries) for entries in calls] == [10, 10, 3]
    sent = [entry for entries in calls for entry in entries]
    assert [json.loads(entry["Detail"])["n"] for entry in sent] == list(range(23))
    assert {entry["Source"] for entry in sent} == {"aws.codepipeline"}
    assert sent[0]["Resources"] == ["arn:aws:codepipeline:us-east-1:123456789012:p"]


def test_runs_start_one_at_a_time() -> None:
    """A second start waits while the first is still notifying (its SNS publish, which
    runs the gate's start function on the start request's thread): many starts at once
    must not each take a thread's share of the interpreter from the rest of the sandbox."""
    first_publishing = threading.Event()
    let_first_finish = threading.Event()
    emitted: list[str] = []

    def publish(message: str) -> None:
        if json.loads(message)["approval"]["pipelineName"] == "first":
            first_publishing.set()
            assert let_first_finish.wait(timeout=5)

    fake = FakeCodePipeline(
        publish=publish, emit=lambda events: emitted.append(events[0][1]["pipeline"])
    )
    first = threading.Thread(target=fake.start_run, args=("first", {}))
    first.start()
    assert first_publishing.wait(timeout=5)
    second = threading.Thread(target=fake.start_run, args=("second", {}))
    second.start()
    second.join(timeout=0.3)  # a bounded look: it has not begun while the first notifies
    assert second.is_alive()
    assert "second" not in emitted
    let_first_finish.set()
    first.join(timeout=5)
    second.join(timeout=5)
    assert not second.is_alive()
    assert emitted.count("second") >= 1


def test_a_result_status_codepipeline_does_not_know_is_a_validation_error(
    fake: FakeCodePipeline,
) -> None:
    """The service checks the request (status is an enum botocore does not enforce) before
    it looks the action up, and the approval still waits."""
    run = fake.start_run("web", {})

    assert _error(lambda: _approve(fake, "web", run.token, status="Maybe")) == (
        "ValidationException"
    )
    assert _error(lambda: _approve(fake, "web", "not-a-token", status="Maybe")) == (
        "ValidationException"
    )
    assert fake.run_by_token(run.token).approval.status == "InProgress"  # type: ignore[union-attr]
    assert _approve(fake, "web", run.token)["approvedAt"]


# --- ListPipelines and GetPipeline (the doctor's reads, DESIGN §8.6) -----------------------

GATE_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:approval-gate-ApprovalTopic"
OTHER_TOPIC = f"arn:aws:sns:{REGION}:{ACCOUNT}:someone-elses-approvals"


def _approval_configuration(fake: FakeCodePipeline, pipeline: str) -> dict[str, Any]:
    declared = fake.call("GetPipeline", {"name": pipeline})["pipeline"]
    [action] = [
        action
        for stage in declared["stages"]
        for action in stage["actions"]
        if action["actionTypeId"]["category"] == "Approval"
    ]
    assert action["actionTypeId"] == {
        "category": "Approval",
        "owner": "AWS",
        "provider": "Manual",
        "version": "1",
    }
    configuration: dict[str, Any] = action["configuration"]
    return configuration


def test_list_pipelines_pages_every_pipeline_by_name(fake: FakeCodePipeline) -> None:
    for name in ("web", "api", "batch", "api"):  # a second run is no second pipeline
        fake.start_run(name, {})
    fake.pipelines_page_size = 2

    first = fake.call("ListPipelines", {})
    assert [p["name"] for p in first["pipelines"]] == ["api", "batch"]
    second = fake.call("ListPipelines", {"nextToken": first["nextToken"]})
    assert [p["name"] for p in second["pipelines"]] == ["web"]
    assert "nextToken" not in second
    assert [p["name"] for p in fake.call("ListPipelines", {"maxResults": 5})["pipelines"]] == [
        "api",
        "batch",
        "web",
    ]
    [api] = [p for p in first["pipelines"] if p["name"] == "api"]
    first_api_run = min((r for r in fake.runs() if r.pipeline == "api"), key=lambda r: r.started_at)
    assert api["created"] == api["updated"] == first_api_run.started_at.timestamp()
    assert _error(lambda: fake.call("ListPipelines", {"nextToken": "made-up"})) == (
        "InvalidNextTokenException"
    )
    assert _error(lambda: fake.call("ListPipelines", {"maxResults": 0})) == "ValidationException"


def test_no_run_no_pipeline(fake: FakeCodePipeline) -> None:
    assert fake.call("ListPipelines", {}) == {"pipelines": []}
    assert _error(lambda: fake.call("GetPipeline", {"name": "web"})) == (
        "PipelineNotFoundException"
    )


def test_get_pipeline_declares_the_stages_and_the_gate_s_topic(fake: FakeCodePipeline) -> None:
    fake.gate_topic_arn = GATE_TOPIC
    fake.start_run("web", {"stage": "Prod", "action": "Sign-off", "customData": "Release 2.4"})

    answer = fake.call("GetPipeline", {"name": "web"})
    declared = answer["pipeline"]
    assert [stage["name"] for stage in declared["stages"]] == ["Source", "Build", "Prod", "Deploy"]
    assert declared["stages"][2]["actions"][0]["name"] == "Sign-off"
    assert _approval_configuration(fake, "web") == {
        "NotificationArn": GATE_TOPIC,
        "CustomData": "Release 2.4",
    }
    assert declared["version"] == 1
    assert answer["metadata"]["pipelineArn"] == f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:web"
    assert _error(lambda: fake.call("GetPipeline", {"name": "web", "version": 2})) == (
        "PipelineVersionNotFoundException"
    )


def test_a_run_s_notification_arn_notifies_that_topic_not_the_gate_s(
    fake: FakeCodePipeline, published: list[dict[str, Any]]
) -> None:
    fake.gate_topic_arn = GATE_TOPIC
    elsewhere: list[tuple[str, dict[str, Any]]] = []
    fake.notify_elsewhere = lambda topic, message: elsewhere.append((topic, json.loads(message)))

    run = fake.start_run("web", {"notification_arn": OTHER_TOPIC})

    assert published == []  # the gate's topic heard nothing: the gate is not asked
    [(topic, note)] = elsewhere
    assert topic == OTHER_TOPIC and note["approval"]["token"] == run.token
    assert fake.run_by_token(run.token) is run  # it waits at its approval all the same
    assert _approval_configuration(fake, "web")["NotificationArn"] == OTHER_TOPIC
    fake.start_run("web", {})  # the newest run declares the pipeline
    assert _approval_configuration(fake, "web")["NotificationArn"] == GATE_TOPIC
    assert len(published) == 1


def test_a_notification_arn_that_is_no_topic_arn_is_refused(fake: FakeCodePipeline) -> None:
    for bad in ("my-topic", "arn:aws:sqs:eu-west-1:111122223333:queue", 42):
        with pytest.raises(ValueError, match="notification_arn"):
            fake.start_run("web", {"notification_arn": bad})
    assert fake.runs() == []


def test_get_pipeline_declares_each_source_by_its_provider(fake: FakeCodePipeline) -> None:
    sources = [
        {"provider": "GitHub", "repository": "acme/web"},
        {"action": "Assets", "provider": "S3", "repository": "acme-assets/web.zip"},
        {"action": "Image", "provider": "ECR", "repository": "web"},
    ]
    fake.start_run("web", {"sources": sources})

    [source_stage] = [
        s
        for s in fake.call("GetPipeline", {"name": "web"})["pipeline"]["stages"]
        if s["name"] == "Source"
    ]
    declared = {a["name"]: a for a in source_stage["actions"]}
    assert declared["Source"]["actionTypeId"]["provider"] == "CodeStarSourceConnection"
    assert declared["Source"]["configuration"]["FullRepositoryId"] == "acme/web"
    assert declared["Assets"]["configuration"] == {
        "S3Bucket": "acme-assets",
        "S3ObjectKey": "web.zip",
    }
    assert declared["Image"]["actionTypeId"]["provider"] == "ECR"


# ---------------------------------------------------------------------- who decided


def _approval_detail(fake: FakeCodePipeline, run: Any) -> dict[str, Any]:
    answer = fake.call(
        "ListActionExecutions",
        {"pipelineName": "web", "filter": {"pipelineExecutionId": run.execution_id}},
    )
    [detail] = [d for d in answer["actionExecutionDetails"] if d["stageName"] == "Approval"]
    return detail


def test_a_console_decision_names_who_decided_and_their_comment(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})
    assert "updatedBy" not in _approval_detail(fake, run)  # nobody has decided yet

    fake.decide_in_console("web", run.token, {"status": "Rejected", "summary": "no", "by": PERSON})

    detail = _approval_detail(fake, run)
    assert detail["status"] == "Failed" and detail["updatedBy"] == PERSON
    assert detail["output"]["executionResult"]["externalExecutionSummary"] == "no"


def test_a_console_decision_without_by_names_a_console_principal(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})

    fake.decide_in_console("web", run.token, {"status": "Approved"})

    by = f"arn:aws:sts::{ACCOUNT}:assumed-role/Console/someone"
    assert _approval_detail(fake, run)["updatedBy"] == by
    assert fake.approval_results()[0]["by"] == by


def test_a_console_decision_by_something_other_than_a_string_is_refused(
    fake: FakeCodePipeline,
) -> None:
    run = fake.start_run("web", {})

    for by in (["jane"], 7, {"arn": PERSON}):
        body = {"status": "Approved", "by": by}
        assert _error(lambda body=body: fake.decide_in_console("web", run.token, body)) == (
            "ValidationException"
        )
    assert fake.approval_results() == []
    assert _approval_detail(fake, run)["status"] == "InProgress"


def test_the_gates_decision_names_the_gates_role(fake: FakeCodePipeline) -> None:
    run = fake.start_run("web", {})

    _approve(fake, "web", run.token)

    by = _approval_detail(fake, run)["updatedBy"]
    assert by.startswith(f"arn:aws:sts::{ACCOUNT}:assumed-role/") and "Console" not in by
