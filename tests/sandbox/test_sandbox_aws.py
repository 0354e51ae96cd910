"""The sandbox's AWS APIs and Slack as tools outside it see them (DESIGN §8.6, §8.7).

``GET /_sandbox/aws`` names moto in server mode on 127.0.0.1, on the very backends the
sandbox runs on: boto3 with ``endpoint_url`` (from this process, while the sandbox's
``mock_aws`` is active, and from another process) reads what the gate wrote, the resources
the template made, and the fake CodePipeline's pipelines (ListPipelines, GetPipeline and the
topic each approval notifies). slack_sdk with ``base_url=slack_api_url`` sees the bot
token's scopes, ``missing_scope``, and the bot's channel membership.
"""

from __future__ import annotations

import hmac
import json
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from approval_gate.policy import load_policy
from moto.sns.models import sns_backends
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.aws_endpoint import AwsEndpoint, AwsEndpointError
from sandbox.client import SandboxClient, has_buttons
from sandbox.engine import ACCOUNT, BOT_TOKEN, REGION
from sandbox.fake_slack import manifest_bot_scopes
from sandbox.server import SandboxServer
from tests.conftest import Gate
from tests.sandbox.botocore_shapes import response_problems

ROOT = Path(__file__).resolve().parents[2]
MANIFEST_SCOPES = list(manifest_bot_scopes(ROOT / "slack-app-manifest.yaml"))


@pytest.fixture
def client(sandbox_server: SandboxServer) -> Iterator[SandboxClient]:
    client = SandboxClient(sandbox_server.url)
    client.reset()
    yield client
    client.reset()


@pytest.fixture
def aws(client: SandboxClient) -> dict[str, Any]:
    return client.aws()


