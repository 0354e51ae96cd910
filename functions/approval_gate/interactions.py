"""Slack interactivity: from a signed HTTP request to exactly one recorded decision.

`handle` is the one entry point of functions/slack_interactions, and reads top-down as
the path of a click (docs/architecture.md, "The path of a click"):

1. here: read the request, verify Slack's signature (once more with a fresh signing
   secret after a rotation), parse the click, check its workspace and app;
2. `votes`: authorize the clicker and record the vote exactly once;
3. `workflow`: hand a decision to the waiting workflow (`SendTaskSuccess`);
4. `answers`: the modal, the tally or a private word for the clicker, and the HTTP answer,
   well inside Slack's three seconds.
"""

import base64
import binascii
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, NamedTuple
from urllib.parse import parse_qs

from approval_gate.answers import HttpAnswer, answer
from approval_gate.clicks import Click, ClickResult
from approval_gate.clock import Clock
from approval_gate.groups import GroupDirectory
from approval_gate.messages import (
    APPROVE,
    APPROVE_LATER,
    APPROVE_LATER_VIEW,
    APPROVE_VIEW,
    CANCEL_HOLD,
    DEPLOY_AT_BLOCK,
    DEPLOY_NOW,
    DEPLOY_NOW_VIEW,
    MAX_REASON,
    REASON_BLOCK,
    REJECT,
    REJECT_VIEW,
)
from approval_gate.slack import SlackCredentials, SlackCredentialsSource, signature_is_valid
from approval_gate.store import ApprovalStore
from approval_gate.votes import record_vote
from approval_gate.workflow import end_hold_wait, redeliver, resume_workflow

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: Slack's interactivity payloads are small; anything far larger is not from Slack.
MAX_BODY = 64 * 1024
#: The opaque approval id a button carries: 32 hex digits (see request.ApprovalRequest).
_APPROVAL_ID = re.compile(r"[0-9a-f]{32}")


class BadRequest(ValueError):
    """The request is not a well-formed Slack interaction (answered 400, changes nothing)."""


class Collaborators:
    """What a click needs besides the request, built once per container by the handler.

    `slack_client` gives the Web API client for a set of credentials; `label_logs` adds
    keys to the function's log lines (Powertools' `append_keys`). Group membership is
    cached here for as long as the Slack client lives.
    """

    def __init__(
        self,
        *,
        store: ApprovalStore,
        sfn: Any,
        credentials: SlackCredentialsSource,
        slack_client: Callable[[SlackCredentials], Any],
        clock: Clock,
        label_logs: Callable[..., None] = lambda **keys: None,
    ) -> None:
        self.store = store
        self.sfn = sfn
        self.credentials = credentials
        self.slack_client = slack_client
        self.clock = clock
        self.label_logs = label_logs
        self._groups: GroupDirectory | None = None

    def groups(self, slack: Any) -> GroupDirectory:
        if self._groups is None or self._groups.slack is not slack:
            self._groups = GroupDirectory(slack)
        return self._groups


def handle(event: Any, deps: Collaborators) -> HttpAnswer:
    """One Slack interactivity request, start to end (see the module's docstring)."""
    try:
        request = http_request(event)
    except BadRequest as exc:
        LOG.warning("rejected an unreadable request", extra={"reason": str(exc)})
        return HttpAnswer(401, "invalid request")
    credentials = verified_credentials(request, deps.credentials)
    if credentials is None:
        LOG.warning("rejected a request with an invalid or stale Slack signature")
        return HttpAnswer(401, "invalid request signature")
    try:
        click = parse_click(parse_interaction(request.body))
    except BadRequest as exc:
        LOG.warning("rejected a malformed interaction", extra={"reason": str(exc)})
        return HttpAnswer(400, "malformed interaction")
    if click is None:
        return HttpAnswer(200)
    if (credentials.team_id and click.team_id != credentials.team_id) or (
        credentials.app_id and click.app_id != credentials.app_id
    ):
        LOG.warning("rejected an interaction from another workspace or app")
        return HttpAnswer(403, "wrong workspace or app")
    deps.label_logs(approval_id=click.approval_id)
    slack = deps.slack_client(credentials)
    result = record_click(
        click, store=deps.store, sfn=deps.sfn, clock=deps.clock, groups=deps.groups(slack)
    )
    LOG.info("handled a click", extra={"result": result.outcome, "user": click.user_id})
    return answer(result, click, slack=slack, store=deps.store, clock=deps.clock)


