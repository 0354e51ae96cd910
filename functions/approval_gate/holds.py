"""When an approval may be reported: at once, held until deploys may go on, or rejected.

Pure (no I/O, no clock of its own): given the approval the votes just approved and the
instant, `plan` says what to record (DESIGN §8.2):

- deploys may go on now and nobody asked for a later time: APPROVED, reported at once;
- otherwise HELD until the first instant deploys may go on at or after the latest time
  an approving vote asked for ("Approve for later"), never past `hold_limit` (CodePipeline's
  expiry less the deadline margin): a hold with no window before then lasts until the
  limit and ends Rejected, unless somebody overrides it meanwhile;
- with `outside_window: reject`, an approval that could not deploy at that instant (a
  freeze, or outside every window) is REJECTED at once, and the summary says why.

Just before an approval is reported, its health checks run once more (DESIGN §8.3):
`at_report` and `at_checks_hold_end` say what their results make of it.

`forecast` says the same before anyone clicks, for the request message.
"""

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

from approval_gate.checks import CheckResult, failing, summary_of_failing
from approval_gate.records import (
    APPROVED,
    EXPIRED,
    HELD,
    REJECTED,
    WHY_CHECKS,
    WHY_SCHEDULE,
    Approval,
    Hold,
    Vote,
)
from approval_gate.reporting import hold_limit, local_time
from approval_gate.rules import Rules
from approval_gate.windows import WHY_FREEZE, Allowed, next_allowed_for

#: How long the failing checks named as a checks hold's reason may be.
HOLD_REASON_LIMIT = 120


class Plan(NamedTuple):
    """What an approval reached now becomes: its status, the hold, and a note (the
    summary of a rejection by policy)."""

    status: str
    held: Hold | None = None
    note: str | None = None


def requested_time(votes: Iterable[Vote]) -> datetime | None:
    """The latest time an approving vote asked the deploy to wait for, if any did."""
    times = [vote.deploy_at for vote in votes if vote.vote == "approve" and vote.deploy_at]
    return max(times) if times else None


def _not_allowed_phrase(allowed: Allowed, timezone: str) -> str:
    """ "until Thu 24 Dec 09:00 +07 (Year-end freeze)", or "before CodePipeline's deadline"."""
    if allowed.at is None:
        return f"before CodePipeline's deadline ({_cause(allowed)})"
    return f"until {local_time(allowed.at, timezone)} ({_cause(allowed)})"


def plan(approval: Approval, now: datetime, *, then: str = APPROVED) -> Plan:
    """What to record when `approval` is approved at `now`: by its votes (the deciding one
    among them), or, with `then` EXPIRED, by the policy at the deadline (`on_deadline:
    approve`, its note already on `approval`); see the module's docstring."""
    rules = approval.rules
    asked_for = requested_time(approval.votes) if then == APPROVED else None
    start = max(now, asked_for) if asked_for else now
    limit = hold_limit(approval)
    allowed = _next_allowed(rules, start, limit)
    if allowed.now and start == now:
        return Plan(then)
    if not allowed.now and rules.outside_window == "reject":
        return Plan(
            REJECTED,
            note=(
                f"{_approved(approval, then)}, but deploys may not go on "
                f"{_not_allowed_phrase(allowed, rules.timezone)}: rejected by policy "
                "(outside_window: reject)"
            ),
        )
    until = (allowed.at or limit).astimezone(UTC)
    if allowed.now:  # only the requested time holds it
        return Plan(HELD, Hold(until, WHY_SCHEDULE, then=then))
    return Plan(HELD, Hold(until, str(allowed.why), allowed.reason, then=then))


def at_hold_end(approval: Approval, now: datetime) -> Plan:
    """The hold's time came (`now`): approved (the status the hold ends in) if deploys may
    go on; held again until they may (a window that closed meanwhile); REJECTED when the
    limit cut the hold off."""
    held = approval.held
    then = held.then if held is not None else APPROVED
    limit = hold_limit(approval)
    if held is not None and not held.for_checks and now < held.until:
        return Plan(HELD, held)  # the timer fired early: hold the rest (a checks hold's
        # `until` is only its limit: it ends when they pass)
    allowed = _next_allowed(approval.rules, now, limit)
    if allowed.now:
        return Plan(then)
    if allowed.at is not None and now < limit:
        until = allowed.at.astimezone(UTC)
        return Plan(HELD, Hold(until, str(allowed.why), allowed.reason, then=then))
    return Plan(
        REJECTED,
        note=(
            f"{_approved(approval, then)}, but no deploy window opened before CodePipeline's "
            f"deadline ({_cause(allowed)}): rejected"
        ),
    )


