"""`approval-gate setup` against a real sandbox, in process, with the Slack tokens in
environment variables and no terminal: the whole `--try` flow to a request in the fake
Slack, a re-run that finds everything done, a failure in the middle and the re-run after
its fix, a wrong token, `--dry-run`, missing flags, the App Manifest API; on AWS (moto at
the sandbox's endpoint) the printed deploy with `--dry-run`; and the policy file's plan."""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli import setup_steps
from cli.main import main
from cli.setup_policy import FOREIGN, FOUND, MARKER, WRITE, plan_policy
from sandbox.client import SandboxClient, request_message
from sandbox.server import SandboxServer
from tests.cli.conftest import Ran

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-sandbox-bot-token"
SIGNING_SECRET = "sandbox-signing-secret"
CONFIG_TOKEN = "xoxe.xoxp-sandbox-config-token"
EXAMPLE = "approval-gate-example-Pipeline-sandbox"
#: Two people the sandbox's policy does not name, known to the fake workspace by email.
SLACK_FIXTURE = {
    "users": [
        {"id": "U0DANA", "name": "dana", "real_name": "Dana", "email": "dana@example.com"},
        {"id": "U0ERIN", "name": "erin", "real_name": "Erin", "email": "erin@example.com"},
    ],
    "groups": [],
}
APPROVERS = "dana@example.com,erin@example.com"
STEPS = [
    "prerequisites",
    "Slack tokens",
    "Slack secret",
    "channel",
    "approvers",
    "policy",
    "build and deploy",
    "interactivity URL",
    "doctor",
    "try",
]


class Box:
    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.client = SandboxClient(server.url)
        aws = self.client.aws()
        self.first_policy = str(aws["policy"])
        self.secret_arn = aws["parameters"]["SlackSecretArn"]
        self.secrets = boto3.Session(
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            region_name=aws["region"],
        ).client("secretsmanager", endpoint_url=aws["endpoint_url"])

    def secret(self) -> tuple[str, str]:
        found = self.secrets.get_secret_value(SecretId=self.secret_arn)
        return found["VersionId"], found["SecretString"]

    def policy(self) -> str:
        return str(self.client.aws()["policy"])

    def setup(self, *more: str, sandbox: bool = True) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        argv = ["setup", *(["--sandbox", self.url] if sandbox else []), *more]
        code = main(argv, stdout=out, stderr=err)
        ran = Ran(code, out.getvalue(), err.getvalue())
        for secret in (BOT_TOKEN, SIGNING_SECRET, CONFIG_TOKEN, "xoxb-wrong"):
            assert secret not in ran.out + ran.err
        return ran

    def stop_example_runs(self) -> None:
        for approval in self.client.approvals():
            if approval["pipeline"] == EXAMPLE and not approval.get("outcome"):
                execution = approval["pipeline_execution_id"]
                self.client.post(f"/_sandbox/pipelines/{EXAMPLE}/executions/{execution}/stop")
        assert self.server.sandbox.wait_for_executions(timeout=30)


def marks(ran: Ran) -> dict[str, str]:
    """Each step's line by its name: ``✓``, ``→`` or ``✗`` and the text."""
    found: dict[str, str] = {}
    for line in ran.out.splitlines():
        mark, _, rest = line.partition(" ")
        step, _, text = rest.partition(": ")
        if mark in ("✓", "→", "✗") and step in STEPS:
            found[step] = f"{mark} {text}"
    return found


@pytest.fixture(scope="module")
def box(sandbox_server: SandboxServer) -> Box:
    return Box(sandbox_server)


@pytest.fixture
def fresh(box: Box, monkeypatch: pytest.MonkeyPatch) -> Iterator[Box]:
    """Each test from the sandbox as it started: its policy, the bot in #deploys, no
    open trial run; the Slack tokens in the environment, and no terminal."""
    monkeypatch.setenv("SLACK_BOT_TOKEN", BOT_TOKEN)
    monkeypatch.setenv("SLACK_SIGNING_SECRET", SIGNING_SECRET)
    monkeypatch.delenv("SLACK_CONFIG_TOKEN", raising=False)
    monkeypatch.setattr("cli.setup._is_terminal", lambda: False)
    box.client.set_policy(box.first_policy)
    box.client.set_bot_member("C0DEPLOYS", True)
    yield box
    box.stop_example_runs()
    box.client.reset()


