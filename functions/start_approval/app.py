"""SNS → start_approval: validate CodePipeline's approval request and start its workflow."""

from __future__ import annotations

from functools import partial
from typing import Any

import boto3
from approval_gate.changes import lookup_clients
from approval_gate.clock import utc_now
from approval_gate.policy import shipped_policy
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.starting import start_requests

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)
CODEPIPELINE, CODECOMMIT = boto3.client("codepipeline"), boto3.client("codecommit")  # retried
LOOKUPS = lookup_clients()  # CodePipeline, CodeCommit: short timeouts, no retries
SFN = boto3.client("stepfunctions")
SLACK = slack_access(SETTINGS)


@logger.inject_lambda_context(clear_state=True)
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    return start_requests(
        event,
        load_policy=partial(shipped_policy, SETTINGS.policy_file),
        store=STORE,
        codepipeline=CODEPIPELINE,
        codecommit=CODECOMMIT,
        sfn=SFN,
        slack_client=SLACK.client,
        state_machine_arn=SETTINGS.state_machine_arn,
        clock=utc_now,
        lookups=LOOKUPS,
    )
