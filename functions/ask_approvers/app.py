"""Workflow step: post the approval request to Slack and keep the task token."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.approvals import ask
from approval_gate.runtime import SlackAccess
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.store import ApprovalStore

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = ApprovalStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    result = ask(approval_id, event["task_token"], store=STORE, slack=SLACK.client())
    logger.info(
        "asked approvers in Slack", extra={"channel": result["channel"], "posted": result["posted"]}
    )
    return result
