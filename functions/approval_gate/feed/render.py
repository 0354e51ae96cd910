"""The status feed in Slack: an execution's message and the lines of its thread.

The message is a pure function of the feed item, so whichever Lambda renders it last shows
the same thing, and `FeedView.digest` tells whether the message already shows it. How each
stage ended, with how its actions ended, is one message in the thread, keyed so that each
end is told once.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock

from approval_gate.feed.events import ACTION, APPROVAL_CATEGORY, STAGE
from approval_gate.feed.state import Feed, Revision, StepState
from approval_gate.messages import slack_date
from approval_gate.text import cut_at_word, escape_mrkdwn, human_duration, mrkdwn_link

_SYMBOLS = {
    "STARTED": "▶️",
    "RESUMED": "▶️",
    "STOPPING": "⏳",
    "SUCCEEDED": "✅",
    "FAILED": "❌",
    "STOPPED": "⏹",
    "CANCELED": "⏹",
    "ABANDONED": "⏹",
    "SUPERSEDED": "⏭",
}
_WORDS = {
    "STARTED": "in progress",
    "RESUMED": "in progress",
    "STOPPING": "stopping",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "STOPPED": "stopped",
    "CANCELED": "cancelled",
    "ABANDONED": "abandoned",
    "SUPERSEDED": "superseded",
}
#: The `announce` word of each pipeline state: does the policy want a message for it?
ANNOUNCE_OF_STATE = {
    "STARTED": "started",
    "RESUMED": "started",
    "STOPPING": "stopped",
    "STOPPED": "stopped",
    "CANCELED": "stopped",
    "ABANDONED": "stopped",
    "SUCCEEDED": "succeeded",
    "FAILED": "failed",
    "SUPERSEDED": "superseded",
}
_TRIGGERS = {
    "StartPipelineExecution": "started by",
    "CloudWatchEvent": "source change, EventBridge rule",
    "PollForSourceChanges": "source change, polling",
    "Webhook": "webhook",
    "WebhookV2": "webhook",
    "PutActionRevision": "new source revision",
    "CreatePipeline": "pipeline created or updated",
    "ManualRollback": "manual rollback",
    "AutomatedRollback": "automated rollback",
}
_SECTION_LIMIT = 3000
_COMMIT = re.compile(r"[0-9a-f]{7,64}")


@dataclass(frozen=True)
class FeedView:
    """The message as Slack shows it, and a digest to tell whether it changed."""

    text: str
    blocks: list[dict[str, Any]]

    @property
    def digest(self) -> str:
        content = json.dumps({"text": self.text, "blocks": self.blocks}, sort_keys=True)
        return hashlib.sha256(content.encode()).hexdigest()[:32]


def execution_link(feed: Feed) -> str:
    region = feed.region
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(feed.pipeline)}/executions/{quote(feed.execution_id)}/timeline?region={region}"
    )


def _stage_order(feed: Feed) -> list[tuple[str, StepState | None]]:
    """Stages in the order they ran (stages run one after another, so by the time of
    their latest state, then by when the feed first heard of them); a stage known only
    from its actions is in progress."""
    stages: dict[str, tuple[tuple[datetime, datetime], StepState | None]] = {
        name: (step.order, step) for name, step in feed.stages.items()
    }
    for (stage, _), step in feed.actions.items():
        if stage not in stages:
            stages[stage] = (step.order, None)
        elif stages[stage][1] is None:
            stages[stage] = (min(stages[stage][0], step.order), None)
    ordered = sorted(stages.items(), key=lambda kv: kv[1][0])
    return [(name, step) for name, (_, step) in ordered]


def _started(feed: Feed) -> datetime | None:
    if feed.started_at is not None:
        return feed.started_at
    times = [s.at for s in (*feed.stages.values(), *feed.actions.values())]
    return min(times) if times else None


def headline(feed: Feed) -> tuple[str, str]:
    """(symbol, what happened) of the whole execution, e.g. ("✅", "succeeded in 26m 32s")."""
    step = feed.pipeline_state
    state = step.state if step is not None else "STARTED"
    words = _WORDS[state]
    if step is not None and step.ended:
        if state == "FAILED":
            failed = [name for name, s in _stage_order(feed) if s and s.state == "FAILED"]
            if failed:
                words += f" in stage {failed[-1]}"
        started = _started(feed)
        if started is not None:
            took = human_duration((step.at - started).total_seconds())
            words += f" in {took}" if state == "SUCCEEDED" else f" after {took}"
    return _SYMBOLS[state], words


def _trigger_line(feed: Feed) -> str | None:
    if not feed.trigger_type:
        return None
    label = _TRIGGERS.get(feed.trigger_type, feed.trigger_type)
    detail = feed.trigger_detail
    if detail and detail.startswith("arn:"):
        detail = detail.split(":", 5)[-1]  # the resource: assumed-role/Admin/jane, rule/x
    if detail:
        return f"Trigger: {escape_mrkdwn(label)} `{escape_mrkdwn(cut_at_word(detail, 120))}`"
    return f"Trigger: {escape_mrkdwn(label)}"


def _revision_line(revision: Revision | None) -> str | None:
    if revision is None:
        return None
    commit = _COMMIT.fullmatch(revision.revision_id) is not None
    short = revision.revision_id[:7] if commit else cut_at_word(revision.revision_id, 20)
    line = f"{'Commit' if commit else 'Revision'} `{escape_mrkdwn(short)}`"
    if revision.summary:
        summary = escape_mrkdwn(cut_at_word(revision.summary, 150))
        line += f" {mrkdwn_link(revision.url, summary)}" if revision.url else f" {summary}"
    elif revision.url:
        line += f" {mrkdwn_link(revision.url, 'view')}"
    return line


def _held_stage(feed: Feed, stage: str, step: StepState | None) -> str | None:
    """A stage whose approval is approved but held (DESIGN §8.2), while it still runs:
    "⏸ Approval: approved, deploys at <date>" (or "waiting for the health checks to
    pass") rather than waiting for people."""
    if step is not None and step.ended:
        return None
    held = [
        until
        for (held_stage, action), until in feed.held.items()
        if held_stage == stage
        and not ((done := feed.actions.get((stage, action))) is not None and done.ended)
    ]
    if not held:
        return None
    times = [until for until in held if until is not None]
    if len(times) < len(held):  # one waits for its health checks: no instant to say
        return f"⏸ {escape_mrkdwn(stage)}: approved, waiting for the health checks to pass"
    return f"⏸ {escape_mrkdwn(stage)}: approved, deploys at {slack_date(max(times))}"


def feed_view(feed: Feed) -> FeedView:
    """The execution's message: a pure function of the feed item, so whichever Lambda
    renders it last shows the same thing."""
    symbol, words = headline(feed)
    name = escape_mrkdwn(feed.pipeline)
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"{symbol} *<{execution_link(feed)}|{name}>* {words}")
        )
    ]
    stages = [
        _held_stage(feed, stage, step)
        or f"{_SYMBOLS[step.state if step else 'STARTED']} {escape_mrkdwn(stage)}"
        for stage, step in _stage_order(feed)
    ]
    if stages:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=cut_at_word("  →  ".join(stages), _SECTION_LIMIT))
            )
        )
    context = [line for line in (_revision_line(feed.revision), _trigger_line(feed)) if line]
    started = _started(feed)
    execution = f"execution `{feed.execution_id[:8]}`"
    context.append(f"Started {slack_date(started)} · {execution}" if started else execution)
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text) for text in context]))
    return FeedView(
        text=f"{symbol} {feed.pipeline} {words}", blocks=[block.to_dict() for block in blocks]
    )


