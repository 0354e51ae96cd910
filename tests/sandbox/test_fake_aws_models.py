"""The fake CodePipeline and CodeCommit checked against botocore's service models.

Every answer the fake gives on the paths a pipeline really takes (runs started, approvals
decided by the gate or in the console, runs failed at each stage, superseded and stopped,
listings paged, commits found and not, faults injected) must fit the operation's output
shape, and every error code must be one the operation's model lists, or a common AWS error
(`botocore_shapes.COMMON_ERRORS`, each allowed for a stated reason).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from functools import partial
from typing import Any

import botocore.session
import pytest

from sandbox.fake_codepipeline import FakeAwsError, FakeCodePipeline
from sandbox.faults import AWS_ERRORS, Faults
from sandbox.services import CODEPIPELINE_OPERATIONS
from tests.sandbox.botocore_shapes import (
    CODECOMMIT_OPERATIONS,
    COMMON_ERRORS,
    call_problems,
    error_problem,
    modelled_errors,
    response_problems,
)

COMMIT = "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e"
PERSON = "arn:aws:sts::123456789012:assumed-role/Deployers/bob@example.com"


def _answered(fake: FakeCodePipeline) -> set[str]:
    """The operations the fake answers (its ``_op_`` methods)."""
    return {name.removeprefix("_op_") for name in dir(fake) if name.startswith("_op_")}


def _try(call: Callable[[], Any]) -> None:
    """Make a call whose error is part of the path being exercised."""
    with contextlib.suppress(FakeAwsError):
        call()


def _decide(fake: FakeCodePipeline, pipeline: str, token: str, status: str) -> None:
    fake.call(
        "PutApprovalResult",
        {
            "pipelineName": pipeline,
            "stageName": "Approval",
            "actionName": "Approve",
            "token": token,
            "result": {"status": status, "summary": f"{status} in Slack by alice (U0ALICE)"},
        },
    )


def _read_everything(fake: FakeCodePipeline, pipeline: str) -> None:
    """What the gate reads about a pipeline: its state, every run, every page of its
    action executions (two a page, and each run's own), and each run's commit."""
    fake.call("GetPipelineState", {"name": pipeline})
    params: dict[str, Any] = {"pipelineName": pipeline, "maxResults": 2}
    while True:
        page = fake.call("ListActionExecutions", params)
        if "nextToken" not in page:
            break
        params = {**params, "nextToken": page["nextToken"]}
    for run in fake.runs():
        if run.pipeline != pipeline:
            continue
        fake.call(
            "ListActionExecutions",
            {"pipelineName": pipeline, "filter": {"pipelineExecutionId": run.execution_id}},
        )
        execution = fake.call(
            "GetPipelineExecution",
            {"pipelineName": pipeline, "pipelineExecutionId": run.execution_id},
        )["pipelineExecution"]
        for revision in execution["artifactRevisions"]:
            fake.call(
                "GetCommit",
                {"repositoryName": f"{pipeline}-repo", "commitId": revision["revisionId"]},
            )


def test_every_answer_on_a_pipeline_s_real_paths_fits_botocore_s_models() -> None:
    faults = Faults()
    fake = FakeCodePipeline(faults=faults)
    authored = {"author": "jane@example.com", "commit": {"id": COMMIT, "message": "Checkout"}}

    approved = fake.start_run("web", authored)
    _read_everything(fake, "web")  # waiting for its approval
    _decide(fake, "web", approved.token, "Approved")
    rejected = fake.start_run("web", {"triggered_by": PERSON})
    _decide(fake, "web", rejected.token, "Rejected")
    console = fake.start_run("web", {"author": "sam@example.com"})
    fake.decide_in_console("web", console.token, {"status": "Approved", "by": "ops"})
    fake.start_run("web", {"fail_at": "Source"})
    fake.start_run("web", {"fail_at": "Build"})
    deploy = fake.start_run("web", {"fail_at": "Deploy", **authored})
    _decide(fake, "web", deploy.token, "Approved")
    superseded = fake.start_run("web", {})
    fake.end_run("web", superseded.execution_id, "supersede")
    stopped = fake.start_run("web", {})
    fake.end_run("web", stopped.execution_id, "stop")
    waiting = fake.start_run("web", {"customData": "Release 2.4"})
    _read_everything(fake, "web")
    # the doctor's reads: every pipeline, a page at a time, and each one's declaration
    other_topic = "arn:aws:sns:us-east-1:123456789012:someone-elses-approvals"
    sourced = [{"provider": "GitHub", "repository": "acme/orders", "author": "jane@example.com"}]
    fake.start_run("orders", {"notification_arn": other_topic, "sources": sourced})
    page = fake.call("ListPipelines", {"maxResults": 1})
    fake.call("ListPipelines", {"maxResults": 1, "nextToken": page["nextToken"]})
    for pipeline in ("orders", "web"):
        fake.call("GetPipeline", {"name": pipeline})

    # the errors the gate meets
    _try(lambda: _decide(fake, "web", approved.token, "Approved"))  # decided already
    _try(lambda: _decide(fake, "web", "not-a-token", "Approved"))
    _try(lambda: fake.call("GetPipelineState", {"name": "nope"}))
    _try(lambda: fake.call("ListActionExecutions", {"pipelineName": "nope"}))
    _try(lambda: fake.call("ListActionExecutions", {"pipelineName": "web", "nextToken": "x"}))
    _try(
        lambda: fake.call(
            "GetPipelineExecution", {"pipelineName": "web", "pipelineExecutionId": "nope"}
        )
    )
    _try(lambda: fake.call("GetCommit", {"repositoryName": "web-repo", "commitId": "0" * 40}))
    _try(lambda: fake.call("GetCommit", {"repositoryName": "api-repo", "commitId": COMMIT}))
    _try(lambda: fake.call("GetPipeline", {"name": "nope"}))
    _try(lambda: fake.call("GetPipeline", {"name": "web", "version": 2}))
    _try(lambda: fake.call("ListPipelines", {"nextToken": "x"}))
    # and the faults of each kind, where the kind's error is the operation's
    for operation in sorted(CODEPIPELINE_OPERATIONS):
        faults.set("codepipeline", operation, "throttled", 1, 1)
    faults.set("codepipeline", "PutApprovalResult", "invalid_token", 1, 1)
    faults.set("codepipeline", "PutApprovalResult", "already_completed", 1, 1)
    _try(lambda: _decide(fake, "web", waiting.token, "Approved"))
    reads: list[tuple[str, dict[str, Any]]] = [
        ("GetPipelineState", {"name": "web"}),
        ("ListActionExecutions", {"pipelineName": "web"}),
        (
            "GetPipelineExecution",
            {"pipelineName": "web", "pipelineExecutionId": waiting.execution_id},
        ),
    ]
    for operation, params in reads:
        _try(partial(fake.call, operation, params))
    faults.reset()
    for kind in ("invalid_token", "already_completed"):
        faults.set("codepipeline", "PutApprovalResult", kind, 1, 1)
        _try(lambda: _decide(fake, "web", waiting.token, "Approved"))
        faults.reset()

    calls = fake.calls()
    assert call_problems(calls) == []
    answered = {c["method"] for c in calls if "response" in c}
    assert answered == _answered(fake), "an operation the fake answers went unchecked"
    errors = {(c["method"], c["error"]["code"]) for c in calls if "error" in c}
    assert {code for _, code in errors} >= {
        "ApprovalAlreadyCompletedException",
        "InvalidApprovalTokenException",
        "PipelineNotFoundException",
        "InvalidNextTokenException",
        "PipelineExecutionNotFoundException",
        "CommitIdDoesNotExistException",
        "RepositoryDoesNotExistException",
        "ThrottlingException",
        "PipelineVersionNotFoundException",
    }


def test_the_operations_the_fake_answers_are_the_gate_s_and_in_the_models() -> None:
    fake = FakeCodePipeline()
    session = botocore.session.get_session()

    assert _answered(fake) >= CODEPIPELINE_OPERATIONS
    for operation in _answered(fake):
        service = "codecommit" if operation in CODECOMMIT_OPERATIONS else "codepipeline"
        assert operation in session.get_service_model(service).operation_names


def test_each_fault_kind_answers_an_error_the_operation_can_answer() -> None:
    """`throttled` on any operation (a common error); the approval's errors only on
    PutApprovalResult, the one operation whose model lists them."""
    for operation in sorted(CODEPIPELINE_OPERATIONS):
        code, _ = AWS_ERRORS["throttled"]
        assert error_problem("codepipeline", operation, code) is None
    for kind in ("invalid_token", "already_completed"):
        code, _ = AWS_ERRORS[kind]
        assert error_problem("codepipeline", "PutApprovalResult", code) is None


def test_throttling_is_modelled_for_none_of_the_operations_so_it_is_a_common_error() -> None:
    """Why COMMON_ERRORS has ThrottlingException: no operation the fake answers lists it,
    yet CodePipeline answers it to a caller over its rate (the API reference's Common
    Errors)."""
    session = botocore.session.get_session()
    for operation in sorted(CODEPIPELINE_OPERATIONS) + sorted(CODECOMMIT_OPERATIONS):
        service = "codecommit" if operation in CODECOMMIT_OPERATIONS else "codepipeline"
        assert "ThrottlingException" not in modelled_errors(service, operation)
    assert session.get_service_model("codepipeline").operation_names  # the model loaded
    assert frozenset({"ThrottlingException"}) == COMMON_ERRORS


# ---------------------------------------------------------------------- the check itself


@pytest.mark.parametrize(
    ("service", "operation", "answer", "problem"),
    [
        (  # a stage status botocore's StageExecutionStatus does not have
            "codepipeline",
            "GetPipelineState",
            {
                "stageStates": [
                    {
                        "stageName": "Approval",
                        "latestExecution": {
                            "pipelineExecutionId": "0b3e5a8e-4c3f-4e0e-9a61-1f7a2f6f4d10",
                            "status": "Abandoned",
                        },
                    }
                ]
            },
            "'Abandoned' is not one of",
        ),
        (  # errorDetails on the action execution instead of in its execution result
            "codepipeline",
            "ListActionExecutions",
            {"actionExecutionDetails": [{"status": "Failed", "errorDetails": {"code": "X"}}]},
            'Unknown parameter in actionExecutionDetails[0]: "errorDetails"',
        ),
        (  # a timestamp that is no time
            "codepipeline",
            "PutApprovalResult",
            {"approvedAt": "soon"},
            "Invalid type for parameter approvedAt",
        ),
        (  # a missing required member
            "codepipeline",
            "GetPipelineState",
            {"stageStates": [{"latestExecution": {"status": "InProgress"}}]},
            'Missing required parameter in stageStates[0].latestExecution: "pipelineExecutionId"',
        ),
        (  # an execution id that is not one
            "codepipeline",
            "GetPipelineExecution",
            {"pipelineExecution": {"pipelineExecutionId": "run-1"}},
            "'run-1' does not match",
        ),
        (  # a version that is not a number
            "codepipeline",
            "GetPipelineState",
            {"pipelineVersion": "1"},
            "Invalid type for parameter pipelineVersion",
        ),
        (  # a list where a structure goes
            "codecommit",
            "GetCommit",
            {"commit": []},
            "Invalid type for parameter commit",
        ),
    ],
)
def test_the_check_finds_what_the_models_do_not_allow(
    service: str, operation: str, answer: dict[str, Any], problem: str
) -> None:
    problems = response_problems(service, operation, answer)
    assert any(problem in p for p in problems), problems


def test_the_check_finds_an_error_the_operation_does_not_answer() -> None:
    assert "does not answer CommitDoesNotExistException" in str(
        error_problem("codecommit", "GetCommit", "CommitDoesNotExistException")
    )
    assert error_problem("codepipeline", "GetPipelineState", "InvalidApprovalTokenException")
    assert call_problems([{"method": "GetPipelineState", "args": {}, "at": ""}]) == [
        "codepipeline GetPipelineState: recorded with neither response nor error"
    ]
