"""One CodePipeline event, applied: the feed item, the approvals it settles, then Slack.

`receive` takes an event as EventBridge delivers it to the pipeline_events function;
`handle_event` applies a validated one. Any Lambda that applied something renders the item
and updates the execution's message when what it shows differs from what the message
shows, so the last writer always leaves the newest state (a stage's end alone waits for the
next change, which always follows); how each stage ended, with its actions, goes into the
message's thread, one message per stage, once.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.clock import Clock
from approval_gate.closing import settle_elsewhere
from approval_gate.feed.details import ActionDetails, action_details, execution_info
from approval_gate.feed.events import (
    ACTION,
    ENDED,
    PIPELINE,
    STAGE,
    InvalidEvent,
    PipelineEvent,
    is_approval,
    parse_event,
)
from approval_gate.feed.render import feed_view, message_wanted, run_ended, wanted_lines
from approval_gate.feed.settlement import APPROVED_IN_CONSOLE, Settlement, notes, settlement
from approval_gate.feed.state import Feed
from approval_gate.feed.store import FeedStore
from approval_gate.policy import Policy, PolicyError
from approval_gate.slack import is_rate_limited, rate_limit_waits
from approval_gate.store import ApprovalStore

#: The same logger Powertools configures for the handlers (its service name).
LOG = logging.getLogger("approval-gate")


def receive(
    event: Any,
    *,
    store: FeedStore,
    approvals: ApprovalStore,
    slack_client: Callable[[], Any],
    load_policy: Callable[[], Policy],
    codepipeline: Any,
    sfn: Any,
    clock: Clock,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Validate one EventBridge event, apply it, and log what applying it did.

    The policy and the Slack client are asked for only once the event is valid. A malformed
    event is logged and answered ``{"ignored": reason}``; an invalid policy is logged and
    raised.
    """
    try:
        change = parse_event(event)
    except InvalidEvent as exc:
        # A malformed event stays malformed: returning (not raising) spares the retries.
        LOG.error(
            "ignored an event that is not a CodePipeline state change",
            extra={"reason": str(exc)},
        )
        return {"ignored": str(exc)}
    try:
        rules = load_policy()
    except PolicyError as exc:
        LOG.error("the policy is invalid", extra={"reason": str(exc)})
        raise
    result = handle_event(
        change,
        store=store,
        approvals=approvals,
        slack=slack_client(),
        policy=rules,
        codepipeline=codepipeline,
        sfn=sfn,
        clock=clock,
        sleep=sleep,
    )
    LOG.info(
        "pipeline event handled",
        extra={
            "pipeline": change.pipeline,
            "execution_id": change.execution_id,
            "kind": change.kind,
            "stage": change.stage,
            "action": change.action,
            "state": change.state,
            "event_id": change.event_id,
            **result,
        },
    )
    return result


def _details(codepipeline: Any, event: PipelineEvent) -> ActionDetails:
    """The action's details from CodePipeline, with what the event itself says as the
    fallback for the summary and the link."""
    found = action_details(codepipeline, event) or ActionDetails()
    return replace(
        found,
        summary=found.summary or event.external_summary,
        url=found.url or event.external_url,
    )


def _console_decider(
    codepipeline: Any, event: PipelineEvent, language: str
) -> Callable[[], tuple[str, tuple[str, ...], str | None]] | None:
    """For an approval's SUCCEEDED event: who approved it, read from CodePipeline only if
    an open approval is found (the gate's own approvals end with this event too); the note
    in ``language``."""
    if not (is_approval(event) and event.state == "SUCCEEDED"):
        return None

    def decider() -> tuple[str, tuple[str, ...], str | None]:
        found = settlement(event, _details(codepipeline, event), language) or Settlement(
            notes(language)[APPROVED_IN_CONSOLE]
        )
        return found.note, found.decided_by, found.reason

    return decider