def line_key(kind: str, stage: str, action: str | None, step: StepState) -> str:
    return f"{kind}#{stage}#{action or ''}#{step.state}#{step.attempt}"


def thread_line(kind: str, stage: str, action: str | None, step: StepState) -> str:
    """How a stage or an action ended, on one line."""
    symbol = _SYMBOLS[step.state]
    if kind == STAGE:
        return f"{symbol} Stage {escape_mrkdwn(stage)} {_WORDS[step.state]}"
    words = _WORDS[step.state]
    if (step.category or "").lower() == APPROVAL_CATEGORY.lower():
        words = {"SUCCEEDED": "approved", "FAILED": "rejected"}.get(step.state, words)
    line = f"{symbol} Action {escape_mrkdwn(stage)}/{escape_mrkdwn(action or '')} {words}"
    if step.summary:
        line += f": {escape_mrkdwn(step.summary)}"
    if step.url:
        line += f" · <{step.url}|logs>"
    return line


#: A thread message is cut into several past this many characters (Slack advises
#: keeping a message's text under 4,000); a stage with many actions can get there.
MAX_THREAD_TEXT = 3900


@dataclass(frozen=True)
class ThreadLine:
    """One message of the execution's thread and the keys of the ends it tells: claimed
    together, so each stage's and each action's end is told once."""

    keys: tuple[str, ...]
    text: str