def _boto(aws: dict[str, Any], service: str) -> Any:
    return boto3.client(
        service,
        endpoint_url=aws["endpoint_url"],
        region_name=aws["region"],
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _over_http(response: dict[str, Any]) -> bool:
    """The answer came from the endpoint's HTTP server (werkzeug), not moto in process."""
    headers = response["ResponseMetadata"]["HTTPHeaders"]
    return "werkzeug" in headers.get("server", "").lower()


def _slack(aws: dict[str, Any]) -> WebClient:
    return WebClient(token=BOT_TOKEN, base_url=aws["slack_api_url"], timeout=5)


# --- GET /_sandbox/aws ------------------------------------------------------------------------


def test_the_description_names_a_loopback_endpoint_the_template_s_resources_and_slack(
    aws: dict[str, Any], sandbox_server: SandboxServer
) -> None:
    assert set(aws) == {
        "endpoint_url",
        "region",
        "resources",
        "parameters",
        "slack_api_url",
        "policy",
    }
    assert aws["endpoint_url"].startswith("http://127.0.0.1:")
    assert aws["endpoint_url"] != sandbox_server.url
    assert aws["region"] == REGION
    resources = aws["resources"]
    assert resources["ApprovalsTable"] == sandbox_server.sandbox.table_name
    assert resources["ApprovalStateMachine"] == sandbox_server.sandbox.state_machine_arn
    assert resources["ApprovalTopic"] == sandbox_server.sandbox.topic_arn
    assert resources["FallbackTopic"].startswith(f"arn:aws:sns:{REGION}:{ACCOUNT}:")
    assert resources["StartApprovalFunction"] == "StartApprovalFunction"
    # SAM names an EventBridgeRule event's rule after its function and event.
    assert resources["PipelineEventsFunctionPipelineStateChange"]
    assert aws["parameters"]["SlackSecretArn"].startswith(
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
    )
    assert aws["parameters"]["RetentionDays"] == "400"  # the template's default
    assert aws["slack_api_url"] == f"{sandbox_server.url}/slack/api/"


def test_the_policy_is_the_document_in_force_and_loads(
    aws: dict[str, Any], sandbox_server: SandboxServer
) -> None:
    assert aws["policy"] == sandbox_server.sandbox.policy_file.read_text(encoding="utf-8")
    policy = load_policy(aws["policy"])
    assert policy.defaults["channel"] == "C0DEPLOYS"


# --- boto3 through endpoint_url ---------------------------------------------------------------


def test_the_endpoint_reads_the_approval_the_gate_wrote(gate: Gate, aws: dict[str, Any]) -> None:
    run = gate.start_run("short-endpoint")  # a 2 s deadline: the run ends on its own
    record = gate.approval_for(run["approvalToken"])
    dynamodb = _boto(aws, "dynamodb")
    table = aws["resources"]["ApprovalsTable"]

    scanned = dynamodb.scan(TableName=table)
    assert _over_http(scanned), "the in-process mock answered instead of the endpoint"
    ids = [item["approval_id"]["S"] for item in scanned["Items"] if "approval_id" in item]
    assert record["approval_id"] in ids
    key_schema = dynamodb.describe_table(TableName=table)["Table"]["KeySchema"]
    [hash_key] = [k["AttributeName"] for k in key_schema if k["KeyType"] == "HASH"]
    [item] = [
        i for i in scanned["Items"] if i.get("approval_id", {}).get("S") == record["approval_id"]
    ]
    got = dynamodb.get_item(TableName=table, Key={hash_key: item[hash_key]})["Item"]
    assert got["pipeline_execution_id"]["S"] == run["pipelineExecutionId"]


def test_another_process_reads_the_same_backends(gate: Gate, aws: dict[str, Any]) -> None:
    run = gate.start_run("short-elsewhere")
    record = gate.approval_for(run["approvalToken"])
    script = """
import json, sys
import boto3
aws = json.loads(sys.argv[1])
kw = dict(endpoint_url=aws["endpoint_url"], region_name=aws["region"],
          aws_access_key_id="testing", aws_secret_access_key="testing")
items = boto3.client("dynamodb", **kw).scan(TableName=aws["resources"]["ApprovalsTable"])["Items"]
machine = boto3.client("stepfunctions", **kw).describe_state_machine(
    stateMachineArn=aws["resources"]["ApprovalStateMachine"])
print(json.dumps({"ids": [i["approval_id"]["S"] for i in items if "approval_id" in i],
                  "machine": machine["name"]}))
"""
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(aws)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    seen = json.loads(done.stdout)
    assert record["approval_id"] in seen["ids"]
    assert seen["machine"] == "ApprovalStateMachine"


def test_the_state_machine_and_the_slack_secret_are_there(
    aws: dict[str, Any], sandbox_server: SandboxServer
) -> None:
    machine = _boto(aws, "stepfunctions").describe_state_machine(
        stateMachineArn=aws["resources"]["ApprovalStateMachine"]
    )
    assert machine["status"] == "ACTIVE"
    assert machine["name"] == "ApprovalStateMachine"
    assert json.loads(machine["definition"])["States"]  # the template's definition
    value = _boto(aws, "secretsmanager").get_secret_value(
        SecretId=aws["parameters"]["SlackSecretArn"]
    )
    secret = json.loads(value["SecretString"])
    assert {"bot_token", "signing_secret"} <= set(secret)
    # Compared, never shown: a failure prints False, not the secret.
    assert hmac.compare_digest(secret["bot_token"], BOT_TOKEN)
    assert hmac.compare_digest(secret["signing_secret"], sandbox_server.sandbox.signing_secret)


def test_the_template_s_eventbridge_rules_are_there_and_enabled(aws: dict[str, Any]) -> None:
    events = _boto(aws, "events")
    names = {rule["Name"] for rule in events.list_rules()["Rules"]}
    for logical_id in (
        "PipelineEventsFunctionPipelineStateChange",
        "AlarmEventsFunctionAlarmStateChange",
    ):
        name = aws["resources"][logical_id]
        assert name in names
        rule = events.describe_rule(Name=name)
        assert rule["State"] == "ENABLED"
    pattern = json.loads(
        events.describe_rule(Name=aws["resources"]["PipelineEventsFunctionPipelineStateChange"])[
            "EventPattern"
        ]
    )
    assert pattern["source"] == ["aws.codepipeline"]


# --- CodePipeline: ListPipelines, GetPipeline, notification_arn ---------------------------------


def _approval_actions(pipeline: dict[str, Any]) -> list[dict[str, Any]]:
    return [
        action
        for stage in pipeline["stages"]
        for action in stage["actions"]
        if action["actionTypeId"]
        == {
            "category": "Approval",
            "owner": "AWS",
            "provider": "Manual",
            "version": "1",
        }
    ]


def test_list_pipelines_pages_and_get_pipeline_names_the_gate_s_topic(
    gate: Gate, aws: dict[str, Any], sandbox_server: SandboxServer
) -> None:
    for name in ("short-one", "short-two", "short-three"):
        run = gate.start_run(name)
        gate.approval_for(run["approvalToken"])
    codepipeline = _boto(aws, "codepipeline")
    first = codepipeline.list_pipelines(maxResults=2)
    assert _over_http(first)
    assert [p["name"] for p in first["pipelines"]] == ["short-one", "short-three"]
    second = codepipeline.list_pipelines(maxResults=2, nextToken=first["nextToken"])
    assert [p["name"] for p in second["pipelines"]] == ["short-two"]
    assert "nextToken" not in second
    summary = first["pipelines"][0]
    assert summary["version"] == 1 and summary["pipelineType"] == "V2"
    assert {"created", "updated"} <= set(summary)

    got = codepipeline.get_pipeline(name="short-two")
    [approval] = _approval_actions(got["pipeline"])
    assert approval["name"] == "Approve"
    assert approval["configuration"]["NotificationArn"] == aws["resources"]["ApprovalTopic"]
    assert got["metadata"]["pipelineArn"].endswith(":short-two")
    with pytest.raises(codepipeline.exceptions.PipelineNotFoundException):
        codepipeline.get_pipeline(name="no-such-pipeline")
    # What the fake answered, before boto3 parsed it, fits botocore's model.
    answered = [
        call
        for call in sandbox_server.sandbox.codepipeline.calls()
        if call["method"] in ("ListPipelines", "GetPipeline") and "response" in call
    ]
    assert answered
    for call in answered:
        assert response_problems("codepipeline", call["method"], call["response"]) == []


def test_a_run_with_a_notification_arn_notifies_that_topic_and_the_gate_is_not_asked(
    gate: Gate, client: SandboxClient, aws: dict[str, Any]
) -> None:
    other = _boto(aws, "sns").create_topic(Name="someone-elses-approvals")["TopicArn"]
    elsewhere = gate.start_run("short-elsewhere-notified", notification_arn=other)
    assert elsewhere["approvalToken"] and elsewhere["pipelineExecutionId"]

    got = _boto(aws, "codepipeline").get_pipeline(name="short-elsewhere-notified")
    [approval] = _approval_actions(got["pipeline"])
    assert approval["configuration"]["NotificationArn"] == other
    # CodePipeline's notification went to that topic, with the run's token.
    sent = sns_backends[ACCOUNT][REGION].topics[other].sent_notifications
    assert [json.loads(message)["approval"]["token"] for _, message, *_ in sent] == [
        elsewhere["approvalToken"]
    ]

    # The bound: a later run to the gate's topic is asked and posted; runs start one at
    # a time and each is asked before its start answers, so by then the first would have
    # been asked too.
    control = gate.start_run("short-gate-notified")
    record = gate.approval_for(control["approvalToken"])
    gate.request_message(record["approval_id"])
    executions = {a["pipeline_execution_id"] for a in client.approvals()}
    assert control["pipelineExecutionId"] in executions
    assert elsewhere["pipelineExecutionId"] not in executions
    assert all(elsewhere["approvalToken"] not in json.dumps(m) for m in client.messages())
    requests = [m for m in client.messages() if has_buttons(m)]
    assert requests and not [m for m in requests if "short-elsewhere-notified" in json.dumps(m)]


def test_a_notification_arn_that_is_not_a_topic_arn_is_refused(client: SandboxClient) -> None:
    status, body = client.request(
        "POST", "/_sandbox/pipelines/short-bad/runs", {"notification_arn": "my-topic"}
    )
    assert status == 400
    assert "notification_arn" in body["error"]
    assert not [r for r in client.approval_results() if r["pipelineName"] == "short-bad"]
    status, _ = client.request("GET", "/_sandbox/aws")
    assert status == 200
    with pytest.raises(Exception, match="PipelineNotFound"):
        _boto(client.aws(), "codepipeline").get_pipeline(name="short-bad")


# --- Slack: scopes, membership ------------------------------------------------------------------


def test_auth_test_answers_the_manifest_s_scopes_then_those_set(
    client: SandboxClient, aws: dict[str, Any]
) -> None:
    slack = _slack(aws)
    answer = slack.auth_test()
    assert answer["ok"] is True
    assert answer.headers["x-oauth-scopes"] == ",".join(MANIFEST_SCOPES)
    assert client.scopes() == MANIFEST_SCOPES

    assert client.set_scopes(["chat:write", "users:read"]) == ["chat:write", "users:read"]
    assert slack.auth_test().headers["x-oauth-scopes"] == "chat:write,users:read"
    client.reset()
    assert slack.auth_test().headers["x-oauth-scopes"] == ",".join(MANIFEST_SCOPES)


def test_a_method_needing_a_scope_the_token_lacks_answers_missing_scope(
    client: SandboxClient, aws: dict[str, Any]
) -> None:
    slack = _slack(aws)
    client.set_scopes(["chat:write"])
    with pytest.raises(SlackApiError) as raised:
        slack.users_lookupByEmail(email="alice@example.com")
    assert raised.value.response.data == {
        "ok": False,
        "error": "missing_scope",
        "needed": "users:read.email",
        "provided": "chat:write",
    }
    # a method with its scope still works, and one that needs none
    assert slack.chat_postMessage(channel="C0DEPLOYS", text="hello")["ok"] is True
    assert slack.auth_test()["ok"] is True
    # conversations.info needs channels:read, which the manifest does not ask for
    client.set_scopes([s for s in MANIFEST_SCOPES if s != "channels:read"])
    with pytest.raises(SlackApiError) as raised:
        slack.conversations_info(channel="C0DEPLOYS")
    assert raised.value.response["needed"] == "channels:read"


@pytest.mark.parametrize(
    "body",
    [
        {"scopes": "chat:write"},
        {"scopes": [1]},
        {"scopes": ["chat write"]},
        {"scopes": ["chat:write"], "other": True},
        {"scopes": {"chat:write": True}},
        [],
    ],
)
def test_malformed_scopes_are_refused_and_change_nothing(client: SandboxClient, body: Any) -> None:
    status, answer = client.request("POST", "/_sandbox/slack/scopes", body)
    assert status == 400 and answer["error"]
    assert client.scopes() == MANIFEST_SCOPES


def test_the_bot_leaving_a_channel_shows_in_conversations_and_posting_there_fails(
    client: SandboxClient, aws: dict[str, Any]
) -> None:
    slack = _slack(aws)
    client.set_scopes([*MANIFEST_SCOPES, "channels:read", "groups:read"])
    info = slack.conversations_info(channel="C0DEPLOYS")["channel"]
    assert info["name"] == "deploys" and info["is_member"] is True
    listed = {c["id"]: c for c in slack.conversations_list()["channels"]}
    assert listed["C0DEPLOYS"]["is_member"] is True

    client.set_bot_member("C0DEPLOYS", False)
    assert slack.conversations_info(channel="C0DEPLOYS")["channel"]["is_member"] is False
    listed = {c["id"]: c for c in slack.conversations_list()["channels"]}
    assert listed["C0DEPLOYS"]["is_member"] is False
    with pytest.raises(SlackApiError) as raised:
        slack.chat_postMessage(channel="C0DEPLOYS", text="anyone?")
    assert raised.value.response["error"] == "not_in_channel"
    client.reset()
    assert slack.chat_postMessage(channel="C0DEPLOYS", text="back")["ok"] is True


# --- the endpoint itself --------------------------------------------------------------------------


def test_an_endpoint_that_cannot_bind_fails_with_a_clear_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(AwsEndpointError, match=f"127.0.0.1:{port}"):
            AwsEndpoint(port=port).start()


def test_a_stopped_endpoint_frees_its_port() -> None:
    endpoint = AwsEndpoint().start()
    port = int(endpoint.url.rsplit(":", 1)[1])
    endpoint.stop()
    with socket.socket() as again:
        again.bind(("127.0.0.1", port))  # free again: no OSError
    with pytest.raises(AwsEndpointError):
        _ = endpoint.url
    endpoint.stop()  # twice is fine


_LIFECYCLE = """
import json, socket, sys, threading
from pathlib import Path
from sandbox.aws_endpoint import AwsEndpoint, AwsEndpointError
from sandbox.server import SandboxServer

policy = Path(sys.argv[1])
seen = {}
# A sandbox whose endpoint's port is taken does not start, and holds no port.
with socket.socket() as taken:
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    server = SandboxServer(policy_file=policy, port=0)
    server.sandbox.aws_endpoint = AwsEndpoint(port=port)
    try:
        server.start()
        seen["started"] = True
    except AwsEndpointError as exc:
        seen["error"] = str(exc)
    with socket.socket() as probe:
        seen["http_port_closed"] = probe.connect_ex(("127.0.0.1", server.port)) != 0
# Started twice and stopped twice: one endpoint each, none left serving after.
for _ in range(2):
    server = SandboxServer(policy_file=policy, port=0).start()
    endpoint = server.sandbox.aws_endpoint.url
    server.stop()
endpoint_port = int(endpoint.rsplit(":", 1)[1])
with socket.socket() as probe:
    seen["endpoint_closed"] = probe.connect_ex(("127.0.0.1", endpoint_port)) != 0
seen["endpoint_threads"] = [
    t.name for t in threading.enumerate() if t.name == "sandbox-aws-endpoint"
]
print(json.dumps(seen))
"""


def test_a_sandbox_whose_endpoint_cannot_start_does_not_start_and_stop_ends_the_endpoint() -> None:
    """In a process of its own: one sandbox per process, and this module's is running."""
    done = subprocess.run(
        [sys.executable, "-c", _LIFECYCLE, str(ROOT / "tests" / "policies" / "standard.yaml")],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=ROOT,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert "started" not in seen
    assert seen["error"].startswith("the sandbox's AWS endpoint could not start on 127.0.0.1:")
    assert seen["http_port_closed"] is True
    assert seen["endpoint_closed"] is True
    assert seen["endpoint_threads"] == []
