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
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sandbox.services import CODEPIPELINE_OPERATIONS, FakeAwsError

if TYPE_CHECKING:
    from sandbox.faults import Faults

DEFAULT_STAGE = "Approval"
DEFAULT_ACTION = "Approve"
#: (stage, provider, category) of the one action each stage runs.
SOURCE_ACTIONS = (("Source", "CodeCommit", "Source"), ("Build", "CodeBuild", "Build"))
AFTER_ACTIONS = (("Deploy", "CodeDeploy", "Deploy"),)


#: The message of a run's commit when the run gives an ``author`` but no commit message.
DEFAULT_COMMIT_MESSAGE = "Update the application"


#: The historical name; the same class.
CodePipelineError = FakeAwsError


def _now() -> datetime:
    return datetime.now(UTC)


def _epoch(moment: datetime) -> float:
    return moment.timestamp()


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
    approval_status: str = "InProgress"  # InProgress | Succeeded | Failed
    approval_summary: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None
    #: A stage that fails in this run ("Build" or "Deploy"), as the request asked.
    fail_at: str | None = None
    #: Every action execution so far: ListActionExecutions answers from it.
    actions: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class FakeCodePipeline:
    """Pipelines and their runs; `publish` sends the approval notification (SNS)."""

    region: str = "us-east-1"
    account: str = "123456789012"
    publish: Callable[[str], None] | None = None
    #: Sends CodePipeline state-change events, in order: emit([(detail_type, detail), …]).
    emit: Callable[[list[tuple[str, dict[str, Any]]]], None] | None = None
    clock: Callable[[], datetime] = _now
    #: Injected faults (``sandbox.faults``), asked on each CodePipeline operation the
    #: product calls; ``None``: nothing fails on purpose.
    faults: Faults | None = None
    _runs: dict[str, Run] = field(default_factory=dict)
    _results: list[dict[str, Any]] = field(default_factory=list)
    _calls: list[dict[str, Any]] = field(default_factory=list)
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
        self._send(events)
        if self.publish is not None:
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
        record: dict[str, Any] = {
            "stageName": stage,
            "actionName": stage,
            "status": "Failed" if failed else "Succeeded",
            "output": {"executionResult": {"externalExecutionUrl": logs}},
        }
        if failed:
            record["output"]["executionResult"]["externalExecutionSummary"] = (
                f"{stage} failed: exit status 2 in phase BUILD"
            )
            record["errorDetails"] = {"code": "JobFailed", "message": f"{stage} failed"}
        with self._lock:
            run.actions.append(record)
            if failed:
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
            waiting = run.approval_status == "InProgress"
            if waiting:
                run.approval_status = "Abandoned"
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
        status = str(body.get("status", "Approved"))
        result = {"status": status, "summary": str(body.get("summary", ""))}
        return self._record_result(
            pipeline,
            None,
            None,
            token,
            result,
            source="console",
            by=str(body.get("by") or "console-user"),
        )

    def runs(self) -> list[Run]:
        with self._lock:
            return list(self._runs.values())

    def run_by_token(self, token: str) -> Run | None:
        with self._lock:
            return next((r for r in self._runs.values() if r.token == token), None)

    def approval_results(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(result) for result in self._results]

    def calls(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(call) for call in self._calls]

    def reset(self) -> None:
        with self._lock:
            self._runs.clear()
            self._results.clear()
            self._calls.clear()

    # --- the API the product calls -----------------------------------------------------

    def call(self, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        """Answer one operation (patch 4 routes boto3's and the state machine's calls here).

        An injected fault is recorded with its ``fault`` kind and raised instead: the
        operation is not carried out, so a faulted ``PutApprovalResult`` is no result.
        """
        fault = None
        if self.faults is not None and operation in CODEPIPELINE_OPERATIONS:
            fault = self.faults.choose("codepipeline", operation, params)
        with self._lock:
            call = {"method": operation, "args": _redacted(params), "at": self.clock().isoformat()}
            if fault is not None:
                call["fault"] = fault.kind
            self._calls.append(call)
        if fault is not None:
            raise fault.aws_error()
        handler = getattr(self, f"_op_{operation}", None)
        if handler is None:
            raise CodePipelineError("ValidationException", f"{operation} is not supported here")
        result: dict[str, Any] = handler(params)
        return result

    def _latest_run(self, pipeline: str) -> Run:
        with self._lock:
            runs = [r for r in self._runs.values() if r.pipeline == pipeline]
        if not runs:
            raise CodePipelineError("PipelineNotFoundException", f"pipeline {pipeline} not found")
        return max(runs, key=lambda r: r.started_at)

    def _op_GetPipelineState(self, params: dict[str, Any]) -> dict[str, Any]:
        run = self._latest_run(str(params.get("name")))
        stages = []
        for name, _, _ in SOURCE_ACTIONS:
            stages.append(
                {
                    "stageName": name,
                    "latestExecution": {
                        "pipelineExecutionId": run.execution_id,
                        "status": "Succeeded",
                    },
                    "actionStates": [
                        {"actionName": name, "latestExecution": {"status": "Succeeded"}}
                    ],
                }
            )
        approval_latest: dict[str, Any] = {"status": run.approval_status}
        if run.approval_status == "InProgress":
            approval_latest["token"] = run.token
        stages.append(
            {
                "stageName": run.stage,
                "latestExecution": {
                    "pipelineExecutionId": run.execution_id,
                    "status": run.approval_status,
                },
                "actionStates": [{"actionName": run.action, "latestExecution": approval_latest}],
            }
        )
        return {
            "pipelineName": run.pipeline,
            "pipelineVersion": 1,
            "stageStates": stages,
            "created": _epoch(run.started_at),
            "updated": _epoch(self.clock()),
        }

    def _op_ListActionExecutions(self, params: dict[str, Any]) -> dict[str, Any]:
        pipeline = str(params.get("pipelineName"))
        with self._lock:
            runs = [r for r in self._runs.values() if r.pipeline == pipeline]
        wanted = ((params.get("filter") or {}).get("pipelineExecutionId")) or None
        details = []
        for run in runs:
            if wanted and run.execution_id != wanted:
                continue
            details += [{"pipelineExecutionId": run.execution_id, **a} for a in run.actions]
            approval: dict[str, Any] = {
                "pipelineExecutionId": run.execution_id,
                "actionExecutionId": str(uuid.uuid5(uuid.NAMESPACE_URL, run.token)),
                "stageName": run.stage,
                "actionName": run.action,
                "status": run.approval_status,
                "output": {"executionResult": {"externalExecutionId": run.token}},
            }
            if run.approval_summary:
                approval["output"]["executionResult"]["externalExecutionSummary"] = (
                    run.approval_summary
                )
            details.append(approval)
        return {"actionExecutionDetails": details}

    def _op_GetPipelineExecution(self, params: dict[str, Any]) -> dict[str, Any]:
        execution_id = str(params.get("pipelineExecutionId"))
        with self._lock:
            run = self._runs.get(execution_id)
        if run is None or run.pipeline != params.get("pipelineName"):
            raise CodePipelineError(
                "PipelineExecutionNotFoundException", f"execution {execution_id} not found"
            )
        revisions = []
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
        with self._lock:
            runs = [
                r for r in self._runs.values() if self.repository_name(r.pipeline) == repository
            ]
        if not runs:
            raise FakeAwsError("RepositoryDoesNotExistException", f"{repository} does not exist")
        run = next(
            (
                r
                for r in sorted(runs, key=lambda r: r.started_at)
                if r.author is not None and r.commit is not None and r.commit["id"] == commit_id
            ),
            None,
        )
        if run is None or run.author is None or run.commit is None:
            raise FakeAwsError(
                "CommitDoesNotExistException",
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
                "parents": [],
                "message": run.commit["message"],
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
        with self._lock:
            run = next(
                (r for r in self._runs.values() if r.token == token and r.pipeline == pipeline),
                None,
            )
            if run is None or (stage is not None and (run.stage, run.action) != (stage, action)):
                raise CodePipelineError(
                    "InvalidApprovalTokenException",
                    "The approval action cannot be found or the token is not valid",
                )
            if run.approval_status != "InProgress" or run.status != "InProgress":
                raise CodePipelineError(
                    "ApprovalAlreadyCompletedException", "The approval action has already completed"
                )
            if result.get("status") not in ("Approved", "Rejected"):
                raise CodePipelineError(
                    "InvalidApprovalTokenException", "status must be Approved or Rejected"
                )
            now = self.clock()
            approved = result["status"] == "Approved"
            run.approval_status = "Succeeded" if approved else "Failed"
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
