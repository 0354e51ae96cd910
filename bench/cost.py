"""Benchmark 3: cost per approval — state transitions and Lambda invocations counted from
each path's execution history, priced at $0.025 per 1,000 transitions; then an estimate of
the whole bill per 1,000 approvals at list prices: Step Functions, Lambda (requests, and
GB-seconds from the handlers' durations in the sandbox), DynamoDB on-demand request units,
API Gateway HTTP API requests and SNS publishes."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any, NamedTuple

import yaml

from bench import Row
from bench.driver import BENCH_POLICY, Driver, button_value, sandbox
from sandbox.client import wait_for

PRICE_PER_TRANSITION = 0.025 / 1000
IMMEDIATE_TARGET = 6
PER_REMINDER_TARGET = 4
#: Issue 19: an approval in two steps, approved at once, costs no more state transitions
#: than one step with a quorum of 3 (the same three clicks: bench/policy.yaml's quorum3-*
#: and steps-* rules).
QUORUM_PATH = "approved at once, quorum 3"
STEPS_PATH = "approved at once, two steps"
QUORUM_CLICKS = ("U0ALICE", "U0BOB", "U0CAROL")
STEPS_CLICKS = ("U0DAN", "U0ALICE", "U0BOB")  # QA, then both of Release
#: Issue 20: an approval held until a freeze ends (or until the time an approver asked for)
#: costs at most HOLD_EXTRA_TARGET more state transitions than one approved at once,
#: however long the hold: "Held Or Decided?", the hold's wait and "End Hold", then the
#: reporting path as usual. The freeze (or the requested time) is HOLD_SECONDS away, so
#: the benchmark stays quick; the count does not depend on it.
HELD_PATH = "approved in a freeze, held"
#: The same hold, four times as long: a hold's cost does not grow with its length.
LONG_HELD_PATH = "approved in a 4x longer freeze"
LONG_HOLD_FACTOR = 4
LATER_PATH = "approve for later, held"
HOLD_EXTRA_TARGET = 3
HOLD_SECONDS = 2.0
#: Approve votes written per path, where more than one (each is a DynamoDB write).
VOTES = {QUORUM_PATH: len(QUORUM_CLICKS), STEPS_PATH: len(STEPS_CLICKS)}

# List prices, us-east-1, read 2026-12-06; paid tiers only (no free tier), first volume tier.
PRICES_READ = "2026-12-06"
# Lambda, Arm: https://aws.amazon.com/lambda/pricing/ (its tables are drawn client-side);
# the figures as quoted for US East in https://cloudchipr.com/blog/aws-lambda-pricing
# ($0.0000133334 per GB-second for the first 7.5 billion a month; $0.20 per 1M requests).
# Billed duration is rounded up to the next 1 ms.
LAMBDA_PER_GB_SECOND = 0.0000133334
LAMBDA_PER_REQUEST = 0.20 / 1_000_000
# DynamoDB on-demand: https://aws.amazon.com/dynamodb/pricing/on-demand/ (units: a write of
# up to 1 KB, a strongly consistent read of up to 4 KB); US East figures as quoted in
# https://airbyte.com/data-engineering-resources/dynamodb-pricing.
DYNAMODB_PER_WRITE_UNIT = 0.625 / 1_000_000
DYNAMODB_PER_READ_UNIT = 0.125 / 1_000_000
# API Gateway HTTP API, us-east-1, first 300 million a month, metered per 512 KB:
# https://docs.aws.amazon.com/whitepapers/latest/best-practices-api-gateway-private-apis-integration/cost-optimization.html
API_GATEWAY_PER_REQUEST = 1.00 / 1_000_000
# SNS standard topic publishes: https://aws.amazon.com/sns/pricing/, $0.50 per 1M as quoted
# in https://www.factualminds.com/blog/amazon-sns-pricing-publishes-fanout-protocols/ (its
# per-protocol delivery charges are for HTTP, email, SMS and mobile push, not Lambda).
SNS_PER_PUBLISH = 0.50 / 1_000_000
ESTIMATE_LABEL = f"estimate at list prices (us-east-1, {PRICES_READ}), excluding free tier"
INTERACTIONS_FUNCTION = "SlackInteractionsFunction"
FEED_FUNCTION = "PipelineEventsFunction"


class LambdaUse(NamedTuple):
    requests: int
    gb_seconds: float

    @property
    def dollars(self) -> float:
        return self.requests * LAMBDA_PER_REQUEST + self.gb_seconds * LAMBDA_PER_GB_SECOND


def lambda_use(invocations: Iterable[dict[str, Any]]) -> LambdaUse:
    """Requests and GB-seconds as Lambda bills them: each invocation's duration rounded up
    to the next millisecond, times its memory (`Sandbox.invocations()` entries)."""
    requests, gb_seconds = 0, 0.0
    for call in invocations:
        requests += 1
        gb_seconds += math.ceil(call["duration_ms"]) / 1000 * call["memory_mb"] / 1024
    return LambdaUse(requests, gb_seconds)


def item_bytes(item: dict[str, Any]) -> int:
    """About what DynamoDB counts as an item's size, from its wire form (`GetItem`'s Item):
    attribute names plus values (strings in UTF-8, numbers ~1 byte per 2 digits + 1,
    3 bytes per map or list plus 1 per element)."""

    def value(typed: dict[str, Any]) -> int:
        (kind, raw), *_ = typed.items()
        if kind == "S":
            return len(raw.encode())
        if kind == "N":
            return (len(raw.strip("-").replace(".", "").lstrip("0")) + 1) // 2 + 1
        if kind == "B":
            return len(raw)
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + value(v) + 1 for k, v in raw.items())
        if kind == "L":
            return 3 + sum(value(v) + 1 for v in raw)
        return sum(len(str(member).encode()) for member in raw)  # SS, NS, BS

    return sum(len(name.encode()) + value(typed) for name, typed in item.items())


class DynamoDBUse(NamedTuple):
    writes: int
    reads: int
    write_units: int
    read_units: int

    @property
    def dollars(self) -> float:
        return self.write_units * DYNAMODB_PER_WRITE_UNIT + self.read_units * DYNAMODB_PER_READ_UNIT


def dynamodb_use(
    *,
    interactions: int,
    reminders: int,
    escalated: bool,
    deadline: bool,
    size: int,
    votes: int = 1,
    held: bool = False,
) -> DynamoDBUse:
    """The approval's DynamoDB requests counted by design, not measured: the table in
    docs/architecture.md#cost. A click's path writes 5 times (create, task token, message
    ts, the vote with the decision, close) and reads 2 + one per interaction (start, each
    click or modal submission, close); the deadline's path writes 5 and reads 4 (start,
    remind, decide, close), its one cycle included. Each further reminder cycle writes 2
    (reminder count, task token) and reads 1; escalating writes once more; each of `votes`
    beyond the deciding one (a quorum's, a step's) writes once more. A hold writes twice
    more (its task token, its release) and reads once more (at its end). Every write is
    billed at the item's final `size` (it only grows), in 1 KB units, plus one unit on the
    KEYS_ONLY execution index at create; every read strongly consistent, in 4 KB units."""
    if deadline:
        writes, reads, cycles = 5, 4, max(reminders - 1, 0)
    else:
        writes, reads, cycles = 5, 2 + interactions, reminders
    writes += 2 * cycles + (1 if escalated else 0) + max(votes - 1, 0) + (2 if held else 0)
    reads += cycles + (1 if held else 0)
    write_units = writes * max(1, math.ceil(size / 1024)) + 1
    read_units = reads * max(1, math.ceil(size / 4096))
    return DynamoDBUse(writes, reads, write_units, read_units)


class Estimate(NamedTuple):
    """One approval's bill, per service, in dollars."""

    step_functions: float
    lambda_: float
    dynamodb: float
    api_gateway: float
    sns: float

    @property
    def total(self) -> float:
        return sum(self)

    def parts(self, per: int = 1000) -> str:
        names = ("Step Functions", "Lambda", "DynamoDB", "API Gateway", "SNS")
        return ", ".join(
            f"{name} ${cost * per:.4f}" for name, cost in zip(names, self, strict=True)
        )


