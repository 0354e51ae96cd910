"""Benchmark 4: throughput and scale — n approvals started at once, each clicked once its
request appears; all decided, none lost, none decided twice."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime

from bench import Row, median
from bench.driver import STANDARD_POLICY, Driver, sandbox
from reliability.observed import result_attempts
from sandbox import patches
from sandbox.client import has_buttons

GROWTH_TARGET = 2.2
TIMEOUT = 300.0
FEED_TIMEOUT = 600.0
#: Rounds of each size (interleaved); the figures are their medians.
ROUNDS = 5
BUDGET = 360.0  # seconds of rounds in all; a round projected past it is not run


def _round(driver: Driver, n: int, tag: str) -> tuple[float, float, float]:
    """Seconds from the first start to the last PutApprovalResult for n approvals, the
    slowest start request (POST …/runs answered), and how long after the last decision the
    status feed had handled every pipeline event."""
    pipelines = [f"{tag}-{i}" for i in range(n)]
    barrier = threading.Barrier(n)
    tokens: list[str] = []
    start_latency: list[float] = []
    lock = threading.Lock()

    def start(pipeline: str) -> None:
        barrier.wait(timeout=30)
        started = time.perf_counter()
        token = driver.start_run(pipeline)["approvalToken"]
        with lock:
            tokens.append(token)
            start_latency.append(time.perf_counter() - started)

    first = datetime.now().astimezone()
    starters = [threading.Thread(target=start, args=(p,)) for p in pipelines]
    for thread in starters:
        thread.start()
    ours = set(pipelines)
    deadline = time.monotonic() + TIMEOUT
    oldest = None  # read each message once: only those posted since the last poll
    with ThreadPoolExecutor(max_workers=8) as clickers:
        while True:
            results = [r for r in driver.client.approval_results() if r["pipelineName"] in ours]
            if len(results) >= n or time.monotonic() > deadline:
                break
            for message in driver.client.messages(oldest=oldest):
                oldest = message["ts"]
                if has_buttons(message) and tag in (message.get("text") or ""):
                    clickers.submit(driver.click, message)
            time.sleep(0.1)  # poll interval, bounded by TIMEOUT above
    for thread in starters:
        thread.join(timeout=30)
    decided = time.monotonic()
    # The feed's events queue behind the approvals in the one interpreter: wait (bounded)
    # until they are all handled, so the sandbox stops clean; report how long it took.
    if not patches.wait_for_events(FEED_TIMEOUT):
        raise RuntimeError(
            f"{n} approvals: the status feed was still behind after {FEED_TIMEOUT} s"
        )
    feed_lag = time.monotonic() - decided
    per_token = Counter(r["token"] for r in results)
    lost = [t for t in tokens if per_token[t] == 0]
    twice = [t for t, count in per_token.items() if count > 1]
    # Decided twice also by attempts: the fake refuses a second PutApprovalResult before
    # recording it, so only its call log shows the gate trying twice (one approval per
    # pipeline here).
    calls = driver.client.codepipeline_calls()
    tried_twice = [p for p in pipelines if len(result_attempts(calls, p)) > 1]
    if lost or twice or tried_twice or len(tokens) != n:
        raise RuntimeError(
            f"{n} approvals: {len(tokens)} started, {len(lost)} lost, {len(twice)} decided "
            f"twice, {len(tried_twice)} with more than one PutApprovalResult attempt"
        )
    last = max(datetime.fromisoformat(r["at"]) for r in results)
    if last.tzinfo is None:
        last = last.astimezone()
    return (last - first).total_seconds(), max(start_latency), feed_lag


def run(
    sizes: tuple[int, ...] = (50, 100, 200),
    rounds: int = ROUNDS,
    out: Callable[[str], None] = print,
) -> list[Row]:
    """Each size `rounds` times, the sizes interleaved (50, 100, 200, 50, …) so a drift in
    the machine's speed hits every size alike; a size's figure is the median of its rounds,
    and growth the median of the rounds' ratios, each between two sizes run back to back
    (medians of each size taken apart compared rounds minutes apart: ±20 % between rounds
    of one size here)."""
    times: dict[int, list[float]] = {n: [] for n in sizes}
    skipped: dict[int, float] = {}
    spent = 0.0
    for round_number in range(1, rounds + 1):
        for n in sizes:
            if n in skipped:
                continue
            done = [m for m in sizes if times[m]]
            if done:
                last = max(done)
                projected = median(times[last]) * n / last
                if spent + projected > BUDGET:
                    out(f"  {n} at once: not run (projected {projected:.0f} s, past the budget)")
                    skipped[n] = projected
                    continue
            with sandbox(STANDARD_POLICY) as driver:  # one sandbox per round: no leftovers
                seconds, slowest_start, feed_lag = _round(driver, n, f"load{n}r{round_number}")
            times[n].append(seconds)
            spent += seconds
            out(
                f"  {n} at once (round {round_number}): all decided exactly once in "
                f"{seconds:.1f} s ({n / seconds:.2f} approvals/s; slowest start request "
                f"{slowest_start:.1f} s; status feed caught up {feed_lag:.0f} s after the last "
                "decision)"
            )
    rows: list[Row] = []
    for n in sizes:
        if not times[n]:
            rows.append(
                Row(
                    f"throughput {n} at once",
                    "not run",
                    f"~{skipped.get(n, 0):.0f} s projected",
                    f"within {BUDGET:.0f} s budget",
                    False,
                )
            )
            continue
        rows.append(
            Row(
                figure=f"throughput {n} at once",
                median=f"{median(times[n]):.1f} s",
                spread=f"{min(times[n]):.1f}-{max(times[n]):.1f} s ({len(times[n])} rounds)",
                target="all decided, once each",
                met=True,
                ratio=f"{n / median(times[n]):.2f} approvals/s",
            )
        )
    measured = [n for n in sizes if times[n]]
    for small, big in itertools.pairwise(measured):
        # Within a round the two sizes ran back to back, so a drift in the machine's speed
        # hits both: compare them there, and take the median of the rounds' ratios (as the
        # cold start does with its interleaved pairs).
        ratios = [b / s for s, b in zip(times[small], times[big], strict=False)]
        growth = median(ratios)
        rows.append(
            Row(
                figure=f"growth {big}/{small}",
                median=f"{growth:.2f}x",
                spread=f"{min(ratios):.2f}-{max(ratios):.2f}x",
                target=f"≤ {GROWTH_TARGET}x",
                met=growth <= GROWTH_TARGET,
                ratio=f"size x{big / small:g}; median of {len(ratios)} rounds' ratios",
            )
        )
    return rows