def open_requests(box: Box) -> list[dict[str, Any]]:
    return [a for a in box.client.approvals() if a["pipeline"] == EXAMPLE and a["outcome"] is None]


def the_request(box: Box) -> dict[str, Any]:
    """The trial run's request, open, and its message in #deploys."""
    [record] = open_requests(box)
    message = request_message(box.client.messages(), record["approval_id"])
    assert message is not None and message["channel"] == "C0DEPLOYS"
    return record


# --------------------------------------------------------------------------- the whole flow


def test_setup_try_reaches_a_request_in_one_command_and_a_rerun_finds_it_all(fresh: Box) -> None:
    ran = fresh.setup("--try", "--channel", "deploys", "--approvers", APPROVERS)
    assert (ran.code, ran.err) == (0, ""), ran.out
    lines = marks(ran)
    assert list(lines) == STEPS
    assert all(line.startswith("✓") for line in lines.values()), lines
    assert "C0DEPLOYS" in lines["channel"]
    assert lines["approvers"] == "✓ dana@example.com is U0DANA, erin@example.com is U0ERIN"
    assert "four-eyes would refuse your own Approve" in ran.out
    assert "✅ bot in every policy channel" in ran.out  # doctor's table
    assert ran.out.rstrip().splitlines()[-1].endswith("with 0 inputs from you")
    # The policy in force names the channel and the approvers, and the trial rule.
    policy = fresh.policy()
    assert "channel: C0DEPLOYS" in policy and "users: [U0DANA, U0ERIN]" in policy
    assert '"approval-gate-example-Pipeline-*"' in policy
    the_request(fresh)

    again = fresh.setup("--try", "--channel", "#deploys", "--approvers", APPROVERS)
    assert again.code == 0, again.out
    lines = marks(again)
    assert "found" in lines["Slack secret"] and "found" in lines["policy"]
    assert lines["try"].startswith("✓ found an open request")
    the_request(fresh)  # still the one request: no second run


