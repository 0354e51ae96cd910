"""`approval-gate doctor` against a real sandbox: every check passes on a healthy one, and
each fault, put in one at a time and taken out after, fails its check only, naming what is
wrong and the fix. Also a stack (CloudFormation through the sandbox's AWS endpoint), the
usage errors, and the CLI's lean imports."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from cli.main import main
from sandbox.client import SandboxClient
from sandbox.server import SandboxServer
from tests.cli.conftest import Ran

ROOT = Path(__file__).resolve().parents[2]
BOT_TOKEN = "xoxb-sandbox-bot-token"

#: A policy that names two channels, two user groups and (one rule) an alarm to check.
#: Its deadlines are short, so the runs the tests start end on their own.
POLICY = """\
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE], groups: [S0RELEASE]}
  deadline: 2s
  escalation: {channel: C0ONCALL, mention_groups: [S0ONCALL]}
pipelines:
  - match: "guarded-*"
    channel: C0DEPLOYS
    approvers: {users: [U0ALICE]}
    checks: {alarms: [prod-api-errors]}
"""
NAMES = [
    "stack outputs",
    "signing secret set",
    "Slack token",
    "bot in every policy channel",
    "user groups resolve",
    "pipelines notify the gate's topic",
    "EventBridge rules enabled",
    "the deployed policy loads",
]
PIPELINE_RULE = "PipelineEventsFunction-PipelineStateChange"
ALARM_RULE = "AlarmEventsFunction-AlarmStateChange"


class Sandbox:
    """The module's sandbox: its HTTP client, its AWS endpoint, and doctor run against it."""

    def __init__(self, server: SandboxServer) -> None:
        self.server = server
        self.url = server.url
        self.client = SandboxClient(server.url)
        self.aws = self.client.aws()
        self.session = boto3.Session(
            aws_access_key_id="sandbox",
            aws_secret_access_key="sandbox",
            region_name=self.aws["region"],
        )

    def boto(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.aws["endpoint_url"])

    def doctor(self, *more: str) -> Ran:
        out, err = io.StringIO(), io.StringIO()
        code = main(["doctor", "--sandbox", self.url, *more], stdout=out, stderr=err)
        ran = Ran(code, out.getvalue(), err.getvalue())
        # No secret ever reaches the output, whatever the checks found.
        secret = json.loads(
            self.boto("secretsmanager").get_secret_value(
                SecretId=self.aws["parameters"]["SlackSecretArn"]
            )["SecretString"]
        )
        for value in (BOT_TOKEN, secret.get("bot_token"), secret.get("signing_secret")):
            if value:
                assert value not in ran.out + ran.err
        return ran

    def checks(self) -> tuple[int, dict[str, dict[str, Any]]]:
        """doctor --format json: the exit code and each check by name (in doctor's order)."""
        ran = self.doctor("--format", "json")
        assert ran.err == ""
        document = json.loads(ran.out)
        assert [c["name"] for c in document["checks"]] == NAMES
        assert document["ok"] is all(c["ok"] for c in document["checks"])
        for check in document["checks"]:
            assert (check["fix"] is None) is check["ok"], check
        return ran.code, {c["name"]: c for c in document["checks"]}

    def assert_only_failing(self, *names: str) -> dict[str, dict[str, Any]]:
        code, checks = self.checks()
        assert code == 1
        assert sorted(n for n, c in checks.items() if not c["ok"]) == sorted(names), checks
        return checks


@pytest.fixture(scope="module")
def sandbox(sandbox_server: SandboxServer) -> Iterator[Sandbox]:
    box = Sandbox(sandbox_server)
    status, answer = _post_text(box.url, "/_sandbox/policy", POLICY)
    assert status == 200, answer
    # One pipeline whose approval notifies the gate. Its run ends at the 2 s deadline, here:
    # a run still open while a test below takes a scope away (or the bot out of a channel)
    # retried its closing for up to 30 s.
    box.client.start_run("short-web")
    assert box.server.sandbox.wait_for_executions(timeout=15)
    yield box


