"""`approval-gate audit`, `pending` and `stats` run as a user runs them (a subprocess, with
``--sandbox URL``) against one sandbox after a scripted mix of approvals over four
pipelines: approved by a click, rejected with a reason, expired after reminders and an
escalation, decided in the CodePipeline console, held by a freeze and reported when it
ended, held by a freeze still running, and one still open.

Every row is checked against what the script did and against the sandbox's own
``GET /_sandbox/approvals``; CSV and JSON Lines are parsed back; the stats figures are
computed here from the records, by the definitions of the command's help.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from sandbox.client import wait_for
from sandbox.fake_slack import view_submission_payload
from sandbox.server import SandboxServer
from tests.conftest import POLICIES, Gate, start_sandbox

ROOT = Path(__file__).resolve().parents[2]
ALICE, BOB, CAROL = "U0ALICE", "U0BOB", "U0CAROL"
REASON = "Migration 42 is not reviewed yet"
CONSOLE_SUMMARY = "Approved by hand in the console"
#: How long the short freeze lasts from the policy's posting: long enough for its request
#: to open and be approved first on a busy machine, short enough to end within the module.
SHORT_FREEZE_S = 10
#: The long freeze outlasts the module: its approval stays held.
LONG_FREEZE_S = 900


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _when(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _policy(now: datetime) -> dict[str, Any]:
    everyone = {"users": [ALICE, BOB]}
    return {
        "defaults": {"channel": "C0DEPLOYS", "approvers": everyone, "deadline": "1h"},
        "pipelines": [
            {
                "match": "slow-*",
                "channel": "C0DEPLOYS",
                "approvers": everyone,
                "deadline": "5s",
                "reminder_every": "1s",
                "escalate_after_reminders": 1,
                "escalation": {"channel": "C0DEPLOYS", "approvers": {"users": [CAROL]}},
            },
            {
                "match": "prod-*",
                "channel": "C0DEPLOYS",
                "approvers": everyone,
                "deadline": "1h",
                "freezes": [
                    {
                        "from": _iso(now - timedelta(seconds=5)),
                        "to": _iso(now + timedelta(seconds=LONG_FREEZE_S)),
                        "reason": "Year-end freeze",
                    }
                ],
                "freeze_override": {"approvers": {"users": [CAROL]}, "required_approvals": 1},
            },
            {
                "match": "hotfix-*",
                "channel": "C0DEPLOYS",
                "approvers": everyone,
                "deadline": "1h",
                "freezes": [
                    {
                        "from": _iso(now - timedelta(seconds=5)),
                        "to": _iso(now + timedelta(seconds=SHORT_FREEZE_S)),
                        "reason": "Database maintenance",
                    }
                ],
            },
        ],
    }


class Mix:
    """What the script did: per case, the run, the approval and its request message."""

    def __init__(self, gate: Gate, freeze_ends: datetime) -> None:
        self.gate = gate
        self.freeze_ends = freeze_ends
        self.cases: dict[str, dict[str, Any]] = {}

    def id(self, case: str) -> str:
        return str(self.cases[case]["approval"]["approval_id"])

    def case_of(self, approval_id: str) -> str:
        return next(c for c, v in self.cases.items() if v["approval"]["approval_id"] == approval_id)

    def tokens(self) -> list[str]:
        return [str(v["run"]["approvalToken"]) for v in self.cases.values()]


def _open(gate: Gate, pipeline: str) -> dict[str, Any]:
    run, approval, message = gate.open_approval(pipeline)
    return {"run": run, "approval": approval, "message": message, "pipeline": pipeline}


def _held(gate: Gate, case: dict[str, Any]) -> dict[str, Any]:
    return wait_for(
        lambda: (record := gate.approval_for(case["run"]["approvalToken"]))["held"] and record,
        timeout=15,
        what="the approval to be held",
    )


def _finished(gate: Gate, case: dict[str, Any], timeout: float = 25) -> None:
    gate.wait_execution(case["approval"]["approval_id"], timeout=timeout)


def _approved(gate: Gate, pipeline: str, user: str) -> dict[str, Any]:
    case = _open(gate, pipeline)
    assert gate.click(case["message"], user, "approve") == 200
    _finished(gate, case)
    return case


def _rejected(gate: Gate) -> dict[str, Any]:
    case = _open(gate, "web-app")
    assert gate.reject(case["message"], BOB, REASON) == 200
    _finished(gate, case)
    return case


def _in_console(gate: Gate) -> dict[str, Any]:
    case = _open(gate, "web-app")
    token = case["run"]["approvalToken"]
    gate.client.post(
        f"/_sandbox/pipelines/web-app/approvals/{token}",
        {"status": "Approved", "summary": CONSOLE_SUMMARY, "by": "ops@example.com"},
    )
    _finished(gate, case)
    return case


def _expired(gate: Gate) -> dict[str, Any]:
    case = _open(gate, "slow-api")
    _finished(gate, case)
    return case


def _held_then_reported(gate: Gate) -> dict[str, Any]:
    case = _open(gate, "hotfix-api")
    assert gate.click(case["message"], ALICE, "approve") == 200
    _held(gate, case)
    _finished(gate, case, timeout=SHORT_FREEZE_S + 20)
    return case


def _held_still(gate: Gate) -> dict[str, Any]:
    case = _open(gate, "prod-api")
    assert gate.click(case["message"], ALICE, "approve") == 200
    _held(gate, case)
    return case


def _still_open(gate: Gate) -> dict[str, Any]:
    return _open(gate, "web-app")


def _deploy_now(gate: Gate, case: dict[str, Any]) -> None:
    """End the long hold as its override approver would (Deploy now, with a reason)."""
    message = case["message"]
    held = gate.message_at(message["channel"], message["ts"])
    assert gate.click(held, CAROL, "deploy_now") == 200
    view = gate.opened_view(case["approval"]["approval_id"], CAROL)
    payload = view_submission_payload(
        gate.server.sandbox.slack,
        view_id=view["id"],
        user_id=CAROL,
        values={"reason": {"reason": "The module is over"}},
    )
    status, _ = gate.post_interaction(payload)
    assert status == 200


@pytest.fixture(scope="module")
def server() -> Iterator[SandboxServer]:
    server = start_sandbox(POLICIES / "standard.yaml")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def mix(server: SandboxServer) -> Iterator[Mix]:
    gate = Gate(server)
    now = datetime.now(UTC)
    status, answer = gate.client.request("POST", "/_sandbox/policy", _policy(now))
    assert status == 200, answer
    done = Mix(gate, (now + timedelta(seconds=LONG_FREEZE_S)).replace(microsecond=0))
    script: dict[str, Callable[[], dict[str, Any]]] = {
        "approved_alice": lambda: _approved(gate, "web-app", ALICE),
        "approved_bob": lambda: _approved(gate, "web-app", BOB),
        "rejected": lambda: _rejected(gate),
        "console": lambda: _in_console(gate),
        "expired": lambda: _expired(gate),
        "held_reported": lambda: _held_then_reported(gate),
        "held": lambda: _held_still(gate),
        "open": lambda: _still_open(gate),
    }
    # The waits (a deadline, a freeze's end) overlap: the module takes the longest one.
    with ThreadPoolExecutor(max_workers=len(script)) as pool:
        futures = {name: pool.submit(step) for name, step in script.items()}
        done.cases = {name: future.result() for name, future in futures.items()}
    try:
        yield done
    finally:
        # Leave nothing running: the open one approved, the held one deployed now.
        assert gate.click(done.cases["open"]["message"], ALICE, "approve") == 200
        _deploy_now(gate, done.cases["held"])
        assert server.sandbox.wait_for_executions(timeout=30)


def cli(server: SandboxServer, *args: str) -> subprocess.CompletedProcess[str]:
    """`approval-gate ARGS --sandbox URL`, as a user runs it (`python -m cli`)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "functions")])}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        env.pop(name, None)
    done = subprocess.run(
        [sys.executable, "-m", "cli", *args, "--sandbox", server.url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done


def _jsonl(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def _csv_text(value: Any) -> str:
    """How DESIGN §8.7 says CSV carries a value: nested values JSON-encoded, none empty."""
    if value is None:
        return ""
    if isinstance(value, bool | list | dict):
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
    return str(value)


def _secrets_absent(mix: Mix, *texts: str) -> None:
    for text in texts:
        for token in mix.tokens():
            assert token not in text
        assert "xoxb-" not in text and "xoxp-" not in text


def test_audit_lists_every_decision_as_the_script_made_it(server, mix):
    done = cli(server, "audit", "--format", "jsonl")
    rows = _jsonl(done.stdout)
    records = mix.gate.client.approvals()

    assert [r["requested_at"] for r in rows] == sorted(r["requested_at"] for r in rows)
    assert [{k: v for k, v in r.items() if k != "console_link"} for r in rows] == records
    assert {r["approval_id"] for r in rows} == {mix.id(c) for c in mix.cases}
    by_case = {mix.case_of(r["approval_id"]): r for r in rows}
    for case, row in by_case.items():
        assert row["pipeline"] == mix.cases[case]["pipeline"]
        assert row["pipeline_execution_id"] == mix.cases[case]["run"]["pipelineExecutionId"]
        assert row["console_link"].startswith("https://")
        assert row["pipeline"] in row["console_link"]

    for case, user in (("approved_alice", ALICE), ("approved_bob", BOB)):
        row = by_case[case]
        assert (row["outcome"], row["decided_by"], row["reason"]) == ("approved", [user], None)
        assert row["held"] is None and row["reminders"] == 0
    rejected = by_case["rejected"]
    assert (rejected["outcome"], rejected["decided_by"]) == ("rejected", [BOB])
    assert rejected["reason"] == REASON
    assert [(v["user"], v["vote"], v["comment"]) for v in rejected["votes"]] == [
        (BOB, "reject", REASON)
    ]
    assert by_case["console"]["outcome"] == "decided_elsewhere"
    expired = by_case["expired"]
    assert (expired["outcome"], expired["decided_by"]) == ("expired", [])
    assert expired["reminders"] >= 1 and expired["escalated"] is True
    reported = by_case["held_reported"]
    assert (reported["outcome"], reported["decided_by"]) == ("approved", [ALICE])
    assert reported["held"]["why"] == "freeze"
    assert reported["held"]["reason"] == "Database maintenance"
    assert reported["reported_at"] >= reported["held"]["until"]
    held = by_case["held"]
    assert held["outcome"] is None and held["reported_at"] is None
    assert held["held"]["why"] == "freeze" and _when(held["held"]["until"]) == mix.freeze_ends
    opened = by_case["open"]
    assert opened["outcome"] is None and opened["decided_at"] is None
    assert opened["decided_by"] == [] and opened["held"] is None
    _secrets_absent(mix, done.stdout, done.stderr)


def test_csv_and_table_carry_the_same_rows_as_json_lines(server, mix):
    rows = _jsonl(cli(server, "audit", "--format", "jsonl").stdout)
    done = cli(server, "audit", "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(done.stdout)))

    assert len(parsed) == len(rows) == len(mix.cases)
    assert list(parsed[0]) == list(rows[0])
    assert parsed == [{k: _csv_text(v) for k, v in row.items()} for row in rows]
    # Nested values read back to the same values.
    for got, row in zip(parsed, rows, strict=True):
        assert json.loads(got["decided_by"]) == row["decided_by"]
        assert json.loads(got["votes"]) == row["votes"]
        assert (json.loads(got["held"]) if got["held"] else None) == row["held"]

    table = cli(server, "audit").stdout.splitlines()
    assert table[0].split()[:4] == ["requested_at", "pipeline", "stage", "action"]
    assert len(table) == 1 + len(rows)
    for line, row in zip(table[1:], rows, strict=True):
        assert line.startswith(row["requested_at"])
        assert row["pipeline"] in line and (row["outcome"] or "-") in line
        assert line.endswith(row["console_link"])
    _secrets_absent(mix, done.stdout, *table)


def test_audit_filters_by_pipeline_and_outcome(server, mix):
    def ids(*args: str) -> set[str]:
        return {
            r["approval_id"]
            for r in _jsonl(cli(server, "audit", *args, "--format", "jsonl").stdout)
        }

    web = {"approved_alice", "approved_bob", "rejected", "console", "open"}
    assert ids("--pipeline", "web-*") == {mix.id(c) for c in web}
    assert ids("--pipeline", "*-api", "--outcome", "approved") == {mix.id("held_reported")}
    assert ids("--outcome", "pending") == {mix.id("open"), mix.id("held")}
    assert ids("--outcome", "rejected") == {mix.id("rejected")}
    assert ids("--outcome", "expired") == {mix.id("expired")}
    assert ids("--outcome", "decided_elsewhere") == {mix.id("console")}
    assert ids("--pipeline", "nothing-*") == set()


def test_pending_lists_the_open_and_the_held_with_who_may_decide(server, mix):
    before = datetime.now(UTC)
    done = cli(server, "pending", "--format", "jsonl")
    after = datetime.now(UTC)
    rows = {r["approval_id"]: r for r in _jsonl(done.stdout)}

    assert set(rows) == {mix.id("open"), mix.id("held")}
    records = {r["approval_id"]: r for r in mix.gate.client.approvals()}
    for approval_id, row in rows.items():
        case = mix.cases[mix.case_of(approval_id)]
        requested = _when(records[approval_id]["requested_at"])
        assert row["requested_at"] == records[approval_id]["requested_at"]
        assert (before - requested).total_seconds() - 1 <= row["age_s"]
        assert row["age_s"] <= (after - requested).total_seconds() + 1
        message = case["message"]
        stamp = message["ts"].replace(".", "")
        assert row["permalink"].endswith(f"/archives/{message['channel']}/p{stamp}")
        assert row["pipeline"] == case["pipeline"] and row["reminders"] == 0
    opened, held = rows[mix.id("open")], rows[mix.id("held")]
    assert (opened["status"], opened["held_until"]) == ("PENDING", None)
    assert opened["may_decide"] == {"users": [ALICE, BOB], "groups": []}
    assert held["status"] == "HELD"
    assert _when(held["held_until"]) == mix.freeze_ends
    assert held["may_decide"] == {"users": [CAROL], "groups": []}  # "Deploy now"
    assert done.stderr == ""

    table = cli(server, "pending").stdout.splitlines()
    assert len(table) == 3 and table[0].split()[0] == "pipeline"
    _secrets_absent(mix, done.stdout, *table)


def _median(values: list[float]) -> float:
    ordered = sorted(values)
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _expected_stats(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The stats of STATS_HELP, computed from the decision records."""
    expected: dict[str, dict[str, Any]] = {}
    for pipeline in sorted({r["pipeline"] for r in records}):
        mine = [r for r in records if r["pipeline"] == pipeline]
        times = [
            (_when(r["decided_at"]) - _when(r["requested_at"])).total_seconds()
            for r in mine
            if r["outcome"] in ("approved", "rejected")
        ]
        held = [
            (_when(r["reported_at"]) - _when(r["decided_at"])).total_seconds()
            for r in mine
            if r["held"] and r["reported_at"]
        ]
        rank = math.ceil(0.9 * len(times))
        expected[pipeline] = {
            "pipeline": pipeline,
            **{
                outcome: sum(r["outcome"] == outcome for r in mine)
                for outcome in ("approved", "rejected", "expired", "decided_elsewhere")
            },
            "median_s": round(_median(times), 3) if times else None,
            "p90_s": round(sorted(times)[rank - 1], 3) if times else None,
            "reminders": round(sum(r["reminders"] for r in mine) / len(mine), 2),
            "escalations": sum(bool(r["escalated"]) for r in mine),
            "held_s": round(sum(held), 3),
        }
    return expected


def test_stats_match_figures_computed_from_the_records(server, mix):
    done = cli(server, "stats", "--format", "jsonl")
    rows = _jsonl(done.stdout)
    expected = _expected_stats(mix.gate.client.approvals())

    assert [r["pipeline"] for r in rows] == ["hotfix-api", "prod-api", "slow-api", "web-app"]
    assert {r["pipeline"]: r for r in rows} == expected
    web = expected["web-app"]
    assert (web["approved"], web["rejected"], web["decided_elsewhere"]) == (2, 1, 1)
    assert web["median_s"] is not None and web["median_s"] <= web["p90_s"]
    assert expected["slow-api"]["expired"] == 1 and expected["slow-api"]["escalations"] == 1
    assert expected["slow-api"]["reminders"] >= 1
    # The short hold lasted from the click to the freeze's end, give or take a second.
    assert 0 < expected["hotfix-api"]["held_s"] <= SHORT_FREEZE_S + 6
    assert expected["prod-api"]["held_s"] == 0  # still held: counts once reported

    csv_rows = list(csv.DictReader(io.StringIO(cli(server, "stats", "--format", "csv").stdout)))
    assert csv_rows == [{k: _csv_text(v) for k, v in r.items()} for r in rows]
    table = cli(server, "stats").stdout.splitlines()
    assert [line.split()[0] for line in table] == ["pipeline", *(r["pipeline"] for r in rows)]


def test_a_time_range_without_approvals_lists_none(server, mix):
    until = _iso(datetime.now(UTC) - timedelta(days=2))
    done = cli(server, "audit", "--since", "3d", "--until", until, "--format", "jsonl")
    assert done.stdout == ""
    assert cli(server, "stats", "--since", "3d", "--until", until, "--format", "jsonl").stdout == ""