def verified_credentials(
    request: "HttpRequest", source: SlackCredentialsSource
) -> SlackCredentials | None:
    """The credentials whose signing secret signed this request; None when none did.

    The signing secret may have been rotated: a failed check looks again, with a fresh
    copy of the secret, at most once a minute (`SlackCredentialsSource.refreshed`).
    """
    credentials = source.get()
    if signature_is_valid(credentials.signing_secret, request.headers, request.body):
        return credentials
    fresh = source.refreshed()
    if fresh is not None and signature_is_valid(
        fresh.signing_secret, request.headers, request.body
    ):
        return fresh
    return None


def record_click(
    click: Click,
    *,
    store: ApprovalStore,
    sfn: Any,
    clock: Clock,
    groups: GroupDirectory | None = None,
) -> ClickResult:
    """Record the click's vote exactly once (`votes`), then hand the workflow what it
    decided (`workflow`): the decision just recorded, or, for a click on a request decided
    in Slack but not yet closed, the recorded decision again (the first `SendTaskSuccess`
    may have been lost). Cancel and Deploy now on a held request end the hold's wait."""
    result = record_vote(click, store=store, clock=clock, groups=groups)
    if result.approval is not None:
        if result.outcome == "recorded":
            resume_workflow(result.approval, sfn)
        elif result.outcome == "already_decided":
            redeliver(result.approval, sfn)
        elif result.outcome in ("hold_cancelled", "overridden", "not_held"):
            end_hold_wait(result.approval, sfn)
    return result


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
    deploy_at: datetime | None = None
    inputs: dict[str, str] = {}
    if kind == "block_actions":
        actions = payload.get("actions")
        if not isinstance(actions, list) or len(actions) != 1 or not isinstance(actions[0], dict):
            return None
        action_id = actions[0].get("action_id")
        value = actions[0].get("value")
        if action_id not in _BUTTONS:
            return None
    elif kind == "view_submission":
        callback = _field(payload, "view", "callback_id")
        if callback not in _VIEWS:
            return None
        action_id = _VIEWS[callback]
        value = _field(payload, "view", "private_metadata")
        deploy_at = _chosen_time(payload) if callback == APPROVE_LATER_VIEW else None
        typed = _field(payload, "view", "state", "values", REASON_BLOCK, REASON_BLOCK, "value")
        if typed is not None and not isinstance(typed, str):
            raise BadRequest("the reason is not text")
        typed = _text(typed)
        reason = typed.strip()[:MAX_REASON] if typed and typed.strip() else None
        inputs = _submitted_inputs(_field(payload, "view", "state", "values"))
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
        deploy_at=deploy_at,
        inputs=inputs,
    )


#: Our buttons, and our modals with the button each one completes.
_BUTTONS = (APPROVE, APPROVE_LATER, REJECT, CANCEL_HOLD, DEPLOY_NOW)
_VIEWS = {
    REJECT_VIEW: REJECT,
    APPROVE_VIEW: APPROVE,
    APPROVE_LATER_VIEW: APPROVE_LATER,
    DEPLOY_NOW_VIEW: DEPLOY_NOW,
}


def _chosen_time(payload: dict[str, Any]) -> datetime | None:
    """The date-time picker's choice (epoch seconds), None when nothing was chosen."""
    chosen = _field(
        payload, "view", "state", "values", DEPLOY_AT_BLOCK, DEPLOY_AT_BLOCK, "selected_date_time"
    )
    if chosen is None:
        return None
    if isinstance(chosen, bool) or not isinstance(chosen, int) or not 0 < chosen < 2**34:
        raise BadRequest("the chosen time is not epoch seconds")
    return datetime.fromtimestamp(chosen, UTC)


#: An approver input's id (DESIGN §8.4): its block and action id in the Approve modal.
_INPUT_ID = re.compile(r"[a-z][a-z0-9_]{0,29}")


def _submitted_inputs(values: Any) -> dict[str, str]:
    """What each input block of a submitted modal gave, besides the gate's own (the comment,
    the time): the text typed, or the chosen option's value; empty ones left out. Which of
    them the policy takes, and whether each is valid, `votes` decides."""
    found: dict[str, str] = {}
    if not isinstance(values, dict):
        return found
    for block_id, actions in values.items():
        if block_id in (REASON_BLOCK, DEPLOY_AT_BLOCK) or not _INPUT_ID.fullmatch(block_id):
            continue
        state = actions.get(block_id) if isinstance(actions, dict) else None
        if not isinstance(state, dict):
            continue
        if "selected_option" in state:
            value = _field(state, "selected_option", "value")
        else:
            value = state.get("value")
        if value is None:
            continue
        if not isinstance(value, str):
            raise BadRequest(f"the value of {block_id} is not text")
        found[block_id] = _text(value) or ""
    return found
