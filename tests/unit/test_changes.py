"""approval_gate.changes: the last approved revisions, the commit count, the time budget."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from approval_gate.changes import HISTORY_PAGES, what_changed
from approval_gate.revisions import COMPARED, FIRST, UNKNOWN
from botocore.exceptions import ClientError

REPO = "shop"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def sha(n: int) -> str:
    return f"{n:07x}" + "0" * 33


def codecommit_revision(commit: str) -> dict[str, Any]:
    return {
        "name": "Source",
        "revisionId": commit,
        "revisionSummary": f"Commit {commit[:7]}",
        "revisionUrl": "https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/"
        f"repositories/{REPO}/commit/{commit}?region=eu-west-1",
    }


def approval(execution: str, status: str, minutes: int) -> dict[str, Any]:
    return {
        "pipelineExecutionId": execution,
        "stageName": "Approval",
        "actionName": "Approve",
        "status": status,
        "startTime": T0 + timedelta(minutes=minutes),
    }


def other(execution: str, minutes: int) -> dict[str, Any]:
    return {
        **approval(execution, "Succeeded", minutes),
        "stageName": "Build",
        "actionName": "Build",
    }


class Pipeline:
    """A stub CodePipeline client: executions' commits and the action history, paged."""

    def __init__(self, commits: dict[str, str], history: list[dict[str, Any]], page: int = 2):
        self.commits, self.history, self.page = commits, history, page
        self.pages_read = 0
        self.delay = 0.0
        self.fail: str | None = None

    def get_pipeline_execution(self, pipelineName: str, pipelineExecutionId: str) -> dict:
        commit = self.commits[pipelineExecutionId]
        return {"pipelineExecution": {"artifactRevisions": [codecommit_revision(commit)]}}

    def list_action_executions(self, pipelineName: str, nextToken: str | None = None) -> dict:
        if self.fail:
            raise ClientError(
                {"Error": {"Code": self.fail, "Message": "no"}}, "ListActionExecutions"
            )
        time.sleep(self.delay)
        self.pages_read += 1
        start = int(nextToken or 0)
        answer: dict[str, Any] = {"actionExecutionDetails": self.history[start : start + self.page]}
        if start + self.page < len(self.history):
            answer["nextToken"] = str(start + self.page)
        return answer


class Commits:
    """A stub CodeCommit client: a linear history sha(1) <- sha(2) <- … <- sha(n)."""

    def __init__(self, newest: int):
        self.newest = newest
        self.calls = 0

    def get_commit(self, repositoryName: str, commitId: str) -> dict:
        self.calls += 1
        n = int(commitId[:7], 16)
        return {
            "commit": {
                "commitId": commitId,
                "parents": [sha(n - 1)] if n > 1 else [],
                "author": {"name": "Alice Doe", "email": "alice@example.com"},
            }
        }


def changes(pipeline: Pipeline, commits: Commits, **kwargs: Any):
    return what_changed(
        codepipeline=pipeline,
        codecommit=commits,
        pipeline="web",
        stage="Approval",
        action="Approve",
        execution_id="run-3",
        region="eu-west-1",
        **kwargs,
    )


def test_the_last_approved_run_is_compared_and_its_commits_counted() -> None:
    history = [
        approval("run-3", "InProgress", 30),
        other("run-3", 29),
        approval("run-2", "Failed", 20),  # rejected: not what was last deployed
        other("run-2", 19),
        approval("run-1", "Succeeded", 10),
    ]
    pipeline = Pipeline({"run-1": sha(4), "run-2": sha(6), "run-3": sha(7)}, history)
    found = changes(pipeline, Commits(7))
    assert [r.revision_id for r in found.revisions] == [sha(7)]
    assert found.revisions[0].author == "Alice Doe"
    assert [r.revision_id for r in found.previous_revisions or ()] == [sha(4)]
    assert found.since is not None
    assert (found.since.kind, found.since.detail) == (COMPARED, "3 commits")
    assert found.compare_url == (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/shop/"
        f"compare/{sha(4)}/.../{sha(7)}?region=eu-west-1"
    )
    assert pipeline.pages_read == 3  # followed nextToken to the approved one


def test_the_count_stops_at_50() -> None:
    pipeline = Pipeline({"run-1": sha(1), "run-3": sha(80)}, [approval("run-1", "Succeeded", 1)])
    commits = Commits(80)
    found = changes(pipeline, commits)
    assert found.since is not None and found.since.detail == "50+ commits"
    assert commits.calls <= 51  # the revision's own commit, then at most 50 parents


def test_a_first_deployment_reads_the_whole_short_history() -> None:
    pipeline = Pipeline({"run-3": sha(3)}, [approval("run-3", "InProgress", 3), other("run-3", 2)])
    found = changes(pipeline, Commits(3))
    assert found.since is not None and found.since.kind == FIRST
    assert (found.previous_revisions, found.compare_url) == (None, None)


def test_the_history_is_read_a_bounded_number_of_pages() -> None:
    history = [other(f"run-{n}", -n) for n in range(100)]
    pipeline = Pipeline({"run-3": sha(3)}, history, page=2)
    found = changes(pipeline, Commits(3))
    assert pipeline.pages_read == HISTORY_PAGES
    assert found.since is not None and found.since.kind == UNKNOWN
    assert [r.revision_id for r in found.revisions] == [sha(3)]  # still shown


def test_a_later_run_approved_first_is_not_the_previous_one() -> None:
    history = [
        approval("run-4", "Succeeded", 40),  # PARALLEL: a newer run approved already
        approval("run-3", "InProgress", 30),
        approval("run-1", "Succeeded", 10),
    ]
    pipeline = Pipeline({"run-1": sha(1), "run-3": sha(3), "run-4": sha(4)}, history, page=10)
    found = changes(pipeline, Commits(4))
    assert [r.revision_id for r in found.previous_revisions or ()] == [sha(1)]


def test_a_failing_lookup_is_unknown_and_logged(caplog: pytest.LogCaptureFixture) -> None:
    pipeline = Pipeline({"run-3": sha(3)}, [])
    pipeline.fail = "ThrottlingException"
    found = changes(pipeline, Commits(3))
    assert found.since is not None
    assert (found.since.kind, found.since.detail) == (UNKNOWN, "ThrottlingException from a lookup")
    assert [r.revision_id for r in found.revisions] == [sha(3)]
    assert any(
        getattr(record, "reason", None) == "ThrottlingException from a lookup"
        for record in caplog.records
    )


def test_a_slow_lookup_is_unknown_without_waiting_past_the_budget() -> None:
    pipeline = Pipeline({"run-3": sha(3)}, [approval("run-1", "Succeeded", 1)])
    pipeline.delay = 5.0
    started = time.monotonic()
    found = changes(pipeline, Commits(3), budget=0.3)
    took = time.monotonic() - started
    assert took < 1.0
    assert found.since is not None and found.since.kind == UNKNOWN
    assert [r.revision_id for r in found.revisions] == [sha(3)]


def test_no_execution_id_or_no_revision_says_nothing() -> None:
    pipeline = Pipeline({}, [])
    assert (
        what_changed(
            codepipeline=pipeline,
            codecommit=Commits(1),
            pipeline="web",
            stage="Approval",
            action="Approve",
            execution_id=None,
            region="eu-west-1",
        ).since
        is None
    )
    empty = Pipeline({}, [])
    empty.get_pipeline_execution = lambda **_: {"pipelineExecution": {}}  # type: ignore[method-assign]
    assert changes(empty, Commits(1)).since is None
    assert threading.active_count() >= 1
