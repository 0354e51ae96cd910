"""Injected faults (sandbox/faults.py, POST /_sandbox/faults): what each kind sends on the
wire, how calls are chosen, and what the sandbox records and counts."""

from __future__ import annotations

import hashlib
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectionClosedError, ReadTimeoutError
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError

from sandbox.client import wait_for
from sandbox.engine import ACCOUNT, BOT_TOKEN, REGION, SLACK_CLIENT_TIMEOUT
from sandbox.fake_codepipeline import FakeCodePipeline
from sandbox.fake_slack import FakeSlack
from sandbox.faults import DEFAULT_DELAY, FaultError, Faults, draw

VALID = {"service": "slack", "method": "chat.postMessage", "kind": "rate_limited", "rate": 1}


@pytest.fixture(autouse=True)
def clean(gate: Any) -> Iterator[None]:
    gate.client.reset()
    yield
    gate.client.reset()


def post_json(url: str, body: Any, timeout: float = 5) -> tuple[int, dict[str, str], Any]:
    """POST JSON; (status, headers, decoded body), whatever the status."""
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {BOT_TOKEN}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, dict(response.headers), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read())


def slack_client(gate: Any, timeout: float = 5) -> WebClient:
    """slack_sdk pointed at the sandbox, with no retries: each call is one request."""
    return WebClient(
        token=BOT_TOKEN, base_url=f"{gate.url}/slack/api/", timeout=timeout, retry_handlers=[]
    )


def codepipeline(**config: Any) -> Any:
    """A boto3 client as the gate builds one (moto and patch 4 route it to the fake)."""
    return boto3.client(
        "codepipeline",
        region_name=REGION,
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",
        config=Config(**config),
    )


def post(gate: Any, n: int) -> dict[str, Any]:
    """One chat.postMessage with text `n`, over HTTP."""
    return post_json(
        f"{gate.url}/slack/api/chat.postMessage", {"channel": "C0DEPLOYS", "text": str(n)}
    )[2]


# ---------------------------------------------------------------------- the body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"service": None}, "service"),
        ({"method": None}, "method"),
        ({"kind": None}, "kind"),
        ({"rate": None}, "rate"),
        ({"seed": None}, "seed"),
        ({"service": "sqs"}, "service"),
        ({"service": ["slack"]}, "service"),
        ({"method": "chat.scheduleMessage"}, "method"),
        ({"method": ""}, "method"),
        ({"method": 7}, "method"),
        ({"method": "PutApprovalResult"}, "method"),
        ({"kind": "throttled"}, "kind"),
        ({"kind": "RATE_LIMITED"}, "kind"),
        ({"rate": -0.1}, "rate"),
        ({"rate": 1.5}, "rate"),
        ({"rate": "0.5"}, "rate"),
        ({"rate": True}, "rate"),
        ({"seed": 1.5}, "seed"),
        ({"seed": False}, "seed"),
        ({"seed": {"a": 1}}, "seed"),
        ({"retry_after": -1}, "retry_after"),
        ({"retry_after": 1.5}, "retry_after"),
        ({"delay": 1}, "delay"),
        ({"kind": "timeout", "delay": 0}, "delay"),
        ({"kind": "timeout", "delay": "1"}, "delay"),
        ({"kind": "server_error", "status": 502}, "status"),
        ({"kind": "server_error", "retry_after": 1}, "retry_after"),
        ({"rat": 1}, "rat"),
    ],
)
def test_a_bad_body_is_refused_naming_the_field_and_changes_nothing(gate, change, field):
    before = gate.client.set_fault("codepipeline", "*", "throttled", 0.25, 3)
    body = {**VALID, "seed": 1, **change}
    body = {k: v for k, v in body.items() if v is not None}

    status, answer = gate.client.request("POST", "/_sandbox/faults", body)

    assert status == 400
    assert answer["field"] == field
    assert field in answer["error"]
    assert gate.client.faults() == before


