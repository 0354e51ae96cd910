"""Benchmark 3: cost per approval — state transitions and Lambda invocations counted from
each path's execution history, priced at $0.025 per 1,000 transitions."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from bench import Row
from bench.driver import BENCH_POLICY, Driver, button_value, sandbox
from sandbox.client import wait_for

PRICE_PER_TRANSITION = 0.025 / 1000
IMMEDIATE_TARGET = 6
PER_REMINDER_TARGET = 4


def _entered(history: list[dict[str, Any]], state: str | None = None) -> int:
    return sum(
        1
        for e in history
        if e["type"].endswith("StateEntered")
        and (state is None or e["stateEnteredEventDetails"]["name"] == state)
    )


def _lambdas(history: list[dict[str, Any]]) -> int:
    return sum(
        1
        for e in history
        if e["type"] == "TaskScheduled"
        and e["taskScheduledEventDetails"].get("resourceType") == "lambda"
    )


def _after_reminders(driver: Driver, approval_id: str, reminders: int) -> None:
    """Wait until the workflow has finished `reminders` reminder cycles (back to waiting)."""

    def probe() -> bool:
        history = driver.history(approval_id)
        return _entered(history, "Ask Approvers In Slack") > reminders

    wait_for(probe, timeout=20, interval=0.05, what=f"{reminders} reminder cycle(s)")


def _escalated(driver: Driver) -> None:
    wait_for(
        lambda: any(m["channel"] == "C0ONCALL" for m in driver.client.messages()),
        timeout=20,
        interval=0.05,
        what="the escalation in #C0ONCALL",
    )


def _path(driver: Driver, pipeline: str, act: Callable[[dict[str, Any], str], None]) -> dict:  # type: ignore[type-arg]
    message = driver.open([pipeline])[pipeline]
    approval_id = button_value(message)
    act(message, approval_id)
    described = driver.wait_finished(approval_id, timeout=30)
    history = driver.history(approval_id)
    return {
        "status": described["status"],
        "transitions": _entered(history),
        "lambdas": _lambdas(history),
        "reminders": _entered(history, "Remind Approvers"),
    }


def run(out: Callable[[str], None] = print) -> list[Row]:
    with sandbox(BENCH_POLICY) as driver:

        def approve(message: dict[str, Any], _: str) -> None:
            driver.click(message)

        def reminded(message: dict[str, Any], approval_id: str) -> None:
            _after_reminders(driver, approval_id, 1)
            driver.click(message)

        def escalated(message: dict[str, Any], approval_id: str) -> None:
            _escalated(driver)
            driver.click(message)

        paths = {
            "approved at once": _path(driver, "cost-approve", approve),
            "rejected with a reason": _path(
                driver,
                "cost-reject",
                lambda message, _: driver.reject_with_reason(message, "Canary errors"),
            ),
            "approved after one reminder": _path(driver, "remind-cost", reminded),
            "escalated then approved": _path(driver, "escalate-cost", escalated),
            "expired (deadline 4s)": _path(driver, "expire-cost", lambda *_: None),
        }
    immediate = paths["approved at once"]["transitions"]
    rows = []
    for name, figures in paths.items():
        transitions = figures["transitions"]
        cost = transitions * PRICE_PER_TRANSITION * 1000
        extra = transitions - immediate
        cycles = figures["reminders"]
        out(
            f"  {name:<28} {transitions:2d} transitions, {figures['lambdas']} Lambda invocations, "
            f"{cycles} reminder cycle(s), ${cost:.3f} per 1,000 ({figures['status']})"
        )
        if name == "approved at once":
            target, met = f"≤ {IMMEDIATE_TARGET} transitions", transitions <= IMMEDIATE_TARGET
        elif cycles:
            per_cycle = extra / cycles
            target = f"≤ {PER_REMINDER_TARGET} more per reminder (here {per_cycle:g})"
            met = per_cycle <= PER_REMINDER_TARGET
        else:
            target, met = "—", None
        rows.append(
            Row(
                figure=f"cost: {name}",
                median=f"{transitions} transitions",
                spread=f"{figures['lambdas']} Lambda calls",
                target=target,
                met=met,
                ratio=f"${cost:.3f} / 1,000 approvals",
            )
        )
    return rows
