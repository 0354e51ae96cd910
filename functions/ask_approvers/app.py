"""Workflow step: post the approval request to Slack and keep the task token; when Slack
cannot be asked, send it to the fallback SNS topic, count it in SlackFallbacks (alarmed)."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.asking import ask, topic_notifier
from approval_gate.runtime import approval_store, metrics, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from aws_lambda_powertools.metrics import MetricUnit

SETTINGS = Settings.from_env()
logger = make_logger()
METRICS = metrics()
STORE = approval_store(SETTINGS)
SLACK = slack_access(SETTINGS)
FALLBACK = topic_notifier(boto3.client("sns"), SETTINGS.fallback_topic_arn)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    logger.append_keys(approval_id=event["approval_id"])
    result = ask(
        event["approval_id"],
        event["task_token"],
        store=STORE,
        slack=SLACK.client(),
        retries_left=int(event.get("retries_left") or 0),
        fallback=FALLBACK,
    )
    if result.get("notified"):  # once per approval, like the notification itself
        METRICS.add_metric(name="SlackFallbacks", unit=MetricUnit.Count, value=1)
        METRICS.flush_metrics()  # one EMF line in the log; CloudWatch makes it a metric
    return result