@pytest.mark.parametrize("raw", [b"[]", b"not json", b'"slack"'])
def test_a_body_that_is_not_a_json_object_is_refused(gate, raw):
    request = urllib.request.Request(f"{gate.url}/_sandbox/faults", data=raw, method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 400
    assert json.loads(refused.value.read())["field"] == "body"
    assert gate.client.faults()["faults"] == []


def test_python_set_validates_as_http_does():
    faults = Faults()
    with pytest.raises(FaultError) as refused:
        faults.set("slack", "chat.postMessage", "timeout", 1, 1, delay=-1)
    assert refused.value.field == "delay"
    assert faults.active() == []


def test_the_answer_lists_the_active_faults_and_a_later_post_replaces_the_same_triple(gate):
    gate.client.set_fault("slack", "chat.postMessage", "rate_limited", 0.5, 1)
    gate.client.set_fault("slack", "*", "timeout", 0.1, "run-7", delay=0.2)
    answer = gate.client.set_fault("slack", "chat.postMessage", "rate_limited", 0.75, 2)

    assert answer["faults"] == [
        {
            "service": "slack",
            "method": "chat.postMessage",
            "kind": "rate_limited",
            "rate": 0.75,
            "seed": 2,
            "retry_after": 1,
        },
        {"service": "slack", "method": "*", "kind": "timeout", "rate": 0.1, "seed": "run-7"}
        | {"delay": 0.2},
    ]
    assert gate.client.faults()["faults"] == answer["faults"]


# ---------------------------------------------------------------------- rates and choice


def test_rate_one_fails_every_call_and_rate_zero_removes_the_fault(gate):
    gate.client.set_fault("slack", "chat.postMessage", "channel_not_found", 1, 1)

    failed = [post(gate, n) for n in range(10)]
    removed = gate.client.set_fault("slack", "chat.postMessage", "channel_not_found", 0, 1)

    assert failed == [{"ok": False, "error": "channel_not_found"}] * 10
    assert removed["faults"] == []
    assert post(gate, 99)["ok"] is True
    assert [m["text"] for m in gate.client.messages()] == ["99"]


def test_the_same_seed_fails_the_same_calls_and_another_seed_others(gate):
    def failures(seed: int) -> list[int]:
        gate.client.reset()
        gate.client.set_fault("slack", "chat.postMessage", "message_not_found", 0.5, seed)
        return [n for n in range(40) if not post(gate, n)["ok"]]

    first, replay, other = failures(7), failures(7), failures(8)

    assert first == replay
    assert other != first
    assert 8 <= len(first) <= 32  # about half of 40


def test_the_choice_is_the_documented_hash_with_the_occurrence_number():
    """docs/sandbox.md gives this formula: pin it, repeats included."""
    faults = Faults()
    faults.set("slack", "*", "server_error", 0.3, "seed-x")
    bodies = [{"channel": "C0DEPLOYS", "text": str(i % 7)} for i in range(60)]  # each sent ~9 times
    seen: dict[str, int] = {}
    for body in bodies:
        key = json.dumps(body, sort_keys=True)
        seen[key] = n = seen.get(key, 0) + 1
        text = json.dumps(
            ["seed-x", "slack", "users.info", "server_error", n, body],
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
        )
        value = int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big") / 2**64
        chosen = faults.choose("slack", "users.info", body)
        assert (chosen is not None) == (value < 0.3)
        assert value == draw("seed-x", "slack", "users.info", "server_error", n, body)


def test_a_retried_identical_request_is_drawn_afresh_and_can_succeed(gate):
    body = {"channel": "C0DEPLOYS", "text": "retry me"}
    # A seed whose first sending of this body fails and whose second does not.
    seed = next(
        s
        for s in range(1000)
        if draw(s, "slack", "chat.postMessage", "rate_limited", 1, body)
        < 0.5
        <= draw(s, "slack", "chat.postMessage", "rate_limited", 2, body)
    )
    gate.client.set_fault("slack", "chat.postMessage", "rate_limited", 0.5, seed, retry_after=0)
    url = f"{gate.url}/slack/api/chat.postMessage"

    first, retry = post_json(url, body), post_json(url, body)

    assert first[0] == 429
    assert retry[0] == 200 and retry[2]["ok"] is True
    assert [c.get("fault") for c in gate.client.calls()] == ["rate_limited", None]


def test_faults_for_the_method_are_tried_before_star_ones():
    faults = Faults()
    faults.set("slack", "*", "server_error", 1, 1)
    faults.set("slack", "users.info", "message_not_found", 1, 1)

    assert faults.choose("slack", "users.info", {}).kind == "message_not_found"  # type: ignore[union-attr]
    assert faults.choose("slack", "auth.test", {}).kind == "server_error"  # type: ignore[union-attr]


# ---------------------------------------------------------------------- Slack on the wire


def test_rate_limited_is_a_429_with_retry_after_over_raw_http(gate):
    gate.client.set_fault("slack", "*", "rate_limited", 1, 1, retry_after=7)

    status, headers, body = post_json(f"{gate.url}/slack/api/auth.test", {})

    assert status == 429
    assert headers["Retry-After"] == "7"
    assert body == {"ok": False, "error": "ratelimited"}


@pytest.mark.parametrize(
    ("kind", "options", "status", "error"),
    [
        ("rate_limited", {}, 429, "ratelimited"),
        ("server_error", {}, 503, "service_unavailable"),
        ("server_error", {"status": 500}, 500, "internal_error"),
        ("channel_not_found", {}, 200, "channel_not_found"),
        ("message_not_found", {}, 200, "message_not_found"),
    ],
)
def test_slack_sdk_raises_slack_api_error_for_each_kind(gate, kind, options, status, error):
    gate.client.set_fault("slack", "chat.update", kind, 1, 1, **options)

    with pytest.raises(SlackApiError) as raised:
        slack_client(gate).chat_update(channel="C0DEPLOYS", ts="1.000001", text="x")

    assert raised.value.response.status_code == status
    assert raised.value.response["error"] == error
    if kind == "rate_limited":
        assert raised.value.response.headers["Retry-After"] == "1"


def test_a_timeout_holds_the_answer_past_the_clients_timeout_and_is_not_carried_out(gate):
    gate.client.set_fault("slack", "chat.postMessage", "timeout", 1, 1, delay=0.6)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        slack_client(gate, timeout=0.2).chat_postMessage(channel="C0DEPLOYS", text="lost")
    gave_up = time.monotonic() - started
    started = time.monotonic()
    status, _, body = post_json(
        f"{gate.url}/slack/api/chat.postMessage", {"channel": "C0DEPLOYS", "text": "late"}
    )
    waited = time.monotonic() - started

    assert gave_up < 0.6
    assert (status, body) == (504, {"ok": False, "error": "timeout"})
    assert waited >= 0.6
    assert gate.client.messages() == []


def test_the_handlers_slack_timeout_is_shorter_than_a_timeouts_default_hold():
    assert SLACK_CLIENT_TIMEOUT < DEFAULT_DELAY


def test_a_faulted_call_is_recorded_with_its_kind_and_not_carried_out(gate):
    gate.client.set_fault("slack", "chat.postMessage", "rate_limited", 1, 1)

    post(gate, 1)
    gate.server.sandbox.slack.api(  # in process: the same path as over HTTP
        "chat.postMessage", {"channel": "C0DEPLOYS", "text": "2"}, f"Bearer {BOT_TOKEN}"
    )
    answered = post_json(f"{gate.url}/slack/api/auth.test", {})

    calls = gate.client.calls()
    assert [(c["method"], c.get("fault")) for c in calls] == [
        ("chat.postMessage", "rate_limited"),
        ("chat.postMessage", "rate_limited"),
        ("auth.test", None),
    ]
    assert "fault" not in calls[-1]
    assert calls[0]["args"] == {"channel": "C0DEPLOYS", "text": "1"}
    assert answered[2]["ok"] is True
    assert gate.client.messages() == []


def test_the_sandboxs_own_slack_helpers_are_never_faulted():
    faults = Faults()
    for kind in ("rate_limited", "server_error", "channel_not_found", "message_not_found"):
        faults.set("slack", "*", kind, 1, 1)
    slack = FakeSlack(faults=faults)
    slack.add_user("U0ALICE")
    posted = slack.api("chat.postMessage", {"channel": "C0DEPLOYS", "text": "hi"}, None)
    key = slack.new_response_url_key(channel="C0DEPLOYS", message_ts=None, user="U0ALICE")

    assert posted[0] == 429
    assert slack.apply_response_url(key, {"text": "done"}) == (200, {"ok": True})
    assert slack.api("chat.scheduleMessage", {}, None)[2]["error"] == "unknown_method"
    assert faults.snapshot()["injected"] == {"slack": {"chat.postMessage": {"rate_limited": 1}}}


# ---------------------------------------------------------------------- CodePipeline


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        ("throttled", "ThrottlingException"),
        ("invalid_token", "InvalidApprovalTokenException"),
        ("already_completed", "ApprovalAlreadyCompletedException"),
    ],
)
def test_boto3_gets_the_aws_error_code_for_each_kind(gate, kind, code):
    gate.client.set_fault("codepipeline", "PutApprovalResult", kind, 1, 1)
    client = codepipeline(retries={"total_max_attempts": 1})

    with pytest.raises(ClientError) as raised:
        client.put_approval_result(
            pipelineName="web",
            stageName="Approval",
            actionName="Approve",
            token=str(uuid.uuid4()),
            result={"status": "Approved", "summary": "ok"},
        )

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    if kind != "throttled":  # modelled errors get their own class
        assert isinstance(raised.value, getattr(client.exceptions, code))
    (call,) = gate.client.codepipeline_calls()
    assert call["method"] == "PutApprovalResult" and call["fault"] == kind
    assert call["args"]["token"] == "[redacted]"
    assert gate.client.approval_results() == []


