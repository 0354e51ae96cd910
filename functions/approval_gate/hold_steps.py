"""The workflow's two hold steps (DESIGN §8.2): begin a hold, and end it.

"Hold Until Deploys May Go On" is a task waiting for a token whose timeout is the time
left until `held.until`: no Lambda runs and nothing polls while it waits. `begin_hold`
keeps that token (a cancel or an override ends the wait early with it) and shows the held
request in Slack. When the wait ends, by its timeout or by a token, `end_hold` reads the
item again: a recorded cancel (the request is open again) or override (approved now)
wins; otherwise the approval is released, held again (a window that closed meanwhile),
or rejected when CodePipeline's deadline cut the hold off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.asking import SlackUnavailable, slack_failure
from approval_gate.clock import Clock, iso
from approval_gate.hold_messages import held_blocks, held_text
from approval_gate.holds import at_hold_end
from approval_gate.posting import update_request
from approval_gate.reporting import decision
from approval_gate.store import HELD, PENDING, AlreadyDecided, Approval, ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: Shows the approval held until an instant (None: no longer held) in the run's message.
ShowInFeed = Callable[[Approval, datetime | None], None]


def begin_hold(
    approval_id: str,
    task_token: str,
    *,
    store: ApprovalStore,
    slack: Any,
    retries_left: int = 0,
    show_in_feed: ShowInFeed | None = None,
) -> dict[str, Any]:
    """Keep the hold's token and show the held request, with Cancel and Deploy now (and
    the run's status message, through `show_in_feed`).

    AlreadyDecided (the workflow's Catch goes on to "End Hold") when the hold ended before
    it began: a cancel or an override recorded while no hold task waited. A Slack failure
    is retried by the workflow while retries are left; on the last one the hold goes on
    without the message (the hold matters more than its picture; closing updates it).
    """
    approval = store.save_hold_token(approval_id, task_token)
    held = approval.held
    try:
        update_request(
            slack, store, approval, text=held_text(approval), blocks=held_blocks(approval)
        )
    except (SlackApiError, SlackClientError, OSError) as exc:
        error, transient = slack_failure(exc)
        if transient and retries_left > 0:
            raise SlackUnavailable(f"Slack could not show the hold: {error}") from exc
        LOG.warning("could not show the hold in Slack", extra={"slack_error": error})
    if show_in_feed is not None and held is not None:
        show_in_feed(approval, held.until)
    LOG.info(
        "holding the approval",
        extra={"until": iso(held.until) if held else None, "why": held.why if held else None},
    )
    return {"until": iso(held.until) if held else None}


def end_hold(
    approval_id: str, *, store: ApprovalStore, clock: Clock, show_in_feed: ShowInFeed | None = None
) -> dict[str, Any]:
    """The hold's wait ended: what the workflow does now (reporting.decision's `wait`);
    a cancelled hold leaves the run's status message (`show_in_feed`, until None)."""
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if approval.status == HELD:
        verdict = at_hold_end(approval, clock())
        try:
            approval = store.release(
                approval_id, status=verdict.status, held=verdict.held, note=verdict.note
            )
        except AlreadyDecided as already:  # a cancel or an override won the race
            approval = already.approval
    if approval.status == PENDING and show_in_feed is not None:
        show_in_feed(approval, None)
    LOG.info("hold ended", extra={"status": approval.status})
    return decision(approval)
