"""`approval-gate pending`: the open and held requests, who may decide them now, how old
they are, until when they are held, and their Slack links."""

from __future__ import annotations

import csv
import io
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

import boto3
import pytest
from approval_gate.clock import parse_iso
from approval_gate.policy import Approvers
from approval_gate.store import ApprovalStore

from cli.pending import FIELDS
from tests.cli.conftest import NOW, STEPS, Gate, request, write_history
from tests.unit.fakes import make_rules

BOT_TOKEN = "xoxb-test-bot-token-never-printed"


def rows_of(text: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in text.splitlines()]


def test_open_and_held_requests_oldest_first_with_who_may_decide(gate: Gate) -> None:
    ids = write_history(gate.store)
    gate.add_feed_and_watch_items(NOW)

    ran = gate.run("pending", "--format", "jsonl", now=NOW)

    assert ran.code == 0
    rows = rows_of(ran.out)
    assert [r["approval_id"] for r in rows] == [
        ids["open_escalated"],
        ids["held_now"],
        ids["open_steps"],
    ]
    assert all(list(r) == list(FIELDS) for r in rows)
    escalated, held, steps = rows
    # open, escalated: everyone listed, and the escalation approver
    assert escalated["status"] == "PENDING"
    assert escalated["may_decide"] == {"users": ["U0ALICE", "U0BOB", "U0CAROL"], "groups": []}
    assert escalated["reminders"] == 2
    assert escalated["held_until"] is None
    # held by a freeze: the freeze_override approvers may deploy now
    assert held["status"] == "HELD"
    assert held["may_decide"] == {"users": ["U0SRE1"], "groups": ["S0SRE"]}
    assert held["held_until"] == "2026-12-02T08:00:00.000Z"
    # steps in sequence, QA done: Release's turn (QA's group no longer listed)
    assert steps["may_decide"] == {"users": ["U0ALICE", "U0BOB", "U0CAROL"], "groups": []}
    for row in rows:
        age = (NOW - parse_iso(row["requested_at"])).total_seconds()
        assert row["age_s"] == int(age)
        assert row["permalink"] is None
    assert [r["age_s"] for r in rows] == [50 * 3600, 29 * 3600, 3600]


def test_a_step_still_open_lists_its_own_approvers_and_groups(gate: Gate) -> None:
    rules = make_rules(approvers=Approvers(users=("U0DAN",), groups=("S0QA",)), steps=STEPS)
    fresh = request(gate.store, "a9", "prod-web", NOW, rules=rules)

    rows = rows_of(gate.run("pending", "--format", "jsonl", now=NOW).out)

    assert [r["may_decide"] for r in rows if r["approval_id"] == fresh] == [
        {"users": ["U0DAN"], "groups": ["S0QA"]}
    ]


def test_without_the_slack_secret_permalinks_are_null_and_stderr_says_so_once(gate: Gate) -> None:
    write_history(gate.store)

    ran = gate.run("pending", "--format", "jsonl", now=NOW)

    assert ran.code == 0
    assert [r["permalink"] for r in rows_of(ran.out)] == [None, None, None]
    assert ran.err == (
        "approval-gate pending: no Slack permalinks (the gate's Slack secret is not known)\n"
    )


def test_csv_and_table(gate: Gate) -> None:
    ids = write_history(gate.store)

    as_csv = gate.run("pending", "--format", "csv", now=NOW).out
    table = gate.run("pending", now=NOW).out

    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [r["approval_id"] for r in rows] == [
        ids["open_escalated"],
        ids["held_now"],
        ids["open_steps"],
    ]
    assert json.loads(rows[1]["may_decide"]) == {"users": ["U0SRE1"], "groups": ["S0SRE"]}
    assert rows[0]["held_until"] == "" and rows[0]["age_s"] == str(50 * 3600)
    lines = table.splitlines()
    assert lines[0].split() == list(FIELDS)
    assert len(lines) == 4
    assert "U0SRE1, @S0SRE" in lines[2]


# --------------------------------------------------------------------------- Slack


