"""API Gateway → slack_interactions: verify, authorize, record exactly once, resume."""

from __future__ import annotations

import json
from typing import Any

import boto3
from approval_gate.clock import utc_now
from approval_gate.groups import GroupDirectory
from approval_gate.interactions import (
    BadRequest,
    Click,
    ClickResult,
    http_request,
    parse_click,
    parse_interaction,
    record_click,
    tell,
)
from approval_gate.messages import REASON_BLOCK, request_blocks, request_text
from approval_gate.posting import update_request
from approval_gate.runtime import SlackAccess
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings
from approval_gate.slack import signature_is_valid
from approval_gate.store import ApprovalStore
from approval_gate.text import cut_at_word, plain
from slack_sdk.errors import SlackApiError, SlackClientError

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = ApprovalStore(SETTINGS.table_name, boto3.client("dynamodb"), SETTINGS.retention_days)
SFN = boto3.client("stepfunctions")
SLACK = SlackAccess(SETTINGS, boto3.client("secretsmanager"))
_groups: GroupDirectory | None = None


def _json_response(body: dict[str, Any]) -> dict[str, Any]:
    return {
        "statusCode": 200,
        "headers": {"Content-Type": "application/json"},
        "body": json.dumps(body),
    }


def _response(status: int, text: str = "") -> dict[str, Any]:
    return {
        "statusCode": status,
        "headers": {"Content-Type": "text/plain; charset=utf-8"},
        "body": text,
    }


@logger.inject_lambda_context
def handler(event: Any, context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
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
    slack = SLACK.client(credentials)
    result = record_click(click, store=STORE, sfn=SFN, clock=utc_now, groups=groups(slack))
    logger.info("handled a click", extra={"result": result.outcome, "user": click.user_id})
    return answer(result, click, slack)


def groups(slack: Any) -> GroupDirectory:
    """User-group membership, cached per container for as long as the client lives."""
    global _groups
    if _groups is None or _groups.slack is not slack:
        _groups = GroupDirectory(slack)
    return _groups


def answer(result: ClickResult, click: Click, slack: Any) -> dict[str, Any]:
    """What the clicker sees: a modal, an ephemeral word, or errors inside the modal."""
    if result.outcome == "modal" and result.view is not None:
        try:
            slack.views_open(trigger_id=click.trigger_id, view=result.view)
        except (SlackApiError, SlackClientError, OSError) as exc:
            error = (
                exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
            )
            logger.warning("could not open the modal", extra={"error": error})
            tell(slack, click, "The form could not open in time: please click again.")
        return _response(200)
    if result.outcome == "vote_recorded" and result.approval is not None:
        show_tally(slack, result.approval)
    if click.submitted:
        if result.outcome in ("recorded", "vote_recorded") or not result.ephemeral:
            return _response(200)  # closes the modal
        # Slack shows these words under the input, as plain text.
        words = cut_at_word(plain(result.ephemeral), 150)
        return _json_response({"response_action": "errors", "errors": {REASON_BLOCK: words}})
    if result.ephemeral:
        tell(slack, click, result.ephemeral)
    return _response(200)


def show_tally(slack: Any, approval: Any) -> None:
    try:
        update_request(
            slack,
            STORE,
            approval,
            text=request_text(approval),
            blocks=request_blocks(approval, utc_now()),
        )
    except (SlackApiError, SlackClientError, OSError) as exc:
        error = exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__
        logger.warning("could not update the tally", extra={"error": error})
