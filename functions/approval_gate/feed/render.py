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
from approval_gate.i18n import tr, trp
from approval_gate.text import cut_at_word, escape_mrkdwn, human_duration, mrkdwn_link, slack_date

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


def headline(feed: Feed, pipeline: str, language: str) -> tuple[str, str]:
    """(symbol, what happened) of the whole execution, one sentence about ``pipeline``
    (the name as shown: a link in the blocks, plain in the fallback text), e.g.
    ("✅", "web succeeded in 26m 32s")."""
    step = feed.pipeline_state
    state = step.state if step is not None else "STARTED"
    stage = took = None
    if step is not None and step.ended:
        if state == "FAILED":
            failed = [name for name, s in _stage_order(feed) if s and s.state == "FAILED"]
            if failed:
                stage = failed[-1]
        started = _started(feed)
        if started is not None:
            took = human_duration((step.at - started).total_seconds(), language)
    return _SYMBOLS[state], _run_sentence(state, pipeline, stage, took, language)


def _run_sentence(
    state: str, pipeline: str, stage: str | None, took: str | None, language: str
) -> str:
    """How the run is doing, as a sentence (a succeeded run took `took`, another ended one
    ended `took` after it started; a failed one in `stage`, known only with its times)."""
    if state in ("STARTED", "RESUMED"):
        # Translators: the first line of a pipeline execution's message (and its
        # notification), as are the other "%(pipeline)s ..." messages: %(pipeline)s is the
        # pipeline's name, %(duration)s a duration like "26m 32s", %(stage)s a stage's name.
        return tr(language, "%(pipeline)s in progress", pipeline=pipeline)
    if state == "STOPPING":
        return tr(language, "%(pipeline)s stopping", pipeline=pipeline)
    if state == "SUCCEEDED":
        if took:
            return tr(
                language, "%(pipeline)s succeeded in %(duration)s", pipeline=pipeline, duration=took
            )
        return tr(language, "%(pipeline)s succeeded", pipeline=pipeline)
    if state == "FAILED":
        if stage and took:
            return tr(
                language,
                "%(pipeline)s failed in stage %(stage)s after %(duration)s",
                pipeline=pipeline,
                stage=stage,
                duration=took,
            )
        if took:
            return tr(
                language, "%(pipeline)s failed after %(duration)s", pipeline=pipeline, duration=took
            )
        return tr(language, "%(pipeline)s failed", pipeline=pipeline)
    if state == "STOPPED":
        if took:
            return tr(
                language,
                "%(pipeline)s stopped after %(duration)s",
                pipeline=pipeline,
                duration=took,
            )
        return tr(language, "%(pipeline)s stopped", pipeline=pipeline)
    if state == "CANCELED":
        if took:
            return tr(
                language,
                "%(pipeline)s cancelled after %(duration)s",
                pipeline=pipeline,
                duration=took,
            )
        return tr(language, "%(pipeline)s cancelled", pipeline=pipeline)
    if state == "ABANDONED":
        if took:
            return tr(
                language,
                "%(pipeline)s abandoned after %(duration)s",
                pipeline=pipeline,
                duration=took,
            )
        return tr(language, "%(pipeline)s abandoned", pipeline=pipeline)
    if took:  # SUPERSEDED
        return tr(
            language, "%(pipeline)s superseded after %(duration)s", pipeline=pipeline, duration=took
        )
    return tr(language, "%(pipeline)s superseded", pipeline=pipeline)


def _trigger_label(trigger_type: str, language: str) -> str:
    """What started the run, in words; a trigger type CodePipeline adds later, as named."""
    labels = {
        # Translators: what started a pipeline execution, shown after "Trigger:" (as are
        # the other messages of context "trigger").
        "StartPipelineExecution": trp(language, "trigger", "started by"),
        "CloudWatchEvent": trp(language, "trigger", "source change, EventBridge rule"),
        "PollForSourceChanges": trp(language, "trigger", "source change, polling"),
        "Webhook": trp(language, "trigger", "webhook"),
        "WebhookV2": trp(language, "trigger", "webhook"),
        "PutActionRevision": trp(language, "trigger", "new source revision"),
        "CreatePipeline": trp(language, "trigger", "pipeline created or updated"),
        "ManualRollback": trp(language, "trigger", "manual rollback"),
        "AutomatedRollback": trp(language, "trigger", "automated rollback"),
    }
    return labels.get(trigger_type, trigger_type)