def _post_text(url: str, path: str, text: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    sent = urllib.request.Request(
        url + path, data=text.encode(), method="POST", headers={"Content-Type": "text/yaml"}
    )
    try:
        with urllib.request.urlopen(sent, timeout=10) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


# --------------------------------------------------------------------------- healthy


def test_every_check_passes_on_a_healthy_sandbox(sandbox: Sandbox) -> None:
    code, checks = sandbox.checks()

    assert code == 0, checks
    assert all(c["ok"] for c in checks.values())
    assert "C0DEPLOYS (#deploys)" in checks["bot in every policy channel"]["detail"]
    assert "C0ONCALL" in checks["bot in every policy channel"]["detail"]
    assert checks["user groups resolve"]["detail"] == "all 2 resolve: S0ONCALL, S0RELEASE"
    assert checks["pipelines notify the gate's topic"]["detail"].startswith(
        "1 pipeline checked: 1 manual approval action,"
    )
    assert checks["the deployed policy loads"]["detail"] == "1 pipeline rule besides the defaults"
    assert "bot @approval-gate" in checks["Slack token"]["detail"]


def test_the_table_has_one_line_per_check_with_its_mark(sandbox: Sandbox) -> None:
    ran = sandbox.doctor()

    assert (ran.code, ran.err) == (0, "")
    lines = ran.out.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"✅ {name}" for name in NAMES]

    sandbox.client.set_bot_member("C0ONCALL", False)
    try:
        ran = sandbox.doctor()
    finally:
        sandbox.client.set_bot_member("C0ONCALL", True)
    assert ran.code == 1
    lines = ran.out.splitlines()
    assert len(lines) == len(NAMES)
    failing = [line for line in lines if line.startswith("❌")]
    assert failing == [
        "❌ bot in every policy channel: C0ONCALL (#oncall): the bot is not a member "
        "→ fix: /invite @approval-gate in #oncall"
    ]


# --------------------------------------------------------------------------- each fault


def test_the_bot_out_of_a_policy_channel(sandbox: Sandbox) -> None:
    sandbox.client.set_bot_member("C0ONCALL", False)
    try:
        checks = sandbox.assert_only_failing("bot in every policy channel")
    finally:
        sandbox.client.set_bot_member("C0ONCALL", True)
    check = checks["bot in every policy channel"]
    assert "C0ONCALL" in check["detail"] and "not a member" in check["detail"]
    assert "C0DEPLOYS" not in check["detail"]
    assert check["fix"] == "/invite @approval-gate in #oncall"


def test_a_scope_missing(sandbox: Sandbox) -> None:
    before = sandbox.client.scopes()
    sandbox.client.set_scopes([s for s in before if s != "users:read.email"])
    try:
        checks = sandbox.assert_only_failing("Slack token")
    finally:
        sandbox.client.set_scopes(before)
    check = checks["Slack token"]
    assert check["detail"].endswith("the token lacks users:read.email")
    assert "users:read.email" in check["fix"] and "reinstall the app" in check["fix"]


def test_a_pipeline_whose_approval_notifies_another_topic(sandbox: Sandbox) -> None:
    elsewhere = "arn:aws:sns:us-east-1:123456789012:someone-elses-topic"
    sandbox.client.start_run("short-elsewhere", notification_arn=elsewhere)
    try:
        checks = sandbox.assert_only_failing("pipelines notify the gate's topic")
    finally:  # the pipeline as its next run declares it: notifying the gate again
        sandbox.client.start_run("short-elsewhere")
    check = checks["pipelines notify the gate's topic"]
    assert check["detail"] == f"short-elsewhere/Approval/Approve → notifies {elsewhere}"
    assert sandbox.aws["resources"]["ApprovalTopic"] in check["fix"]
    assert "Configuration.NotificationArn" in check["fix"]
    code, checks = sandbox.checks()
    assert code == 0, checks
    assert checks["pipelines notify the gate's topic"]["detail"].startswith("2 pipelines checked")


def test_a_secret_missing_a_key(sandbox: Sandbox) -> None:
    secrets = sandbox.boto("secretsmanager")
    arn = sandbox.aws["parameters"]["SlackSecretArn"]
    original = secrets.get_secret_value(SecretId=arn)["SecretString"]
    broken = {k: v for k, v in json.loads(original).items() if k != "signing_secret"}
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps(broken))
    try:
        checks = sandbox.assert_only_failing(
            "signing secret set",
            "Slack token",
            "bot in every policy channel",
            "user groups resolve",
        )
    finally:
        secrets.put_secret_value(SecretId=arn, SecretString=original)
    check = checks["signing secret set"]
    assert check["detail"] == f"secret {arn}: the Slack secret lacks signing_secret"
    assert "put-secret-value" in check["fix"]
    assert checks["Slack token"]["detail"] == "skipped: no Slack token"
    assert "signing secret set" in checks["Slack token"]["fix"]
    assert checks["bot in every policy channel"]["detail"] == "skipped: no working Slack token"


