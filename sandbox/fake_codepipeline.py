"""A fake CodePipeline that runs pipelines up to a manual approval and records decisions.

moto implements neither GetPipelineState, PutApprovalResult nor ListActionExecutions, and
its GetPipelineExecution knows nothing of approvals (DESIGN §5, patch 4). This fake
answers every CodePipeline read and write the product makes, records each call, and
publishes the approval notification to SNS exactly as CodePipeline does.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

DEFAULT_STAGE = "Approval"
DEFAULT_ACTION = "Approve"
SOURCE_STAGES = ("Source", "Build")
AFTER_STAGES = ("Deploy",)


class CodePipelineError(Exception):
    """An error CodePipeline would answer, by its API error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


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
    commit: dict[str, Any] | None = None
    custom_data: str | None = None
    external_entity_link: str | None = None
    status: str = "InProgress"  # InProgress | Succeeded | Failed | Stopped | Superseded
    approval_status: str = "InProgress"  # InProgress | Succeeded | Failed
    approval_summary: str | None = None
    decided_by: str | None = None
    decided_at: datetime | None = None


@dataclass
class FakeCodePipeline:
    """Pipelines and their runs; `publish` sends the approval notification (SNS)."""

    region: str = "us-east-1"
    account: str = "123456789012"
    publish: Callable[[str], None] | None = None
    clock: Callable[[], datetime] = _now
    _runs: dict[str, Run] = field(default_factory=dict)
    _results: list[dict[str, Any]] = field(default_factory=list)
    _calls: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.RLock = field(default_factory=threading.RLock)

    # --- the sandbox's side ------------------------------------------------------------

    def start_run(self, pipeline: str, body: dict[str, Any]) -> Run:
        """A run reaches its manual approval: CodePipeline notifies the topic."""
        now = self.clock()
        expires = now + timedelta(days=7)
        if body.get("expires"):
            expires = datetime.fromisoformat(str(body["expires"]).replace("Z", "+00:00"))
            if expires.tzinfo is None:
                expires = expires.replace(tzinfo=UTC)
        commit = body.get("commit") if isinstance(body.get("commit"), dict) else None
        run = Run(
            pipeline=pipeline,
            execution_id=str(uuid.uuid4()),
            token=str(uuid.uuid4()),
            stage=str(body.get("stage") or DEFAULT_STAGE),
            action=str(body.get("action") or DEFAULT_ACTION),
            started_at=now,
            expires=expires,
            author=body.get("author"),
            commit=commit,
            custom_data=body.get("customData"),
            external_entity_link=body.get("externalEntityLink"),
        )
        with self._lock:
            self._runs[run.execution_id] = run
        if self.publish is not None:
            self.publish(json.dumps(self.notification(run)))
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
        with self._lock:
            self._calls.append(
                {"method": operation, "args": _redacted(params), "at": self.clock().isoformat()}
            )
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
        for name in SOURCE_STAGES:
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
        details = [
            {
                "pipelineExecutionId": run.execution_id,
                "actionExecutionId": str(uuid.uuid5(uuid.NAMESPACE_URL, run.token)),
                "stageName": run.stage,
                "actionName": run.action,
                "status": run.approval_status,
                "output": {"executionResult": {"externalExecutionId": run.token}},
            }
            for run in runs
        ]
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
        if run.commit:
            revisions.append(
                {
                    "name": "SourceArtifact",
                    "revisionId": str(run.commit.get("id", "")),
                    "revisionSummary": str(run.commit.get("message", "")),
                }
            )
        return {
            "pipelineExecution": {
                "pipelineName": run.pipeline,
                "pipelineVersion": 1,
                "pipelineExecutionId": run.execution_id,
                "status": run.status,
                "artifactRevisions": revisions,
                "trigger": {"triggerType": "StartPipelineExecution", "triggerDetail": ""},
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
            run.approval_status = "Succeeded" if result["status"] == "Approved" else "Failed"
            run.status = "Succeeded" if result["status"] == "Approved" else "Failed"
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
        return {"approvedAt": _epoch(now)}


def _redacted(params: dict[str, Any]) -> dict[str, Any]:
    return {k: ("[redacted]" if k == "token" else v) for k, v in params.items()}
