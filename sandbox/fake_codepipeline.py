"""A fake CodePipeline that runs pipelines up to a manual approval and records decisions.

moto implements neither GetPipelineState, PutApprovalResult nor ListActionExecutions, and
its GetPipelineExecution knows nothing of approvals (DESIGN §5, patch 4). This fake
answers every CodePipeline read and write the product makes, records each call, and
publishes the approval notification to SNS exactly as CodePipeline does.

Each pipeline's source is a CodeCommit repository named ``{pipeline}-repo`` (it exists once
the pipeline has a run). A run started with an ``author`` comes from a commit in that
repository: GetPipelineExecution names it in ``artifactRevisions`` and CodeCommit's
GetCommit (moto lacks it; patch 4 routes it here) gives its author. A run without an
``author`` models a source that names no author: no revision, no commit. A run with
``triggered_by`` (an IAM principal ARN) was started by that person
(StartPipelineExecution); otherwise the source change's EventBridge rule started it.
A run started with ``sources`` deploys those instead (CodeCommit, GitHub, GitLab,
Bitbucket, S3, ECR; sandbox.sources shapes their revisions and chains their commits).

Answers keep to botocore's output shapes (tests/sandbox/test_fake_aws_models.py checks
every one): ListActionExecutions pages as CodePipeline does, newest first, and
GetPipelineState shows each stage's latest execution by any run (a stage no run has reached
has none). Every call is recorded with the answer the fake gave, or its error.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox import pipeline_declarations
from sandbox.services import CODEPIPELINE_OPERATIONS, FakeAwsError
from sandbox.sources import Source, SourceHistory, artifact_revision, validate

if TYPE_CHECKING:
    from sandbox.faults import Faults

DEFAULT_STAGE = "Approval"
DEFAULT_ACTION = "Approve"
#: (stage, provider, category) of the one action each stage runs.
SOURCE_ACTIONS = (("Source", "CodeCommit", "Source"), ("Build", "CodeBuild", "Build"))
AFTER_ACTIONS = (("Deploy", "CodeDeploy", "Deploy"),)
#: ListActionExecutions' page when the call gives no ``maxResults``, and its largest.
PAGE_SIZE = 100
#: ListPipelines' page when the call gives no ``maxResults``, and its largest (the model's).
PIPELINES_PAGE_SIZE = 100
PIPELINES_PAGE_MAX = 1000
#: The stage status CodePipeline shows for the status of its (one) action's latest execution:
#: an action abandoned when its run was stopped leaves its stage ``Stopped``
#: (``StageExecutionStatus`` has no ``Abandoned``).
STAGE_STATUS = {
    "InProgress": "InProgress",
    "Succeeded": "Succeeded",
    "Failed": "Failed",
    "Abandoned": "Stopped",
}


#: Who decides in the "console" when a decision names nobody (``by``): an IAM principal,
#: as ListActionExecutions' ``updatedBy`` names it ({account} is the fake's).
CONSOLE_PRINCIPAL = "arn:aws:sts::{account}:assumed-role/Console/someone"
#: Who the gate's PutApprovalResult comes from: the state machine's role, assumed.
GATE_PRINCIPAL = "arn:aws:sts::{account}:assumed-role/ApprovalGateStateMachineRole/approval-gate"

#: The message of a run's commit when the run gives an ``author`` but no commit message.
DEFAULT_COMMIT_MESSAGE = "Update the application"


#: The historical name; the same class.
CodePipelineError = FakeAwsError


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


@dataclass
class ActionExecution:
    """One execution of one action, as ListActionExecutions and GetPipelineState show it."""

    #: The order it started in, pipeline-wide (ListActionExecutions answers newest first).
    sequence: int
    stage: str
    action: str
    provider: str
    category: str
    started_at: datetime
    updated_at: datetime
    status: str  # InProgress | Succeeded | Failed | Abandoned (ActionExecutionStatus)
    #: ``output.executionResult``: externalExecutionId, …Summary, …Url, errorDetails.
    result: dict[str, Any] = field(default_factory=dict)
    action_execution_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    #: The principal who decided an approval (``updatedBy``); None for anything else.
    updated_by: str | None = None


@dataclass
class Run:
    pipeline: str
    execution_id: str
    token: str
    stage: str
    action: str
    started_at: datetime
    expires: datetime
    author: str | None = None
    #: ``{"id", "message"}``: the commit the source produced (only with ``author``), or what
    #: the request gave without an author (then nothing shows it).
    commit: dict[str, Any] | None = None
    triggered_by: str | None = None
    custom_data: str | None = None
    external_entity_link: str | None = None
    status: str = "InProgress"  # InProgress | Succeeded | Failed | Stopped | Superseded
    approval_summary: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    #: A stage that fails in this run ("Build" or "Deploy"), as the request asked.
    fail_at: str | None = None
    #: The run's sources (``sources`` in the request, sandbox.sources); empty: the single
    #: CodeCommit source of ``author``.
    sources: list[Source] = field(default_factory=list)
    #: Every action execution so far, oldest first: ListActionExecutions and
    #: GetPipelineState answer from them.
    actions: list[ActionExecution] = field(default_factory=list)
    #: The manual approval's execution, once the run has reached it (a run that failed
    #: before its approval stage never asked for one).
    approval: ActionExecution | None = None
    #: The SNS topic the approval action notifies instead of the gate's (the request's
    #: ``notification_arn``): the gate is then not asked.
    notification_arn: str | None = None

    @property
    def approval_status(self) -> str | None:
        """``InProgress``, ``Succeeded``, ``Failed`` or ``Abandoned``; None if never asked."""
        return self.approval.status if self.approval is not None else None


@dataclass
class FakeCodePipeline:
    """Pipelines and their runs; `publish` sends the approval notification (SNS)."""

    region: str = "us-east-1"
    account: str = "123456789012"
    publish: Callable[[str], None] | None = None
    #: Sends the approval notification of a run with a ``notification_arn`` to that topic:
    #: notify_elsewhere(topic_arn, message). ``None``: nobody reads it.
    notify_elsewhere: Callable[[str, str], None] | None = None
    #: The gate's approval topic: GetPipeline's NotificationArn of an approval action whose
    #: run gave no ``notification_arn``.
    gate_topic_arn: str | None = None
    #: Sends CodePipeline state-change events, in order: emit([(detail_type, detail), …]).
    emit: Callable[[list[tuple[str, dict[str, Any]]]], None] | None = None
    clock: Callable[[], datetime] = _now
    #: Injected faults (``sandbox.faults``), asked on each CodePipeline operation the
    #: product calls; ``None``: nothing fails on purpose.
    faults: Faults | None = None
    #: ListActionExecutions' page when a call gives no ``maxResults`` (CodePipeline's
    #: default, 100); a test lowers it to see the product follow ``nextToken``.
    page_size: int = PAGE_SIZE
    #: ListPipelines' page when a call gives no ``maxResults``.
    pipelines_page_size: int = PIPELINES_PAGE_SIZE
    _runs: dict[str, Run] = field(default_factory=dict)
    _results: list[dict[str, Any]] = field(default_factory=list)
    _calls: list[dict[str, Any]] = field(default_factory=list)
    #: ListActionExecutions' next tokens: token -> (pipeline, filter, last sequence given).
    _pages: dict[str, tuple[str, str | None, int]] = field(default_factory=dict)
    #: ListPipelines' next tokens: token -> the last pipeline name given.
    _pipeline_pages: dict[str, str] = field(default_factory=dict)
    #: The repositories' commits of runs started with ``sources``, chained per repository.
    _history: SourceHistory = field(default_factory=SourceHistory)
    _sequence: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.RLock = field(default_factory=threading.RLock)
    _starting: threading.Lock = field(default_factory=threading.Lock)

    # --- the sandbox's side ------------------------------------------------------------

    def start_run(self, pipeline: str, body: dict[str, Any]) -> Run:
        """A run reaches its manual approval: CodePipeline notifies the topic.

        Runs start one at a time. On AWS CodePipeline and SNS do this work on their own
        machines; here it runs on the thread of each start request, in the one interpreter
        the gate's functions share. Two hundred starts at once were two hundred threads
        taking turns with every other thread, and the fake Slack's answer to the gate's
        first post then came after the Slack client's timeout: the gate took the carried-
        out post for a failure and posted again (a quarter of the requests, twice, in the
        throughput benchmark). One at a time, a start costs the same and the rest of the
        sandbox keeps its pace.

        Raises ``ValueError`` for a body CodePipeline could not have produced.
        """
        with self._starting:
            return self._start_run(pipeline, body)

    def _start_run(self, pipeline: str, body: dict[str, Any]) -> Run:
        now = self.clock()
        expires = now + timedelta(days=7)
        if body.get("expires"):
            expires = datetime.fromisoformat(str(body["expires"]).replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        author = _optional_text(body, "author")
        triggered_by = _optional_text(body, "triggered_by")
        commit = body.get("commit")
        if commit is not None and not isinstance(commit, dict):
            raise ValueError("commit must be an object {id, message}")
        commit_id = _optional_text(commit or {}, "id")
        message = _optional_text(commit or {}, "message")
        if author is not None:  # a CodeCommit source: the commit exists, with an id
            commit = {
                "id": commit_id or secrets.token_hex(20),
                "message": DEFAULT_COMMIT_MESSAGE if message is None else message,
            }
        elif commit is not None:
            commit = {"id": commit_id, "message": message}
        sources: list[Source] = []
        notification_arn = pipeline_declarations.topic_arn(body.get("notification_arn"))
        if body.get("sources") is not None:
            if author is not None or commit is not None:
                raise ValueError("give the author and commit in sources, not beside them")
            sources = self._history.add(validate(body["sources"]))
        run = Run(
            pipeline=pipeline,
            execution_id=str(uuid.uuid4()),
            token=str(uuid.uuid4()),
            stage=str(body.get("stage") or DEFAULT_STAGE),
            action=str(body.get("action") or DEFAULT_ACTION),
            started_at=now,
            expires=expires,
            author=author,
            commit=commit,
            triggered_by=triggered_by,
            custom_data=body.get("customData"),
            external_entity_link=body.get("externalEntityLink"),
            fail_at=_optional_text(body, "fail_at"),
            sources=sources,
            notification_arn=notification_arn,
        )
        with self._lock:
            self._runs[run.execution_id] = run
        events = [self._pipeline_event(run, "STARTED")]
        for stage, provider, category in SOURCE_ACTIONS:
            events += self._stage_events(run, stage, provider, category)
            if run.status != "InProgress":
                self._send(events)
                return run
        events += [
            self._stage_event(run, run.stage, "STARTED"),
            self._action_event(run, run.stage, run.action, "STARTED", "Manual", "Approval"),
        ]
        with self._lock:
            # The approval's action execution names its token (PARALLEL mode's only lead).
            run.approval = self._record_action(
                run, run.stage, run.action, ("Manual", "Approval"), "InProgress"
            )
            run.approval.result["externalExecutionId"] = run.token
        self._send(events)
        if run.notification_arn is not None:
            if self.notify_elsewhere is not None:
                self.notify_elsewhere(run.notification_arn, json.dumps(self.notification(run)))
        elif self.publish is not None:
            self.publish(json.dumps(self.notification(run)))
        return run

    # --- the run's life, as EventBridge sees it ------------------------------------------

    def _send(self, events: list[tuple[str, dict[str, Any]]]) -> None:
        if self.emit is not None and events:
            self.emit(events)

    def _pipeline_event(self, run: Run, state: str) -> tuple[str, dict[str, Any]]:
        detail: dict[str, Any] = {
            "pipeline": run.pipeline,
            "version": 1,
            "state": state,
            "execution-id": run.execution_id,
        }
        if state == "STARTED":
            trigger = self._trigger(run)
            detail["execution-trigger"] = {
                "trigger-type": trigger["triggerType"],
                "trigger-detail": trigger["triggerDetail"],
            }
        return "CodePipeline Pipeline Execution State Change", detail

    def _stage_event(self, run: Run, stage: str, state: str) -> tuple[str, dict[str, Any]]:
        detail = {
            "pipeline": run.pipeline,
            "version": 1,
            "execution-id": run.execution_id,
            "stage": stage,
            "state": state,
        }
        return "CodePipeline Stage Execution State Change", detail

    def _action_event(
        self, run: Run, stage: str, action: str, state: str, provider: str, category: str
    ) -> tuple[str, dict[str, Any]]:
        detail = {
            "pipeline": run.pipeline,
            "version": 1,
            "execution-id": run.execution_id,
            "stage": stage,
            "action": action,
            "state": state,
            "region": self.region,
            "type": {"owner": "AWS", "provider": provider, "category": category, "version": "1"},
        }
        return "CodePipeline Action Execution State Change", detail

    def _stage_events(
        self, run: Run, stage: str, provider: str, category: str
    ) -> list[tuple[str, dict[str, Any]]]:
        """One stage with one action, run to its end (failing where the run says so)."""
        failed = run.fail_at == stage
        state = "FAILED" if failed else "SUCCEEDED"
        logs = (
            f"https://console.aws.amazon.com/cloudwatch/home?region={self.region}"
            f"#logsV2:log-groups/log-group/{run.pipeline}-{stage.lower()}"
        )
        with self._lock:
            record = self._record_action(
                run, stage, stage, (provider, category), "Failed" if failed else "Succeeded"
            )
            record.result["externalExecutionUrl"] = logs
            if failed:
                # botocore's ActionExecutionResult holds errorDetails, next to the summary.
                record.result["externalExecutionSummary"] = (
                    f"{stage} failed: exit status 2 in phase BUILD"
                )
                record.result["errorDetails"] = {"code": "JobFailed", "message": f"{stage} failed"}
                run.status = "Failed"
        events = [
            self._stage_event(run, stage, "STARTED"),
            self._action_event(run, stage, stage, "STARTED", provider, category),
            self._action_event(run, stage, stage, state, provider, category),
            self._stage_event(run, stage, state),
        ]
        if failed:
            events.append(self._pipeline_event(run, "FAILED"))
        return events

    def _record_action(
        self, run: Run, stage: str, action: str, kind: tuple[str, str], status: str
    ) -> ActionExecution:
        """A new action execution of ``run``, started now (call with the lock held)."""
        now = self.clock()
        provider, category = kind
        record = ActionExecution(
            sequence=next(self._sequence),
            stage=stage,
            action=action,
            provider=provider,
            category=category,
            started_at=now,
            updated_at=now,
            status=status,
        )
        run.actions.append(record)
        return record

    def _trigger(self, run: Run) -> dict[str, str]:
        """A person's StartPipelineExecution, or the source change rule."""
        if run.triggered_by is not None:
            return {"triggerType": "StartPipelineExecution", "triggerDetail": run.triggered_by}
        rule = f"arn:aws:events:{self.region}:{self.account}:rule/{run.pipeline}-source-change"
        return {"triggerType": "CloudWatchEvent", "triggerDetail": rule}

    def end_run(self, pipeline: str, execution_id: str, how: str) -> Run:
        """Supersede or stop a run, as CodePipeline does; KeyError if there is no such run."""
        with self._lock:
            run = self._runs.get(execution_id)
            if run is None or run.pipeline != pipeline:
                raise KeyError(execution_id)
            if run.status != "InProgress":
                raise ValueError(f"the run is {run.status.lower()} already")
            waiting = run.approval is not None and run.approval.status == "InProgress"
            if waiting:
                # A stop abandons the waiting approval (its stage shows Stopped). CodePipeline
                # supersedes a run only between stages; the sandbox's supersede of a run that
                # waits for its approval ends that approval the same way.
                assert run.approval is not None
                run.approval.status = "Abandoned"
                run.approval.updated_at = self.clock()
            run.status = "Superseded" if how == "supersede" else "Stopped"
        if how == "supersede":
            events = [self._pipeline_event(run, "SUPERSEDED")]
        else:
            events = [self._pipeline_event(run, "STOPPING")]
            if waiting:
                events.append(
                    self._action_event(
                        run, run.stage, run.action, "ABANDONED", "Manual", "Approval"
                    )
                )
            events += [
                self._stage_event(run, run.stage, "STOPPED"),
                self._pipeline_event(run, "STOPPED"),
            ]
        self._send(events)
        return run

    def notification(self, run: Run) -> dict[str, Any]:
        """The manual-approval notification, in the format AWS documents."""
        console = (
            f"https://console.aws.amazon.com/codepipeline/home?region={self.region}"
            f"#/view/{run.pipeline}"
        )
        approval: dict[str, Any] = {
            "pipelineName": run.pipeline,
            "stageName": run.stage,
            "actionName": run.action,
            "token": run.token,
            "expires": run.expires.strftime("%Y-%m-%dT%H:%MZ"),
            "externalEntityLink": run.external_entity_link,
            "approvalReviewLink": (f"{console}/{run.stage}/{run.action}/approve/{run.token}"),
            "customData": run.custom_data,
        }
        return {"region": self.region, "consoleLink": console, "approval": approval}

    def decide_in_console(self, pipeline: str, token: str, body: dict[str, Any]) -> dict[str, Any]:
        """Approve or reject as someone would in the console: ``by`` (a string, by default
        CONSOLE_PRINCIPAL) becomes the approval execution's ``updatedBy``."""
        status = str(body.get("status", "Approved"))
        result = {"status": status, "summary": str(body.get("summary", ""))}
        by = body.get("by")
        if by is not None and not isinstance(by, str):
            raise CodePipelineError("ValidationException", "by must be a string")
        return self._record_result(
            pipeline,
            None,
            None,
            token,
            result,
            source="console",
            by=by or CONSOLE_PRINCIPAL.format(account=self.account),
        )

    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def run_by_token(self, token: str) -> Run | None:
        """The run whose approval was asked with ``token`` (None: no run asked with it)."""
        with self._lock:
            return next(
                (r for r in self._runs.values() if r.token == token and r.approval is not None),
                None,
            )

    def approval_results(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(result) for result in self._results]

    def calls(self) -> list[dict[str, Any]]:
        """Every call the product made, oldest first: ``{method, args, at}`` and the answer,
        ``response`` (as the fake returned it, before any client parsed it) or
        ``error: {code, message}``; a faulted call also has its ``fault`` kind."""
        with self._lock:
            return copy.deepcopy(self._calls)

    def reset(self) -> None:
        with self._lock:
            self._runs.clear()
            self._results.clear()
            self._calls.clear()
            self._pages.clear()
            self._pipeline_pages.clear()
        self._history.reset()

    # --- the API the product calls -----------------------------------------------------

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one operation (patch 4 routes boto3's and the state machine's calls here).

        An injected fault is recorded with its ``fault`` kind and raised instead: the
        operation is not carried out, so a faulted ``PutApprovalResult`` is no result. A
        ``*_after_effect`` fault lets the operation be carried out (and recorded with its
        response), then raises what botocore raises when the answer is lost.
        """
        fault = None
        if self.faults is not None and operation in CODEPIPELINE_OPERATIONS:
            fault = self.faults.choose("codepipeline", operation, params)
        call: dict[str, Any] = {
            "method": operation,
            "args": _redacted(params),
            "at": self.clock().isoformat(),
        }
        try:
            if fault is not None:
                call["fault"] = fault.kind
                if not fault.after_effect:
                    raise fault.aws_error()
            handler = getattr(self, f"_op_{operation}", None)
            if handler is None:
                raise CodePipelineError("ValidationException", f"{operation} is not supported here")
            result: dict[str, Any] = handler(params)
        except FakeAwsError as exc:
            self._record_call(call, "error", {"code": exc.code, "message": exc.message})
            raise
        self._record_call(call, "response", result)
        if fault is not None:
            fault.lose_answer("codepipeline")  # raises: the effect stays, the answer is lost
        return result

    def _record_call(self, call: dict[str, Any], outcome: str, answer: dict[str, Any]) -> None:
        """Keep a call once answered, so every entry has its answer; a copy, as runs change."""
        call[outcome] = copy.deepcopy(answer)
        with self._lock:
            self._calls.append(call)

    def _pipeline_runs(self, pipeline: str) -> list[Run]:
        """The pipeline's runs, oldest first; PipelineNotFoundException if it has none."""
        with self._lock:
            runs = [r for r in self._runs.values() if r.pipeline == pipeline]
        if not runs:
            raise CodePipelineError("PipelineNotFoundException", f"pipeline {pipeline} not found")
        return sorted(runs, key=lambda r: r.started_at)

    def _op_GetPipelineState(self, params: dict[str, Any]) -> dict[str, Any]:
        """Each stage of the pipeline (as its newest run names them) with the latest
        execution of its action by any run: a stage no run has reached has no
        ``latestExecution``, and only an approval still waiting shows its token."""
        runs = self._pipeline_runs(str(params.get("name")))
        newest = runs[-1]
        structure = [(stage, stage) for stage, _, _ in SOURCE_ACTIONS]
        structure.append((newest.stage, newest.action))
        structure += [(stage, stage) for stage, _, _ in AFTER_ACTIONS]
        stages = []
        with self._lock:
            executions = [(record, run) for run in runs for record in run.actions]
            for stage, action in structure:
                mine = [(r, run) for r, run in executions if (r.stage, r.action) == (stage, action)]
                action_state: dict[str, Any] = {"actionName": action}
                stage_state: dict[str, Any] = {
                    "stageName": stage,
                    "inboundTransitionState": {"enabled": True},
                    "actionStates": [action_state],
                }
                if mine:
                    record, run = max(mine, key=lambda found: found[0].sequence)
                    latest: dict[str, Any] = {"status": record.status}
                    if record is run.approval and record.status == "InProgress":
                        latest["token"] = run.token
                    action_state["latestExecution"] = latest
                    stage_state["latestExecution"] = {
                        "pipelineExecutionId": run.execution_id,
                        "status": STAGE_STATUS[record.status],
                    }
                stages.append(stage_state)
        return {
            "pipelineName": newest.pipeline,
            "pipelineVersion": 1,
            "stageStates": stages,
            "created": _epoch(runs[0].started_at),
            "updated": _epoch(runs[0].started_at),
        }

    def _pipelines(self) -> dict[str, list[Run]]:
        """Every pipeline (one with a run) and its runs, oldest first, by name."""
        with self._lock:
            runs = sorted(self._runs.values(), key=lambda r: r.started_at)
        found: dict[str, list[Run]] = {}
        for run in runs:
            found.setdefault(run.pipeline, []).append(run)
        return dict(sorted(found.items()))

    def _op_ListPipelines(self, params: dict[str, Any]) -> dict[str, Any]:
        """Every pipeline, by name, a page at a time: at most ``maxResults`` (default 100),
        and a ``nextToken`` while more are left."""
        limit = params.get("maxResults", self.pipelines_page_size)
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= PIPELINES_PAGE_MAX
        ):
            raise CodePipelineError(
                "ValidationException", f"maxResults must be a number from 1 to {PIPELINES_PAGE_MAX}"
            )
        pipelines = self._pipelines()
        names = list(pipelines)
        token = params.get("nextToken")
        with self._lock:
            if token is not None:
                after = self._pipeline_pages.get(str(token))
                if after is None:
                    raise CodePipelineError(
                        "InvalidNextTokenException", "The next token is not valid"
                    )
                names = [name for name in names if name > after]
            page = names[:limit]
            answer: dict[str, Any] = {
                "pipelines": [
                    pipeline_declarations.summary(
                        name, pipelines[name][0].started_at, pipelines[name][0].started_at
                    )
                    for name in page
                ]
            }
            if len(names) > limit:
                next_token = secrets.token_urlsafe(48)
                self._pipeline_pages[next_token] = page[-1]
                answer["nextToken"] = next_token
        return answer

    def _op_GetPipeline(self, params: dict[str, Any]) -> dict[str, Any]:
        """The pipeline as its newest run declares it (``sandbox.pipeline_declarations``):
        each Manual approval action's NotificationArn is the topic it notifies."""
        name = str(params.get("name"))
        runs = self._pipeline_runs(name)
        version = params.get("version")
        if version is not None and version != pipeline_declarations.VERSION:
            raise CodePipelineError(
                "PipelineVersionNotFoundException", f"pipeline {name} has no version {version}"
            )
        created = runs[0].started_at
        return {
            "pipeline": pipeline_declarations.declaration(
                runs[-1], gate_topic=self.gate_topic_arn, region=self.region, account=self.account
            ),
            "metadata": pipeline_declarations.metadata(
                name, created, created, self.region, self.account
            ),
        }

    def _op_ListActionExecutions(self, params: dict[str, Any]) -> dict[str, Any]:
        """The pipeline's action executions, newest first, a page at a time: at most
        ``maxResults`` (default 100), and a ``nextToken`` while more are left.

        The API reference does not name an order; newest first is ListPipelineExecutions'
        documented one. The gate reads a bounded number of pages whatever the order.
        """
        pipeline = str(params.get("pipelineName"))
        runs = self._pipeline_runs(pipeline)
        where = params.get("filter") or {}
        if "latestInPipelineExecution" in where:
            raise CodePipelineError(
                "ValidationException", "filter.latestInPipelineExecution is not supported here"
            )
        wanted = where.get("pipelineExecutionId") or None
        if wanted is not None and wanted not in {run.execution_id for run in runs}:
            raise CodePipelineError(
                "PipelineExecutionNotFoundException",
                f"Pipeline execution {wanted} not found in pipeline {pipeline}",
            )
        limit = params.get("maxResults", self.page_size)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= PAGE_SIZE:
            raise CodePipelineError(
                "ValidationException",
                f"maxResults must be a number from 1 to {PAGE_SIZE}",
            )
        with self._lock:
            found = sorted(
                (
                    (record, run)
                    for run in runs
                    if wanted is None or run.execution_id == wanted
                    for record in run.actions
                ),
                key=lambda pair: pair[0].sequence,
                reverse=True,
            )
            token = params.get("nextToken")
            if token is not None:
                page_of = self._pages.get(str(token))
                if page_of is None or page_of[:2] != (pipeline, wanted):
                    raise CodePipelineError(
                        "InvalidNextTokenException", "The next token is not valid"
                    )
                found = [pair for pair in found if pair[0].sequence < page_of[2]]
            page = found[:limit]
            answer: dict[str, Any] = {
                "actionExecutionDetails": [self._detail(record, run) for record, run in page]
            }
            if len(found) > limit:
                next_token = secrets.token_urlsafe(48)
                self._pages[next_token] = (pipeline, wanted, page[-1][0].sequence)
                answer["nextToken"] = next_token
        return answer

    def _detail(self, record: ActionExecution, run: Run) -> dict[str, Any]:
        """botocore's ActionExecutionDetail of one action execution."""
        detail: dict[str, Any] = {
            "pipelineExecutionId": run.execution_id,
            "actionExecutionId": record.action_execution_id,
            "pipelineVersion": 1,
            "stageName": record.stage,
            "actionName": record.action,
            "startTime": _epoch(record.started_at),
            "lastUpdateTime": _epoch(record.updated_at),
            "status": record.status,
            "input": {
                "actionTypeId": {
                    "category": record.category,
                    "owner": "AWS",
                    "provider": record.provider,
                    "version": "1",
                },
                "region": self.region,
            },
            "output": {"executionResult": dict(record.result)},
        }
        if record.updated_by:
            detail["updatedBy"] = record.updated_by
        return detail

    def _op_GetPipelineExecution(self, params: dict[str, Any]) -> dict[str, Any]:
        execution_id = str(params.get("pipelineExecutionId"))
        self._pipeline_runs(str(params.get("pipelineName")))  # PipelineNotFoundException
        with self._lock:
            run = self._runs.get(execution_id)
        if run is None or run.pipeline != params.get("pipelineName"):
            raise CodePipelineError(
                "PipelineExecutionNotFoundException", f"execution {execution_id} not found"
            )
        revisions = [artifact_revision(s, self.region, self.account) for s in run.sources]
        if run.author is not None and run.commit is not None:
            commit_id = str(run.commit["id"])
            revisions.append(
                {
                    "name": "SourceArtifact",
                    "revisionId": commit_id,
                    "revisionSummary": str(run.commit["message"]),
                    "revisionUrl": self.commit_url(run.pipeline, commit_id),
                }
            )
        trigger = self._trigger(run)
        return {
            "pipelineExecution": {
                "pipelineName": run.pipeline,
                "pipelineVersion": 1,
                "pipelineExecutionId": run.execution_id,
                "status": run.status,
                "artifactRevisions": revisions,
                "trigger": trigger,
            }
        }

    # --- CodeCommit, the pipelines' source -----------------------------------------------

    @staticmethod
    def repository_name(pipeline: str) -> str:
        """The CodeCommit repository a pipeline's source reads."""
        return f"{pipeline}-repo"

    def commit_url(self, pipeline: str, commit_id: str) -> str:
        """The console link CodePipeline gives as a CodeCommit revision's ``revisionUrl``."""
        return (
            f"https://{self.region}.console.aws.amazon.com/codesuite/codecommit/repositories/"
            f"{self.repository_name(pipeline)}/commit/{commit_id}?region={self.region}"
        )

    def _op_GetCommit(self, params: dict[str, Any]) -> dict[str, Any]:
        repository = params.get("repositoryName")
        commit_id = params.get("commitId")
        if not repository:
            raise FakeAwsError("RepositoryNameRequiredException", "A repository name is required.")
        if not commit_id:
            raise FakeAwsError("CommitIdRequiredException", "A commit ID is required.")
        source = self._history.codecommit_commit(str(repository), str(commit_id))
        if source is not None:
            return self._commit_of(source)
        with self._lock:
            runs = [
                r for r in self._runs.values() if self.repository_name(r.pipeline) == repository
            ]
        if not runs and not self._history.has_codecommit_repository(str(repository)):
            raise FakeAwsError("RepositoryDoesNotExistException", f"{repository} does not exist")
        # The repository's commits in the order their runs started (runs start one at a
        # time): each run's commit's parent is the run before's, as successive pushes are.
        commits = [r for r in runs if r.author is not None and r.commit is not None]
        index = next(
            (
                i
                for i, r in enumerate(commits)
                if r.commit is not None and r.commit["id"] == commit_id
            ),
            None,
        )
        run = commits[index] if index is not None else None
        before = commits[index - 1] if index else None
        parents = [before.commit["id"]] if before is not None and before.commit else []
        if run is None or run.author is None or run.commit is None:
            # GetCommit's modelled error (CommitDoesNotExistException is other operations').
            raise FakeAwsError(
                "CommitIdDoesNotExistException",
                f"Could not find commit {commit_id} in repository {repository}",
            )
        person = {
            "name": _name_from_email(run.author),
            "email": run.author,
            "date": f"{int(_epoch(run.started_at))} +0000",
        }
        return {
            "commit": {
                "commitId": commit_id,
                "treeId": hashlib.sha1(f"tree:{commit_id}".encode()).hexdigest(),  # noqa: S324
                "parents": parents,
                "message": run.commit["message"],
                "author": person,
                "committer": dict(person),
                "additionalData": "",
            }
        }

    @staticmethod
    def _commit_of(source: Source) -> dict[str, Any]:
        """GetCommit's answer for a commit of a run's ``sources``: its parent is the previous
        run's commit of the repository. An author without ``@`` is a name, with no email."""
        author = source.author or "sandbox@example.com"
        person = {
            "name": _name_from_email(author) if "@" in author else author,
            **({"email": author} if "@" in author else {}),
            "date": f"{int(source.at)} +0000",
        }
        return {
            "commit": {
                "commitId": source.commit,
                "treeId": hashlib.sha1(f"tree:{source.commit}".encode()).hexdigest(),  # noqa: S324
                "parents": [source.parent] if source.parent else [],
                "message": source.message or "Update the application",
                "author": person,
                "committer": dict(person),
                "additionalData": "",
            }
        }

    def _op_PutApprovalResult(self, params: dict[str, Any]) -> dict[str, Any]:
        return self._record_result(
            str(params.get("pipelineName")),
            params.get("stageName"),
            params.get("actionName"),
            str(params.get("token")),
            dict(params.get("result") or {}),
            source="gate",
            by=None,
        )

    def _record_result(
        self,
        pipeline: str,
        stage: Any,
        action: Any,
        token: str,
        result: dict[str, Any],
        *,
        source: str,
        by: str | None,
    ) -> dict[str, Any]:
        if result.get("status") not in ("Approved", "Rejected"):
            # The service checks the request before it looks for the action.
            raise CodePipelineError(
                "ValidationException",
                f"1 validation error detected: Value '{result.get('status')}' at "
                "'result.status' failed to satisfy constraint: Member must satisfy enum value "
                "set: [Approved, Rejected]",
            )
        with self._lock:
            run = next(
                (r for r in self._runs.values() if r.token == token and r.pipeline == pipeline),
                None,
            )
            if (
                run is None
                or run.approval is None  # failed before its approval: no token was issued
                or (stage is not None and (run.stage, run.action) != (stage, action))
            ):
                raise CodePipelineError(
                    "InvalidApprovalTokenException",
                    "The approval action cannot be found or the token is not valid",
                )
            if run.approval.status != "InProgress" or run.status != "InProgress":
                raise CodePipelineError(
                    "ApprovalAlreadyCompletedException", "The approval action has already completed"
                )
            now = self.clock()
            approved = result["status"] == "Approved"
            run.approval.status = "Succeeded" if approved else "Failed"
            run.approval.updated_at = now
            run.approval.updated_by = by or GATE_PRINCIPAL.format(account=self.account)
            if result.get("summary"):
                run.approval.result["externalExecutionSummary"] = str(result["summary"])
            run.status = "InProgress" if approved else "Failed"
            run.approval_summary = result.get("summary")
            run.decided_by = by
            run.decided_at = now
            self._results.append(
                {
                    "pipelineName": pipeline,
                    "stageName": run.stage,
                    "actionName": run.action,
                    "token": token,
                    "result": {"status": result["status"], "summary": result.get("summary", "")},
                    "source": source,
                    "by": by,
                    "pipelineExecutionId": run.execution_id,
                    "at": now.isoformat(),
                }
            )
        state = "SUCCEEDED" if approved else "FAILED"
        events = [
            self._action_event(run, run.stage, run.action, state, "Manual", "Approval"),
            self._stage_event(run, run.stage, state),
        ]
        if approved:
            for stage, provider, category in AFTER_ACTIONS:
                events += self._stage_events(run, stage, provider, category)
            if run.status == "InProgress":
                with self._lock:
                    run.status = "Succeeded"
                events.append(self._pipeline_event(run, "SUCCEEDED"))
        else:
            events.append(self._pipeline_event(run, "FAILED"))
        self._send(events)
        return {"approvedAt": _epoch(now)}


def _optional_text(body: dict[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _name_from_email(email: str) -> str:
    """``jane.doe@example.com`` -> ``Jane Doe``: a plausible git author name."""
    local = email.partition("@")[0]
    words = re.split(r"[._+\-]+", local)
    return " ".join(w.capitalize() for w in words if w) or email


def _redacted(params: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k == "token" else v) for k, v in params.items()}
