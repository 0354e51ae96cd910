"""Workflow step: the heartbeat ran out; remind the approvers, escalate once when due."""

from __future__ import annotations

from typing import Any

from approval_gate.clock import utc_now
from approval_gate.decision_metrics import at_reminder
from approval_gate.metering import emit_metrics
from approval_gate.reminders import remind
from approval_gate.runtime import approval_store, slack_access
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)
SLACK = slack_access(SETTINGS)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    SLACK.invocation(context)
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    before = STORE.get(approval_id)  # whether this cycle is the one that escalates
    result = remind(approval_id, store=STORE, slack=SLACK.client(), clock=utc_now)
    emit_metrics(at_reminder(before, result))
    logger.info(
        "reminder cycle",
        extra={k: result.get(k) for k in ("decided", "reminded", "reminders", "escalated")},
    )
    return result
