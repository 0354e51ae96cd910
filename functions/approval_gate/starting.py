"""Starting an approval: CodePipeline's request recorded and its workflow started, once.

The first step of the approval's life (asking, reminders and closing follow in their own
modules). Each function takes its collaborators (table, clients, clock) as arguments, so
it runs the same in Lambda, in the sandbox and in a unit test.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from botocore.exceptions import ClientError

from approval_gate.authors import ChangeAuthors, change_authors
from approval_gate.changes import Changes, what_changed
from approval_gate.clock import Clock, iso
from approval_gate.policy import Policy, PolicyError
from approval_gate.reminders import next_reminder_in
from approval_gate.request import (
    ApprovalRequest,
    InvalidNotification,
    parse_approval_message,
    sns_messages,
)
from approval_gate.store import Approval, ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


def decision_deadline(
    requested_at: datetime, expires: datetime, deadline: int, margin: int
) -> datetime:
    """The policy's deadline, capped by CodePipeline's expiry less the safety margin.

    So the gate always decides before CodePipeline fails the action by itself. Never
    earlier than the request itself.
    """
    by_policy = requested_at + timedelta(seconds=deadline)
    by_codepipeline = expires - timedelta(seconds=margin)
    return max(requested_at, min(by_policy, by_codepipeline))


#: How many pages of ListActionExecutions (100 action executions each) the search for a
#: waiting approval reads at most.
ACTION_EXECUTION_PAGES = 5


def find_pipeline_execution_id(codepipeline: Any, request: ApprovalRequest) -> str | None:
    """The pipeline execution waiting on this approval (the SNS message does not say).

    GetPipelineState names the token of the latest execution of each action; in PARALLEL
    execution mode several executions wait at once, and the token is the action
    execution's externalExecutionId in ListActionExecutions.
    """
    state = codepipeline.get_pipeline_state(name=request.pipeline)
    for stage in state.get("stageStates", []):
        if stage.get("stageName") != request.stage:
            continue
        for action in stage.get("actionStates", []):
            latest = action.get("latestExecution") or {}
            if action.get("actionName") == request.action and latest.get("token") == request.token:
                execution = (stage.get("latestExecution") or {}).get("pipelineExecutionId")
                if execution:
                    return str(execution)
    # No filter narrows the listing (the execution id is what is sought), and a busy
    # pipeline's history pushes the waiting approval past the first page: follow nextToken,
    # for ACTION_EXECUTION_PAGES pages at most, so a long history costs the function bounded
    # time. Not found there, the approval goes on without its execution id.
    kwargs: dict[str, Any] = {"pipelineName": request.pipeline}
    for _ in range(ACTION_EXECUTION_PAGES):
        response = codepipeline.list_action_executions(**kwargs)
        for detail in response.get("actionExecutionDetails", []):
            result = (detail.get("output") or {}).get("executionResult") or {}
            if (
                detail.get("stageName") == request.stage
                and detail.get("actionName") == request.action
                and result.get("externalExecutionId") == request.token
            ):
                return str(detail.get("pipelineExecutionId"))
        if not response.get("nextToken"):
            break
        kwargs["nextToken"] = response["nextToken"]
    return None


@dataclass(frozen=True)
class Started:
    approval_id: str
    execution_name: str
    duplicate: bool


def workflow_input(approval: Approval) -> dict[str, Any]:
    """The workflow's input: what the states need, the same for every delivery."""
    return {
        "approval_id": approval.approval_id,
        "pipeline": approval.pipeline,
        "stage": approval.stage,
        "action": approval.action,
        "token": approval.token,
        "deadline": iso(approval.deadline_at),
        "heartbeat": next_reminder_in(approval.rules.reminder_every, 0, None),
    }