def estimate(
    *,
    transitions: int,
    lambdas: LambdaUse,
    dynamodb: DynamoDBUse,
    api_requests: int,
    publishes: int,
) -> Estimate:
    return Estimate(
        step_functions=transitions * PRICE_PER_TRANSITION,
        lambda_=lambdas.dollars,
        dynamodb=dynamodb.dollars,
        api_gateway=api_requests * API_GATEWAY_PER_REQUEST,
        sns=publishes * SNS_PER_PUBLISH,
    )


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


HOLD_STATE = "Hold Until Deploys May Go On"


def _hold_rules(driver: Driver) -> None:
    """BENCH_POLICY with the held paths' rules, in force for requests from now on: held-*
    in a freeze that ends HOLD_SECONDS from now, later-* with "Approve for later". (The
    freeze is an instant in time, so it is put here rather than in bench/policy.yaml.)"""
    policy = yaml.safe_load(BENCH_POLICY.read_text(encoding="utf-8"))
    now = datetime.now(UTC).timestamp()

    def freeze(seconds: float) -> dict[str, str]:
        return {
            "from": datetime.fromtimestamp(now - 60, UTC).isoformat(timespec="milliseconds"),
            "to": datetime.fromtimestamp(now + seconds, UTC).isoformat(timespec="milliseconds"),
            "reason": "Bench freeze",
        }

    policy["pipelines"] += [
        {"match": "held-*", "freezes": [freeze(HOLD_SECONDS)]},
        {"match": "heldlong-*", "freezes": [freeze(HOLD_SECONDS * LONG_HOLD_FACTOR)]},
        {"match": "later-*", "allow_scheduling": True},
    ]
    driver.client.post("/_sandbox/policy", policy)