def test_a_failure_in_the_middle_stops_and_a_rerun_after_the_fix_completes(fresh: Box) -> None:
    fresh.client.set_bot_member("C0DEPLOYS", False)
    ran = fresh.setup("--try", "--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 1
    lines = marks(ran)
    assert list(lines) == STEPS[:4]
    assert lines["channel"] == (
        "✗ the bot is not a member of #deploys (C0DEPLOYS) → fix: /invite @approval-gate in "
        "#deploys, then run setup again"
    )
    assert fresh.policy() == fresh.first_policy  # nothing after the failure ran
    fresh.client.set_bot_member("C0DEPLOYS", True)
    again = fresh.setup("--try", "--channel", "deploys", "--approvers", APPROVERS)
    assert again.code == 0, again.out
    the_request(fresh)


def test_a_wrong_bot_token_stores_nothing(fresh: Box, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SLACK_BOT_TOKEN", "xoxb-wrong")
    before = fresh.secret()
    ran = fresh.setup("--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 1
    assert marks(ran)["Slack tokens"].startswith(
        "✗ auth.test answered invalid_auth → fix: set SLACK_BOT_TOKEN to the app's Bot User"
    )
    assert fresh.secret() == before
    assert fresh.policy() == fresh.first_policy


def test_an_unknown_approver_email_is_named(fresh: Box) -> None:
    ran = fresh.setup("--channel", "deploys", "--approvers", "dana@example.com,nobody@example.com")
    assert ran.code == 1
    assert marks(ran)["approvers"].startswith("✗ no Slack user has the email nobody@example.com")


def test_dry_run_changes_nothing(fresh: Box, tmp_path: Path) -> None:
    temporary = set(Path(tempfile.gettempdir()).glob("approval-gate-setup-policy-*"))
    before = (fresh.secret(), fresh.policy(), fresh.client.messages(), fresh.client.approvals())
    ran = fresh.setup("--try", "--dry-run", "--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 0, ran.out
    lines = marks(ran)
    assert list(lines) == STEPS
    assert lines["policy"].startswith("→ would write the sandbox's policy in force")
    assert lines["try"].startswith(f"→ would start one run of {EXAMPLE}")
    assert lines["doctor"] == f"→ would run approval-gate doctor --sandbox {fresh.url}"
    assert "dry run done: nothing was changed" in ran.out
    after = (fresh.secret(), fresh.policy(), fresh.client.messages(), fresh.client.approvals())
    assert after == before
    assert set(Path(tempfile.gettempdir()).glob("approval-gate-setup-policy-*")) == temporary


def test_no_terminal_and_a_missing_flag_or_variable(
    fresh: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    ran = fresh.setup("--approvers", APPROVERS)
    assert ran.code == 1
    assert marks(ran)["channel"] == (
        "✗ no channel given → fix: pass --channel NAME (no terminal to ask in)"
    )
    monkeypatch.delenv("SLACK_SIGNING_SECRET")
    ran = fresh.setup("--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 1
    assert marks(ran)["Slack tokens"].startswith(
        "✗ no Slack signing secret → fix: set SLACK_SIGNING_SECRET"
    )


def test_the_interactivity_url_through_the_app_manifest_api(
    fresh: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"{fresh.url}/slack/interactions"
    monkeypatch.setenv("SLACK_CONFIG_TOKEN", BOT_TOKEN)  # a bot token is not a config token
    ran = fresh.setup("--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 1
    assert marks(ran)["interactivity URL"].startswith(
        "✗ the App Manifest API answered not_allowed_token_type → fix: SLACK_CONFIG_TOKEN must"
    )
    monkeypatch.setenv("SLACK_CONFIG_TOKEN", CONFIG_TOKEN)
    ran = fresh.setup("--channel", "deploys", "--approvers", APPROVERS)
    assert ran.code == 0, ran.out
    assert marks(ran)["interactivity URL"] == f"✓ set app A0SANDBOX's Request URL to {url}"
    app = fresh.client.slack_app()
    assert app["request_url"] == url
    assert app["manifest"]["oauth_config"]["scopes"]["bot"]  # the rest kept as it was
    again = fresh.setup("--channel", "deploys", "--approvers", APPROVERS)
    assert marks(again)["interactivity URL"].startswith("✓ found: app A0SANDBOX already")


# --------------------------------------------------------------------------- AWS, printed


def test_on_aws_dry_run_prints_the_deploy_without_any_secret(
    fresh: Box, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """--stack through moto (the sandbox's endpoint) and the fake Slack as slack.com: the
    printed sam deploy names the secret's ARN, never a token; the policy file stays."""
    aws = fresh.client.aws()
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    monkeypatch.setattr(setup_steps, "SLACK_API_URL", aws["slack_api_url"])
    monkeypatch.setattr(setup_steps.shutil, "which", lambda name: f"/usr/bin/{name}")
    policy_file = tmp_path / "policy.yaml"
    shipped = (ROOT / "config" / "policy.yaml").read_text(encoding="utf-8")
    policy_file.write_text(shipped, encoding="utf-8")
    argv = ["--stack", "setup-dry", "--region", aws["region"], "--try", "--dry-run"]
    ran = fresh.setup(
        *argv,
        "--channel",
        "deploys",
        "--approvers",
        APPROVERS,
        "--policy-file",
        str(policy_file),
        sandbox=False,
    )
    assert ran.code == 0, ran.out + ran.err
    lines = marks(ran)
    deploy = lines["build and deploy"]
    assert deploy.startswith(
        "→ would run make build, then /usr/bin/sam deploy --stack-name setup-dry"
    )
    assert f"--parameter-overrides SlackSecretArn={fresh.secret_arn}" in deploy
    assert "--save-params" in deploy and "--no-confirm-changeset" in deploy
    assert lines["policy"].startswith(f"→ would write {policy_file} (the placeholder policy)")
    assert "ApprovalTopicArn=" in lines["try"]
    assert lines["interactivity URL"].startswith("→ would set the stack output")
    assert policy_file.read_text(encoding="utf-8") == shipped


# --------------------------------------------------------------------------- the policy's plan


def test_the_policy_plan_writes_over_the_placeholder_keeping_its_header() -> None:
    shipped = (ROOT / "config" / "policy.yaml").read_text(encoding="utf-8")
    people = {"dana@example.com": "U0DANA"}
    plan = plan_policy(shipped, channel="C0REAL", channel_name="rel", approvers=people, trial=True)
    assert plan.action == WRITE
    assert plan.text.startswith(shipped.split("\n\n", 1)[0])  # the comment header, kept
    assert MARKER in plan.text and "channel: C0REAL" in plan.text
    # Written once, it is found; with another channel, rewritten (it is setup's own).
    again = plan_policy(
        plan.text, channel="C0REAL", channel_name="rel", approvers=people, trial=True
    )
    assert again.action == FOUND
    other = plan_policy(
        plan.text, channel="C0OTHER", channel_name="o", approvers=people, trial=False
    )
    assert other.action == WRITE and other.text.count(MARKER) == 1
    # Someone's own policy is never written over.
    own = "defaults:\n  channel: C0THEIRS\n  approvers: {users: [U0THEM]}\n"
    assert (
        plan_policy(own, channel="C0REAL", channel_name="rel", approvers=people, trial=False).action
        == FOREIGN
    )


def test_the_policy_plan_writes_the_language_asked_for_and_finds_it_only_in_it() -> None:
    from approval_gate.policy import load_policy

    people = {"dana@example.com": "U0DANA"}
    asked = {"channel": "C0REAL", "channel_name": "rel", "approvers": people, "trial": False}
    english = plan_policy(None, **asked)
    assert load_policy(english.text).resolve("web").language == "en"
    vietnamese = plan_policy(english.text, **asked, language="vi")
    assert vietnamese.action == WRITE  # setup's own file, in another language: rewritten
    assert load_policy(vietnamese.text).resolve("web").language == "vi"
    assert load_policy(vietnamese.text).resolve("prod-web").language == "vi"
    assert plan_policy(vietnamese.text, **asked, language="vi").action == FOUND


def test_setup_in_vietnamese_puts_the_language_in_force(fresh: Box) -> None:
    ran = fresh.setup("--channel", "deploys", "--approvers", APPROVERS, "--language", "vi")
    assert (ran.code, ran.err) == (0, ""), ran.out
    assert "language: vi" in fresh.policy()


def test_children_get_no_slack_token_in_their_environment() -> None:
    """make build and sam deploy run with this environment minus the Slack variables."""
    import argparse

    from cli.setup import Console

    args = argparse.Namespace(stack=None, dry_run=False)
    env = {"PATH": "/usr/bin", "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": "s"}
    env["SLACK_CONFIG_TOKEN"] = CONFIG_TOKEN
    setup = setup_steps.Setup.start(
        args, Console(io.StringIO(), io.StringIO(), interactive=False), env
    )
    assert setup.child_env() == {"PATH": "/usr/bin"}
    assert BOT_TOKEN not in repr(setup)


def test_in_a_terminal_it_asks_for_what_is_missing_and_counts_the_answers(
    fresh: Box, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No flags, no variables: four answers (two without echo) in the sandbox, where the
    interactivity URL counts as set; the tokens typed never show."""
    for name in ("SLACK_BOT_TOKEN", "SLACK_SIGNING_SECRET"):
        monkeypatch.delenv(name)
    monkeypatch.setattr("cli.setup._is_terminal", lambda: True)
    secrets = iter([BOT_TOKEN, SIGNING_SECRET])
    asked: list[str] = []

    def without_echo(prompt: str) -> str:
        asked.append(prompt)
        return next(secrets)

    monkeypatch.setattr("getpass.getpass", without_echo)
    monkeypatch.setattr("sys.stdin", io.StringIO("#deploys\ndana@example.com\n"))
    ran = fresh.setup()
    assert ran.code == 0, ran.out
    assert asked == ["Slack Bot User OAuth Token (xoxb-…): ", "Slack app's Signing Secret: "]
    assert "Slack channel for requests: " in ran.out
    assert ran.out.rstrip().splitlines()[-1].endswith("with 4 inputs from you")