def start(
    request: ApprovalRequest,
    *,
    notified_at: datetime | None,
    policy: Policy,
    store: ApprovalStore,
    codepipeline: Any,
    sfn: Any,
    state_machine_arn: str,
    clock: Clock,
    find_authors: Callable[[str | None], ChangeAuthors] | None = None,
    find_changes: Callable[[str | None], Changes] | None = None,
) -> Started:
    """Record the request and start its workflow, exactly once per request.

    A duplicate SNS delivery finds the stored item, sends the same input under the same
    execution name, and Step Functions answers with the execution that already runs. A
    retry after a crash between the two steps starts the workflow it missed.
    """
    approval_id = request.approval_id
    existing = store.get(approval_id)
    duplicate = existing is not None
    if existing is None:
        rules = policy.resolve(request.pipeline, request.stage, request.action)
        requested_at = notified_at or clock()
        try:
            execution_id = find_pipeline_execution_id(codepipeline, request)
        except ClientError as exc:
            LOG.warning(
                "could not find the pipeline execution; closing from CodePipeline events "
                "will not work for this approval",
                extra={"error": exc.response.get("Error", {}).get("Code")},
            )
            execution_id = None
        authors = find_authors(execution_id) if find_authors else ChangeAuthors()
        changes = find_changes(execution_id) if find_changes else Changes()
        approval = Approval(
            approval_id=approval_id,
            pipeline=request.pipeline,
            stage=request.stage,
            action=request.action,
            pipeline_execution_id=execution_id,
            region=request.region,
            token=request.token,
            rules=rules,
            requested_at=requested_at,
            deadline_at=decision_deadline(
                requested_at, request.expires, rules.deadline, rules.deadline_margin
            ),
            expires=request.expires,
            custom_data=request.custom_data,
            external_entity_link=request.external_entity_link,
            console_link=request.console_link,
            authors=authors.identities,
            author_users=authors.slack_users,
            change=authors.change,
            revisions=changes.revisions,
            previous_revisions=changes.previous_revisions,
            compare_url=changes.compare_url,
            since=changes.since,
        )
        if approval.deadline_at - requested_at < timedelta(seconds=rules.deadline):
            LOG.warning(
                "CodePipeline's own expiry, less deadline_margin, comes before the policy's "
                "deadline: the gate decides earlier",
                extra={"approval_id": approval_id, "deadline": iso(approval.deadline_at)},
            )
        if not store.create(approval):
            duplicate = True
            existing = store.get(approval_id)
        else:
            existing = approval
    assert existing is not None
    try:
        sfn.start_execution(
            stateMachineArn=state_machine_arn,
            name=request.execution_name,
            input=json.dumps(workflow_input(existing)),
        )
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "ExecutionAlreadyExists":
            raise
        duplicate = True
    return Started(
        approval_id=approval_id, execution_name=request.execution_name, duplicate=duplicate
    )


