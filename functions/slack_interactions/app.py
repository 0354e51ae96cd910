"""API Gateway → slack_interactions: verify, authorize, record exactly once, resume."""

from __future__ import annotations

from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.interactions import (
    BadRequest,
    http_request,
    parse_click,
    parse_interaction,
    record_click,
    tell,
)
from approval_gate.runtime import SlackAccess
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.slack import signature_is_valid
from approval_gate.store import ApprovalStore

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = ApprovalStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SFN = boto3.client("stepfunctions")
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))


def _response(status: int, text: str = "") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": text,
    }


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    try:
        request = http_request(event)
    except BadRequest as exc:
        logger.warning("rejected an unreadable request", extra={"reason": str(exc)})
        return _response(401, "invalid request")
    credentials = SLACK.credentials.get()
    if not signature_is_valid(credentials.signing_secret, request.headers, request.body):
        # The signing secret may have been rotated: look again, at most once a minute.
        fresh = SLACK.credentials.refreshed()
        if fresh is None or not signature_is_valid(
            fresh.signing_secret, request.headers, request.body
        ):
            logger.warning("rejected a request with an invalid or stale Slack signature")
            return _response(401, "invalid request signature")
        credentials = fresh
    try:
        click = parse_click(parse_interaction(request.body))
    except BadRequest as exc:
        logger.warning("rejected a malformed interaction", extra={"reason": str(exc)})
        return _response(400, "malformed interaction")
    if click is None:
        return _response(200)
    if (credentials.team_id and click.team_id != credentials.team_id) or (
        credentials.app_id and click.app_id != credentials.app_id
    ):
        logger.warning("rejected an interaction from another workspace or app")
        return _response(403, "wrong workspace or app")
    logger.append_keys(approval_id=click.approval_id)
    result = record_click(click, store=STORE, sfn=SFN, clock=utc_now)
    if result.ephemeral:
        tell(SLACK.client(credentials), click, result.ephemeral)
    logger.info("handled a click", extra={"result": result.outcome, "user": click.user_id})
    return _response(200)
