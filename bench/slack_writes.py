"""Benchmark 6: Slack writes per approval and per pipeline run (issue 17) — how many
`chat.postMessage` and `chat.update` calls the gate makes, counted in the fake Slack's
calls log for one real run of the product in the sandbox (limits off).

An approval: its request posted, then one update per vote (the tally while it waits for
more, the close when one decides). A pipeline run with the status feed's default
`announce`: the message posted at the run's start and updated at its end, and per stage
the update at its start and the thread message at its end. Counts, not times:
machine-independent.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import Row
from bench.driver import Driver, button_value, sandbox
from sandbox.client import wait_for

POLICY = Path(__file__).with_name("slack_writes.yaml")
WRITES = ("chat.postMessage", "chat.update")
#: The fake pipeline's stages: Source, Build, Approval, Deploy.
STAGES = 4
PER_STAGE, PER_RUN = 2, 2
#: What a 4-stage run with an approval cost before issue 17: 10 posts and 10 updates,
#: 18 of them the status feed's (one thread line per stage and per action, one update per
#: change of the message), 2 the approval's.
FEED_BEFORE = 18
#: The feed's headline starts with one of these (docs/status-feed.md#the-message).
_SYMBOLS = ("▶️", "⏳", "✅", "❌", "⏹", "⏭")


def _writes_to(calls: list[dict[str, Any]], ts: str) -> list[dict[str, Any]]:
    """The writes that made the message `ts` or its thread, as Slack carried them out."""
    return [
        c
        for c in calls
        if c["method"] in WRITES
        and c.get("status", 200) == 200
        and ts
        in ((c.get("response") or {}).get("ts"), c["args"].get("ts"), c["args"].get("thread_ts"))
    ]


def _feed_message(driver: Driver, pipeline: str) -> dict[str, Any]:
    def probe() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in driver.client.messages()
                if not m["thread_ts"]
                and (m["text"] or "").startswith(tuple(f"{s} {pipeline} " for s in _SYMBOLS))
            ),
            None,
        )

    return wait_for(probe, timeout=30, interval=0.05, what="the status message")


def _approval(driver: Driver, pipeline: str, voters: tuple[str, ...]) -> tuple[int, int, str]:
    """One run whose request is approved by `voters`, one click each: (the approval's
    writes, the feed's writes for the run, what they were)."""
    message = driver.open([pipeline])[pipeline]
    approval_id = button_value(message)
    for voter in voters:
        status, _ = driver.send(*driver.click_body(message, "approve", user=voter))
        if status != 200:
            raise RuntimeError(f"the click answered HTTP {status}")
    driver.wait_finished(approval_id, timeout=30)
    calls = driver.client.calls()
    asked = _writes_to(calls, message["ts"])
    feed = _writes_to(calls, _feed_message(driver, pipeline)["ts"])

    def kinds(writes: list[dict[str, Any]]) -> str:
        posts = sum(1 for w in writes if w["method"] == "chat.postMessage")
        return f"{posts} posts, {len(writes) - posts} updates"

    return len(asked), len(feed), f"approval: {kinds(asked)}; feed: {kinds(feed)}"


def run(out: Callable[[str], None] = print) -> list[Row]:
    with sandbox(POLICY) as driver:
        one_asked, one_feed, one_detail = _approval(driver, "writes-one", ("U0ALICE",))
        two_asked, _, two_detail = _approval(driver, "writes-quorum-two", ("U0ALICE", "U0BOB"))
    out(f"  approved by one click: {one_detail}")
    out(f"  approved by two of a quorum of 2: {two_detail}")
    feed_target = PER_STAGE * STAGES + PER_RUN
    return [
        Row(
            "Slack writes per approval, 1 vote",
            f"{one_asked} writes",
            "one run",
            "≤ 2 (the request, 1 update per vote)",
            one_asked <= 2,
            "the request posted, then closed",
        ),
        Row(
            "Slack writes per approval, quorum 2",
            f"{two_asked} writes",
            "one run",
            "≤ 3 (the request, 1 update per vote)",
            two_asked <= 3,
            "the request posted, the tally, then closed",
        ),
        Row(
            f"Slack writes per pipeline run ({STAGES} stages)",
            f"{one_feed} writes",
            "one run",
            f"≤ {feed_target} ({PER_STAGE} per stage + {PER_RUN} per run)",
            one_feed <= feed_target,
            f"status feed, default announce; was {FEED_BEFORE}",
        ),
    ]
