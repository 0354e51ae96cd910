"""Slack interactivity: from a signed HTTP request to exactly one recorded decision.

verify → parse → authorize → record (conditional write) → resume the workflow. The HTTP
answer goes back well inside Slack's three seconds; what the clicker needs to know beyond
the updated message (not an approver, already decided) comes as an ephemeral message.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from dataclasses import replace
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.clock import Clock
from approval_gate.groups import GroupDirectory, GroupLookupFailed, is_member
from approval_gate.messages import (
    APPROVE,
    APPROVE_VIEW,
    MAX_REASON,
    REASON_BLOCK,
    REJECT,
    REJECT_VIEW,
    approvers_mention,
    decision_view,
    slack_date,
)
from approval_gate.store import (
    APPROVED,
    EXPIRED,
    PENDING,
    REJECTED,
    AlreadyDecided,
    Approval,
    ApprovalStore,
    Vote,
    decision,
)

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: Slack's interactivity payloads are small; anything far larger is not from Slack.
MAX_BODY = 64 * 1024
#: The opaque approval id a button carries: 32 hex digits (see request.ApprovalRequest).
_APPROVAL_ID = re.compile(r"[0-9a-f]{32}")


class BadRequest(ValueError):
    """The request is not a well-formed Slack interaction (answered 400, changes nothing)."""


class HttpRequest(NamedTuple):
    """An API Gateway request's headers (lower-cased) and raw body."""

    headers: dict[str, str]
    body: bytes


def http_request(event: Any) -> HttpRequest:
    """Headers and raw body of an API Gateway HTTP API (v2) event; decodes base64 bodies."""
    if not isinstance(event, dict):
        raise BadRequest("not an HTTP API event")
    raw_headers = event.get("headers") or {}
    if not isinstance(raw_headers, dict):
        raise BadRequest("headers are not a mapping")
    headers = {str(k).lower(): str(v) for k, v in raw_headers.items()}
    body = event.get("body") or ""
    if not isinstance(body, str):
        raise BadRequest("body is not text")
    if len(body) > MAX_BODY * 2:
        raise BadRequest("body too large")
    if event.get("isBase64Encoded") is True:
        try:
            raw = base64.b64decode(body, validate=True)
        except (binascii.Error, ValueError):
            raise BadRequest("body is not valid base64") from None
    else:
        try:
            raw = body.encode("utf-8", errors="surrogateescape")
        except UnicodeEncodeError:  # a lone surrogate no byte could have decoded to
            raise BadRequest("body is not valid text") from None
    if len(raw) > MAX_BODY:
        raise BadRequest("body too large")
    return HttpRequest(headers=headers, body=raw)


class Click(NamedTuple):
    """A button press on a request: which approval, who, and what they chose."""

    action: str  # APPROVE | REJECT
    approval_id: str
    user_id: str
    user_name: str
    team_id: str | None
    app_id: str | None
    channel: str | None
    trigger_id: str | None = None
    #: From a submitted modal: the text typed (None when empty), and that it was asked.
    reason: str | None = None
    submitted: bool = False


def _field(doc: Any, *path: str) -> Any:
    for key in path:
        if not isinstance(doc, dict):
            return None
        doc = doc.get(key)
    return doc


def _text(value: Any) -> str | None:
    """A payload string as it may be stored and sent on: a lone surrogate (JSON allows
    "\\ud800"; no Slack payload has one) becomes "?", since DynamoDB and Slack refuse
    text that is not valid Unicode."""
    if not isinstance(value, str):
        return None
    return value.encode("utf-8", "replace").decode("utf-8")


