"""What the status feed reads from CodePipeline beyond its events.

A failed action's error summary and logs link, and who decided a manual approval in the
console and their comment (ListActionExecutions), and an execution's source revision and
trigger (GetPipelineExecution). CodePipeline failing to answer is not
an error of the feed: the lookup logs a warning and returns nothing, and the message or
the thread line goes out without what it would have added.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from approval_gate.feed.events import TRIGGER_TYPE, PipelineEvent, optional_link, optional_summary
from approval_gate.feed.state import Feed, Revision
from approval_gate.revisions import parse_revisions
from approval_gate.text import MAX_SUMMARY, one_line

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


@dataclass(frozen=True)
class ActionDetails:
    """A failed action's error summary and logs link; either may be unknown. For a manual
    approval, also who last changed its execution (`updatedBy`: the IAM principal who
    approved or rejected it in the console) and the comment typed there."""

    summary: str | None = None
    url: str | None = None
    updated_by: str | None = None
    comment: str | None = None


#: An IAM or STS principal's ARN, as `updatedBy` names who approved in the console
#: (arn:aws:sts::123456789012:assumed-role/Dev/jane, arn:aws:iam::123456789012:user/ops).
_PRINCIPAL = re.compile(r"arn:aws[a-z\-]*:(?:iam|sts)::\d{12}:[A-Za-z0-9+=,.@_/\-]{1,1024}")


def principal(value: Any) -> str | None:
    """The value if it is an IAM or STS principal's ARN, else None (nothing else is
    recorded as who decided)."""
    return value if isinstance(value, str) and _PRINCIPAL.fullmatch(value) else None


#: How many pages of one execution's action executions (100 each) a lookup reads at most.
ACTION_EXECUTION_PAGES = 3


def action_details(codepipeline: Any, event: PipelineEvent) -> ActionDetails | None:
    """The ended action's newest execution with the event's outcome, from
    ListActionExecutions: a failed action's error summary and logs link, an approval's
    decider and comment. None when CodePipeline cannot say (the thread line goes out
    without them, the approval closes without who decided)."""
    # Filtered to the event's execution, the first page (100) holds every action execution
    # of most runs; many actions and retried stages make more: follow nextToken, for
    # ACTION_EXECUTION_PAGES pages at most, so one event's lookup costs bounded time.
    kwargs: dict[str, Any] = {
        "pipelineName": event.pipeline,
        "filter": {"pipelineExecutionId": event.execution_id},
    }
    mine: list[dict[str, Any]] = []
    for _ in range(ACTION_EXECUTION_PAGES):
        try:
            response = codepipeline.list_action_executions(**kwargs)
        except (ClientError, BotoCoreError) as exc:
            LOG.warning(
                "could not read the action's details",
                extra={"pipeline": event.pipeline, "error": _error_code(exc)},
            )
            break
        response = _mapping(response)
        details = response.get("actionExecutionDetails")
        mine += [
            d
            for d in (details if isinstance(details, list) else [])
            if isinstance(d, dict)
            and d.get("stageName") == event.stage
            and d.get("actionName") == event.action
        ]
        token = response.get("nextToken")
        if not isinstance(token, str) or not token:
            break
        kwargs["nextToken"] = token
    if not mine:
        return None

    ended = "Succeeded" if event.state == "SUCCEEDED" else "Failed"

    def newest_ended(detail: dict[str, Any]) -> tuple[bool, float]:
        updated = detail.get("lastUpdateTime")
        when = updated.timestamp() if isinstance(updated, datetime) else 0.0
        return (detail.get("status") == ended, when)

    detail = max(mine, key=newest_ended)
    # botocore's ActionExecutionDetail keeps errorDetails in output.executionResult.
    result = _mapping(_mapping(detail.get("output")).get("executionResult"))
    typed = result.get("externalExecutionSummary")
    summary = optional_summary(typed)
    error = result.get("errorDetails")
    if summary is None and isinstance(error, dict):
        summary = optional_summary(error.get("message"))
    # Who ended it, only if this execution ended as the event says (not an older one).
    by = principal(detail.get("updatedBy")) if detail.get("status") == ended else None
    return ActionDetails(
        summary=summary,
        url=optional_link(result.get("externalExecutionUrl")),
        updated_by=by,
        comment=(one_line(typed, MAX_SUMMARY) or None) if by and isinstance(typed, str) else None,
    )


def execution_info(
    codepipeline: Any, feed: Feed
) -> tuple[Revision | None, tuple[str | None, str | None]]:
    """The source revision and the trigger, from GetPipelineExecution (once, when the
    message is first posted); nothing when CodePipeline cannot say."""
    try:
        response = codepipeline.get_pipeline_execution(
            pipelineName=feed.pipeline, pipelineExecutionId=feed.execution_id
        )
    except (ClientError, BotoCoreError) as exc:
        LOG.warning(
            "could not read the pipeline execution",
            extra={"pipeline": feed.pipeline, "error": _error_code(exc)},
        )
        return None, (None, None)
    execution = response.get("pipelineExecution") if isinstance(response, dict) else None
    if not isinstance(execution, dict):
        return None, (None, None)
    trigger = _mapping(execution.get("trigger"))
    trigger_type = trigger.get("triggerType")
    if not (isinstance(trigger_type, str) and TRIGGER_TYPE.fullmatch(trigger_type)):
        trigger_type = None
    trigger_detail = trigger.get("triggerDetail")
    detail = None
    if isinstance(trigger_detail, str):
        detail = one_line(trigger_detail, 300) or None
    revision = None
    for found in parse_revisions(execution)[:1]:  # the first source: the change deployed
        revision = Revision(
            revision_id=one_line(found.revision_id, 100),
            summary=one_line(found.summary, 150) or None if found.summary else None,
            url=optional_link(found.url),
        )
    return revision, (trigger_type, detail)


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _error_code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code"))
    return type(exc).__name__
