"""Workflow step: close the request in the table and in Slack; return the decision record."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.closing import close
from approval_gate.metering import metered_store
from approval_gate.runtime import logger as make_logger
from approval_gate.runtime import slack_access
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = metered_store(SETTINGS)  # measures each decision as its request closes
SLACK = slack_access(SETTINGS)
CODEPIPELINE = boto3.client("codepipeline")  # to tell the gate's own decision from another


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    record = close(
        approval_id,
        report_error=event.get("report_error"),
        reported=event.get("reported") is True,
        store=STORE,
        slack=SLACK.client(),
        codepipeline=CODEPIPELINE,
        clock=utc_now,
    )
    logger.info("approval closed", extra={"outcome": record["outcome"]})
    return record
