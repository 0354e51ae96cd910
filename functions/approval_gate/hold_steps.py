"""The workflow's hold steps (DESIGN §8.2): begin a hold, and end it; and the health
checks run just before an approval is reported (DESIGN §8.3), which may hold it.

"Hold Until Deploys May Go On" is a task waiting for a token whose timeout is the time
left until `held.until`: no Lambda runs and nothing polls while it waits. `begin_hold`
keeps that token (a cancel or an override ends the wait early with it) and shows the held
request in Slack. When the wait ends, by its timeout or by a token, `end_hold` reads the
item again: a recorded cancel (the request is open again) or override (approved now)
wins; otherwise the approval is released, held again (a window that closed meanwhile),
or rejected when CodePipeline's deadline cut the hold off.

"Check Health Before Reporting" runs `check_before_report` when the decision's `wait` is
"check": the checks pass (reported now), or fail (held until they pass, or rejected). A
hold for the checks wakes to run them again (`reporting.hold_wake`), and `end_hold` does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.asking import SlackUnavailable, slack_failure
from approval_gate.checks import Checker
from approval_gate.clock import Clock, iso
from approval_gate.hold_messages import held_blocks, held_text
from approval_gate.holds import at_checks_hold_end, at_hold_end, at_report
from approval_gate.posting import update_request
from approval_gate.reporting import checks_due, decision
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
    approval_id: str,
    *,
    store: ApprovalStore,
    clock: Clock,
    show_in_feed: ShowInFeed | None = None,
    checker: Checker | None = None,
) -> dict[str, Any]:
    """The hold's wait ended: what the workflow does now (reporting.decision's `wait`);
    a cancelled hold leaves the run's status message (`show_in_feed`, until None).

    A hold for the health checks runs them again with `checker` (None: judges by the
    results last recorded) and records them with what they decided, in one write."""
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if approval.status == HELD and approval.held is not None and approval.held.for_checks:
        approval = _end_checks_hold(approval, store, checker, clock)
    elif approval.status == HELD:
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
    return decision(approval, clock())


def _end_checks_hold(
    approval: Approval, store: ApprovalStore, checker: Checker | None, clock: Clock
) -> Approval:
    results = checker(approval) if checker is not None else approval.checks
    verdict = at_checks_hold_end(approval, results, clock())
    then = approval.held.then if approval.held is not None else approval.status
    try:
        return store.release(
            approval.approval_id,
            status=verdict.status,
            held=verdict.held,
            note=verdict.note,
            checks=results,
            checked=verdict.status == then,  # they just ran and passed: report it now
        )
    except AlreadyDecided as already:  # a cancel won the race
        return already.approval


def check_before_report(
    approval_id: str, *, store: ApprovalStore, checker: Checker, clock: Clock
) -> dict[str, Any]:
    """Run the health checks just before an approval is reported Approved (DESIGN §8.3)
    and record them with what they decided, in one write conditional on the status read:
    all pass (reported now), `on_failing: reject` or CodePipeline's deadline (REJECTED, the
    note naming the failing checks), or held until they pass. What the workflow does now."""
    approval = store.get(approval_id)
    if approval is None:
        raise KeyError(f"no approval {approval_id}")
    if checks_due(approval):
        results = checker(approval)
        verdict = at_report(approval, results, clock())
        try:
            approval = store.release(
                approval_id,
                status=verdict.status,
                held=verdict.held,
                note=verdict.note,
                checks=results,
                checked=verdict.status == approval.status,  # all passed: report it now
                was=approval.status,
            )
        except AlreadyDecided as already:  # CodePipeline settled it meanwhile
            approval = already.approval
        LOG.info(
            "ran the health checks before reporting",
            extra={"status": approval.status, "failing": [r.name for r in results if not r.passed]},
        )
    return decision(approval, clock())