def _trigger_line(feed: Feed, language: str) -> str | None:
    if not feed.trigger_type:
        return None
    label = escape_mrkdwn(_trigger_label(feed.trigger_type, language))
    detail = feed.trigger_detail
    if detail and detail.startswith("arn:"):
        detail = detail.split(":", 5)[-1]  # the resource: assumed-role/Admin/jane, rule/x
    if detail:
        shown = f"`{escape_mrkdwn(cut_at_word(detail, 120))}`"
        if feed.trigger_type == "StartPipelineExecution":
            # Translators: %(user)s is who started the pipeline execution (an IAM role or user).
            return tr(language, "Trigger: started by %(user)s", user=shown)
        # Translators: %(trigger)s is what started the run (e.g. "webhook"), %(detail)s which
        # one (a rule, a webhook, a source action), as CodePipeline names it.
        return tr(language, "Trigger: %(trigger)s %(detail)s", trigger=label, detail=shown)
    return tr(language, "Trigger: %(trigger)s", trigger=label)


def _revision_line(revision: Revision | None, language: str) -> str | None:
    if revision is None:
        return None
    commit = _COMMIT.fullmatch(revision.revision_id) is not None
    short = revision.revision_id[:7] if commit else cut_at_word(revision.revision_id, 20)
    shown = f"`{escape_mrkdwn(short)}`"
    summary = None
    if revision.summary:
        summary = escape_mrkdwn(cut_at_word(revision.summary, 150))
        summary = mrkdwn_link(revision.url, summary) if revision.url else summary
    elif revision.url:
        # Translators: a link to the source revision, when it has no commit message.
        summary = mrkdwn_link(revision.url, trp(language, "link", "view"))
    if commit:
        if summary:
            # Translators: the source revision the run deploys; %(commit)s is a commit id,
            # %(summary)s the commit message (a link). "Revision" is any other source's
            # revision id (an S3 object version, an image digest).
            return tr(language, "Commit %(commit)s %(summary)s", commit=shown, summary=summary)
        return tr(language, "Commit %(commit)s", commit=shown)
    if summary:
        return tr(language, "Revision %(revision)s %(summary)s", revision=shown, summary=summary)
    return tr(language, "Revision %(revision)s", revision=shown)


def _held_stage(feed: Feed, stage: str, step: StepState | None, language: str) -> str | None:
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
    name = escape_mrkdwn(stage)
    if len(times) < len(held):  # one waits for its health checks: no instant to say
        # Translators: a stage of the run whose approval was given but is held until the
        # health checks pass; %(stage)s is the stage's name.
        said = tr(
            language, "%(stage)s: approved, waiting for the health checks to pass", stage=name
        )
    else:
        # Translators: a stage of the run whose approval was given for later; %(time)s is
        # when it deploys (a date Slack shows in the reader's time zone).
        said = tr(
            language,
            "%(stage)s: approved, deploys at %(time)s",
            stage=name,
            time=slack_date(max(times), language),
        )
    return f"⏸ {said}"


def feed_view(feed: Feed, language: str) -> FeedView:
    """The execution's message in ``language``: a pure function of the feed item and the
    language, so whichever Lambda renders it last shows the same thing."""
    symbol, words = headline(
        feed, f"*<{execution_link(feed)}|{escape_mrkdwn(feed.pipeline)}>*", language
    )
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"{symbol} {words}"))]
    stages = [
        _held_stage(feed, stage, step, language)
        or f"{_SYMBOLS[step.state if step else 'STARTED']} {escape_mrkdwn(stage)}"
        for stage, step in _stage_order(feed)
    ]
    if stages:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(text=cut_at_word("  →  ".join(stages), _SECTION_LIMIT))
            )
        )
    context = [
        line
        for line in (_revision_line(feed.revision, language), _trigger_line(feed, language))
        if line
    ]
    started = _started(feed)
    execution = f"`{feed.execution_id[:8]}`"
    if started:
        when = slack_date(started, language)
        context.append(
            # Translators: under the run's message; %(time)s is when the run started (a
            # date Slack shows in the reader's time zone), %(execution)s the execution's id.
            tr(
                language,
                "Started %(time)s · execution %(execution)s",
                time=when,
                execution=execution,
            )
        )
    else:
        context.append(tr(language, "execution %(execution)s", execution=execution))
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=text) for text in context]))
    # The notification's text: the same sentence with the pipeline's name as it is.
    _, said = headline(feed, feed.pipeline, language)
    return FeedView(text=f"{symbol} {said}", blocks=[block.to_dict() for block in blocks])


