"""Workflow step: read the health checks, ask in Slack (or the fallback topic), keep the token."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.asking import ask, topic_notifier
from approval_gate.checks import aws_checker
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
CHECKER = aws_checker()  # its clients are made when a policy first has checks


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
        checker=CHECKER,
    )
    if result.get("notified"):  # once per approval: one EMF line, a CloudWatch metric
        METRICS.add_metric(name="SlackFallbacks", unit=MetricUnit.Count, value=1)
        METRICS.flush_metrics()
    return result