def test_a_policy_naming_a_channel_and_a_group_the_workspace_lacks(sandbox: Sandbox) -> None:
    # The sandbox adds the channels and groups of a policy put in force through its API;
    # a deployed policy that names ones the workspace lacks is made by writing the file
    # GET /_sandbox/aws serves.
    policy_file = sandbox.server.sandbox.policy_file
    original = policy_file.read_text(encoding="utf-8")
    policy_file.write_text(
        original.replace("C0ONCALL", "C0NOWHERE").replace("S0ONCALL", "S0NOBODY"),
        encoding="utf-8",
    )
    try:
        checks = sandbox.assert_only_failing("bot in every policy channel", "user groups resolve")
    finally:
        policy_file.write_text(original, encoding="utf-8")
    assert checks["bot in every policy channel"]["detail"] == "C0NOWHERE: channel_not_found"
    assert "C0NOWHERE" in checks["bot in every policy channel"]["fix"]
    assert checks["user groups resolve"]["detail"] == "S0NOBODY: no such user group"
    assert "S0NOBODY" in checks["user groups resolve"]["fix"]


def test_a_policy_that_does_not_load(sandbox: Sandbox) -> None:
    policy_file = sandbox.server.sandbox.policy_file
    original = policy_file.read_text(encoding="utf-8")
    policy_file.write_text(original.replace("deadline: 2s", "deadline: soon"), encoding="utf-8")
    try:
        checks = sandbox.assert_only_failing(
            "the deployed policy loads", "bot in every policy channel", "user groups resolve"
        )
    finally:
        policy_file.write_text(original, encoding="utf-8")
    assert "defaults.deadline" in checks["the deployed policy loads"]["detail"]
    assert checks["user groups resolve"]["detail"] == "skipped: the policy does not load"


def test_a_disabled_pipeline_events_rule(sandbox: Sandbox) -> None:
    events = sandbox.boto("events")
    events.disable_rule(Name=PIPELINE_RULE)
    try:
        checks = sandbox.assert_only_failing("EventBridge rules enabled")
    finally:
        events.enable_rule(Name=PIPELINE_RULE)
    check = checks["EventBridge rules enabled"]
    assert check["detail"].startswith(f"{PIPELINE_RULE} is DISABLED")
    assert check["fix"] == f"aws events enable-rule --name {PIPELINE_RULE}"


def test_a_deleted_rule(sandbox: Sandbox) -> None:
    events = sandbox.boto("events")
    rule = events.describe_rule(Name=PIPELINE_RULE)
    targets = events.list_targets_by_rule(Rule=PIPELINE_RULE)["Targets"]
    events.remove_targets(Rule=PIPELINE_RULE, Ids=[t["Id"] for t in targets])
    events.delete_rule(Name=PIPELINE_RULE)
    try:
        checks = sandbox.assert_only_failing("EventBridge rules enabled")
    finally:
        events.put_rule(Name=PIPELINE_RULE, EventPattern=rule["EventPattern"], State=rule["State"])
        events.put_targets(Rule=PIPELINE_RULE, Targets=targets)
    check = checks["EventBridge rules enabled"]
    assert check["detail"] == f"the rule {PIPELINE_RULE} does not exist"
    assert "template.yaml" in check["fix"]


def test_a_disabled_alarm_rule_fails_only_when_the_policy_checks_alarms(sandbox: Sandbox) -> None:
    events = sandbox.boto("events")
    policy_file = sandbox.server.sandbox.policy_file
    original = policy_file.read_text(encoding="utf-8")
    events.disable_rule(Name=ALARM_RULE)
    try:
        checks = sandbox.assert_only_failing("EventBridge rules enabled")
        policy_file.write_text(original.split("pipelines:")[0], encoding="utf-8")
        code, without_alarms = sandbox.checks()
    finally:
        policy_file.write_text(original, encoding="utf-8")
        events.enable_rule(Name=ALARM_RULE)
    check = checks["EventBridge rules enabled"]
    assert "prod-api-errors" in check["detail"]
    assert "HealthCheckAlarmArns" in check["fix"]
    assert code == 0, without_alarms
    assert (
        "DISABLED (the policy checks no alarms)"
        in (without_alarms["EventBridge rules enabled"]["detail"])
    )


# --------------------------------------------------------------------------- a stack


