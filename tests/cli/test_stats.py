"""`approval-gate stats`: per pipeline, outcomes, time to decision, reminders,
escalations and time held, checked against figures the test works out itself."""

from __future__ import annotations

import csv
import io
import json
import math
from datetime import UTC, datetime, timedelta
from typing import Any

from approval_gate.store import APPROVED, REJECTED, Approval, ApprovalStore, Vote

from cli.stats import FIELDS
from tests.cli.conftest import NOW, Gate, request, write_history

#: Decision times (minutes) of a batch of "prod-batch" approvals in November.
BATCH_MINUTES = [3, 50, 7, 12, 90, 1, 30, 240, 15, 45, 20]


def write_batch(store: ApprovalStore) -> None:
    for n, minutes in enumerate(BATCH_MINUTES):
        at = datetime(2026, 11, 2 + n, 9, 0, tzinfo=UTC)
        approval_id = request(store, f"b{n}", "prod-batch", at)
        for _ in range(n % 3):
            store.record_reminder(approval_id)
        decided = at + timedelta(minutes=minutes)
        vote = Vote("U0ALICE", "alice", "reject" if n % 4 == 3 else "approve", decided, "r")
        status = REJECTED if vote.vote == "reject" else APPROVED
        store.decide(approval_id, status=status, votes=(vote,), reason="r", at=decided)


def figures(approvals: list[Approval]) -> dict[str, dict[str, Any]]:
    """The stats, worked out here from the records, the long way."""
    out: dict[str, dict[str, Any]] = {}
    for pipeline in sorted({a.pipeline for a in approvals}):
        mine = [a for a in approvals if a.pipeline == pipeline]
        times = sorted(
            (a.decided_at - a.requested_at).total_seconds()
            for a in mine
            if a.status in (APPROVED, REJECTED) and a.decided_at
        )
        if times:
            middle = len(times) // 2
            median = times[middle] if len(times) % 2 else (times[middle - 1] + times[middle]) / 2
            p90 = times[math.ceil(len(times) * 0.9) - 1]
        held = sum(
            (a.reported_at - a.decided_at).total_seconds()
            for a in mine
            if a.held and a.reported_at and a.decided_at
        )
        out[pipeline] = {
            "pipeline": pipeline,
            "approved": sum(a.status == "APPROVED" for a in mine),
            "rejected": sum(a.status == "REJECTED" for a in mine),
            "expired": sum(a.status == "EXPIRED" for a in mine),
            "decided_elsewhere": sum(a.status == "DECIDED_ELSEWHERE" for a in mine),
            "median_s": median if times else None,
            "p90_s": p90 if times else None,
            "reminders": round(sum(a.reminders for a in mine) / len(mine), 2),
            "escalations": sum(a.escalated for a in mine),
            "held_s": held,
        }
    return out


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_the_figures_per_pipeline_match_the_records(gate: Gate) -> None:
    write_history(gate.store)
    write_batch(gate.store)
    gate.add_feed_and_watch_items(NOW)

    ran = gate.run("stats", "--since", "2026-09-01", "--format", "jsonl", now=NOW)

    assert (ran.code, ran.err) == (0, "")
    rows = rows_of(ran.out)
    assert [list(r) for r in rows] == [list(FIELDS)] * len(rows)
    assert {r["pipeline"]: r for r in rows} == figures(gate.store.all())
    assert [r["pipeline"] for r in rows] == ["prod-api", "prod-batch", "prod-web", "staging-web"]


def test_the_figures_worked_out_by_hand(gate: Gate) -> None:
    write_history(gate.store)
    write_batch(gate.store)

    rows = rows_of(gate.run("stats", "--since", "2026-09-01", "--format", "jsonl", now=NOW).out)
    by = {r["pipeline"]: r for r in rows}

    # prod-batch: 11 decisions in minutes 1 3 7 12 15 20 30 45 50 90 240: the median is the
    # 6th (20 min), p90 by nearest rank the 10th (ceil(9.9)) = 90 min; the 4th and the 8th
    # rejected; 0+1+2+0+1+2+0+1+2+0+1 = 10 reminders over 11 approvals.
    assert by["prod-batch"] == {
        "pipeline": "prod-batch",
        "approved": 9,
        "rejected": 2,
        "expired": 0,
        "decided_elsewhere": 0,
        "median_s": 1200.0,
        "p90_s": 5400.0,
        "reminders": 0.91,
        "escalations": 0,
        "held_s": 0.0,
    }
    # prod-web: approved after 25 min and after 60 min (then held 3 h); one expired (not a
    # decision by people); five approvals, 2+1+2 reminders; two escalated.
    assert by["prod-web"] == {
        "pipeline": "prod-web",
        "approved": 2,
        "rejected": 0,
        "expired": 1,
        "decided_elsewhere": 0,
        "median_s": 2550.0,
        "p90_s": 3600.0,
        "reminders": 1.0,
        "escalations": 2,
        "held_s": 10800.0,
    }
    # staging-web: decided in the console only: no time to decision.
    assert by["staging-web"]["median_s"] is None and by["staging-web"]["p90_s"] is None
    assert by["staging-web"]["decided_elsewhere"] == 1


def test_the_range_limits_the_approvals_counted(gate: Gate) -> None:
    write_history(gate.store)

    rows = rows_of(gate.run("stats", "--format", "jsonl", now=NOW).out)

    # the last 30 days: September's approval and Oct 31's rejection are out
    by = {r["pipeline"]: r for r in rows}
    assert by["prod-web"]["approved"] == 1
    assert by["prod-web"]["median_s"] == 3600.0
    assert by["prod-api"]["rejected"] == 0
    assert by["prod-api"]["median_s"] is None


def test_csv_and_table(gate: Gate) -> None:
    write_history(gate.store)

    as_csv = gate.run("stats", "--since", "2026-09-01", "--format", "csv", now=NOW).out
    table = gate.run("stats", "--since", "2026-09-01", now=NOW).out

    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["pipeline"] for r in rows] == ["prod-api", "prod-web", "staging-web"]
    assert rows[2]["median_s"] == "" and rows[1]["held_s"] == "10800.0"
    lines = table.splitlines()
    assert lines[0].split() == list(FIELDS)
    assert lines[3].split()[0] == "staging-web" and lines[3].split()[5:7] == ["-", "-"]


def test_no_approvals_no_rows(gate: Gate) -> None:
    ran = gate.run("stats", "--format", "csv", now=NOW)
    assert (ran.code, ran.out) == (0, ",".join(FIELDS) + "\n")


def test_a_malformed_since_is_one_line_and_exit_2(gate: Gate) -> None:
    ran = gate.run("stats", "--since", "last quarter", now=NOW)
    assert ran.code == 2 and ran.out == ""
    assert ran.err.startswith("approval-gate stats: --since 'last quarter': give Nd, Nh")
    assert ran.err.count("\n") == 1
