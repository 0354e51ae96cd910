"""A busy status channel (issue 17): a burst of pipeline runs whose status feed and approval
requests share one Slack channel, under Slack's rate limits as the fake Slack enforces them.

`run_feed_burst(server, runs=20)` turns the limits on (`POST /_sandbox/slack/limits`, N
times faster), starts `runs` runs of the fake's 4-stage pipeline (Source, Build, Approval,
Deploy) at once, approves each request in Slack as soon as it shows, and waits (bounded)
until the fake EventBridge has delivered every event. It judges the feed from outside the
gate only: what CodePipeline said happened (the events delivered, `GET /_sandbox/events`;
the decisions, `GET /_sandbox/codepipeline/approval-results`), what Slack shows and was
asked (`GET /_sandbox/slack/messages`, `GET /_sandbox/slack/calls`), and what Lambda itself
counts of the pipeline_events function, its errors and durations (the sandbox's invoker,
wrapped for the burst: on AWS, the Errors and Duration metrics; an event whose invocation
fails is retried twice, then put in the dead-letter queue, and the sandbox drops it).
`make reliability` prints its row; `tests/reliability/test_feed_burst.py` runs a smaller
burst.
"""

from __future__ import annotations

import re
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.driver import Driver
from reliability import ROOT
from sandbox import patches
from sandbox.client import has_buttons, request_message, wait_for
from sandbox.server import SandboxServer
from sandbox.template import function_specs, load_template

#: The burst's policy: the feed (default `announce`) and the requests in C0DEPLOYS.
BURST_POLICY = Path(__file__).with_name("feed_burst.yaml")
CHANNEL = "C0DEPLOYS"
RUNS = 20
#: Slack's windows, this many times shorter: postMessage's one per second per channel
#: becomes ten, and a 429 still says Retry-After: 1 (whole seconds, as Slack does).
TIME_SCALE = 10.0
#: Bounds on the waits, in seconds.
OPEN_TIMEOUT = 180.0
SETTLE_TIMEOUT = 240.0
EVENTS_FUNCTION = "PipelineEventsFunction"
_DONE = {"SUCCEEDED": ("✅", "succeeded")}
#: The symbols a status message's headline starts with.
_SYMBOLS = frozenset({"▶️", "⏳", "✅", "❌", "⏹", "⏭"})
_WRITES = ("chat.postMessage", "chat.update")


@dataclass
class BurstReport:
    """What the burst did to the feed, as Slack and CodePipeline show it."""

    runs: int = 0
    time_scale: float = TIME_SCALE
    #: Messages that end right: one per run, saying it succeeded, every stage shown done.
    messages_right: int = 0
    #: Each stage's and action's end, one thread line each (docs/status-feed.md#the-thread).
    lines_expected: int = 0
    #: ... of which landed exactly once, in their place.
    lines_landed: int = 0
    #: 429s the fake Slack answered during the burst: all of them, and the feed's.
    ratelimited: int = 0
    ratelimited_feed: int = 0
    #: Seconds from CodePipeline recording a run's decision (its Deploy and end follow at
    #: once) to the feed's last write for that run: the longest.
    max_lag: float = 0.0
    #: pipeline_events invocations that failed (on AWS retried, then dead-lettered).
    function_errors: int = 0
    #: The longest pipeline_events invocation, against the function's timeout.
    longest_invocation: float = 0.0
    function_timeout: float = 0.0
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems

    def detail(self) -> str:
        return (
            f"{self.runs} runs, lines {self.lines_landed}/{self.lines_expected}, "
            f"{self.ratelimited} 429s answered ({self.ratelimited_feed} to the feed), "
            f"max feed lag {self.max_lag:.1f} s"
        )

    def summary(self) -> str:
        lines = [
            f"feed burst: {self.detail()}; messages right {self.messages_right}/{self.runs}; "
            f"function errors {self.function_errors}; longest invocation "
            f"{self.longest_invocation:.1f} s of {self.function_timeout:.0f} s; "
            f"time scale {self.time_scale:g}; {self.seconds:.0f} s; "
            + ("OK" if self.ok else f"{len(self.problems)} problem(s)")
        ]
        lines += [f"  PROBLEM: {problem}" for problem in self.problems[:30]]
        return "\n".join(lines)


class _LambdaMetrics:
    """What Lambda counts of one function, its errors and its longest duration: a wrapper
    around the sandbox's invoker (every function call goes through it)."""

    def __init__(self, invoke: Callable[[str, Any], Any], function: str) -> None:
        self._invoke = invoke
        self._function = function
        self._lock = threading.Lock()
        self.errors = 0
        self.longest = 0.0

    def __call__(self, function: str, event: Any) -> Any:
        if function != self._function:
            return self._invoke(function, event)
        started = time.perf_counter()
        try:
            return self._invoke(function, event)
        except Exception:
            with self._lock:
                self.errors += 1
            raise
        finally:
            with self._lock:
                self.longest = max(self.longest, time.perf_counter() - started)


