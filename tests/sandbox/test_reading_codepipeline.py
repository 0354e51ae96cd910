"""The gate's reads of CodePipeline and CodeCommit, through botocore, answered by the fake.

What the product needs may be past the first page of ListActionExecutions (the waiting
approval in PARALLEL mode, a failed action among its stage's others): it follows
``nextToken``, for a bounded number of pages. A commit CodeCommit does not know leaves the
change's author unknown.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from approval_gate.authors import change_authors
from approval_gate.feed.details import ACTION_EXECUTION_PAGES as DETAIL_PAGES
from approval_gate.feed.details import ActionDetails, action_details
from approval_gate.feed.events import parse_event
from approval_gate.request import ApprovalRequest, parse_approval_message
from approval_gate.starting import ACTION_EXECUTION_PAGES, find_pipeline_execution_id
from moto import mock_aws

from sandbox import patches
from sandbox.fake_codepipeline import FakeCodePipeline, Run
from tests.sandbox.botocore_shapes import call_problems

REGION = "us-east-1"
ACCOUNT = "123456789012"
COMMIT = "9f2c1e7a5b3d4c6e8f0a1b2c3d4e5f6a7b8c9d0e"


@pytest.fixture
def fake() -> Iterator[FakeCodePipeline]:
    fake = FakeCodePipeline(region=REGION, account=ACCOUNT)
    yield fake
    assert call_problems(fake.calls()) == []


@pytest.fixture
def clients(fake: FakeCodePipeline) -> Iterator[tuple[Any, Any]]:
    """boto3's CodePipeline and CodeCommit clients, answered by ``fake`` (patch 4)."""
    patches.apply()
    with mock_aws():
        patches.set_codepipeline(fake.call)
        patches.set_codecommit(fake.call)
        try:
            yield (
                boto3.client("codepipeline", region_name=REGION),
                boto3.client("codecommit", region_name=REGION),
            )
        finally:
            patches.set_codepipeline(None)
            patches.set_codecommit(None)


def _request(fake: FakeCodePipeline, run: Run) -> ApprovalRequest:
    """The approval request start_approval parses from the run's SNS notification."""
    return parse_approval_message(json.dumps(fake.notification(run)))


def _listings(fake: FakeCodePipeline) -> list[dict[str, Any]]:
    return [c for c in fake.calls() if c["method"] == "ListActionExecutions"]


# ---------------------------------------------------------------------- the waiting approval


def test_a_waiting_approval_past_the_first_page_is_found(
    fake: FakeCodePipeline, clients: tuple[Any, Any]
) -> None:
    """PARALLEL mode: GetPipelineState names the newest run's token only, and the oldest
    run's approval is on the fourth page of two."""
    codepipeline, _ = clients
    fake.page_size = 2
    oldest = fake.start_run("web", {})
    newer = [fake.start_run("web", {}) for _ in range(2)]

    found = find_pipeline_execution_id(codepipeline, _request(fake, oldest))

    assert found == oldest.execution_id
    assert find_pipeline_execution_id(codepipeline, _request(fake, newer[-1])) == (
        newer[-1].execution_id
    )
    first, *rest = _listings(fake)
    assert "nextToken" not in first["args"] and rest
    assert all(call["args"]["nextToken"] for call in rest)


def test_the_search_for_the_waiting_approval_reads_a_bounded_number_of_pages(
    fake: FakeCodePipeline, clients: tuple[Any, Any]
) -> None:
    codepipeline, _ = clients
    fake.page_size = 2
    oldest = fake.start_run("web", {})
    for _ in range(ACTION_EXECUTION_PAGES * 2):
        fake.start_run("web", {})

    assert find_pipeline_execution_id(codepipeline, _request(fake, oldest)) is None
    assert len(_listings(fake)) == ACTION_EXECUTION_PAGES


# ---------------------------------------------------------------------- a failed action