def line_key(kind: str, stage: str, action: str | None, step: StepState) -> str:
    return f"{kind}#{stage}#{action or ''}#{step.state}#{step.attempt}"


def _stage_sentence(state: str, stage: str, language: str) -> str:
    if state in ("STARTED", "RESUMED"):
        # Translators: a line in the run's thread, as are the other "Stage %(stage)s ..."
        # messages; %(stage)s is the stage's name.
        return tr(language, "Stage %(stage)s in progress", stage=stage)
    if state == "STOPPING":
        return tr(language, "Stage %(stage)s stopping", stage=stage)
    if state == "SUCCEEDED":
        return tr(language, "Stage %(stage)s succeeded", stage=stage)
    if state == "FAILED":
        return tr(language, "Stage %(stage)s failed", stage=stage)
    if state == "STOPPED":
        return tr(language, "Stage %(stage)s stopped", stage=stage)
    if state == "CANCELED":
        return tr(language, "Stage %(stage)s cancelled", stage=stage)
    if state == "ABANDONED":
        return tr(language, "Stage %(stage)s abandoned", stage=stage)
    return tr(language, "Stage %(stage)s superseded", stage=stage)


def _action_sentence(state: str, action: str, approval: bool, language: str) -> str:
    if state in ("STARTED", "RESUMED"):
        # Translators: a line in the run's thread, as are the other "Action %(action)s ..."
        # messages; %(action)s is "stage/action" (their names).
        return tr(language, "Action %(action)s in progress", action=action)
    if state == "STOPPING":
        return tr(language, "Action %(action)s stopping", action=action)
    if state == "SUCCEEDED":
        if approval:
            # Translators: a manual approval action was approved.
            return tr(language, "Action %(action)s approved", action=action)
        return tr(language, "Action %(action)s succeeded", action=action)
    if state == "FAILED":
        if approval:
            # Translators: a manual approval action was rejected (or expired).
            return tr(language, "Action %(action)s rejected", action=action)
        return tr(language, "Action %(action)s failed", action=action)
    if state == "STOPPED":
        return tr(language, "Action %(action)s stopped", action=action)
    if state == "CANCELED":
        return tr(language, "Action %(action)s cancelled", action=action)
    if state == "ABANDONED":
        return tr(language, "Action %(action)s abandoned", action=action)
    return tr(language, "Action %(action)s superseded", action=action)


def thread_line(kind: str, stage: str, action: str | None, step: StepState, language: str) -> str:
    """How a stage or an action ended, on one line, in ``language``."""
    symbol = _SYMBOLS[step.state]
    if kind == STAGE:
        return f"{symbol} {_stage_sentence(step.state, escape_mrkdwn(stage), language)}"
    approval = (step.category or "").lower() == APPROVAL_CATEGORY.lower()
    name = f"{escape_mrkdwn(stage)}/{escape_mrkdwn(action or '')}"
    line = f"{symbol} {_action_sentence(step.state, name, approval, language)}"
    if step.summary:
        line += f": {escape_mrkdwn(step.summary)}"
    if step.url:
        # Translators: the link to a failed action's logs, at the end of its thread line.
        logs = trp(language, "link", "logs")
        line += f" · <{step.url}|{logs}>"
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


def wanted_lines(feed: Feed, announce: frozenset[str], language: str) -> list[ThreadLine]:
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
                text = thread_line(ACTION, stage, action, done, language)
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
                parts.append((key, thread_line(STAGE, stage, None, step, language)))
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