def test_a_stack_outputs_and_rules(sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> None:
    """--stack, read through CloudFormation (moto's, at the sandbox's endpoint): a stack
    missing an output and with its pipeline rule disabled fails those two checks."""
    rule = {"EventPattern": {"source": ["doctor.test"]}, "Name": "doctor-test-pipeline-rule"}
    template = {
        "Parameters": {"SlackSecretArn": {"Type": "String"}},
        "Resources": {
            "ApprovalTopic": {"Type": "AWS::SNS::Topic"},
            "PipelineEventsFunctionPipelineStateChange": {
                "Type": "AWS::Events::Rule",
                "Properties": {**rule, "State": "DISABLED"},
            },
            "AlarmEventsFunctionAlarmStateChange": {
                "Type": "AWS::Events::Rule",
                "Properties": {
                    "EventPattern": {"source": ["doctor.test"]},
                    "Name": "doctor-test-alarm-rule",
                    "State": "ENABLED",
                },
            },
        },
        "Outputs": {
            "ApprovalTopicArn": {"Value": {"Ref": "ApprovalTopic"}},
            "ApprovalsTableName": {"Value": "approvals"},
            "StateMachineArn": {"Value": "arn:aws:states:us-east-1:123456789012:stateMachine:x"},
        },
    }
    cloudformation = sandbox.boto("cloudformation")
    cloudformation.create_stack(
        StackName="doctor-test",
        TemplateBody=json.dumps(template),
        # A secret that does not exist: no Slack check runs, so nothing leaves the host.
        Parameters=[{"ParameterKey": "SlackSecretArn", "ParameterValue": "no-such-secret"}],
    )
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", sandbox.aws["endpoint_url"])
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "sandbox")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "sandbox")
    try:
        out, err = io.StringIO(), io.StringIO()
        code = main(
            [
                "doctor",
                "--stack",
                "doctor-test",
                "--region",
                sandbox.aws["region"],
                "--format",
                "json",
            ],
            stdout=out,
            stderr=err,
        )
    finally:
        cloudformation.delete_stack(StackName="doctor-test")
    assert (code, err.getvalue()) == (1, "")
    checks = {c["name"]: c for c in json.loads(out.getvalue())["checks"]}
    outputs = checks["stack outputs"]
    assert not outputs["ok"]
    assert (
        outputs["detail"]
        == "stack doctor-test (CREATE_COMPLETE) has no output SlackInteractivityUrl"
    )
    rules = checks["EventBridge rules enabled"]
    assert rules["detail"].startswith("doctor-test-pipeline-rule is DISABLED")
    assert "doctor-test-alarm-rule" not in rules["detail"]
    assert checks["signing secret set"]["detail"] == "secret no-such-secret does not exist"
    assert checks["Slack token"]["detail"] == "skipped: no Slack token"
    assert checks["the deployed policy loads"]["detail"].endswith("the stack has no PolicyLayer")


# --------------------------------------------------------------------------- usage errors


def _one_line(argv: list[str]) -> Ran:
    out, err = io.StringIO(), io.StringIO()
    code = main(argv, stdout=out, stderr=err)
    ran = Ran(code, out.getvalue(), err.getvalue())
    assert (ran.code, ran.out) == (2, "")
    assert ran.err.startswith("approval-gate doctor: ") and ran.err.count("\n") == 1, ran.err
    assert "Traceback" not in ran.err
    return ran


def test_a_sandbox_that_does_not_answer_is_one_line_and_exit_2() -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ran = _one_line(["doctor", "--sandbox", f"http://127.0.0.1:{port}"])
    assert "does not answer" in ran.err


def test_where_the_gate_is_must_be_said_once() -> None:
    assert "say where the gate is" in _one_line(["doctor"]).err
    both = _one_line(["doctor", "--stack", "s", "--sandbox", "http://127.0.0.1:1"])
    assert "not both" in both.err


def test_an_unknown_format_is_a_usage_error() -> None:
    with pytest.raises(SystemExit) as exited:
        main(["doctor", "--sandbox", "http://127.0.0.1:1", "--format", "csv"], stderr=io.StringIO())
    assert exited.value.code == 2


# --------------------------------------------------------------------------- lean imports


def test_the_cli_imports_no_sandbox_until_it_runs_one() -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "functions"), str(ROOT)])}
    code = (
        "import sys, cli.main; "
        "print(sorted(m for m in ('sandbox.engine', 'sandbox.run', 'moto') if m in sys.modules))"
    )
    shown = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    )
    assert shown.stdout.strip() == "[]"


def test_sandbox_help_shows_its_real_defaults() -> None:
    from cli.main import DEFAULT_POLICY_HELP, DEFAULT_SIGNING_SECRET_HELP
    from sandbox.engine import DEFAULT_SIGNING_SECRET
    from sandbox.engine import ROOT as SANDBOX_ROOT
    from sandbox.run import DEFAULT_POLICY

    assert DEFAULT_SIGNING_SECRET_HELP == DEFAULT_SIGNING_SECRET
    assert DEFAULT_POLICY_HELP.split()[0] == DEFAULT_POLICY.relative_to(SANDBOX_ROOT).as_posix()