def _report_machine(gate: Any) -> str:
    """A one-task state machine that reports to CodePipeline as the gate's does."""
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Report",
        "States": {
            "Report": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:codepipeline:putApprovalResult",
                "Arguments": {
                    "PipelineName": "web",
                    "StageName": "Approval",
                    "ActionName": "Approve",
                    "Token": "{% $states.input.token %}",
                    "Result": {"Status": "Approved", "Summary": "ok"},
                },
                "Catch": [
                    {
                        "ErrorEquals": [
                            "CodePipeline.InvalidApprovalTokenException",
                            "CodePipeline.ApprovalAlreadyCompletedException",
                        ],
                        "Next": "Caught",
                        "Output": "{% $states.errorOutput %}",
                    },
                    {
                        "ErrorEquals": ["States.ALL"],
                        "Next": "Other",
                        "Output": "{% $states.errorOutput %}",
                    },
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
            "Other": {"Type": "Pass", "End": True},
        },
    }
    sandbox = gate.server.sandbox
    role = sandbox.client("iam").get_role(RoleName="approval-gate-sandbox")["Role"]["Arn"]
    return str(
        sandbox.client("stepfunctions").create_state_machine(
            name=f"faults-{uuid.uuid4().hex[:8]}", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
    )


@pytest.mark.parametrize(
    ("kind", "error", "caught_by"),
    [
        ("invalid_token", "CodePipeline.InvalidApprovalTokenException", "Caught"),
        ("already_completed", "CodePipeline.ApprovalAlreadyCompletedException", "Caught"),
        # ThrottlingException is not in CodePipeline's model: named like any unmodelled error.
        ("throttled", "CodePipeline.CodePipelineException", "Other"),
    ],
)
def test_the_state_machine_sees_the_error_names_aws_gives(gate, kind, error, caught_by):
    gate.client.set_fault("codepipeline", "PutApprovalResult", kind, 1, 1)
    sfn = gate.server.sandbox.client("stepfunctions")
    arn = sfn.start_execution(
        stateMachineArn=_report_machine(gate),
        name=f"e-{uuid.uuid4().hex[:8]}",
        input=json.dumps({"token": str(uuid.uuid4())}),
    )["executionArn"]

    def finished() -> dict[str, Any] | None:
        described = sfn.describe_execution(executionArn=arn)
        return None if described["status"] == "RUNNING" else described

    done = wait_for(finished, timeout=10, what="the execution")
    events = sfn.get_execution_history(executionArn=arn)["events"]

    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["Error"] == error
    assert caught_by in [e.get("stateEnteredEventDetails", {}).get("name") for e in events]
    assert [c.get("fault") for c in gate.client.codepipeline_calls()] == [kind]


def test_a_faulted_put_approval_result_is_no_result_and_the_fakes_own_helpers_never_fail():
    faults = Faults()
    faults.set("codepipeline", "*", "invalid_token", 1, 1)
    fake = FakeCodePipeline(region=REGION, account=ACCOUNT, faults=faults)
    run = fake.start_run("web", {"author": "jane@example.com"})
    other = fake.start_run("api", {})
    decide = {
        "pipelineName": "web",
        "stageName": "Approval",
        "actionName": "Approve",
        "token": run.token,
        "result": {"status": "Approved", "summary": "ok"},
    }

    with pytest.raises(Exception) as raised:
        fake.call("PutApprovalResult", decide)
    commit = fake.call("GetCommit", {"repositoryName": "web-repo", "commitId": run.commit["id"]})  # type: ignore[index]
    fake.decide_in_console("api", other.token, {"status": "Rejected"})
    fake.end_run("web", run.execution_id, "stop")

    assert raised.value.code == "InvalidApprovalTokenException"  # type: ignore[attr-defined]
    assert commit["commit"]["author"]["email"] == "jane@example.com"
    assert [r["source"] for r in fake.approval_results()] == ["console"]
    assert [(c["method"], c.get("fault")) for c in fake.calls()] == [
        ("PutApprovalResult", "invalid_token"),
        ("GetCommit", None),
    ]


# ---------------------------------------------------------------------- counts and reset


def test_get_counts_faults_injected_by_service_method_and_kind(gate):
    gate.client.set_fault("slack", "users.info", "rate_limited", 1, 1)
    gate.client.set_fault("slack", "*", "server_error", 1, 1)
    gate.client.set_fault("codepipeline", "GetPipelineState", "throttled", 1, 1)
    client = codepipeline(retries={"total_max_attempts": 1})

    for user in ("U0ALICE", "U0BOB"):
        post_json(f"{gate.url}/slack/api/users.info", {"user": user})
    post_json(f"{gate.url}/slack/api/auth.test", {})
    with pytest.raises(ClientError):
        client.get_pipeline_state(name="web")

    snapshot = gate.client.faults()
    assert snapshot["injected"] == {
        "codepipeline": {"GetPipelineState": {"throttled": 1}},
        "slack": {"auth.test": {"server_error": 1}, "users.info": {"rate_limited": 2}},
    }
    assert snapshot["calls"] == {
        "codepipeline": {"GetPipelineState": 1},
        "slack": {"auth.test": 1, "users.info": 2},
    }


def test_reset_forgets_faults_counts_and_occurrences(gate):
    body = {"channel": "C0DEPLOYS", "text": "again"}
    seed = next(
        s
        for s in range(1000)
        if draw(s, "slack", "chat.postMessage", "message_not_found", 1, body) < 0.5
    )
    gate.client.set_fault("slack", "chat.postMessage", "message_not_found", 0.5, seed)
    url = f"{gate.url}/slack/api/chat.postMessage"
    assert post_json(url, body)[2]["ok"] is False

    gate.client.reset()
    assert gate.client.faults() == {"faults": [], "injected": {}, "calls": {}}
    assert post_json(url, body)[2]["ok"] is True

    gate.client.reset()
    gate.client.set_fault("slack", "chat.postMessage", "message_not_found", 0.5, seed)
    assert post_json(url, body)[2]["ok"] is False  # the first sending again: n = 1


def test_the_approval_s_errors_are_injected_on_put_approval_result_only() -> None:
    """CodePipeline's models list InvalidApprovalToken and ApprovalAlreadyCompleted for
    PutApprovalResult alone: no read answers them, even with the fault set on '*'."""
    with pytest.raises(FaultError) as refused:
        Faults().set("codepipeline", "GetPipelineState", "invalid_token", 1, 1)
    assert refused.value.field == "method"
    faults = Faults()
    faults.set("codepipeline", "*", "already_completed", 1, 1)
    fake = FakeCodePipeline(region=REGION, account=ACCOUNT, faults=faults)
    run = fake.start_run("web", {})

    state = fake.call("GetPipelineState", {"name": "web"})
    with pytest.raises(Exception) as raised:
        fake.call(
            "PutApprovalResult",
            {
                "pipelineName": "web",
                "stageName": "Approval",
                "actionName": "Approve",
                "token": run.token,
                "result": {"status": "Approved", "summary": "ok"},
            },
        )

    assert state["pipelineName"] == "web"
    assert raised.value.code == "ApprovalAlreadyCompletedException"  # type: ignore[attr-defined]


# ---------------------------------------------------------------------- faults that take effect


def test_a_timeout_after_effect_posts_the_message_and_the_client_times_out(gate):
    gate.client.set_fault("slack", "chat.postMessage", "timeout_after_effect", 1, 1, delay=0.6)

    started = time.monotonic()
    with pytest.raises(TimeoutError):
        slack_client(gate, timeout=0.2).chat_postMessage(channel="C0DEPLOYS", text="posted")
    gave_up = time.monotonic() - started

    assert gave_up < 0.6
    assert [m["text"] for m in gate.client.messages()] == ["posted"]
    (call,) = gate.server.sandbox.slack.calls()
    assert call["fault"] == "timeout_after_effect"
    assert call["response"]["ok"] is True  # carried out: the answer was real, only late


def test_a_timeout_after_effects_default_hold_is_past_the_handlers_slack_timeout():
    faults = Faults()
    (slack,) = faults.set("slack", "*", "timeout_after_effect", 1, 1)["faults"]
    faults.reset()
    (aws,) = faults.set("codepipeline", "*", "timeout_after_effect", 1, 1)["faults"]

    assert slack["delay"] == DEFAULT_DELAY > SLACK_CLIENT_TIMEOUT
    assert aws["delay"] == 1.0


def test_a_reset_after_effect_posts_the_message_and_drops_the_connection(gate):
    gate.client.set_fault("slack", "chat.postMessage", "reset_after_effect", 1, 1)

    with pytest.raises((ConnectionError, urllib.error.URLError)):
        slack_client(gate).chat_postMessage(channel="C0DEPLOYS", text="posted")

    assert [m["text"] for m in gate.client.messages()] == ["posted"]
    (call,) = gate.server.sandbox.slack.calls()
    assert call["fault"] == "reset_after_effect" and call["response"]["ok"] is True


def _decide(token: str) -> dict[str, Any]:
    return {
        "pipelineName": "web",
        "stageName": "Approval",
        "actionName": "Approve",
        "token": token,
        "result": {"status": "Approved", "summary": "ok"},
    }


@pytest.mark.parametrize(
    ("kind", "raised"),
    [("timeout_after_effect", ReadTimeoutError), ("reset_after_effect", ConnectionClosedError)],
)
def test_a_put_approval_result_after_effect_records_the_result_and_botocore_raises(kind, raised):
    faults = Faults()
    faults.set(
        "codepipeline",
        "PutApprovalResult",
        kind,
        1,
        1,
        delay=0.1 if kind == "timeout_after_effect" else None,
    )
    fake = FakeCodePipeline(region=REGION, account=ACCOUNT, faults=faults)
    run = fake.start_run("web", {})

    with pytest.raises(raised):
        fake.call("PutApprovalResult", _decide(run.token))

    assert [r["result"]["status"] for r in fake.approval_results()] == ["Approved"]
    (call,) = fake.calls()
    assert call["fault"] == kind and "response" in call


def test_botocores_retry_of_a_put_approval_result_whose_answer_was_lost_is_already_completed(gate):
    run = gate.server.sandbox.codepipeline.start_run("web", {})
    gate.client.set_fault("codepipeline", "PutApprovalResult", "reset_after_effect", 1, 1)
    client = codepipeline(retries={"total_max_attempts": 3, "mode": "standard"})

    with pytest.raises(client.exceptions.ApprovalAlreadyCompletedException):
        client.put_approval_result(**_decide(run.token))

    # The first attempt took effect; botocore's retry of the dropped call met its result.
    assert len(gate.client.approval_results()) == 1
    first, retry = (
        c for c in gate.client.codepipeline_calls() if c["method"] == "PutApprovalResult"
    )
    assert first["fault"] == "reset_after_effect" and "response" in first
    assert retry["error"]["code"] == "ApprovalAlreadyCompletedException"


# ---------------------------------------------------------------------- AWS platform faults


def test_the_aws_platform_services_kinds_and_options_are_accepted_and_shown(gate):
    gate.client.set_fault("dynamodb", "*", "throttled", 0.3, 1)
    gate.client.set_fault("dynamodb", "Query", "index_lag", 1, 2, delay=2)
    gate.client.set_fault("stepfunctions", "SendTaskSuccess", "throttled", 0.5, "s")
    gate.client.set_fault("lambda", "Invoke", "error", 0.1, 3)
    gate.client.set_fault("lambda", "*", "timeout", 0.2, 4, delay=0.5)

    shown = gate.client.faults()["faults"]

    assert shown == [
        {"service": "dynamodb", "method": "*", "kind": "throttled", "rate": 0.3, "seed": 1},
        {"service": "dynamodb", "method": "Query", "kind": "index_lag", "rate": 1.0, "seed": 2}
        | {"delay": 2},
        {"service": "stepfunctions", "method": "SendTaskSuccess", "kind": "throttled"}
        | {"rate": 0.5, "seed": "s"},
        {"service": "lambda", "method": "Invoke", "kind": "error", "rate": 0.1, "seed": 3},
        {"service": "lambda", "method": "*", "kind": "timeout", "rate": 0.2, "seed": 4}
        | {"delay": 0.5},
    ]


@pytest.mark.parametrize(
    ("service", "method", "kind", "delay"),
    [("lambda", "Invoke", "timeout", 1.0), ("dynamodb", "Query", "index_lag", 1.0)],
)
def test_the_aws_platform_delays_default_to_one_second(gate, service, method, kind, delay):
    (shown,) = gate.client.set_fault(service, method, kind, 1, 1)["faults"]
    assert shown["delay"] == delay


@pytest.mark.parametrize(
    ("body", "field", "words"),
    [
        (
            {"service": "dynamodb", "method": "UpdateItem", "kind": "index_lag"},
            "method",
            "index_lag applies to '*' or Query only",
        ),
        ({"service": "lambda", "method": "Invoke", "kind": "throttled"}, "kind", "error, timeout"),
        ({"service": "stepfunctions", "method": "*", "kind": "index_lag"}, "kind", "throttled"),
        ({"service": "dynamodb", "method": "SendTaskSuccess", "kind": "throttled"}, "method", ""),
        ({"service": "lambda", "method": "Invoke", "kind": "error", "delay": 1}, "delay", ""),
        (
            {"service": "sqs", "method": "*", "kind": "throttled"},
            "service",
            "slack, codepipeline, dynamodb, stepfunctions, lambda",
        ),
    ],
)
def test_a_bad_aws_platform_fault_is_refused_naming_the_field(gate, body, field, words):
    status, answer = gate.client.request("POST", "/_sandbox/faults", {**body, "rate": 1, "seed": 1})

    assert status == 400
    assert answer["field"] == field
    assert words in answer["error"]
    assert gate.client.faults()["faults"] == []


def test_index_lag_on_star_fires_on_query_alone() -> None:
    faults = Faults()
    faults.set("dynamodb", "*", "index_lag", 1, 1)
    assert faults.choose("dynamodb", "UpdateItem", {"TableName": "t"}) is None
    assert faults.choose("dynamodb", "GetItem", {"TableName": "t"}) is None
    lag = faults.choose("dynamodb", "Query", {"TableName": "t", "IndexName": "i"})
    assert lag is not None and lag.kind == "index_lag" and lag.option == 1.0


def test_a_dynamodb_throttle_alternates_its_two_errors_by_attempt() -> None:
    """The n-th identical throttled request: ProvisionedThroughputExceededException when n
    is odd, ThrottlingException when even; Step Functions answers its own."""
    faults = Faults()
    faults.set("dynamodb", "GetItem", "throttled", 1, 1)
    faults.set("stepfunctions", "*", "throttled", 1, 1)
    body = {"TableName": "t", "Key": {"id": {"S": "a"}}}
    codes = []
    for attempt in (1, 2, 3):
        fault = faults.choose("dynamodb", "GetItem", body)
        assert fault is not None and fault.attempt == attempt
        codes.append(fault.aws_error("dynamodb").code)
    sfn = faults.choose("stepfunctions", "SendTaskSuccess", {"taskToken": "x"})

    assert codes == [
        "ProvisionedThroughputExceededException",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
    ]
    assert sfn is not None and sfn.aws_error("stepfunctions").code == "ThrottlingException"