def handle_event(
    event: PipelineEvent,
    *,
    store: FeedStore,
    approvals: ApprovalStore,
    slack: Any,
    policy: Policy,
    codepipeline: Any,
    sfn: Any,
    clock: Clock,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Apply one CodePipeline event: the feed item, open approvals, then Slack.

    Safe to run twice and in any order: a duplicate or an earlier state changes nothing,
    and Slack is only told what the item shows and Slack does not show yet (so a retry
    after a Slack error completes what the first attempt left undone).
    """
    rules = policy.resolve(event.pipeline)
    announce = frozenset(rules.announce)
    # The execution's message and its thread speak the pipeline's language. Each event
    # resolves the policy again, so the message, updated in place, follows the policy as it
    # is now (a language changed mid-run shows from the next update on; lines already in
    # the thread stay as they were posted).
    language = rules.language
    details = None
    # One lookup: a failed action's error for the feed, or a rejected approval's decider.
    if (
        event.kind == ACTION
        and event.state == "FAILED"
        and (ACTION in announce or is_approval(event))
    ):
        details = _details(codepipeline, event)
    failed = details if event.state == "FAILED" else None  # the feed shows failures only
    applied = store.apply(
        event,
        now=clock(),
        summary=failed.summary if failed else None,
        url=failed.url if failed else None,
    )
    result: dict[str, Any] = {
        "posted": False,
        "updated": False,
        "threaded": False,
        "ignored": None if applied.outcome == "applied" else applied.outcome,
        "settled": [],
    }
    # The settlement's note is kept with the approval and shown on its request, so it is in
    # the approval's language: an action's event resolves the rules the approval was asked
    # with (its stage and action); a run's end closes every open approval of the run with
    # the pipeline's language (a rule for one stage that sets another language is not
    # followed there: settle_elsewhere takes one note for all of them).
    if event.kind == ACTION:
        note_language = policy.resolve(event.pipeline, event.stage, event.action).language
    else:
        note_language = language
    settled = settlement(event, details, note_language)
    if settled is not None:
        # Idempotent (only PENDING approvals move), so it runs for duplicates too: a retry
        # after a failure here must still close the approval.
        result["settled"] = settle_elsewhere(
            pipeline_execution_id=event.execution_id,
            stage=event.stage if event.kind == ACTION else None,
            action=event.action if event.kind == ACTION else None,
            note=settled.note,
            decided_by=settled.decided_by,
            reason=settled.reason,
            decider=(
                _console_decider(codepipeline, event, note_language) if details is None else None
            ),
            store=approvals,
            sfn=sfn,
            clock=clock,
            sleep=sleep,
        )
    feed = applied.feed
    if feed.message_ts is None and not message_wanted(feed, announce):
        if result["ignored"] is None:
            result["ignored"] = "not announced"
        return result
    follows = applied.outcome == "applied" and _followed_at_once(event, feed)
    try:
        with rate_limit_waits(0 if follows else LAST_CHANCE_WAITS):
            _show(
                event,
                feed,
                result,
                channel=rules.effective_status_channel,
                announce=announce,
                language=language,
                store=store,
                slack=slack,
                codepipeline=codepipeline,
                clock=clock,
            )
    except SlackApiError as exc:
        if not (follows and is_rate_limited(exc)):
            raise
        # The claims were given back and the item still says what Slack lacks: the run's
        # next event, moments away, makes these writes with its own.
        LOG.warning(
            "Slack is rate limiting the status feed: the run's next event catches up",
            extra={"pipeline": event.pipeline, "execution_id": event.execution_id},
        )
    return result


def _show(
    event: PipelineEvent,
    feed: Feed,
    result: dict[str, Any],
    *,
    channel: str,
    announce: frozenset[str],
    language: str,
    store: FeedStore,
    slack: Any,
    codepipeline: Any,
    clock: Clock,
) -> None:
    """Bring Slack up to what the item holds: the message posted or updated, the thread
    messages due; `result` says what was done, as it is done."""
    if feed.message_ts is None:
        posted = _post_message(
            feed,
            channel=channel,
            language=language,
            store=store,
            slack=slack,
            codepipeline=codepipeline,
            clock=clock,
        )
        if posted is None:  # another Lambda posts it, and shows what we applied
            return
        feed = posted
        result["posted"] = True
    if not _told_by_a_later_event(event, feed):
        result["updated"], feed = _refresh(feed, language=language, store=store, slack=slack)
    _post_lines(feed, announce, language, store, slack, result)


#: How many times the last chance to make a write (nothing else follows soon) waits out a
#: 429's Retry-After, each only when the invocation has the time; then Lambda retries.
LAST_CHANCE_WAITS = 3


def _followed_at_once(event: PipelineEvent, feed: Feed) -> bool:
    """Does CodePipeline send another event of this run within moments?

    A run's start is followed by its first stage's, a stage's start by its first action's,
    an action's or a stage's end by the next one's start or the stage's or the run's end.
    Not an action's start (the action runs: a build, an approval waiting for people), nor a
    stop (stop and wait lets running actions finish), nor anything once the run has ended.
    """
    if run_ended(feed, event.attempt):
        return False
    if event.state in ENDED:
        return event.kind != PIPELINE
    return event.state in ("STARTED", "RESUMED") and event.kind != ACTION


def _told_by_a_later_event(event: PipelineEvent, feed: Feed) -> bool:
    """Whether this stage's end may leave the message as it is: its thread message tells it
    at once, and the next stage's start or the run's end, one of which always follows,
    update the message with it (one write for two changes).

    Only while nothing later is in the item (as this event's write left it): stages run
    one after another, so a stage still running, other than this one, is a later one whose
    event was applied first and whose update could not show this end. Of two racing
    Lambdas, the one applying second sees both changes, and updates.
    """
    if event.kind != STAGE or event.state not in ENDED or run_ended(feed, event.attempt):
        return False
    stages = set(feed.stages) | {stage for stage, _ in feed.actions}
    return all(
        stage == event.stage or (stage in feed.stages and feed.stages[stage].ended)
        for stage in stages
    )


def _post_message(
    feed: Feed,
    *,
    channel: str,
    language: str,
    store: FeedStore,
    slack: Any,
    codepipeline: Any,
    clock: Clock,
) -> Feed | None:
    """Post the execution's message once: the one Lambda whose claim wins posts it."""
    token = uuid.uuid4().hex
    claimed = store.claim_post(feed.execution_id, token, clock())
    if claimed is None:
        return None
    revision, trigger = execution_info(codepipeline, claimed)
    # What the item will hold once saved (save_post keeps a trigger already known).
    shown = feed_view(
        replace(
            claimed,
            revision=revision or claimed.revision,
            trigger_type=claimed.trigger_type or trigger[0],
            trigger_detail=claimed.trigger_detail or trigger[1],
        ),
        language,
    )
    try:
        response = slack.chat_postMessage(
            channel=channel,
            text=shown.text,
            blocks=shown.blocks,
            unfurl_links=False,
            unfurl_media=False,
        )
    except Exception:
        store.release_post(feed.execution_id, token)
        raise
    saved = store.save_post(
        feed.execution_id,
        token=token,
        channel=str(response["channel"]),
        ts=str(response["ts"]),
        shown=shown.digest,
        revision=revision,
        trigger=trigger,
    )
    LOG.info(
        "posted the pipeline execution's message",
        extra={"pipeline": feed.pipeline, "channel": saved.channel},
    )
    return saved


#: Rounds of "update, then check nobody applied something meanwhile" before leaving the
#: rest to the next event's Lambda.
_REFRESH_ROUNDS = 3


def show_hold(
    execution_id: str,
    stage: str,
    action: str,
    until: datetime | None,
    *,
    language: str,
    store: FeedStore,
    slack: Any,
    for_checks: bool = False,
) -> None:
    """The run's message shows its approval held until `until` (None: no longer held;
    `for_checks`: until the health checks pass), not waiting for people, rendered in
    `language`. Best effort: the hold goes on whatever Slack says."""
    feed = store.mark_held(execution_id, stage, action, until, for_checks=for_checks)
    if feed is None:
        return
    try:
        _refresh(feed, language=language, store=store, slack=slack)
    except (SlackApiError, SlackClientError, OSError) as exc:
        LOG.warning("could not show the hold in the run's message", extra={"error": str(exc)})


def hold_shower(
    store: FeedStore, slack: Callable[[], Any]
) -> Callable[[Any, datetime | None], None]:
    """`show_hold` for an approval (hold_steps.ShowInFeed), with a Slack client made
    when needed."""

    def show(approval: Any, until: datetime | None) -> None:
        if approval.pipeline_execution_id:
            show_hold(
                approval.pipeline_execution_id,
                approval.stage,
                approval.action,
                until,
                # The approval's language: its rules come from the same policy as the
                # pipeline's, resolved for its stage and action. Only a rule for that stage
                # or action setting another language than the pipeline's makes this update
                # differ from the feed's own; the run's next event renders it again.
                language=approval.rules.language,
                store=store,
                slack=slack(),
                for_checks=approval.held is not None and approval.held.for_checks,
            )

    return show


def _refresh(feed: Feed, *, language: str, store: FeedStore, slack: Any) -> tuple[bool, Feed]:
    """Update the message in place while it shows less than the item holds (or another
    language: the digest covers the words)."""
    updated = False
    for _ in range(_REFRESH_ROUNDS):
        view = feed_view(feed, language)
        if view.digest == feed.shown or not feed.channel or not feed.message_ts:
            break
        try:
            slack.chat_update(
                channel=feed.channel, ts=feed.message_ts, text=view.text, blocks=view.blocks
            )
        except SlackApiError as exc:
            if exc.response.get("error") != "message_not_found":
                raise
            # Someone deleted the message: nothing to update, and no point retrying.
            LOG.warning(
                "the pipeline execution's message is gone",
                extra={"pipeline": feed.pipeline, "channel": feed.channel},
            )
            return updated, feed
        updated = True
        # Read back with the new digest: a change applied meanwhile shows as a mismatch.
        feed = store.mark_shown(feed.execution_id, view.digest)
    return updated, feed


#: Rounds of "claim the thread messages still due" when another Lambda took some of them.
_LINE_ROUNDS = 3


def _post_lines(
    feed: Feed,
    announce: frozenset[str],
    language: str,
    store: FeedStore,
    slack: Any,
    result: dict[str, Any],
) -> None:
    """Post every thread message the item calls for that nobody has posted yet;
    `result["threaded"]` says whether one went out, even if a later one fails."""
    if not feed.channel or not feed.message_ts:
        return
    for _ in range(_LINE_ROUNDS):
        for line in wanted_lines(feed, announce, language):
            if store.claim_line(feed.execution_id, line.keys) is None:
                break  # another Lambda tells some of it: read again and tell the rest
            try:
                slack.chat_postMessage(
                    channel=feed.channel,
                    thread_ts=feed.message_ts,
                    text=line.text,
                    unfurl_links=False,
                    unfurl_media=False,
                )
            except Exception:
                store.release_line(feed.execution_id, line.keys)
                raise
            result["threaded"] = True
        else:
            return
        feed = store.get(feed.execution_id) or feed