class FakeSlack:
    """A Web API on 127.0.0.1 that answers chat.getPermalink (or fails as told)."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.error: str | None = None
        slack = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                args = {k: v[0] for k, v in parse_qs(body).items()}
                slack.calls.append(
                    {"path": self.path, "args": args, "auth": self.headers.get("Authorization")}
                )
                if slack.error:
                    answer: dict[str, Any] = {"ok": False, "error": slack.error}
                else:
                    ts = args["message_ts"].replace(".", "")
                    link = f"https://example.slack.com/archives/{args['channel']}/p{ts}"
                    answer = {"ok": True, "channel": args["channel"], "permalink": link}
                data = json.dumps(answer).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)


@pytest.fixture
def slack() -> Iterator[FakeSlack]:
    fake = FakeSlack()
    fake.thread.start()
    yield fake
    fake.server.shutdown()
    fake.server.server_close()


def slack_target(gate: Gate, slack: FakeSlack) -> Any:
    arn = gate.secrets.create_secret(
        Name="approval-gate/slack",
        SecretString=json.dumps({"bot_token": BOT_TOKEN, "signing_secret": "shh-signing"}),
    )["ARN"]
    return gate.target(slack_secret_arn=arn, slack_api_url=slack.url)


def test_permalinks_come_from_slack_with_the_bot_token_never_printed(
    gate: Gate, slack: FakeSlack
) -> None:
    ids = write_history(gate.store)

    ran = gate.run("pending", "--format", "jsonl", now=NOW, target=slack_target(gate, slack))

    assert (ran.code, ran.err) == (0, "")
    links = {r["approval_id"]: r["permalink"] for r in rows_of(ran.out)}
    assert links == {
        ids["open_escalated"]: "https://example.slack.com/archives/C0DEPLOYS/p1764428400000100",
        ids["held_now"]: "https://example.slack.com/archives/C0DEPLOYS/p1764504000000200",
        ids["open_steps"]: None,  # no message yet: Slack is not asked
    }
    assert [c["path"] for c in slack.calls] == ["/api/chat.getPermalink"] * 2
    assert all(c["auth"] == f"Bearer {BOT_TOKEN}" for c in slack.calls)
    assert BOT_TOKEN not in ran.out + ran.err


def test_when_slack_cannot_answer_permalinks_are_null_and_stderr_says_so_once(
    gate: Gate, slack: FakeSlack
) -> None:
    write_history(gate.store)
    slack.error = "channel_not_found"

    ran = gate.run("pending", "--format", "jsonl", now=NOW, target=slack_target(gate, slack))

    assert ran.code == 0
    assert [r["permalink"] for r in rows_of(ran.out)] == [None, None, None]
    assert (
        ran.err == "approval-gate pending: no Slack permalinks (Slack answered channel_not_found)\n"
    )
    assert len(slack.calls) == 2  # a message's own error: the next message is still asked


def test_a_revoked_token_stops_the_asking(gate: Gate, slack: FakeSlack) -> None:
    write_history(gate.store)
    slack.error = "invalid_auth"

    ran = gate.run("pending", "--format", "jsonl", now=NOW, target=slack_target(gate, slack))

    assert ran.code == 0
    assert len(slack.calls) == 1
    assert ran.err.count("\n") == 1 and "invalid_auth" in ran.err
    assert BOT_TOKEN not in ran.err


# --------------------------------------------------------------------------- --sandbox URL


class SandboxAws:
    """What the sandbox's ``GET /_sandbox/aws`` answers (DESIGN §8.6), served on 127.0.0.1,
    in front of moto in server mode."""

    def __init__(self, answer: dict[str, Any]) -> None:
        body = json.dumps(answer).encode()

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                self.send_response(200 if self.path == "/_sandbox/aws" else 404)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def test_a_sandbox_url_names_the_endpoint_the_table_the_secret_and_slack(
    slack: FakeSlack, monkeypatch: pytest.MonkeyPatch
) -> None:
    from moto.server import ThreadedMotoServer

    from cli.main import main
    from tests.unit.fakes import create_approvals_table

    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        endpoint = "http://{}:{}".format(*moto.get_host_and_port())
        dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        secrets = boto3.client("secretsmanager", region_name="us-east-1", endpoint_url=endpoint)
        create_approvals_table(dynamodb, "sandbox-approvals")
        arn = secrets.create_secret(
            Name="slack",
            SecretString=json.dumps({"bot_token": BOT_TOKEN, "signing_secret": "s"}),
        )["ARN"]
        ids = write_history(ApprovalStore("sandbox-approvals", dynamodb))
        sandbox = SandboxAws(
            {
                "endpoint_url": endpoint,
                "region": "us-east-1",
                "resources": {"ApprovalsTable": "sandbox-approvals"},
                "parameters": {"SlackSecretArn": arn, "RetentionDays": "400"},
                "slack_api_url": slack.url.rstrip("/"),
                "policy": {},
            }
        )
        out, err = io.StringIO(), io.StringIO()
        code = main(
            ["pending", "--sandbox", sandbox.url, "--format", "jsonl"],
            stdout=out,
            stderr=err,
            clock=lambda: NOW,
        )
        sandbox.server.shutdown()
        sandbox.server.server_close()
    finally:
        moto.stop()

    assert (code, err.getvalue()) == (0, "")
    rows = rows_of(out.getvalue())
    assert [r["approval_id"] for r in rows] == [
        ids["open_escalated"],
        ids["held_now"],
        ids["open_steps"],
    ]
    assert rows[0]["permalink"] == (
        "https://example.slack.com/archives/C0DEPLOYS/p1764428400000100"
    )
    assert BOT_TOKEN not in out.getvalue()