def parse_interaction(body: bytes) -> dict[str, Any]:
    """The JSON `payload` field of Slack's form-encoded interactivity request."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("body is not UTF-8") from None
    try:
        form = parse_qs(text, strict_parsing=True, max_num_fields=20)
    except ValueError:
        raise BadRequest("body is not form-encoded") from None
    values = form.get("payload")
    if not values or len(values) != 1:
        raise BadRequest("no payload field")
    try:
        payload = json.loads(values[0])
    except (ValueError, RecursionError):
        raise BadRequest("payload is not JSON") from None
    if not isinstance(payload, dict):
        raise BadRequest("payload is not an object")
    return payload


def parse_click(payload: dict[str, Any]) -> Click | None:
    """Our Approve / Reject click (block_actions) or the submission of our reason modal
    (view_submission); None for anything else."""
    kind = payload.get("type")
    trigger = payload.get("trigger_id")
    reason: str | None = None
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
            return None
        action_id = actions[0].get("action_id")
        value = actions[0].get("value")
        if action_id not in (APPROVE, REJECT):
            return None
    elif kind == "view_submission":
        callback = _field(payload, "view", "callback_id")
        if callback not in (REJECT_VIEW, APPROVE_VIEW):
            return None
        action_id = REJECT if callback == REJECT_VIEW else APPROVE
        value = _field(payload, "view", "private_metadata")
        typed = _field(payload, "view", "state", "values", REASON_BLOCK, REASON_BLOCK, "value")
        if typed is not None and not isinstance(typed, str):
            raise BadRequest("the reason is not text")
        typed = _text(typed)
        reason = typed.strip()[:MAX_REASON] if typed and typed.strip() else None
    else:
        return None
    if not isinstance(value, str) or not _APPROVAL_ID.fullmatch(value):
        raise BadRequest("the button value is not an approval id")
    user_id = _text(_field(payload, "user", "id"))
    if not user_id:
        raise BadRequest("no user in the payload")
    name = _field(payload, "user", "name") or _field(payload, "user", "username") or user_id
    channel = _field(payload, "channel", "id") or _field(payload, "container", "channel_id")
    team = _field(payload, "team", "id") or _field(payload, "user", "team_id")
    return Click(
        action=str(action_id),
        approval_id=value,
        user_id=user_id[:64],
        user_name=(_text(str(name)) or user_id)[:80],
        team_id=_text(team),
        app_id=_text(payload.get("api_app_id")),
        channel=_text(channel),
        trigger_id=_text(trigger),
        reason=reason,
        submitted=kind == "view_submission",
    )


def _who(approval: Approval) -> str:
    return ", ".join(f"<@{user}>" for user in approval.decided_by) or "nobody"


def already_decided_text(approval: Approval) -> str:
    when = f" {slack_date(approval.decided_at)}" if approval.decided_at else ""
    if approval.status == APPROVED:
        return f"Already approved by {_who(approval)}{when}. Your click changed nothing."
    if approval.status == REJECTED:
        return f"Already rejected by {_who(approval)}{when}. Your click changed nothing."
    if approval.status == EXPIRED:
        return f"This request already expired{when}: {approval.note or 'no decision in time'}."
    return f"This request was already closed: {approval.note or 'decided outside Slack'}."


def not_an_approver_text(approval: Approval) -> str:
    return (
        f"You are not an approver for {approval.pipeline} / {approval.stage}. "
        f"Approvers: {approvers_mention(approval)}. Nothing was recorded."
    )


def approved_so_far(approval: Approval) -> str:
    """Who has approved so far, and how many more approvals are needed."""
    approving = [f"<@{v.user_id}>" for v in approval.votes if v.vote == "approve"]
    more = max(0, approval.rules.required_approvals - len(approving))
    who = ", ".join(approving) or "nobody"
    return f"Approved so far by {who}; {more} more approval{'s' if more != 1 else ''} needed."


def tally_text(approval: Approval) -> str:
    return f"Your approval is recorded. {approved_so_far(approval)}"


def already_voted_text(approval: Approval) -> str:
    return f"You already voted; a second click does not count. {approved_so_far(approval)}"


UNKNOWN_APPROVAL_TEXT = (
    "Approval Gate does not know this request (it may be older than the retention period). "
    "Nothing was recorded; decide in the CodePipeline console if it is still waiting."
)


SELF_APPROVAL_TEXT = (
    "You made this change, so you cannot approve it: this policy requires a second person "
    "(four-eyes). Nothing was recorded. You may still reject it."
)
UNKNOWN_AUTHOR_TEXT = (
    "The author of this change could not be determined, and this policy does not allow "
    "approval in Slack then (unknown_author: block). Nothing was recorded; reject here, or "
    "decide in the CodePipeline console."
)
REASON_REQUIRED_TEXT = "Say why you reject this deployment: the reason goes to CodePipeline."


def group_failure_text(failure: GroupLookupFailed) -> str:
    return (
        f"Approval Gate could not check whether you are in <!subteam^{failure.group_id}> "
        f"({failure.reason}). Nothing was recorded; the request stays open. "
        "Ask an approver listed by name, or try again later."
    )


class ClickResult(NamedTuple):
    """What a click did, and what to tell the clicker privately, if anything."""

    #: recorded | vote_recorded | already_voted | already_decided | unknown | not_approver
    #: | self_approval | unknown_author | group_lookup_failed | modal | reason_required
    outcome: str
    ephemeral: str | None = None
    view: dict[str, Any] | None = None  # a modal to open (outcome "modal")
    approval: Approval | None = None  # the approval as it now stands, when known


def may_decide(approval: Approval, user_id: str, groups: GroupDirectory | None) -> bool:
    """Listed by id, or a member of a listed group (escalation's too, once escalated).

    Raises GroupLookupFailed when membership matters and Slack cannot say: fail closed.
    """
    rules = approval.rules
    if rules.may_decide(user_id, escalated=approval.escalated):
        return True
    group_ids = list(rules.approvers.groups)
    extra = rules.escalation.approvers
    if approval.escalated and extra is not None:
        group_ids += [g for g in extra.groups if g not in group_ids]
    if not group_ids or groups is None:
        return False
    return is_member(groups, user_id, tuple(group_ids))


def refusal(approval: Approval, click: Click, groups: GroupDirectory | None) -> ClickResult | None:
    """Why this click may not count, if it may not; None when it may."""
    if approval.status != PENDING:
        return ClickResult("already_decided", already_decided_text(approval), approval=approval)
    try:
        allowed = may_decide(approval, click.user_id, groups)
    except GroupLookupFailed as failure:
        LOG.warning(
            "could not read an approver group; refused the click (fail closed)",
            extra={"group": failure.group_id, "reason": failure.reason},
        )
        return ClickResult("group_lookup_failed", group_failure_text(failure))
    if not allowed:
        LOG.info("refused a click from a non-approver", extra={"approval_id": approval.approval_id})
        return ClickResult("not_approver", not_an_approver_text(approval))
    if click.action == APPROVE:
        rules = approval.rules
        if not rules.allow_self_approval and click.user_id in approval.author_users:
            LOG.info("refused a self-approval", extra={"approval_id": approval.approval_id})
            return ClickResult("self_approval", SELF_APPROVAL_TEXT)
        # An author who maps to no Slack user cannot be held to four-eyes: that is an
        # unknown author as far as Slack goes.
        if not approval.author_users and rules.unknown_author == "block":
            return ClickResult("unknown_author", UNKNOWN_AUTHOR_TEXT)
    if any(v.user_id == click.user_id for v in approval.votes):
        return ClickResult("already_voted", already_voted_text(approval))
    return None


def needs_modal(approval: Approval, click: Click) -> bool:
    rules = approval.rules
    if click.submitted:
        return False
    if click.action == REJECT:
        return rules.require_reason_on_reject
    return rules.ask_comment_on_approve


def record_click(
    click: Click,
    *,
    store: ApprovalStore,
    sfn: Any,
    clock: Clock,
    groups: GroupDirectory | None = None,
) -> ClickResult:
    """Authorize the clicker and record the vote exactly once; decide when the policy
    says so, and resume the workflow. A click that needs a reason first answers with
    the modal to open."""
    approval = store.get(click.approval_id)
    if approval is None:
        return ClickResult("unknown", UNKNOWN_APPROVAL_TEXT)
    refused = refusal(approval, click, groups)
    if refused is not None:
        if refused.outcome == "already_decided":
            redeliver(approval, sfn)
        return refused
    if needs_modal(approval, click):
        return ClickResult("modal", view=decision_view(approval, click.action))
    if (
        click.submitted
        and click.action == REJECT
        and approval.rules.require_reason_on_reject
        and not click.reason
    ):
        return ClickResult("reason_required", REASON_REQUIRED_TEXT)
    now = clock()
    vote = Vote(
        user_id=click.user_id,
        name=click.user_name,
        vote="approve" if click.action == APPROVE else "reject",
        at=now,
        reason=click.reason,
    )
    decided = _decide_at_once(approval, vote, store)
    if decided is None:  # not the deciding vote, or the votes changed since the read
        try:
            voted = store.add_vote(click.approval_id, vote)
        except AlreadyDecided as already:
            if already.approval.status != PENDING:
                return ClickResult("already_decided", already_decided_text(already.approval))
            return ClickResult("already_voted", already_voted_text(already.approval))
        status, deciders = _outcome(voted, vote)
        if status is None:
            LOG.info("recorded a vote", extra={"approval_id": voted.approval_id})
            return ClickResult("vote_recorded", tally_text(voted), approval=voted)
        try:
            decided = store.decide(
                click.approval_id, status=status, decided_by=deciders, reason=vote.reason, at=now
            )
        except AlreadyDecided as already:
            return ClickResult("already_decided", already_decided_text(already.approval))
    elif isinstance(decided, ClickResult):
        return decided
    resume_workflow(decided, sfn)
    LOG.info(
        "recorded a decision",
        extra={"approval_id": decided.approval_id, "outcome": decided.outcome},
    )
    return ClickResult("recorded", approval=decided)


def _outcome(approval: Approval, vote: Vote) -> tuple[str | None, tuple[str, ...]]:
    """What the votes on `approval` decide, `vote` among them: one rejection rejects;
    enough distinct approvals approve; (None, ()) while the quorum is short."""
    if vote.vote != "approve":
        return REJECTED, (vote.user_id,)
    approving = tuple(v.user_id for v in approval.votes if v.vote == "approve")
    if len(approving) < approval.rules.required_approvals:
        return None, ()
    return APPROVED, approving


def _decide_at_once(
    approval: Approval, vote: Vote, store: ApprovalStore
) -> Approval | ClickResult | None:
    """The common case in one write: this vote decides, given the votes just read.

    None when it does not decide, or when the votes changed meanwhile (the caller then
    records the vote and decides in two steps, as before).
    """
    counted = replace(approval, votes=(*approval.votes, vote))
    status, deciders = _outcome(counted, vote)
    if status is None:
        return None
    try:
        return store.decide_with_vote(
            approval.approval_id,
            vote,
            votes_seen=len(approval.votes),
            status=status,
            decided_by=deciders,
            at=vote.at,
        )
    except AlreadyDecided as already:
        current = already.approval
        if current.status != PENDING:
            return ClickResult("already_decided", already_decided_text(current))
        if any(v.user_id == vote.user_id for v in current.votes):
            return ClickResult("already_voted", already_voted_text(current))
        return None


def redeliver(approval: Approval, sfn: Any) -> None:
    """A click on a request decided in Slack but not yet closed: hand the decision to the
    workflow again, in case the first SendTaskSuccess was lost (Lambda died, Step Functions
    unreachable). Harmless when it arrived: the task no longer waits, and that is ignored."""
    if approval.status in (APPROVED, REJECTED) and approval.closed_at is None:
        try:
            resume_workflow(approval, sfn)
        except ClientError as exc:
            LOG.warning(
                "could not hand the recorded decision to the workflow again",
                extra={"approval_id": approval.approval_id, "error": exc.response.get("Error")},
            )


def resume_workflow(approval: Approval, sfn: Any) -> bool:
    """SendTaskSuccess with the decision; False if the task no longer waits.

    The decision is recorded already, so a task that timed out meanwhile is not an error:
    the deadline step reads the recorded decision and reports it.
    """
    if not approval.task_token:
        LOG.error(
            "decided an approval that has no task token",
            extra={"approval_id": approval.approval_id},
        )
        return False
    try:
        sfn.send_task_success(taskToken=approval.task_token, output=json.dumps(decision(approval)))
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code")
        if code in ("TaskTimedOut", "InvalidToken", "TaskDoesNotExist"):
            LOG.warning(
                "the workflow no longer waits for this decision; the deadline step will report it",
                extra={"approval_id": approval.approval_id, "error": code},
            )
            return False
        raise
    return True


def tell(slack: Any, click: Click, text: str) -> None:
    """An ephemeral message to the clicker; a Slack failure here is logged, not raised."""
    if not click.channel:
        return
    try:
        slack.chat_postEphemeral(channel=click.channel, user=click.user_id, text=text)
    except (SlackApiError, SlackClientError, OSError) as exc:
        # OSError: a timeout or dropped connection (urllib's TimeoutError is not a
        # SlackClientError); the click is recorded already, so it must still answer 200.
        LOG.warning("could not tell the clicker", extra={"error": type(exc).__name__})
