"""The `approval-gate` command as a user runs it."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from sandbox.client import SandboxClient, wait_for
from tests.conftest import POLICIES, start_sandbox

ROOT = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "cli"]


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"}


def test_sandbox_prints_its_ready_line_and_serves_until_terminated(tmp_path):
    fixture = tmp_path / "slack.json"
    fixture.write_text(json.dumps({"users": [{"id": "U0CAROL", "name": "carol"}]}))
    process = subprocess.Popen(
        [
            *CLI,
            "sandbox",
            "--port",
            "0",
            "--policy",
            str(ROOT / "tests/policies/standard.yaml"),
            "--slack-fixture",
            str(fixture),
            "--signing-secret",
            "s3cret",
        ],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = process.stdout.readline()
        match = re.fullmatch(r"sandbox ready on (http://127\.0\.0\.1:\d+)\n", line)
        assert match, line
        with urllib.request.urlopen(match.group(1) + "/_sandbox/slack/workspace", timeout=5) as r:
            users = {u["id"] for u in json.loads(r.read())["users"]}
        assert {"U0ALICE", "U0CAROL"} <= users
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
    assert process.returncode == 0


def test_sandbox_refuses_an_invalid_policy_with_a_clear_error(tmp_path):
    policy = tmp_path / "policy.yaml"
    policy.write_text("defaults:\n  channel: not-a-channel\n  approvers: {users: [U0ALICE]}\n")

    done = subprocess.run(
        [*CLI, "sandbox", "--port", "0", "--policy", str(policy)],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "defaults.channel" in done.stderr


def test_demo_shows_codepipeline_recording_the_decision():
    approve = subprocess.run(
        [*CLI, "demo"], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120
    )
    reject = subprocess.run(
        [*CLI, "demo", "--decision", "reject"],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )

    assert approve.returncode == 0, approve.stderr
    assert (
        approve.stdout.strip()
        .splitlines()[-1]
        .startswith("CodePipeline recorded Approved by U0ALICE")
    )
    assert "Slack request posted" in approve.stdout and "closed in place" in approve.stdout
    assert reject.returncode == 0, reject.stderr
    assert "CodePipeline recorded Rejected" in reject.stdout


def test_a_second_scale_policy_shows_reminders_escalation_and_expiry_over_http():
    process = subprocess.Popen(
        [*CLI, "sandbox", "--port", "0", "--policy", str(ROOT / "tests/policies/reminders.yaml")],
        cwd=ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = re.fullmatch(r"sandbox ready on (\S+)\n", process.stdout.readline()).group(1)
        client = SandboxClient(url)
        client.start_run("web-app", customData="second-scale waiting")

        def expired():
            messages = client.messages()
            closed = [m for m in messages if (m["text"] or "").startswith("Expired")]
            return messages if closed else None

        messages = wait_for(expired, timeout=30, what="the request to expire")
    finally:
        process.send_signal(signal.SIGTERM)
        # Stopping first delivers the queued status-feed events (bounded at 30 s), so a
        # busy machine may take that long; the exit code says it stopped cleanly.
        assert process.wait(timeout=45) == 0

    texts = [m["text"] or "" for m in messages]
    assert sum(t.startswith(":bell: Reminder") for t in texts) >= 3
    assert sum(m["channel"] == "C0ONCALL" for m in messages) == 1
    assert any(
        "No decision within 6s: rejected by policy" in json.dumps(m["blocks"]) for m in messages
    )


def test_stopping_lets_the_status_feed_reach_slack_before_the_port_closes():
    """What the CLI does on Ctrl-C or SIGTERM (SandboxServer.stop) right after a pipeline
    run starts: the status feed's events still queued are delivered while the fake Slack
    answers, instead of each retrying a closed port (which once held a stop past 20 s)."""
    server = start_sandbox(POLICIES / "standard.yaml")
    try:
        SandboxClient(server.url).start_run("web-app")
    finally:
        server.stop()

    # Not told apart by function_name: the functions share one logger in one interpreter
    # here, so a line may carry another function's context.
    lines = [json.loads(line) for line in server.sandbox.logs.lines if line.startswith("{")]
    assert "posted the pipeline execution's message" in [line["message"] for line in lines]
    assert [line["message"] for line in lines if line["level"] != "INFO"] == []


def test_the_sandbox_takes_a_burst_of_connections_at_once():
    """200 pipeline runs started at once open 200 connections together. The kernel holds
    only the server's listen backlog of them until the server accepts; past werkzeug's
    128 it dropped the rest, and each such client waited a second or more to retry."""
    import socket

    from sandbox.server import SandboxServer

    server = SandboxServer(policy_file=POLICIES / "standard.yaml", port=0)  # not accepting
    clients: list[socket.socket] = []
    try:
        for _ in range(300):
            client = socket.create_connection(("127.0.0.1", server.port), timeout=0.5)
            clients.append(client)
    finally:
        for client in clients:
            client.close()
        server._server.server_close()
    assert len(clients) == 300


def test_the_installed_command_runs_from_any_directory_without_pythonpath(tmp_path):
    """`make demo` runs the venv's `approval-gate` script: every package it imports (the
    domain in functions/ too) must be installed, not found through PYTHONPATH or the cwd."""
    script = Path(sys.executable).with_name("approval-gate")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    for command in (["--help"], ["audit", "--help"], ["doctor", "--help"]):
        done = subprocess.run(
            [str(script), *command], cwd=tmp_path, env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr
        assert "usage: approval-gate" in done.stdout
