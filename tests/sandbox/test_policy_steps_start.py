"""The sandbox and a policy with approval steps (issue 19): an impossible step stops it from
starting, naming the rule and the step; a valid one gives the fake Slack every step's
approvers, so a step's users and groups answer as they would in a real workspace.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from slack_sdk import WebClient

from sandbox.server import SandboxServer
from tests.conftest import start_sandbox

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "xoxb-sandbox-bot-token"

STEPS_POLICY = """\
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE]}
pipelines:
  - match: "prod-*"
    steps:
      - name: QA
        approvers: {users: [U0DAN], groups: [S0QA]}
      - name: Release
        approvers: {users: [U0ALICE, U0BOB, U0CAROL]}
        required_approvals: %d
"""
#: Release asks for 4 of its 3 users: no request could ever pass it.
IMPOSSIBLE_ERROR = (
    "pipelines[0].steps[1] (Release).required_approvals: 4 required but the step lists "
    "only 3 user(s) and no groups, so it could never complete"
)


@pytest.fixture
def impossible(tmp_path: Path) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(STEPS_POLICY % 4, encoding="utf-8")
    return path


def test_the_cli_refuses_to_start_with_an_impossible_step_and_says_which(
    impossible: Path,
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli", "sandbox", "--port", "0", "--policy", str(impossible)],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'functions'}"},
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert done.returncode == 2
    assert "sandbox ready" not in done.stdout
    assert done.stderr.strip() == (
        f"approval-gate: the policy is invalid: {impossible}: {IMPOSSIBLE_ERROR}"
    )


def test_the_sandbox_server_refuses_to_start_with_an_impossible_step(impossible: Path) -> None:
    from approval_gate.policy import PolicyError

    server = SandboxServer(policy_file=impossible, port=0)
    try:
        with pytest.raises(PolicyError) as caught:
            server.start()
    finally:
        server.stop()

    assert str(caught.value) == f"{impossible}: {IMPOSSIBLE_ERROR}"


def test_every_steps_approvers_exist_in_the_sandboxs_slack(tmp_path: Path) -> None:
    # Carol and the QA group are named only in steps: the gate looks them up in Slack
    # (users.info, usergroups.users.list) when they click, so the workspace must have them.
    policy = tmp_path / "policy.yaml"
    policy.write_text(STEPS_POLICY % 2, encoding="utf-8")
    server = start_sandbox(policy, fixture=None)
    try:
        slack = WebClient(token=TOKEN, base_url=f"{server.url}/slack/api/")
        for user in ("U0DAN", "U0ALICE", "U0BOB", "U0CAROL"):
            assert slack.users_info(user=user)["user"]["id"] == user
        members = slack.usergroups_users_list(usergroup="S0QA")["users"]
        assert "U0DAN" in members
    finally:
        server.stop()
