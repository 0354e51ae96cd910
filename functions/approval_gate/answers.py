"""What the clicker sees after a click: a modal, the updated tally, or a private word;
and, when the click completed an approval step, the next step's approvers are asked.

The last step of a click's path (docs/architecture.md, "The path of a click"). Every
Slack call here is best effort: the click is recorded already, so a Slack failure is
logged and the HTTP answer is still the one Slack expects within its three seconds.
"""

import json
import logging
from typing import Any, NamedTuple

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.clicks import Click, ClickResult
from approval_gate.clock import Clock
from approval_gate.hold_messages import held_blocks, held_text, hold_change_text
from approval_gate.i18n import tr
from approval_gate.messages import (
    APPROVE_LATER,
    DEPLOY_AT_BLOCK,
    REASON_BLOCK,
    request_blocks,
    request_text,
    step_complete_text,
)
from approval_gate.posting import update_request
from approval_gate.store import Approval, ApprovalStore
from approval_gate.text import cut_at_word, plain

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")

#: How a Slack call may fail: the API says no, the client gives up, or the connection
#: drops or times out (urllib's TimeoutError is not a SlackClientError).
SLACK_FAILURES = (SlackApiError, SlackClientError, OSError)


class HttpAnswer(NamedTuple):
    """The HTTP answer to Slack, as API Gateway expects it from the function."""

    status: int
    body: str = ""
    content_type: str = "text/plain; charset=utf-8"

    def as_lambda_response(self) -> dict[str, Any]:
        return {
            "statusCode": self.status,
            "headers": {"Content-Type": self.content_type},
            "body": self.body,
        }


OK = HttpAnswer(200)


def _error(exc: Exception) -> Any:
    return exc.response.get("error") if isinstance(exc, SlackApiError) else type(exc).__name__


def answer(
    result: ClickResult, click: Click, *, slack: Any, store: ApprovalStore, clock: Clock
) -> HttpAnswer:
    """Open the modal, refresh the tally, or tell the clicker; then the HTTP answer.

    A modal submission is answered in the modal itself: 200 closes it, and a refusal
    shows as an error under the input, where the approver is looking.
    """
    if result.outcome == "modal" and result.view is not None:
        try:
            slack.views_open(trigger_id=click.trigger_id, view=result.view)
        except SLACK_FAILURES as exc:
            LOG.warning("could not open the modal", extra={"error": _error(exc)})
            tell(slack, click, modal_failed_text(result))
        return OK
    if result.outcome == "vote_recorded" and result.approval is not None:
        show_tally(slack, store, result.approval, clock)
        if result.completed_step:
            ask_next_step(slack, result.approval, result.completed_step)
    if result.outcome in HOLD_CHANGES and result.approval is not None:
        note_hold_change(slack, store, result.approval, result.outcome, click)
    if click.submitted and result.errors:
        # Slack shows each under its own input, as plain text.
        shown = {block: cut_at_word(plain(words), 150) for block, words in result.errors.items()}
        errors = {"response_action": "errors", "errors": shown}
        return HttpAnswer(200, json.dumps(errors), "application/json")
    if click.submitted:
        if result.outcome in CLOSES_MODAL or not result.ephemeral:
            return OK  # closes the modal
        # Slack shows these words under the modal's input, as plain text.
        words = cut_at_word(plain(result.ephemeral), 150)
        block = DEPLOY_AT_BLOCK if click.action == APPROVE_LATER else REASON_BLOCK
        errors = {"response_action": "errors", "errors": {block: words}}
        return HttpAnswer(200, json.dumps(errors), "application/json")
    if result.ephemeral:
        tell(slack, click, result.ephemeral)
    return OK


def modal_failed_text(result: ClickResult) -> str:
    """For a modal Slack would not open (its trigger expires after three seconds)."""
    # The modal's approval gives the language; a result without one (none is built so
    # today) has no policy at hand here: English.
    language = result.approval.rules.language if result.approval is not None else "en"
    return tr(language, "The form could not open in time: please click again.")


#: Submissions that close their modal; the hold changes noted in the request's thread.
CLOSES_MODAL = ("recorded", "vote_recorded", "override_recorded", "overridden")
HOLD_CHANGES = ("hold_cancelled", "override_recorded", "overridden")


def note_hold_change(
    slack: Any, store: ApprovalStore, approval: Approval, outcome: str, click: Click
) -> None:
    """A cancel or an override, said in the request's thread for everyone (and the
    audit); a recorded override vote also shows on the held request."""
    if outcome == "override_recorded":
        try:
            update_request(
                slack, store, approval, text=held_text(approval), blocks=held_blocks(approval)
            )
        except SLACK_FAILURES as exc:
            LOG.warning("could not show the override vote", extra={"error": _error(exc)})
    if not approval.channel or not approval.message_ts:
        return
    text = hold_change_text(approval, outcome, click.user_id)
    try:
        slack.chat_postMessage(channel=approval.channel, thread_ts=approval.message_ts, text=text)
    except SLACK_FAILURES as exc:
        LOG.warning("could not note the hold change", extra={"error": _error(exc)})


def show_tally(slack: Any, store: ApprovalStore, approval: Approval, clock: Clock) -> None:
    """The request message, updated with who has approved so far."""
    try:
        update_request(
            slack,
            store,
            approval,
            text=request_text(approval),
            blocks=request_blocks(approval, clock()),
            find_lost=True,
        )
    except SLACK_FAILURES as exc:
        LOG.warning("could not update the tally", extra={"error": _error(exc)})


def ask_next_step(slack: Any, approval: Approval, completed: str) -> None:
    """A step completed in ``sequence`` order: one line in the request's thread asks the
    next step's approvers, now that it is their turn (and not before). A Slack failure
    is logged, not raised: the vote is recorded, and reminders mention them too."""
    text = step_complete_text(approval, completed)
    if text is None or not approval.channel or not approval.message_ts:
        return
    try:
        slack.chat_postMessage(channel=approval.channel, thread_ts=approval.message_ts, text=text)
    except SLACK_FAILURES as exc:
        LOG.warning(
            "could not ask the next step's approvers",
            extra={"approval_id": approval.approval_id, "error": _error(exc)},
        )


def tell(slack: Any, click: Click, text: str) -> None:
    """An ephemeral message to the clicker; a Slack failure here is logged, not raised."""
    if not click.channel:
        return
    try:
        slack.chat_postEphemeral(channel=click.channel, user=click.user_id, text=text)
    except SLACK_FAILURES as exc:
        # The click is recorded already, so it must still answer 200.
        LOG.warning("could not tell the clicker", extra={"error": type(exc).__name__})
