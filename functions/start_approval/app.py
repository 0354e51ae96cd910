"""SNS → start_approval: validate CodePipeline's approval request and start its workflow."""

from __future__ import annotations

from functools import partial
from typing import Any

import boto3
from approval_gate.approvals import start
from approval_gate.authors import ChangeAuthors, change_authors
from approval_gate.clock import utc_now
from approval_gate.policy import Policy, PolicyError, shipped_policy
from approval_gate.request import InvalidNotification, parse_approval_message, sns_messages
from approval_gate.runtime import SlackAccess
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.store import ApprovalStore

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = ApprovalStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
CODEPIPELINE = boto3.client("codepipeline")
CODECOMMIT = boto3.client("codecommit")
SFN = boto3.client("stepfunctions")
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))


def policy() -> Policy:
    return shipped_policy(SETTINGS.policy_file)


def authors_of(pipeline: str, execution_id: str | None) -> ChangeAuthors:
    """Who made the change (for four-eyes); unknown rather than an error when not found."""
    return change_authors(
        codepipeline=CODEPIPELINE,
        codecommit=CODECOMMIT,
        slack=SLACK.client(),
        people=policy().people,
        pipeline=pipeline,
        execution_id=execution_id,
    )


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    try:
        messages = sns_messages(event)
    except InvalidNotification as exc:
        logger.error(
            "rejected an event that is not an SNS notification", extra={"reason": str(exc)}
        )
        return {"started": 0, "duplicates": 0, "rejected": 1}
    started = duplicates = rejected = 0
    for message in messages:
        try:
            request = parse_approval_message(message.body)
        except InvalidNotification as exc:
            rejected += 1
            logger.error(
                "rejected a notification that is not a CodePipeline approval request",
                extra={"reason": str(exc), "message_id": message.message_id},
            )
            continue
        try:
            result = start(
                request,
                notified_at=message.timestamp,
                policy=policy(),
                store=STORE,
                codepipeline=CODEPIPELINE,
                sfn=SFN,
                state_machine_arn=SETTINGS.state_machine_arn,
                clock=utc_now,
                find_authors=partial(authors_of, request.pipeline),
            )
        except PolicyError as exc:
            # A broken policy must not silently drop requests: fail so SNS retries and
            # the error is logged; the approval still waits in CodePipeline.
            logger.error("the policy is invalid", extra={"reason": str(exc)})
            raise
        if result.duplicate:
            duplicates += 1
        else:
            started += 1
        logger.info(
            "approval request started" if not result.duplicate else "duplicate delivery ignored",
            extra={
                "approval_id": result.approval_id,
                "execution": result.execution_name,
                "pipeline": request.pipeline,
                "stage": request.stage,
                "action": request.action,
            },
        )
    return {"started": started, "duplicates": duplicates, "rejected": rejected}
