"""EventBridge → pipeline_events: the pipeline status feed in Slack, and approvals that
CodePipeline settled itself (console decision, superseded or stopped run) closed."""

from __future__ import annotations

from functools import partial
from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.feed import FeedStore, receive
from approval_gate.policy import shipped_policy
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


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    return receive(
        event,
        store=FEED,
        approvals=APPROVALS,
        slack_client=SLACK.client,
        load_policy=partial(shipped_policy, SETTINGS.policy_file),
        codepipeline=CODEPIPELINE,
        sfn=SFN,
        clock=utc_now,
    )