def at_report(approval: Approval, results: tuple[CheckResult, ...], now: datetime) -> Plan:
    """The health checks ran just before `approval` (APPROVED, or EXPIRED approved by
    policy) is reported: report it as it is when all pass; otherwise REJECTED at once with
    `on_failing: reject` or at the hold's limit, else HELD until they pass (never past the
    limit), ending in the status it has now."""
    status = approval.status
    if not failing(results):
        return Plan(status)
    checks = approval.rules.checks
    names = summary_of_failing(results)
    if checks is not None and checks.on_failing == "reject":
        return Plan(
            REJECTED,
            note=f"{_approved(approval, status)}, but health checks failed: {names}: "
            "rejected by policy (on_failing: reject)",
        )
    limit = hold_limit(approval)
    if now >= limit:
        return Plan(
            REJECTED,
            note=f"{_approved(approval, status)}, but health checks failed at CodePipeline's "
            f"deadline: {names}: rejected",
        )
    reason = summary_of_failing(results, HOLD_REASON_LIMIT)
    return Plan(HELD, Hold(limit.astimezone(UTC), WHY_CHECKS, reason, then=status))


def at_checks_hold_end(approval: Approval, results: tuple[CheckResult, ...], now: datetime) -> Plan:
    """A hold for the health checks woke (a check function's turn, an alarm that changed,
    its limit) and they ran again: when all pass, what `at_hold_end` says (deploys may still
    have to wait for a window); while one fails, held again until the limit, and REJECTED
    at it."""
    held = approval.held
    if held is None or not failing(results):
        return at_hold_end(approval, now)
    if now < hold_limit(approval):
        return Plan(HELD, held._replace(reason=summary_of_failing(results, HOLD_REASON_LIMIT)))
    return Plan(
        REJECTED,
        note=f"{_approved(approval, held.then)}, but health checks still failed at "
        f"CodePipeline's deadline: {summary_of_failing(results)}: rejected",
    )


def _approved(approval: Approval, then: str) -> str:
    """Who approved, for a summary: the approvers, or the policy at the deadline."""
    if then == EXPIRED:
        return approval.note or "Approved by policy at the deadline"
    approvers = [vote.user_id for vote in approval.votes if vote.vote == "approve"]
    who = ", ".join(f"{approval.name_of(user)} ({user})" for user in approvers)
    return f"Approved in Slack by {who}"


def _cause(allowed: Allowed) -> str:
    if allowed.why == WHY_FREEZE:
        return allowed.reason or "a freeze"
    return "outside the windows"


def _next_allowed(rules: Rules, at: datetime, limit: datetime) -> Allowed:
    """windows.next_allowed_for, without reading a calendar a policy does not have."""
    if not rules.deploy_windows and not rules.freezes:
        return Allowed(at)
    return next_allowed_for(rules, at, limit)


def forecast(approval: Approval, now: datetime) -> str | None:
    """For the request message: when an approval now would deploy, if not at once
    ("Frozen until Thu 24 Dec 09:00 +07 (Year-end freeze): an approval now deploys then")."""
    rules = approval.rules
    if not rules.deploy_windows and not rules.freezes:
        return None
    allowed = next_allowed_for(rules, now, hold_limit(approval))
    if allowed.now:
        return None
    if rules.outside_window == "reject":
        return (
            f"Deploys may not go on {_not_allowed_phrase(allowed, rules.timezone)}: "
            "an approval now is rejected by policy"
        )
    if allowed.at is None:
        return (
            f"No deploy window opens before CodePipeline's deadline ({_cause(allowed)}): "
            "an approval now is held, then rejected unless overridden"
        )
    when = local_time(allowed.at, rules.timezone)
    if allowed.why == WHY_FREEZE:
        return f"Frozen until {when} ({_cause(allowed)}): an approval now deploys then"
    return f"Outside the deploy windows until {when}: an approval now deploys then"
