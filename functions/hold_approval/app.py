"""Workflow steps of a hold (DESIGN §8.2) and of the health checks before a report (§8.3):
with a task token, begin a hold; with `check`, run the checks; otherwise end the hold."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.checks import aws_checker
from approval_gate.clock import utc_now
from approval_gate.feed import FeedStore, hold_shower
from approval_gate.hold_steps import begin_hold, check_before_report, end_hold
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)
SLACK = slack_access(SETTINGS)
FEED = FeedStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SHOW = hold_shower(FEED, SLACK.client)  # shows the hold in the run's status message
CHECKER = aws_checker()  # its clients are made when an approval first has checks


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    approval_id, token = event["approval_id"], event.get("task_token")
    logger.append_keys(approval_id=approval_id)
    if event.get("check"):  # no Slack: the report (or the hold) shows the results
        return check_before_report(approval_id, store=STORE, checker=CHECKER, clock=utc_now)
    SLACK.invocation(context)
    if not token:
        return end_hold(approval_id, store=STORE, clock=utc_now, show_in_feed=SHOW, checker=CHECKER)
    left = int(event.get("retries_left") or 0)
    return begin_hold(
        approval_id, token, store=STORE, slack=SLACK.client(), retries_left=left, show_in_feed=SHOW
    )
