"""Workflow step: the deadline passed; apply the policy's outcome (or a decision that won)."""

from __future__ import annotations

from typing import Any

from approval_gate.clock import utc_now
from approval_gate.closing import at_deadline
from approval_gate.runtime import approval_store
from approval_gate.runtime import logger as make_logger
from approval_gate.settings import Settings

SETTINGS = Settings.from_env()
logger = make_logger()
STORE = approval_store(SETTINGS)


@logger.inject_lambda_context(clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    approval_id = event["approval_id"]
    logger.append_keys(approval_id=approval_id)
    result = at_deadline(approval_id, store=STORE, clock=utc_now)
    logger.info("deadline reached", extra={"outcome": result["outcome"]})
    return result