def start_requests(
    event: Any,
    *,
    load_policy: Callable[[], Policy],
    store: ApprovalStore,
    codepipeline: Any,
    codecommit: Any,
    sfn: Any,
    slack_client: Callable[[], Any],
    state_machine_arn: str,
    clock: Clock,
    lookups: tuple[Any, Any] | None = None,
) -> dict[str, int]:
    """Start the approval request in each record of an SNS event; count what became of them.

    A record that is no CodePipeline approval request is logged and counted as rejected.
    An invalid policy is logged and raised, so SNS delivers the event again while the
    approval still waits in CodePipeline: a broken policy must not silently drop requests.
    `slack_client` gives the Web API client, asked for only when a new request's authors
    are looked up. `lookups` are the (CodePipeline, CodeCommit) clients of the changes
    since the last deployment (short timeouts, no retries); the others by default.
    """
    changes_clients = lookups or (codepipeline, codecommit)
    try:
        messages = sns_messages(event)
    except InvalidNotification as exc:
        LOG.error("rejected an event that is not an SNS notification", extra={"reason": str(exc)})
        return {"started": 0, "duplicates": 0, "rejected": 1}
    started = duplicates = rejected = 0
    for message in messages:
        try:
            request = parse_approval_message(message.body)
        except InvalidNotification as exc:
            rejected += 1
            LOG.error(
                "rejected a notification that is not a CodePipeline approval request",
                extra={"reason": str(exc), "message_id": message.message_id},
            )
            continue
        # Both lookups read the run (its execution, its commit): each read is made once.
        reads = RunReads()
        try:
            policy = load_policy()
            result = start(
                request,
                notified_at=message.timestamp,
                policy=policy,
                store=store,
                codepipeline=codepipeline,
                sfn=sfn,
                state_machine_arn=state_machine_arn,
                clock=clock,
                find_authors=partial(
                    _authors,
                    pipeline=request.pipeline,
                    people=policy.people,
                    codepipeline=reads.through(codepipeline),
                    codecommit=reads.through(codecommit),
                    slack_client=slack_client,
                ),
                find_changes=partial(
                    _changes,
                    request=request,
                    codepipeline=reads.through(changes_clients[0]),
                    codecommit=reads.through(changes_clients[1]),
                ),
            )
        except PolicyError as exc:
            LOG.error("the policy is invalid", extra={"reason": str(exc)})
            raise
        if result.duplicate:
            duplicates += 1
        else:
            started += 1
        LOG.info(
            "approval request started" if not result.duplicate else "duplicate delivery ignored",
            extra={
                "approval_id": result.approval_id,
                "execution": result.execution_name,
                "pipeline": request.pipeline,
                "stage": request.stage,
                "action": request.action,
            },
        )
    return {"started": started, "duplicates": duplicates, "rejected": rejected}


def _authors(
    execution_id: str | None,
    *,
    pipeline: str,
    people: dict[str, str],
    codepipeline: Any,
    codecommit: Any,
    slack_client: Callable[[], Any],
) -> ChangeAuthors:
    """Who made the change (for four-eyes); unknown rather than an error when not found."""
    return change_authors(
        codepipeline=codepipeline,
        codecommit=codecommit,
        slack=slack_client(),
        people=people,
        pipeline=pipeline,
        execution_id=execution_id,
    )


def _changes(
    execution_id: str | None, *, request: ApprovalRequest, codepipeline: Any, codecommit: Any
) -> Changes:
    """What the run deploys and what changed since the last approval (best effort)."""
    return what_changed(
        codepipeline=codepipeline,
        codecommit=codecommit,
        pipeline=request.pipeline,
        stage=request.stage,
        action=request.action,
        execution_id=execution_id,
        region=request.region,
    )


class RunReads:
    """One request's reads of its pipeline run, shared by the author lookup and the changes
    lookup: both read the run's execution (GetPipelineExecution) and its main commit
    (GetCommit), which answer the same for the same arguments, so each is asked once,
    through whichever client asks first. A failed read is not kept: the next asks again."""

    _ONCE = ("get_pipeline_execution", "get_commit")

    def __init__(self) -> None:
        self._answers: dict[tuple[str, tuple[tuple[str, Any], ...]], Any] = {}
        self._lock = threading.Lock()  # the changes lookup runs on a thread of its own

    def through(self, client: Any) -> Any:
        return None if client is None else _ReadOnce(client, self)

    def read(self, client: Any, operation: str, kwargs: dict[str, Any]) -> Any:
        key = (operation, tuple(sorted(kwargs.items())))
        with self._lock:
            if key in self._answers:
                return self._answers[key]
        answer = getattr(client, operation)(**kwargs)
        with self._lock:
            self._answers[key] = answer
        return answer


class _ReadOnce:
    """A client whose run reads go through RunReads; any other call goes to the client."""

    def __init__(self, client: Any, reads: RunReads) -> None:
        self._client, self._reads = client, reads

    def __getattr__(self, name: str) -> Any:
        if name in RunReads._ONCE:
            return lambda **kwargs: self._reads.read(self._client, name, kwargs)
        return getattr(self._client, name)
