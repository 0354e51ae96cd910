"""The lookups behind "what am I approving": the run's revisions, the last approved ones.

Best effort within a short time budget (DESIGN §8.4, issue 22): the run's revisions from
GetPipelineExecution; the newest earlier execution of the same stage and action that
succeeded (ListActionExecutions, newest first, a few pages at most) and its revisions;
for CodeCommit, the commits between the two (GetCommit's parents, at most 50). The work
runs on a daemon thread the request waits for at most `LOOKUP_BUDGET` seconds: a slow or
failing lookup leaves the changes "unknown" (and logs why), never delays the request past
the budget nor blocks it. Pass clients with short timeouts and no retries.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from approval_gate.revisions import (
    COMPARED,
    MAX_COMMITS,
    UNKNOWN,
    Revision,
    Since,
    codecommit_commit,
    commits_words,
    main_pair,
    parse_revisions,
    since_last,
)

LOG = logging.getLogger("approval-gate")

#: Seconds the request waits for these lookups, all together.
LOOKUP_BUDGET = 3.0
#: Pages of ListActionExecutions (100 action executions each) read at most.
HISTORY_PAGES = 5


class Changes(NamedTuple):
    """What the request shows of the run's revisions and the changes since the last one."""

    revisions: tuple[Revision, ...] = ()
    #: The revisions last approved through this stage and action; None: none (a first
    #: deployment) or not known (`since` says which).
    previous_revisions: tuple[Revision, ...] | None = None
    compare_url: str | None = None
    #: None: nothing to say (the run names no revision).
    since: Since | None = None


class _OutOfTime(Exception):
    pass


@dataclass
class _Lookup:
    """The lookups' progress, so a timeout still shows the revisions found so far."""

    deadline: float
    monotonic: Callable[[], float]
    revisions: list[Revision] = field(default_factory=list)
    result: Changes | None = None
    why: str | None = None

    def check(self) -> None:
        if self.monotonic() >= self.deadline:
            raise _OutOfTime


def _error_name(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


def previous_execution(
    codepipeline: Any, pipeline: str, stage: str, action: str, execution_id: str, lookup: Any
) -> tuple[str | None, bool]:
    """(the newest earlier execution id whose `stage`/`action` succeeded, whether the search
    was complete). Newest first: the first success not of this run, and none that started
    after this run's own approval (a PARALLEL pipeline's later run approved first)."""
    kwargs: dict[str, Any] = {"pipelineName": pipeline}
    mine: Any = None  # when this run's approval started (botocore gives a datetime)
    earlier: list[dict[str, Any]] = []  # successes listed before this run's own approval
    for _ in range(HISTORY_PAGES):
        lookup.check()
        response = codepipeline.list_action_executions(**kwargs)
        for detail in response.get("actionExecutionDetails", []):
            if (detail.get("stageName"), detail.get("actionName")) != (stage, action):
                continue
            started = detail.get("startTime")
            if detail.get("pipelineExecutionId") == execution_id:
                if mine is None and started is not None:
                    mine = started
                    earlier = [d for d in earlier if _started_by(d, mine)]
                    if earlier:
                        return _first_id(earlier), True
                continue
            if detail.get("status") != "Succeeded":
                continue
            if mine is None:
                earlier.append(detail)
            elif _started_by(detail, mine):
                return str(detail["pipelineExecutionId"]), True
        if not response.get("nextToken"):
            return _first_id(earlier), True
        kwargs["nextToken"] = response["nextToken"]
    return _first_id(earlier), False


def _started_by(detail: dict[str, Any], moment: Any) -> bool:
    started = detail.get("startTime")
    return started is None or bool(started <= moment)


def _first_id(details: list[dict[str, Any]]) -> str | None:
    return str(details[0]["pipelineExecutionId"]) if details else None


def _revisions_of(codepipeline: Any, pipeline: str, execution_id: str) -> list[Revision]:
    response = codepipeline.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id
    )
    return parse_revisions(response.get("pipelineExecution") or {})


def _commit(codecommit: Any, repository: str, commit_id: str) -> dict[str, Any]:
    response = codecommit.get_commit(repositoryName=repository, commitId=commit_id)
    return dict(response.get("commit") or {})


