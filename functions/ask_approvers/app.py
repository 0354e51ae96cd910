"""Workflow step: post the approval request to Slack and keep the task token.

When Slack cannot be asked (a lasting error, or still failing on the workflow's last
retry), the request goes to the fallback SNS topic instead, the SlackFallbacks metric
counts it (an alarm watches it), and the request stays open.
"""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.approvals import ask
from approval_gate.runtime import SlackAccess, metrics
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.store import ApprovalStore
from aws_lambda_powertools.metrics import MetricUnit

SETTINGS = Settings.from_env()
logger = make_logger()
METRICS = metrics()
STORE = ApprovalStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))
SNS = boto3.client("sns")


def notify(subject: str, text: str) -> None:
    SNS.publish(TopicArn=SETTINGS.fallback_topic_arn, Subject=subject, Message=text)


@logger.inject_lambda_context
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    result = ask(
        approval_id,
        event["task_token"],
        store=STORE,
        slack=SLACK.client(),
        retries_left=int(event.get("retries_left") or 0),
        fallback=notify if SETTINGS.fallback_topic_arn else None,
    )
    if "fallback" in result:
        if result["notified"]:  # once per approval, like the notification itself
            METRICS.add_metric(name="SlackFallbacks", unit=MetricUnit.Count, value=1)
            METRICS.flush_metrics()  # one EMF line in the log; CloudWatch makes it a metric
        return result
    logger.info(
        "asked approvers in Slack", extra={"channel": result["channel"], "posted": result["posted"]}
    )
    return result
