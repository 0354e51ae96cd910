"""Benchmark 2: click to acknowledgement, warm — signed block_actions through
POST /slack/interactions on loopback, one at a time and then 20 at once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable

from bench import ROOT, Row, median, ms, percentile
from bench.driver import STANDARD_POLICY, Driver, button_value, sandbox
from sandbox import patches

SEQUENTIAL_TARGET = 0.050
CONCURRENT_TARGET = 0.250


def _health_roundtrip(driver: Driver, samples: int = 30) -> float:
    """Baseline: median loopback round trip to the sandbox's trivial health path."""
    times = []
    for _ in range(samples):
        started = time.perf_counter()
        driver.client.get("/_sandbox/health")
        times.append(time.perf_counter() - started)
    return median(times)


def _concurrent(driver: Driver, pipelines: list[str]) -> list[float]:
    """One click on each open approval, all released at the same instant by a client
    process of their own (bench/fire.py): Slack's requests do not run in the sandbox's
    interpreter, so neither do the clients that stand in for them."""
    messages = driver.open(pipelines)
    # The approvals are open and settled: the runs' start-up events (the status feed) are
    # delivered before the clicks go, so the burst measures the clicks.
    patches.wait_for_events(60)
    requests = [driver.click_body(messages[p]) for p in pipelines]
    spec = {
        "url": f"{driver.url}/slack/interactions",
        "requests": [
            {"body": body.decode("latin-1"), "headers": headers} for body, headers in requests
        ],
    }
    fired = subprocess.run(
        [sys.executable, "-m", "bench.fire"],
        input=json.dumps(spec),
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        timeout=120,
    )
    answers = json.loads(fired.stdout)
    statuses = [status for status, _ in answers]
    if statuses.count(200) != len(requests):
        raise RuntimeError(f"concurrent clicks answered {statuses}")
    for message in messages.values():
        driver.wait_finished(button_value(message))
    return [seconds for _, seconds in answers]


def run(
    sequential: int = 30, concurrent: int = 20, out: Callable[[str], None] = print
) -> list[Row]:
    with sandbox(STANDARD_POLICY) as driver:
        baseline = _health_roundtrip(driver)
        names = [f"click-{i}" for i in range(sequential + 1)]
        messages = driver.open(names)
        one_at_a_time = []
        for name in names:
            seconds = driver.click(messages[name])
            # One at a time: the next click waits until this decision has run its course
            # (report, close), as clicks minutes apart would.
            driver.wait_finished(button_value(messages[name]))
            if name != names[0]:  # the first is a warm-up click, not counted
                one_at_a_time.append(seconds)
        at_once = _concurrent(driver, [f"burst-{i}" for i in range(concurrent)])
    rows = []
    for label, latencies, target in (
        (f"click→ack, {sequential} one at a time", one_at_a_time, SEQUENTIAL_TARGET),
        (f"click→ack, {concurrent} at once", at_once, CONCURRENT_TARGET),
    ):
        p99 = percentile(latencies, 99)
        out(
            f"  {label}: p50 {ms(percentile(latencies, 50))}, p99 {ms(p99)}, "
            f"max {ms(max(latencies))} (loopback baseline {ms(baseline)})"
        )
        rows.append(
            Row(
                figure=label,
                median=ms(percentile(latencies, 50)),
                spread=f"p99 {ms(p99)}",
                target=f"p99 ≤ {target * 1000:.0f} ms",
                met=p99 <= target,
                ratio=f"p99 = {p99 / baseline:.0f}x loopback GET ({ms(baseline)})",
            )
        )
    return rows
