"""API Gateway → slack_interactions: verify, authorize, record exactly once, resume.

The path of a click, file by file, is in docs/architecture.md ("The path of a click").
"""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.interactions import Collaborators, handle
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
SLACK = slack_access(SETTINGS)
DEPS = Collaborators(
    store=approval_store(SETTINGS),
    sfn=boto3.client("stepfunctions"),
    credentials=SLACK.credentials,
    slack_client=SLACK.client,
    clock=utc_now,
    label_logs=logger.append_keys,
)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    return handle(event, DEPS).as_lambda_response()
