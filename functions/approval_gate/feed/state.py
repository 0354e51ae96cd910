"""What the status feed knows of one pipeline execution: the feed item, read back.

Where the execution, each stage and each action has got to (`StepState`), the source
revision, and the Slack message that shows them. Plain values: `store` reads and writes
them, `render` turns them into the message.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime

from approval_gate.feed.events import ENDED


@dataclass(frozen=True)
class StepState:
    """Where a pipeline execution, a stage or an action has got to."""

    state: str
    rank: int
    attempt: int
    at: datetime
    category: str | None = None
    provider: str | None = None
    #: A failed action's error summary and logs link.
    summary: str | None = None
    url: str | None = None
    #: When the feed first heard of this stage or action (the function's clock, to the
    #: millisecond): it orders what CodePipeline's events, to the second, cannot.
    since: datetime | None = None

    @property
    def ended(self) -> bool:
        return self.state in ENDED

    @property
    def order(self) -> tuple[datetime, datetime]:
        """Sorts stages (or a stage's actions) in the order they ended, or got to where
        they are: by the time of their latest state, then by when they were first heard of
        (one runs after another)."""
        return self.at, self.since or self.at


@dataclass(frozen=True)
class Revision:
    revision_id: str
    summary: str | None = None
    url: str | None = None


@dataclass(frozen=True)
class Feed:
    """One pipeline execution as the feed knows it (the feed item, read back)."""

    execution_id: str
    pipeline: str
    region: str
    account: str
    pipeline_state: StepState | None = None
    stages: Mapping[str, StepState] = field(default_factory=dict)
    actions: Mapping[tuple[str, str], StepState] = field(default_factory=dict)
    started_at: datetime | None = None
    trigger_type: str | None = None
    trigger_detail: str | None = None
    revision: Revision | None = None
    channel: str | None = None
    message_ts: str | None = None
    #: The thread lines posted (or being posted), by line key.
    lines: frozenset[str] = frozenset()
    #: Approval actions approved but held until deploys may go on (DESIGN §8.2), by
    #: (stage, action): until when (None: until the health checks pass).
    held: Mapping[tuple[str, str], datetime | None] = field(default_factory=dict)
    #: The digest of what the Slack message shows now.
    shown: str | None = None
