"""Workflow steps of a hold (DESIGN §8.2): with a task token, begin it (keep the token,
show the held request); without, end it (read the item again, say what comes next)."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.feed import FeedStore, hold_shower
from approval_gate.hold_steps import begin_hold, end_hold
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)
SLACK = slack_access(SETTINGS)
FEED = FeedStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SHOW_IN_FEED = hold_shower(FEED, SLACK.client)  # the run's status message


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    if event.get("task_token"):
        SLACK.invocation(context)
        return begin_hold(
            approval_id,
            event["task_token"],
            store=STORE,
            slack=SLACK.client(),
            retries_left=int(event.get("retries_left") or 0),
            show_in_feed=SHOW_IN_FEED,
        )
    SLACK.invocation(context)
    return end_hold(approval_id, store=STORE, clock=utc_now, show_in_feed=SHOW_IN_FEED)