def count_commits(
    codecommit: Any, repository: str, old: str, new: str, lookup: Any, first: dict[str, Any]
) -> int | None:
    """Commits from `old` (excluded) to `new`, following first parents; MAX_COMMITS when
    at least that many; None when the walk ends without meeting `old` (another branch)."""
    commit, count = first, 0
    while count < MAX_COMMITS:
        if commit.get("commitId", new) == old:
            return count
        parents = commit.get("parents") or []
        count += 1
        if not parents:
            return None
        if parents[0] == old:
            return count
        lookup.check()
        commit = _commit(codecommit, repository, str(parents[0]))
    return MAX_COMMITS


def _with_authors(codecommit: Any, revisions: list[Revision], lookup: _Lookup) -> dict[str, Any]:
    """Each CodeCommit revision with its author; the main one's commit, for the count."""
    main: dict[str, Any] = {}
    for index, revision in enumerate(revisions):
        found = codecommit_commit(revision)
        if found is None:
            continue
        lookup.check()
        commit = _commit(codecommit, *found)
        author = (commit.get("author") or {}).get("name")
        revisions[index] = revision._replace(author=str(author) if author else None)
        if index == 0:
            main = commit
    return main


def _look_up(
    lookup: _Lookup,
    *,
    codepipeline: Any,
    codecommit: Any,
    pipeline: str,
    stage: str,
    action: str,
    execution_id: str,
    region: str,
) -> None:
    lookup.revisions = _revisions_of(codepipeline, pipeline, execution_id)
    if not lookup.revisions:
        lookup.result = Changes()
        return
    revisions = list(lookup.revisions)
    main_commit = _with_authors(codecommit, revisions, lookup)
    lookup.revisions = revisions
    found, complete = previous_execution(
        codepipeline, pipeline, stage, action, execution_id, lookup
    )
    if found is None and not complete:
        why = f"no approved execution in the last {HISTORY_PAGES} pages of action executions"
        lookup.why = why
        return
    previous = _revisions_of(codepipeline, pipeline, found) if found else None
    lookup.check()
    since, compare = since_last(revisions, previous, region)
    pair = main_pair(revisions, previous or [])
    commit = codecommit_commit(revisions[0])
    if since.kind == COMPARED and commit and main_commit and pair:
        count = count_commits(
            codecommit, commit[0], pair[0].revision_id, commit[1], lookup, main_commit
        )
        if count is not None:
            since = since._replace(detail=commits_words(count))
    prior = tuple(previous) if previous is not None else None
    lookup.result = Changes(tuple(revisions), prior, compare, since)


def what_changed(
    *,
    codepipeline: Any,
    codecommit: Any,
    pipeline: str,
    stage: str,
    action: str,
    execution_id: str | None,
    region: str,
    budget: float = LOOKUP_BUDGET,
    monotonic: Callable[[], float] = time.monotonic,
) -> Changes:
    """The run's revisions and the changes since the last approved run, within `budget`
    seconds; what could not be found in time, or failed, is "unknown" (and logged)."""
    if not execution_id:
        return Changes()
    lookup = _Lookup(deadline=monotonic() + budget, monotonic=monotonic)

    def work() -> None:
        try:
            _look_up(
                lookup,
                codepipeline=codepipeline,
                codecommit=codecommit,
                pipeline=pipeline,
                stage=stage,
                action=action,
                execution_id=execution_id,
                region=region,
            )
        except _OutOfTime:
            lookup.why = f"the lookups took longer than {budget:g} s"
        except Exception as exc:  # best effort: any failure leaves the changes "unknown"
            lookup.why = f"{_error_name(exc)} from a lookup"

    # A daemon thread: a lookup stuck past the budget never holds the request (it ends at
    # its next check, or with its client's timeout).
    worker = threading.Thread(target=work, name="what-changed", daemon=True)
    worker.start()
    worker.join(timeout=max(0.0, budget))
    if not worker.is_alive() and lookup.result is not None:
        return lookup.result
    why = lookup.why or f"the lookups took longer than {budget:g} s"
    LOG.warning(
        "changes since the last deployment: unknown",
        extra={"pipeline": pipeline, "reason": why},
    )
    return Changes(revisions=tuple(lookup.revisions), since=Since(UNKNOWN, why))


def lookup_clients() -> tuple[Any, Any]:
    """(CodePipeline, CodeCommit) clients for these lookups: short timeouts, no retries, so
    a slow service costs the budget, not the function's time."""
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=1, read_timeout=2, retries={"mode": "standard", "total_max_attempts": 1}
    )
    return boto3.client("codepipeline", config=config), boto3.client("codecommit", config=config)
