"""Benchmark 10: `approval-gate audit` over 1,000 and 10,000 decision records (issue 23).

A sandbox's approvals table is filled with closed approvals as the gate writes them (the
domain's ``new_item``, then the decision's fields and votes as ``approval_gate.store``
records them): approved, rejected (with a reason), expired and decided in the console,
requested over the last 30 days. Writing is set-up: BatchWriteItem through the sandbox's
own moto client, in this process, never timed.

Then ``approval-gate audit --sandbox URL --since 31d --format jsonl > /dev/null`` runs in
a fresh process (``python -m cli``), as a user runs it: its wall time, and its peak RSS
(``os.wait4``'s rusage of that one child). A run counts only when a second run of the same
command into a file wrote exactly N lines: a fast empty answer is no figure. Targets: 10,000
records within 10 s; memory flat (10,000 within ±20 % of 1,000).

Where the time goes: the same index pages, queried here with a boto3 client against the
sandbox's AWS endpoint and nothing else done with them, are the emulator's share (moto
filters and serialises each page in Python); the rest of the wall time is the command's
own (interpreter start, imports, reading each item through the domain, writing JSON).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
from boto3.dynamodb.types import TypeSerializer

from bench import ROOT, Row
from bench.driver import STANDARD_POLICY, sandbox

SIZES = (1_000, 10_000)
RUNS = 3  # timed runs per size; the median wall time, the largest peak RSS
WALL_TARGET = 10.0  # seconds for 10,000 records
MEMORY_SPREAD = 0.20  # 10,000 within ±20 % of 1,000
SPAN = timedelta(days=30)
BATCH = 25  # BatchWriteItem's limit
STRIDE = 7919  # a prime: index * STRIDE % count visits every slot once
PIPELINES = ("prod-web", "prod-api", "staging-web", "payments")
USERS = (("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol"))
REASONS = ("Canary error rate is up", "Migration 42 is not reviewed yet", "Wrong build")

_serialize = TypeSerializer().serialize


def decided_item(index: int, now: datetime, count: int, rng: random.Random) -> dict[str, Any]:
    """The item of a closed approval, the ``index``-th of ``count``: any first part of the
    ``count`` is spread over the whole 30 days too (a stride prime to ``count``)."""
    # The domain as the sandbox's functions import it: importable once a sandbox runs
    # (`make bench` sets no PYTHONPATH; the sandbox puts the layer on sys.path).
    from approval_gate.approval_items import new_item, vote_item
    from approval_gate.clock import iso
    from approval_gate.records import (
        APPROVED,
        DECIDED_ELSEWHERE,
        EXPIRED,
        REJECTED,
        Approval,
        Vote,
    )
    from approval_gate.rules import Approvers, Rules

    requested = now - SPAN * (1 - (index * STRIDE % count) / count) + timedelta(seconds=1)
    pipeline = PIPELINES[index % len(PIPELINES)]
    approval = Approval(
        approval_id=f"{index:032x}",
        pipeline=pipeline,
        stage="Approve",
        action="ProductionGate",
        pipeline_execution_id=f"{index:08x}-0000-4000-8000-000000000000",
        region="us-east-1",
        token=f"bench-token-{index}",
        rules=Rules(channel="C0DEPLOYS", approvers=Approvers(users=("U0ALICE", "U0BOB"))),
        requested_at=requested,
        deadline_at=requested + timedelta(hours=1),
        expires=requested + timedelta(days=7),
        custom_data=f"Release 1.{index}.0: check the canary dashboard before approving.",
        external_entity_link=f"https://github.com/example-org/web/compare/v1.{index}.0",
        console_link=(
            f"https://console.aws.amazon.com/codepipeline/home?region=us-east-1#/view/{pipeline}"
        ),
        channel="C0DEPLOYS",
        message_ts=f"{int(requested.timestamp())}.{index % 1_000_000:06d}",
    )
    item = new_item(approval, retention_days=400)
    decided = requested + timedelta(seconds=rng.randint(30, 3000))
    kind = index % 10
    fields: dict[str, Any] = {"decided_at": iso(decided), "closed_at": iso(decided)}
    votes: list[Vote] = []
    if kind < 6:  # approved by one or two people
        voters = USERS[: 1 + index % 2]
        votes = [
            Vote(u, n, "approve", decided - timedelta(seconds=i)) for i, (u, n) in enumerate(voters)
        ]
        fields.update(status=APPROVED, decided_by=[u for u, _ in voters])
    elif kind < 8:
        reason = REASONS[index % len(REASONS)]
        votes = [Vote("U0BOB", "bob", "reject", decided, reason=reason)]
        fields.update(status=REJECTED, decided_by=["U0BOB"], reason=reason)
    elif kind == 8:
        fields.update(status=EXPIRED, decided_by=[], decided_at=iso(requested + timedelta(hours=1)))
        fields["reminders"], fields["escalated"] = 3, True
    else:
        fields.update(status=DECIDED_ELSEWHERE, decided_by=[])
    fields["reported_at"] = fields["decided_at"]
    fields["votes"] = {vote.user_id: vote_item(vote) for vote in votes}
    item.update({key: _serialize(value) for key, value in fields.items()})
    return item


def fill(dynamodb: Any, table: str, start: int, stop: int, count: int, now: datetime) -> None:
    """Write items ``start`` to ``stop`` of ``count`` (set-up, not measured)."""
    rng = random.Random(start)
    for first in range(start, stop, BATCH):
        requests = [
            {"PutRequest": {"Item": decided_item(i, now, count, rng)}}
            for i in range(first, min(first + BATCH, stop))
        ]
        pending: dict[str, Any] = {table: requests}
        while pending:
            pending = dynamodb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}


#: Runs the command and reports its wall time and peak RSS. A small process between the
#: bench and the command: Linux carries the peak RSS of the process that forked a child
#: into the child's own at exec, so the bench (a sandbox holding every record) would
#: charge its memory to the command; this launcher's few MiB are below the command's.
LAUNCHER = """
import json, os, subprocess, sys, time
with open(sys.argv[1], "wb") as out:
    started = time.perf_counter()
    child = subprocess.Popen(sys.argv[2:], stdout=out)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