@contextmanager
def _lambda_metrics(server: SandboxServer, function: str) -> Iterator[_LambdaMetrics]:
    metrics = _LambdaMetrics(server.sandbox.invoke, function)
    patches.set_lambda_invoker(metrics)
    try:
        yield metrics
    finally:
        patches.set_lambda_invoker(server.sandbox.invoke)


def run_feed_burst(
    server: SandboxServer | None = None,
    runs: int = RUNS,
    time_scale: float = TIME_SCALE,
    out: Callable[[str], None] | None = None,
) -> BurstReport:
    """The burst on `server` (started with BURST_POLICY), or on a sandbox of its own."""
    if server is None:
        with SandboxServer(policy_file=BURST_POLICY, port=0) as own:
            return run_feed_burst(own, runs, time_scale, out)
    report = BurstReport(time_scale=time_scale)
    started = time.perf_counter()
    driver = Driver(server)
    client = driver.client
    report.function_timeout = _function_timeout(EVENTS_FUNCTION)
    pipelines = [f"burst-{uuid.uuid4().hex[:6]}-{n}" for n in range(runs)]
    calls_before = len(client.calls())
    deliveries_before = len(client.get("/_sandbox/events"))
    client.post("/_sandbox/slack/limits", {"enforce": True, "time_scale": time_scale})
    try:
        with _lambda_metrics(server, EVENTS_FUNCTION) as metrics:
            started_runs = _burst(driver, pipelines, report)
        report.function_errors = metrics.errors
        report.longest_invocation = metrics.longest
    finally:
        client.post("/_sandbox/slack/limits", {"enforce": False})
    report.runs = len(started_runs)
    _judge(driver, started_runs, calls_before, deliveries_before, report)
    report.seconds = time.perf_counter() - started
    if out is not None:
        out(report.summary())
    return report


def _function_timeout(logical_id: str) -> float:
    specs = function_specs(load_template(ROOT / "template.yaml"), ROOT)
    return float(next(spec.timeout for spec in specs if spec.logical_id == logical_id))


def _burst(driver: Driver, pipelines: list[str], report: BurstReport) -> dict[str, dict[str, Any]]:
    """Start every run at once, approve each request as it shows, and wait until the fake
    EventBridge has delivered everything: {pipeline: the run as started}."""
    with ThreadPoolExecutor(max_workers=len(pipelines)) as pool:
        starts = list(
            pool.map(lambda p: driver.client.start_run(p, author="dev@example.com"), pipelines)
        )
    started = dict(zip(pipelines, starts, strict=True))
    waiting = set(pipelines)
    deadline = time.monotonic() + OPEN_TIMEOUT
    while waiting and time.monotonic() < deadline:
        opened = _open_now(driver, waiting)
        for pipeline, message in opened.items():
            driver.click(message, "approve")
            waiting.discard(pipeline)
        if not opened:
            time.sleep(0.1)  # polling Slack for requests still on their way
    if waiting:
        report.problems.append(f"{len(waiting)} requests never showed in Slack: {sorted(waiting)}")
    tokens = {run["approvalToken"] for run in starts}

    def decided() -> bool:
        results = driver.client.approval_results()
        return len({r["token"] for r in results if r["token"] in tokens}) == len(pipelines)

    try:
        wait_for(decided, timeout=OPEN_TIMEOUT, interval=0.2, what="every decision")
    except TimeoutError as exc:
        report.problems.append(str(exc))
    if not patches.wait_for_events(SETTLE_TIMEOUT):
        report.problems.append(f"events still undelivered after {SETTLE_TIMEOUT:.0f} s")
    return started


def _open_now(driver: Driver, pipelines: set[str]) -> dict[str, Any]:
    """The requests of `pipelines` that show with buttons now (the rest are still coming)."""
    ids = {
        a["pipeline"]: a["approval_id"]
        for a in driver.client.approvals()
        if a["pipeline"] in pipelines and not a["outcome"]
    }
    messages = driver.client.messages(channel=CHANNEL)
    found = {pipeline: request_message(messages, ids[pipeline]) for pipeline in ids}
    return {p: m for p, m in found.items() if m is not None and has_buttons(m)}


def _judge(
    driver: Driver,
    runs: dict[str, dict[str, Any]],
    calls_before: int,
    deliveries_before: int,
    report: BurstReport,
) -> None:
    client = driver.client
    calls = client.calls()[calls_before:]
    deliveries = [
        d
        for d in client.get("/_sandbox/events")[deliveries_before:]
        if d["source"] == "eventbridge" and d["target"] == EVENTS_FUNCTION
    ]
    messages = client.messages(channel=CHANNEL)
    decided_at = {
        r["token"]: _at(r["at"]) for r in client.approval_results() if r["source"] == "gate"
    }
    report.ratelimited = sum(1 for c in calls if c.get("status") == 429)
    if report.longest_invocation >= report.function_timeout:
        report.problems.append(
            f"a pipeline_events invocation ran {report.longest_invocation:.1f} s, past its "
            f"{report.function_timeout:.0f} s timeout"
        )
    if report.function_errors:
        report.problems.append(
            f"{report.function_errors} pipeline_events invocations failed (on AWS each event "
            "is retried twice, then dead-lettered; the sandbox drops it)"
        )
    for pipeline, run in runs.items():
        execution = run["pipelineExecutionId"]
        events = [
            d["event"] for d in deliveries if d["event"]["detail"]["execution-id"] == execution
        ]
        _judge_run(pipeline, execution, events, messages, calls, report)
        writes = [c for c in calls if c.get("status") == 200 and _feed_call(c, execution, messages)]
        ended = decided_at.get(run["approvalToken"])
        if writes and ended is not None:
            lag = (max(_at(w["at"]) for w in writes) - ended).total_seconds()
            report.max_lag = max(report.max_lag, lag)
    report.ratelimited_feed = sum(
        1
        for c in calls
        if c.get("status") == 429
        and any(_feed_call(c, run["pipelineExecutionId"], messages) for run in runs.values())
    )
    if report.ratelimited == 0:
        report.problems.append("no 429 answered: the burst did not reach Slack's limits")