# --------------------------------------------------------------------------- without a sandbox


class _Clients:
    """A boto3 session stand-in whose ``lambda`` client answers GetLayerVersionByArn."""

    def __init__(self, location: str) -> None:
        self.location = location
        self.asked: list[str] = []

    def client(self, service: str, endpoint_url: str | None = None) -> Any:
        assert service == "lambda"
        return self

    def get_layer_version_by_arn(self, Arn: str) -> dict[str, Any]:
        self.asked.append(Arn)
        return {"Content": {"Location": self.location}}


def _stack_facts(location: str) -> tuple[Any, _Clients]:
    from cli.doctor import Facts
    from cli.target import Deployment

    clients = _Clients(location)
    layer = "arn:aws:lambda:us-east-1:123456789012:layer:PolicyLayer:7"
    deployment = Deployment(
        where="stack gate",
        session=clients,
        endpoint_url=None,
        parameters={},
        stack="gate",
        resources={"PolicyLayer": layer},
    )
    return Facts(deployment), clients


def _layer_zip(files: dict[str, str]) -> bytes:
    import zipfile

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


def test_a_stacks_policy_is_read_from_its_policy_layer(monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import doctor_aws

    opened: list[str] = []

    def urlopen(url: str, timeout: float) -> io.BytesIO:
        opened.append(url)
        return io.BytesIO(_layer_zip({"policy.yaml": POLICY}))

    monkeypatch.setattr(doctor_aws.urllib.request, "urlopen", urlopen)
    facts, clients = _stack_facts("https://awslambda.example/layer.zip?signed")

    doctor_aws.load_deployed_policy(facts)
    check = doctor_aws.check_policy(facts)

    assert clients.asked == ["arn:aws:lambda:us-east-1:123456789012:layer:PolicyLayer:7"]
    assert opened == ["https://awslambda.example/layer.zip?signed"]
    assert (check.ok, check.detail) == (True, "1 pipeline rule besides the defaults")


@pytest.mark.parametrize(
    ("location", "files", "said"),
    [
        ("http://awslambda.example/layer.zip", None, "no https download location"),
        ("https://awslambda.example/layer.zip", {"other.yaml": "x"}, "has no policy.yaml"),
        ("https://awslambda.example/layer.zip", {"policy.yaml": "defaults: {}"}, "channel"),
    ],
)
def test_a_policy_layer_that_cannot_be_read_or_loaded(
    monkeypatch: pytest.MonkeyPatch, location: str, files: dict[str, str] | None, said: str
) -> None:
    from cli import doctor_aws

    def urlopen(url: str, timeout: float) -> io.BytesIO:
        assert files is not None, "an http:// location is never opened"
        return io.BytesIO(_layer_zip(files))

    monkeypatch.setattr(doctor_aws.urllib.request, "urlopen", urlopen)
    facts, _ = _stack_facts(location)

    doctor_aws.load_deployed_policy(facts)
    check = doctor_aws.check_policy(facts)

    assert not check.ok
    assert said in check.detail
    unreadable = files is None or "policy.yaml" not in files
    assert ("lambda:GetLayerVersion" in str(check.fix)) is unreadable
    assert ("config/policy.yaml" in str(check.fix)) is not unreadable


class _FreeWorkspace:
    """A WebClient stand-in for a workspace on Slack's free plan (no user groups)."""

    def usergroups_users_list(self, usergroup: str) -> Any:
        from slack_sdk.errors import SlackApiError

        raise SlackApiError("free plan", {"ok": False, "error": "plan_upgrade_required"})


def test_a_free_workspace_says_user_groups_need_a_paid_plan() -> None:
    from approval_gate.policy import load_policy

    from cli.doctor import Facts
    from cli.doctor_slack import check_groups

    facts = Facts(deployment=None, slack=_FreeWorkspace(), policy=load_policy(POLICY))  # type: ignore[arg-type]

    check = check_groups(facts)

    assert not check.ok
    assert "S0ONCALL: plan_upgrade_required (a free workspace has no groups)" in check.detail
    assert check.fix == "name the approvers as users (approvers.users) in the policy"


def test_policy_channels_lists_every_channel_a_policy_names() -> None:
    from approval_gate.policy import load_policy, policy_channels

    policy = load_policy(
        POLICY
        + """\
  - match: "prod-*"
    channel: C0PROD
    status_channel: C0FEED
    approvers: {users: [U0ALICE]}
    escalation: {channel: C0PAGER}
"""
    )

    assert policy_channels(policy) == {"C0DEPLOYS", "C0ONCALL", "C0PROD", "C0FEED", "C0PAGER"}