def _failed_build_event(fake: FakeCodePipeline) -> Any:
    """A run whose Build action fails, and that failure's event as the feed receives it;
    the Build stage's other actions (run in parallel with it) finish after it."""
    emitted: list[tuple[str, dict[str, Any]]] = []
    fake.emit = emitted.extend
    run = fake.start_run("web", {"fail_at": "Build"})
    # The fake runs one action a stage; this stage runs four.
    with fake._lock:
        for name in ("Lint", "UnitTests", "Package"):
            fake._record_action(run, "Build", name, ("CodeBuild", "Test"), "Succeeded")
    [(detail_type, detail)] = [
        (kind, d) for kind, d in emitted if d.get("action") == "Build" and d["state"] == "FAILED"
    ]
    return parse_event(
        {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": detail_type,
            "source": "aws.codepipeline",
            "account": ACCOUNT,
            "time": "2026-12-06T00:53:17Z",
            "region": REGION,
            "resources": [f"arn:aws:codepipeline:{REGION}:{ACCOUNT}:web"],
            "detail": detail,
        }
    )


def test_a_failed_action_past_the_first_page_has_its_error_and_logs_link(
    fake: FakeCodePipeline, clients: tuple[Any, Any]
) -> None:
    codepipeline, _ = clients
    fake.page_size = 2
    event = _failed_build_event(fake)

    details = action_details(codepipeline, event)

    assert details == ActionDetails(
        summary="Build failed: exit status 2 in phase BUILD",
        url=(
            f"https://console.aws.amazon.com/cloudwatch/home?region={REGION}"
            "#logsV2:log-groups/log-group/web-build"
        ),
    )
    assert len(_listings(fake)) == 3  # five action executions, two a page
    assert all(
        call["args"]["filter"] == {"pipelineExecutionId": event.execution_id}
        for call in _listings(fake)
    )


def test_the_lookup_of_a_failed_action_reads_a_bounded_number_of_pages(
    fake: FakeCodePipeline, clients: tuple[Any, Any]
) -> None:
    codepipeline, _ = clients
    fake.page_size = 1
    event = _failed_build_event(fake)

    assert action_details(codepipeline, event) is None  # the failed one is on page 4
    assert len(_listings(fake)) == DETAIL_PAGES


def test_the_error_summary_comes_from_error_details_when_there_is_no_summary(
    fake: FakeCodePipeline, clients: tuple[Any, Any]
) -> None:
    """An action that failed with no summary: the message of its errorDetails, which
    botocore keeps in output.executionResult."""
    codepipeline, _ = clients
    event = _failed_build_event(fake)
    [run] = fake.runs()
    with fake._lock:
        [build] = [a for a in run.actions if a.action == "Build"]
        del build.result["externalExecutionSummary"]

    details = action_details(codepipeline, event)

    assert details is not None and details.summary == "Build failed"


# ---------------------------------------------------------------------- the change's author


def test_a_commit_codecommit_does_not_know_leaves_the_author_unknown(
    fake: FakeCodePipeline, clients: tuple[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    """The run's revision names a commit of web-repo that GetCommit does not find
    (CommitIdDoesNotExistException): the author is unknown, and the change still shown."""
    codepipeline, codecommit = clients
    run = fake.start_run(
        "web", {"author": "jane@example.com", "commit": {"id": COMMIT, "message": "Add checkout"}}
    )
    repository = FakeCodePipeline(region=REGION, account=ACCOUNT)  # web-repo without it
    repository.start_run("web", {"author": "sam@example.com"})
    patches.set_codecommit(repository.call)

    with caplog.at_level(logging.WARNING, logger="approval-gate"):
        authors = change_authors(
            codepipeline=codepipeline,
            codecommit=codecommit,
            slack=None,
            people={},
            pipeline="web",
            execution_id=run.execution_id,
        )

    assert authors.known is False
    assert authors.identities == () and authors.slack_users == ()
    assert authors.change == "9f2c1e7 Add checkout"
    [warning] = [
        r for r in caplog.records if r.getMessage() == "could not read the commit's author"
    ]
    assert warning.error == "CommitIdDoesNotExistException"  # type: ignore[attr-defined]
    [(call)] = repository.calls()
    assert call["error"]["code"] == "CommitIdDoesNotExistException"
    assert call_problems(repository.calls()) == []
