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
from approval_gate.i18n import tr
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


#: The policy setting a rejection outside the windows names (a key, not words).
_OUTSIDE_WINDOW_REJECT = "outside_window: reject"
_ON_FAILING_REJECT = "on_failing: reject"


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
        language = rules.language
        approved = _approved(approval, then)
        if allowed.at is None:
            # Translators: the CodePipeline summary and the closed request. %(approved)s:
            # who approved ("Approved in Slack by …"); %(cause)s: a freeze's reason, or
            # "outside the windows"; %(setting)s: the policy setting, kept as it is.
            note = tr(
                language,
                "%(approved)s, but deploys may not go on before CodePipeline's deadline "
                "(%(cause)s): rejected by policy (%(setting)s)",
                approved=approved,
                cause=_cause(allowed, language),
                setting=_OUTSIDE_WINDOW_REJECT,
            )
        else:
            # Translators: the CodePipeline summary and the closed request. %(approved)s:
            # who approved; %(when)s: a time such as "Thu 24 Dec 09:00 +07"; %(cause)s: a
            # freeze's reason, or "outside the windows"; %(setting)s: kept as it is.
            note = tr(
                language,
                "%(approved)s, but deploys may not go on until %(when)s (%(cause)s): "
                "rejected by policy (%(setting)s)",
                approved=approved,
                when=local_time(allowed.at, rules.timezone, language),
                cause=_cause(allowed, language),
                setting=_OUTSIDE_WINDOW_REJECT,
            )
        return Plan(REJECTED, note=note)
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
    language = approval.rules.language
    return Plan(
        REJECTED,
        # Translators: the CodePipeline summary and the closed request. %(approved)s: who
        # approved ("Approved in Slack by …"); %(cause)s: a freeze's reason, or "outside
        # the windows".
        note=tr(
            language,
            "%(approved)s, but no deploy window opened before CodePipeline's deadline "
            "(%(cause)s): rejected",
            approved=_approved(approval, then),
            cause=_cause(allowed, language),
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
    language = approval.rules.language
    names = summary_of_failing(results, language=language)
    if checks is not None and checks.on_failing == "reject":
        return Plan(
            REJECTED,
            # Translators: the CodePipeline summary and the closed request. %(approved)s:
            # who approved; %(checks)s: the failing checks and what they say; %(setting)s:
            # the policy setting, kept as it is.
            note=tr(
                language,
                "%(approved)s, but health checks failed: %(checks)s: rejected by policy "
                "(%(setting)s)",
                approved=_approved(approval, status),
                checks=names,
                setting=_ON_FAILING_REJECT,
            ),
        )
    limit = hold_limit(approval)
    if now >= limit:
        return Plan(
            REJECTED,
            # Translators: the CodePipeline summary and the closed request. %(approved)s:
            # who approved; %(checks)s: the failing checks and what they say.
            note=tr(
                language,
                "%(approved)s, but health checks failed at CodePipeline's deadline: "
                "%(checks)s: rejected",
                approved=_approved(approval, status),
                checks=names,
            ),
        )
    reason = summary_of_failing(results, HOLD_REASON_LIMIT, language=language)
    return Plan(HELD, Hold(limit.astimezone(UTC), WHY_CHECKS, reason, then=status))


def at_checks_hold_end(approval: Approval, results: tuple[CheckResult, ...], now: datetime) -> Plan:
    """A hold for the health checks woke (a check function's turn, an alarm that changed,
    its limit) and they ran again: when all pass, what `at_hold_end` says (deploys may still
    have to wait for a window); while one fails, held again until the limit, and REJECTED
    at it."""
    held = approval.held
    if held is None or not failing(results):
        return at_hold_end(approval, now)
    language = approval.rules.language
    if now < hold_limit(approval):
        reason = summary_of_failing(results, HOLD_REASON_LIMIT, language=language)
        return Plan(HELD, held._replace(reason=reason))
    return Plan(
        REJECTED,
        # Translators: the CodePipeline summary and the closed request. %(approved)s: who
        # approved; %(checks)s: the failing checks and what they say.
        note=tr(
            language,
            "%(approved)s, but health checks still failed at CodePipeline's deadline: "
            "%(checks)s: rejected",
            approved=_approved(approval, held.then),
            checks=summary_of_failing(results, language=language),
        ),
    )


def _approved(approval: Approval, then: str) -> str:
    """Who approved, for a summary: the approvers, or the policy at the deadline."""
    language = approval.rules.language
    if then == EXPIRED:
        # Translators: begins a CodePipeline summary ("…, but health checks failed: …").
        return approval.note or tr(language, "Approved by policy at the deadline")
    approvers = [vote.user_id for vote in approval.votes if vote.vote == "approve"]
    who = ", ".join(f"{approval.name_of(user)} ({user})" for user in approvers)
    # Translators: the CodePipeline summary; %(users)s: names with their Slack ids.
    return tr(language, "Approved in Slack by %(users)s", users=who)


def _cause(allowed: Allowed, language: str) -> str:
    """Why deploys may not go on, in parentheses: a freeze's reason, or a phrase."""
    if allowed.why == WHY_FREEZE:
        # Translators: why deploys may not go on, in parentheses after a time.
        return allowed.reason or tr(language, "a freeze")
    # Translators: why deploys may not go on, in parentheses after a time.
    return tr(language, "outside the windows")


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
    language = rules.language
    cause = _cause(allowed, language)
    if rules.outside_window == "reject" and allowed.at is None:
        # Translators: on the request, before anyone clicks. %(cause)s: a freeze's reason,
        # or "outside the windows".
        return tr(
            language,
            "Deploys may not go on before CodePipeline's deadline (%(cause)s): an approval "
            "now is rejected by policy",
            cause=cause,
        )
    if allowed.at is None:
        # Translators: on the request, before anyone clicks. %(cause)s: a freeze's reason,
        # or "outside the windows".
        return tr(
            language,
            "No deploy window opens before CodePipeline's deadline (%(cause)s): an approval "
            "now is held, then rejected unless overridden",
            cause=cause,
        )
    when = local_time(allowed.at, rules.timezone, language)
    if rules.outside_window == "reject":
        # Translators: on the request; %(when)s: a time such as "Thu 24 Dec 09:00 +07".
        return tr(
            language,
            "Deploys may not go on until %(when)s (%(cause)s): an approval now is rejected "
            "by policy",
            when=when,
            cause=cause,
        )
    if allowed.why == WHY_FREEZE:
        # Translators: on the request; %(when)s: a time, %(cause)s: the freeze's reason.
        return tr(
            language,
            "Frozen until %(when)s (%(cause)s): an approval now deploys then",
            when=when,
            cause=cause,
        )
    # Translators: on the request; %(when)s: a time such as "Thu 24 Dec 09:00 +07".
    return tr(
        language,
        "Outside the deploy windows until %(when)s: an approval now deploys then",
        when=when,
    )