def _approve_later(driver: Driver, message: dict[str, Any], approval_id: str) -> None:
    """Click "Approve for later", then pick a time HOLD_SECONDS from now in its modal."""
    driver.click(message, "approve_later")
    at = math.ceil(time.time() + HOLD_SECONDS)
    driver.submit_modal(approval_id, {"deploy_at": {"deploy_at": at}})


def _path(driver: Driver, pipeline: str, act: Callable[[dict[str, Any], str], None]) -> dict:  # type: ignore[type-arg]
    sandbox = driver.server.sandbox
    invoked, delivered = len(sandbox.invocations()), len(sandbox.deliveries())
    fallback = len(sandbox.fallback_notifications())
    message = driver.open([pipeline])[pipeline]
    approval_id = button_value(message)
    act(message, approval_id)
    described = driver.wait_finished(approval_id, timeout=30)
    history = driver.history(approval_id)
    # wait_finished also waited for the pipeline events the decision set off, so the
    # invocations since `invoked` are this path's, the status feed's included.
    invocations = sandbox.invocations()[invoked:]
    item = sandbox.client("dynamodb").get_item(
        TableName=sandbox.table_name, Key={"approval_id": {"S": approval_id}}, ConsistentRead=True
    )["Item"]
    sns = sum(1 for d in sandbox.deliveries()[delivered:] if d["source"] == "sns")
    return {
        "status": described["status"],
        "transitions": _entered(history),
        "lambdas": _lambdas(history),
        "reminders": _entered(history, "Remind Approvers"),
        "holds": _entered(history, HOLD_STATE),
        "invocations": invocations,
        "item_bytes": item_bytes(item),
        "escalated": item.get("escalated", {}).get("BOOL", False),
        # Every interaction is one HTTP API request, and the function it invokes.
        "api_requests": sum(1 for i in invocations if i["function"] == INTERACTIONS_FUNCTION),
        "publishes": sns + len(sandbox.fallback_notifications()) - fallback,
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

        def approved_by(*users: str) -> Callable[[dict[str, Any], str], None]:
            def act(message: dict[str, Any], _: str) -> None:
                for user in users:  # one after another, as soon as each is answered
                    driver.send(*driver.click_body(message, "approve", user))

            return act

        paths = {
            "approved at once": _path(driver, "cost-approve", approve),
            QUORUM_PATH: _path(driver, "quorum3-cost", approved_by(*QUORUM_CLICKS)),
            STEPS_PATH: _path(driver, "steps-cost", approved_by(*STEPS_CLICKS)),
            "rejected with a reason": _path(
                driver,
                "cost-reject",
                lambda message, _: driver.reject_with_reason(message, "Canary errors"),
            ),
            "approved after one reminder": _path(driver, "remind-cost", reminded),
            "escalated then approved": _path(driver, "escalate-cost", escalated),
            "expired (deadline 4s)": _path(driver, "expire-cost", lambda *_: None),
        }
        _hold_rules(driver)
        paths[HELD_PATH] = _path(driver, "held-cost", approve)
        paths[LONG_HELD_PATH] = _path(driver, "heldlong-cost", approve)
        paths[LATER_PATH] = _path(
            driver,
            "later-cost",
            lambda message, approval_id: _approve_later(driver, message, approval_id),
        )
    immediate = paths["approved at once"]["transitions"]
    rows = []
    out(f"  Whole bill per 1,000 approvals, {ESTIMATE_LABEL}; Lambda durations measured in")
    out("  the sandbox: every function in one shared Python process on this machine.")
    for name, figures in paths.items():
        transitions = figures["transitions"]
        cost = transitions * PRICE_PER_TRANSITION * 1000
        extra = transitions - immediate
        cycles = figures["reminders"]
        lambdas = lambda_use(figures["invocations"])
        feed = sum(1 for i in figures["invocations"] if i["function"] == FEED_FUNCTION)
        dynamodb = dynamodb_use(
            interactions=figures["api_requests"],
            reminders=cycles,
            escalated=figures["escalated"],
            deadline=figures["api_requests"] == 0,
            size=figures["item_bytes"],
            votes=VOTES.get(name, 1),
            held=figures["holds"] > 0,
        )
        bill = estimate(
            transitions=transitions,
            lambdas=lambdas,
            dynamodb=dynamodb,
            api_requests=figures["api_requests"],
            publishes=figures["publishes"],
        )
        out(
            f"  {name:<28} {transitions:2d} transitions, {figures['lambdas']} Lambda invocations, "
            f"{cycles} reminder cycle(s), ${cost:.3f} per 1,000 ({figures['status']})"
        )
        out(
            f"  {'':<28} estimate ${bill.total * 1000:.4f} per 1,000: {bill.parts()}; "
            f"Lambda {lambdas.requests} requests ({feed} the status feed's pipeline events) "
            f"{lambdas.gb_seconds:.4f} GB-s; DynamoDB {dynamodb.writes} writes "
            f"({dynamodb.write_units} WRU), {dynamodb.reads} reads ({dynamodb.read_units} RRU) "
            f"by design for a {figures['item_bytes']} B item; {figures['api_requests']} API "
            f"requests; {figures['publishes']} SNS publish(es)"
        )
        if name == "approved at once":
            target, met = f"≤ {IMMEDIATE_TARGET} transitions", transitions <= IMMEDIATE_TARGET
        elif name == STEPS_PATH:
            quorum = paths[QUORUM_PATH]["transitions"]
            target, met = f"≤ {quorum} transitions (quorum 3's)", transitions <= quorum
            out(
                f"  {'':<28} two steps {transitions} transitions vs quorum 3 {quorum}: "
                + ("MET" if met else "NOT MET")
            )
        elif name in (HELD_PATH, LATER_PATH):
            most = immediate + HOLD_EXTRA_TARGET
            target = f"≤ {most} transitions (at once + {HOLD_EXTRA_TARGET}, any hold's length)"
            met = extra <= HOLD_EXTRA_TARGET and figures["holds"] == 1
            out(
                f"  {'':<28} held {figures['holds']} time(s), {HOLD_SECONDS:g} s: {transitions} "
                f"transitions vs at once {immediate} (+{extra}): " + ("MET" if met else "NOT MET")
            )
        elif name == LONG_HELD_PATH:
            short = paths[HELD_PATH]["transitions"]
            target = f"= {short} transitions (the {HOLD_SECONDS:g} s hold's)"
            met = transitions == short and figures["holds"] == 1
            out(
                f"  {'':<28} held {HOLD_SECONDS * LONG_HOLD_FACTOR:g} s: {transitions} transitions "
                f"vs {short} for {HOLD_SECONDS:g} s: " + ("MET" if met else "NOT MET")
            )
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
                ratio=f"${cost:.3f} Step Functions; ${bill.total * 1000:.3f} all, estimated / "
                "1,000 approvals",
            )
        )
        if name == "approved at once":
            rows.append(
                Row(
                    figure="cost estimate: approved at once, all services",
                    median=f"${bill.total * 1000:.3f} / 1,000",
                    spread=f"list prices us-east-1 {PRICES_READ}, no free tier",
                    target="—",
                    met=None,
                    ratio=f"{bill.parts()}; Lambda durations from one shared process here; "
                    "DynamoDB counted by design",
                )
            )
    return rows


if __name__ == "__main__":  # this benchmark alone: python -m bench.cost
    from bench.run import table

    print(table(run()))
