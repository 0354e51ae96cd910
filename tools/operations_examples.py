"""The example outputs of docs/operations.md's `audit`, `pending` and `stats` sections, made
by the real commands against a sandbox after a small scripted mix of approvals.

Usage (from the repository, a dev environment)::

    PYTHONPATH=functions:. .venv/bin/python -m tools.operations_examples

It starts a sandbox (on port 8400 when free), drives it as Slack and CodePipeline would
(signed clicks, a reason modal, a console decision, a freeze), runs each command in a
fresh process as a user would, and prints each as a console block. It fails if an output
holds an approval token or a Slack token.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.client import wait_for
from sandbox.server import SandboxServer
from tests.conftest import POLICIES, SLACK_FIXTURE, Gate

ROOT = Path(__file__).resolve().parents[1]
EVERYONE = {"users": ["U0ALICE", "U0BOB"]}
SHORT_FREEZE_S = 8


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _freeze(now: datetime, seconds: int, reason: str) -> list[dict[str, str]]:
    return [
        {
            "from": _iso(now - timedelta(seconds=5)),
            "to": _iso(now + timedelta(seconds=seconds)),
            "reason": reason,
        }
    ]


def policy(now: datetime) -> dict[str, Any]:
    """prod-web waits an hour; staging-web 5 s, reminded every second and escalated;
    prod-api is in a long freeze (CAROL may deploy now), prod-db in a short one."""
    rule = {"channel": "C0DEPLOYS", "approvers": EVERYONE, "deadline": "1h"}
    return {
        "defaults": rule,
        "pipelines": [
            {
                **rule,
                "match": "staging-*",
                "deadline": "5s",
                "reminder_every": "1s",
                "escalate_after_reminders": 1,
                "escalation": {"channel": "C0DEPLOYS", "approvers": {"users": ["U0CAROL"]}},
            },
            {
                **rule,
                "match": "prod-api",
                "freezes": _freeze(now, 3600, "Year-end freeze"),
                "freeze_override": {"approvers": {"users": ["U0CAROL"]}, "required_approvals": 1},
            },
            {**rule, "match": "prod-db", "freezes": _freeze(now, SHORT_FREEZE_S, "DB upgrade")},
        ],
    }


def mix(gate: Gate) -> list[str]:
    """The scripted approvals, at once; the tokens CodePipeline gave them."""

    def approved(pipeline: str, user: str) -> str:
        run, approval, message = gate.open_approval(pipeline)
        assert gate.click(message, user, "approve") == 200
        gate.wait_execution(approval["approval_id"], timeout=30)
        return str(run["approvalToken"])

    def rejected() -> str:
        run, approval, message = gate.open_approval("prod-web")
        assert gate.reject(message, "U0BOB", "Migration 42 is not reviewed yet") == 200
        gate.wait_execution(approval["approval_id"])
        return str(run["approvalToken"])

    def expired_then_console() -> list[str]:
        run, approval, _ = gate.open_approval("staging-web")
        gate.wait_execution(approval["approval_id"])
        other, second, _ = gate.open_approval("staging-web")
        gate.client.post(
            f"/_sandbox/pipelines/staging-web/approvals/{other['approvalToken']}",
            {"status": "Approved", "summary": "Approved by hand", "by": "ops@example.com"},
        )
        gate.wait_execution(second["approval_id"])
        return [str(run["approvalToken"]), str(other["approvalToken"])]

    def held() -> str:
        run, _, message = gate.open_approval("prod-api")
        assert gate.click(message, "U0ALICE", "approve") == 200
        wait_for(lambda: gate.approval_for(run["approvalToken"])["held"], what="the hold")
        return str(run["approvalToken"])

    def still_open() -> str:
        return str(gate.open_approval("prod-web")[0]["approvalToken"])

    with ThreadPoolExecutor(max_workers=7) as pool:
        singles = [
            pool.submit(approved, "prod-web", "U0ALICE"),
            pool.submit(approved, "prod-web", "U0BOB"),
            pool.submit(approved, "prod-db", "U0ALICE"),
            pool.submit(rejected),
            pool.submit(held),
        ]
        pair = pool.submit(expired_then_console)
        tokens = [future.result() for future in singles] + pair.result()
    tokens.append(still_open())  # the newest, so it lists last
    return tokens


def command(url: str, *args: str) -> str:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "functions")])}
    done = subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "cli", *args, "--sandbox", url],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout + done.stderr


COMMANDS = (
    ("audit",),
    ("audit", "--outcome", "rejected", "--format", "jsonl"),
    ("audit", "--pipeline", "staging-*", "--format", "csv"),
    ("pending",),
    ("pending", "--format", "jsonl"),
    ("stats",),
    ("stats", "--format", "csv"),
)


def main() -> int:
    try:
        server = SandboxServer(
            policy_file=POLICIES / "standard.yaml", port=8400, slack_fixture=SLACK_FIXTURE
        )
    except OSError:
        server = SandboxServer(
            policy_file=POLICIES / "standard.yaml", port=0, slack_fixture=SLACK_FIXTURE
        )
    server.start()
    gate = Gate(server)
    try:
        gate.client.post("/_sandbox/policy", policy(datetime.now(UTC)))
        tokens = mix(gate)
        for args in COMMANDS:
            output = command(server.url, *args)
            if any(token in output for token in tokens) or "xoxb-" in output:
                raise SystemExit(f"a token in the output of {shlex.join(args)}")
            print(f"```console\n$ approval-gate {shlex.join(args)} --sandbox {server.url}")
            print(output.rstrip("\n") + "\n```\n", flush=True)
    finally:
        # The open request and the long hold are left as they are: stop without waiting.
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