def wanted_lines(feed: Feed, announce: frozenset[str]) -> list[ThreadLine]:
    """The thread messages the item calls for that are not posted yet.

    A stage is told once it has ended (or the run has, for a stage whose end never came):
    its outcome, then how each of its actions ended. An action whose end is known only
    after its stage was told (events arrive in any order) is told on its own. What is due
    goes out in the order the stages ended, in one message (cut at MAX_THREAD_TEXT): one
    stage's, when the feed keeps up; several, when Slack held the feed back.
    """
    if STAGE not in announce and ACTION not in announce:
        return []
    actions: dict[str, list[tuple[tuple[datetime, datetime], str, str, str]]] = {}
    if ACTION in announce:
        for (stage, action), done in feed.actions.items():
            key = line_key(ACTION, stage, action, done)
            if done.ended and key not in feed.lines:
                text = thread_line(ACTION, stage, action, done)
                actions.setdefault(stage, []).append((done.order, action, key, text))
    due: list[tuple[tuple[datetime, datetime], str, list[tuple[str, str]]]] = []
    for stage in dict.fromkeys([*feed.stages, *actions]):
        step = feed.stages.get(stage)
        attempts = [a.attempt for (name, _), a in feed.actions.items() if name == stage]
        attempt = max([*attempts, step.attempt if step is not None else 0])
        if not ((step is not None and step.ended) or run_ended(feed, attempt)):
            continue  # its actions' ends wait for the stage's own line
        parts: list[tuple[str, str]] = []
        order = None
        if STAGE in announce and step is not None and step.ended:
            key = line_key(STAGE, stage, None, step)
            if key not in feed.lines:
                parts.append((key, thread_line(STAGE, stage, None, step)))
                order = step.order
        ended = sorted(actions.get(stage, []))
        parts += [(key, text) for _, _, key, text in ended]
        if parts:
            due.append((order or ended[-1][0], stage, parts))
    due.sort(key=lambda entry: entry[0])
    return _messages([part for *_, parts in due for part in parts])


def run_ended(feed: Feed, attempt: int) -> bool:
    """Has the run ended in this attempt, or a later one? (A retry starts over.)"""
    run = feed.pipeline_state
    return run is not None and run.ended and run.attempt >= attempt


def _messages(parts: list[tuple[str, str]]) -> list[ThreadLine]:
    """(key, line) pairs joined into messages of at most MAX_THREAD_TEXT characters."""
    if not parts:
        return []
    messages: list[ThreadLine] = []
    keys: list[str] = []
    lines: list[str] = []
    for key, line in parts:
        if lines and len("\n".join([*lines, line])) > MAX_THREAD_TEXT:
            messages.append(ThreadLine(tuple(keys), "\n".join(lines)))
            keys, lines = [], []
        keys.append(key)
        lines.append(line)
    messages.append(ThreadLine(tuple(keys), "\n".join(lines)))
    return messages


def message_wanted(feed: Feed, announce: frozenset[str]) -> bool:
    """Every run started, so `started` asks for the message whatever the state; otherwise
    the state the run has reached must be one the policy announces."""
    step = feed.pipeline_state
    state = step.state if step is not None else "STARTED"
    return "started" in announce or ANNOUNCE_OF_STATE[state] in announce
