"""EventBridge → pipeline_events: the pipeline status feed in Slack, and approvals that
CodePipeline settled itself (console decision, superseded or stopped run) closed."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.feed import FeedStore, InvalidEvent, handle_event, parse_event
from approval_gate.policy import Policy, PolicyError, shipped_policy
from approval_gate.runtime import SlackAccess
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.store import ApprovalStore

SETTINGS = Settings.from_env()
logger = make_logger()
_dynamodb = boto3.client("dynamodb")
FEED = FeedStore(SETTINGS.table_name, _dynamodb, SETTINGS.retention_days)
APPROVALS = ApprovalStore(SETTINGS.table_name, _dynamodb, SETTINGS.retention_days)
CODEPIPELINE = boto3.client("codepipeline")
SFN = boto3.client("stepfunctions")
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))


def policy() -> Policy:
    return shipped_policy(SETTINGS.policy_file)


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    try:
        change = parse_event(event)
    except InvalidEvent as exc:
        # A malformed event stays malformed: returning (not raising) spares the retries.
        logger.error(
            "ignored an event that is not a CodePipeline state change",
            extra={"reason": str(exc)},
        )
        return {"ignored": str(exc)}
    try:
        rules = policy()
    except PolicyError as exc:
        logger.error("the policy is invalid", extra={"reason": str(exc)})
        raise
    result = handle_event(
        change,
        store=FEED,
        approvals=APPROVALS,
        slack=SLACK.client(),
        policy=rules,
        codepipeline=CODEPIPELINE,
        sfn=SFN,
        clock=utc_now,
    )
    logger.info(
        "pipeline event handled",
        extra={
            "pipeline": change.pipeline,
            "execution_id": change.execution_id,
            "kind": change.kind,
            "stage": change.stage,
            "action": change.action,
            "state": change.state,
            "event_id": change.event_id,
            **result,
        },
    )
    return result
