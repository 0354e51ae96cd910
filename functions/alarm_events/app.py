"""EventBridge → alarm_events: a CloudWatch alarm changed state; the open requests that list
it are updated in place (Approve hidden or back), and a hold waiting for it goes on."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.live_checks import MalformedEvent, on_alarm_change
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)
SLACK = slack_access(SETTINGS)
SFN = boto3.client("stepfunctions")  # a hold waiting for the checks ends with its token


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    try:
        return on_alarm_change(event, store=STORE, slack=SLACK.client(), sfn=SFN, clock=utc_now)
    except MalformedEvent as exc:  # retrying cannot help: say why, change nothing
        logger.error("rejected an alarm event", extra={"why": str(exc)})
        return {"rejected": str(exc)}