def _is_feed_text(text: str | None, execution_link: str, blocks: Any) -> bool:
    """A status message's notification text is its headline: a state's symbol, the
    pipeline's name, what happened (docs/status-feed.md#the-message); its headline links
    the execution's timeline (so does the approval request, whose text says "Approval")."""
    return (text or "").split(" ", 1)[0] in _SYMBOLS and execution_link in str(blocks)


def _feed_message(execution: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Top-level messages that are this execution's status message."""
    link = f"/executions/{execution}/timeline"
    return [
        m for m in messages if not m["thread_ts"] and _is_feed_text(m["text"], link, m["blocks"])
    ]


def _feed_call(call: dict[str, Any], execution: str, messages: list[dict[str, Any]]) -> bool:
    """Did this write make (or try to make) the execution's status message or its thread?"""
    if call["method"] not in _WRITES:
        return False
    args = call["args"]
    ts = {m["ts"] for m in _feed_message(execution, messages)}
    if args.get("thread_ts") in ts or args.get("ts") in ts:
        return True
    link = f"/executions/{execution}/timeline"
    return (
        call["method"] == "chat.postMessage"
        and not args.get("thread_ts")
        and _is_feed_text(args.get("text"), link, args.get("blocks"))
    )


def _judge_run(
    pipeline: str,
    execution: str,
    events: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    calls: list[dict[str, Any]],
    report: BurstReport,
) -> None:
    expected, stages = _expected(events)
    report.lines_expected += len(expected)
    found = _feed_message(execution, messages)
    if len(found) != 1:
        report.problems.append(f"{pipeline}: {len(found)} status messages, expected 1")
        return
    (message,) = found
    shown = message["text"] or ""
    stage_text = message["blocks"][1]["text"]["text"] if len(message["blocks"]) > 2 else ""
    want_stages = "  →  ".join(f"✅ {stage}" for stage in stages)
    if shown.startswith(f"✅ {pipeline} succeeded") and stage_text == want_stages:
        report.messages_right += 1
    else:
        report.problems.append(f"{pipeline}: the message ends {shown!r} / {stage_text!r}")
    thread = sorted(
        (m for m in messages if m["thread_ts"] == message["ts"]), key=lambda m: float(m["ts"])
    )
    told = [line for m in thread for line in (m["text"] or "").split("\n")]
    counts = Counter(told)
    report.lines_landed += sum(1 for line in expected if counts[line] == 1)
    if told != expected:
        missing = [line for line in expected if counts[line] == 0]
        twice = [line for line, n in counts.items() if n > 1]
        extra = [line for line in counts if line not in expected]
        report.problems.append(
            f"{pipeline}: thread lines {len(told)}, expected {len(expected)} in order "
            f"(missing {missing}, twice {twice}, unexpected {extra})"
        )


def _expected(events: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    """The thread lines docs/status-feed.md promises for these events, in order, and the
    stages in the order they ended: each stage's end, then its actions' ends."""
    actions: dict[str, list[str]] = {}
    lines: list[str] = []
    stages: list[str] = []
    for event in events:
        detail = event["detail"]
        state = detail["state"]
        if state not in _DONE:
            continue
        symbol, word = _DONE[state]
        if event["detail-type"] == "CodePipeline Action Execution State Change":
            if (detail.get("type") or {}).get("category") == "Approval":
                word = "approved"
            line = f"{symbol} Action {detail['stage']}/{detail['action']} {word}"
            actions.setdefault(detail["stage"], []).append(line)
        elif event["detail-type"] == "CodePipeline Stage Execution State Change":
            stages.append(detail["stage"])
            lines += [f"{symbol} Stage {detail['stage']} {word}", *actions.pop(detail["stage"], [])]
    return lines, stages


_FRACTION = re.compile(r"\.(\d+)")


def _at(text: str) -> datetime:
    """An ISO 8601 moment as the sandbox writes them (`Z` or an offset, any fraction)."""
    text = text.replace("Z", "+00:00")
    return datetime.fromisoformat(_FRACTION.sub(lambda m: "." + m.group(1)[:6].ljust(6, "0"), text))