print(json.dumps({"wall": wall, "rss": usage.ru_maxrss * 1024, "status": status}))
"""


def run_audit(url: str, out: str) -> tuple[float, int]:
    """One `audit` in a fresh process writing to the file ``out``: (wall seconds, the
    command's peak RSS in bytes)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "functions")])}
    command = [sys.executable, "-m", "cli", "audit", "--sandbox", url]
    command += ["--since", "31d", "--format", "jsonl"]
    done = subprocess.run(  # noqa: S603 - our own interpreter, module and launcher
        [sys.executable, "-c", LAUNCHER, out, *command],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0 or not done.stdout.strip():
        raise RuntimeError(f"the launcher failed: {done.stderr.strip()[-500:]}")
    report = json.loads(done.stdout)
    if report["status"] != 0:
        raise RuntimeError(f"audit exited {report['status']}: {done.stderr.strip()[-500:]}")
    return float(report["wall"]), int(report["rss"])  # Linux: ru_maxrss in kilobytes


def lines_written(url: str) -> int:
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "audit.jsonl")
        run_audit(url, path)
        with open(path, "rb") as written:
            return sum(1 for _ in written)


def emulator_seconds(aws: dict[str, Any], now: datetime) -> float:
    """The index pages of the range, read here and dropped: the emulator's share."""
    from approval_gate.approval_items import AUDIT_INDEX, AUDIT_MONTH
    from approval_gate.clock import iso

    client = boto3.client(
        "dynamodb",
        endpoint_url=aws["endpoint_url"],
        region_name=aws["region"],
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 - moto's fake credentials
    )
    since = now - timedelta(days=31)
    started = time.perf_counter()
    month = datetime(since.year, since.month, 1, tzinfo=UTC)
    while month <= now:
        query: dict[str, Any] = {
            "TableName": aws["resources"]["ApprovalsTable"],
            "IndexName": AUDIT_INDEX,
            "KeyConditionExpression": "#m = :m AND requested_at BETWEEN :a AND :b",
            "ExpressionAttributeNames": {"#m": AUDIT_MONTH},
            "ExpressionAttributeValues": {
                ":m": {"S": month.strftime("%Y-%m")},
                ":a": {"S": iso(since)},
                ":b": {"S": iso(now)},
            },
        }
        while True:
            page = client.query(**query)
            if not page.get("LastEvaluatedKey"):
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        month = (month + timedelta(days=32)).replace(day=1)
    return time.perf_counter() - started


def measure() -> dict[int, dict[str, Any]]:
    found: dict[int, dict[str, Any]] = {}
    with sandbox(STANDARD_POLICY) as driver:
        engine = driver.server.sandbox
        aws = engine.aws()
        dynamodb, table = engine.client("dynamodb"), aws["resources"]["ApprovalsTable"]
        now = datetime.now(UTC)
        written = 0
        for size in SIZES:
            # The 10,000 are the 1,000 and 9,000 more, all spread over the same 30 days.
            fill(dynamodb, table, written, size, SIZES[-1], now)
            written = size
            lines = lines_written(driver.url)
            runs = []
            for _ in range(RUNS):
                runs.append(run_audit(driver.url, os.devnull))
            found[size] = {
                "lines": lines,
                "wall": statistics.median(w for w, _ in runs),
                "walls": [w for w, _ in runs],
                "rss": max(r for _, r in runs),
                "emulator": emulator_seconds(aws, datetime.now(UTC)),
            }
            print(
                f"   {size:>6} records: {lines} lines, wall "
                + ", ".join(f"{w:.2f}" for w, _ in runs)
                + f" s, peak RSS {found[size]['rss'] / 2**20:.1f} MiB, "
                f"index pages alone {found[size]['emulator']:.2f} s",
                flush=True,
            )
    return found


def rows(found: dict[int, dict[str, Any]]) -> list[Row]:
    small, large = (found[size] for size in SIZES)
    complete = all(found[size]["lines"] == size for size in SIZES)
    counted = (
        ""
        if complete
        else ("; LINES MISSING: " + ", ".join(f"{found[s]['lines']} of {s}" for s in SIZES))
    )
    share = large["emulator"] / large["wall"] if large["wall"] else 0.0
    wall = Row(
        "audit over 10,000 decision records (wall)",
        f"{large['wall']:.2f} s",
        f"{min(large['walls']):.2f}-{max(large['walls']):.2f} s",
        f"≤ {WALL_TARGET:.0f} s",
        complete and large["wall"] <= WALL_TARGET,
        f"1,000: {small['wall']:.2f} s; index pages alone (moto) {large['emulator']:.2f} s "
        f"= {share:.0%} of 10,000's wall{counted}",
    )
    change = large["rss"] / small["rss"] - 1
    memory = Row(
        "audit peak RSS, 10,000 vs 1,000 records",
        f"{large['rss'] / 2**20:.1f} MiB",
        f"1,000: {small['rss'] / 2**20:.1f} MiB",
        f"±{MEMORY_SPREAD:.0%}",
        complete and abs(change) <= MEMORY_SPREAD,
        f"{change:+.1%} (streamed: one index page at a time){counted}",
    )
    return [wall, memory]


def run() -> list[Row]:
    return rows(measure())
