"""One test per moto patch (sandbox/patches.py): each fails if moto changes underneath.

moto is pinned exactly because the patches reach into its internals.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib.metadata import version
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from aws_lambda_powertools import Logger
from botocore.exceptions import ClientError
from moto import mock_aws

from sandbox import patches

REGION = "us-east-1"


@pytest.fixture
def aws() -> Iterator[None]:
    patches.apply()
    with mock_aws(config={"stepfunctions": {"execute_state_machine": True}}):
        yield
    patches.set_lambda_invoker(None)
    patches.set_codepipeline(None)
    patches.set_codecommit(None)


def client(service: str):
    return boto3.client(service, region_name=REGION)


def _role() -> str:
    return client("iam").create_role(RoleName="r", AssumeRolePolicyDocument="{}")["Role"]["Arn"]


def _waits_for_its_token(function_arn: str) -> dict[str, Any]:
    """A one-state machine: invoke the function with the task token, wait for it (30 s)."""
    return {
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                "Parameters": {
                    "FunctionName": function_arn,
                    "Payload": {"token.$": "$$.Task.Token"},
                },
                "TimeoutSeconds": 30,
                "End": True,
            }
        },
    }


def _function(name: str, role: str) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("app.py", "")
    return client("lambda").create_function(
        FunctionName=name,
        Runtime="python3.12",
        Role=role,
        Handler="app.handler",
        Code={"ZipFile": buffer.getvalue()},
    )["FunctionArn"]


def _run(definition: dict, payload: dict, role: str) -> dict:
    sfn = client("stepfunctions")
    machine = sfn.create_state_machine(
        name=f"m{time.monotonic_ns()}", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=machine, name="e", input=json.dumps(payload))[
        "executionArn"
    ]
    return _finished(sfn, arn)


def _create_table(dynamodb: Any, key: str = "id") -> None:
    """Table "t": on demand, one string hash key named `key`."""
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": key, "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": key, "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


def _finished(sfn: Any, arn: str, timeout: float = 10) -> dict:
    """The execution described once it is no longer RUNNING (bounded wait)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = sfn.describe_execution(executionArn=arn)
        if described["status"] != "RUNNING":
            return described
        time.sleep(0.02)
    raise TimeoutError("execution still running")


def test_moto_is_the_pinned_version():
    assert version("moto") == "5.2.5"


def test_patch_1_lambda_runs_the_handler_in_this_process(aws):
    calls = []

    def invoke(name, event):
        calls.append((name, event))
        if event.get("fail"):
            raise ValueError("boom")
        return {"answer": event["n"] * 2}

    patches.set_lambda_invoker(invoke)
    _function("double", _role())
    ok = client("lambda").invoke(FunctionName="double", Payload=json.dumps({"n": 21}))
    failed = client("lambda").invoke(FunctionName="double", Payload=json.dumps({"fail": True}))

    assert json.loads(ok["Payload"].read()) == {"answer": 42}
    assert calls[0] == ("double", {"n": 21})
    assert failed["FunctionError"] == "Unhandled"  # moto: "Handled"
    assert json.loads(failed["Payload"].read())["errorType"] == "ValueError"


def test_patch_1b_sns_delivers_the_envelope_aws_documents(aws):
    seen = []
    patches.set_lambda_invoker(lambda name, event: seen.append(event))
    arn = _function("listener", _role())
    topic = client("sns").create_topic(Name="t")["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)

    client("sns").publish(TopicArn=topic, Message="one")
    client("sns").publish(TopicArn=topic, Message="two")

    first, second = (event["Records"][0]["Sns"] for event in seen)
    assert first["TopicArn"] == topic
    assert first["MessageId"] != second["MessageId"]
    sent = datetime.fromisoformat(first["Timestamp"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - sent).total_seconds()) < 60


def test_patch_3_and_4_aws_sdk_codepipeline_with_aws_error_names(aws):
    received = []

    def codepipeline(operation, params):
        received.append((operation, params))
        if params["token"] == "bad":
            error = Exception("token not valid")
            error.code = "InvalidApprovalTokenException"  # type: ignore[attr-defined]
            raise error
        return {"approvedAt": datetime.now(UTC).timestamp()}

    patches.set_codepipeline(codepipeline)
    gated: list[tuple[bool, str | None]] = []
    patches.set_background_gate(
        lambda decision=False, execution=None: gated.append((decision, execution))
    )
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Report",
        "States": {
            "Report": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:codepipeline:putApprovalResult",
                "Arguments": {
                    "PipelineName": "p",
                    "StageName": "s",
                    "ActionName": "a",
                    "Token": "{% $states.input.token %}",
                    "Result": {"Status": "Approved", "Summary": "ok"},
                },
                "Catch": [
                    {
                        "ErrorEquals": ["CodePipeline.InvalidApprovalTokenException"],
                        "Next": "Caught",
                        "Output": "{% $states.errorOutput %}",
                    }
                ],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    role = _role()

    try:
        ok = _run(definition, {"token": "good"}, role)
        bad = _run(definition, {"token": "bad"}, role)
    finally:
        patches.set_background_gate(None)
    # Reporting a decision passes the background gate as one, of its own execution.
    assert gated == [(True, ok["executionArn"]), (True, bad["executionArn"])]

    assert ok["status"] == "SUCCEEDED"
    assert "ApprovedAt" in json.loads(ok["output"]) or "approvedAt" in json.loads(ok["output"])
    assert received[0] == (
        "PutApprovalResult",
        {
            "pipelineName": "p",
            "stageName": "s",
            "actionName": "a",
            "token": "good",
            "result": {"summary": "ok", "status": "Approved"},
        },
    )
    assert json.loads(bad["output"])["Error"] == "CodePipeline.InvalidApprovalTokenException"


def test_patch_4_codepipeline_reads_reach_the_fake(aws):
    patches.set_codepipeline(lambda op, params: {"pipelineName": params["name"], "stageStates": []})

    state = client("codepipeline").get_pipeline_state(name="web")

    assert state["pipelineName"] == "web"


def test_patch_4_codecommit_get_commit_reaches_the_fake_with_its_error_codes(aws):
    received = []

    def codecommit(operation, params):
        received.append((operation, params))
        if params["repositoryName"] != "web-repo":
            error = Exception("no such repository")
            error.code = "RepositoryDoesNotExistException"  # type: ignore[attr-defined]
            raise error
        if params["commitId"] != "c" * 40:
            error = Exception("no such commit")
            error.code = "CommitIdDoesNotExistException"  # type: ignore[attr-defined]
            raise error
        person = {"name": "Alice", "email": "alice@example.com", "date": "1700000000 +0000"}
        return {
            "commit": {
                "commitId": params["commitId"],
                "treeId": "t" * 40,
                "parents": [],
                "message": "Ship it",
                "author": person,
                "committer": person,
            }
        }

    codecommit_client = client("codecommit")
    with pytest.raises(ClientError) as unset:
        codecommit_client.get_commit(repositoryName="web-repo", commitId="c" * 40)
    assert unset.value.response["Error"]["Code"] == "ValidationException"

    patches.set_codecommit(codecommit)
    found = codecommit_client.get_commit(repositoryName="web-repo", commitId="c" * 40)

    assert received[-1] == ("GetCommit", {"repositoryName": "web-repo", "commitId": "c" * 40})
    assert found["commit"]["author"]["email"] == "alice@example.com"
    assert found["commit"]["message"] == "Ship it"
    with pytest.raises(codecommit_client.exceptions.CommitIdDoesNotExistException):
        codecommit_client.get_commit(repositoryName="web-repo", commitId="0" * 40)
    with pytest.raises(ClientError) as missing:
        codecommit_client.get_commit(repositoryName="api-repo", commitId="c" * 40)
    assert missing.value.response["Error"]["Code"] == "RepositoryDoesNotExistException"


def test_patch_5_jsonata_evaluates_with_quotes_and_newlines_in_values(aws):
    definition = {
        "QueryLanguage": "JSONata",
        "StartAt": "Say",
        "States": {
            "Say": {
                "Type": "Pass",
                "Assign": {"said": "{% $states.input.text %}"},
                "Output": "{% {'echo': $said & '!', 'n': $count($split($said, ' '))} %}",
                "End": True,
            }
        },
    }

    done = _run(definition, {"text": 'he said "ship it"\nand left \\ there'}, _role())

    assert done["status"] == "SUCCEEDED"
    assert json.loads(done["output"])["echo"] == 'he said "ship it"\nand left \\ there!'


def test_patch_7_racing_conditional_writes_have_exactly_one_winner(aws):
    dynamodb = client("dynamodb")
    _create_table(dynamodb, key="k")
    for trial in range(10):
        key = {"k": {"S": f"item{trial}"}}
        dynamodb.put_item(TableName="t", Item={**key, "status": {"S": "PENDING"}})
        winners = []
        barrier = threading.Barrier(20)

        def decide(who: int, key=key, winners=winners, barrier=barrier) -> None:
            barrier.wait()
            try:
                dynamodb.update_item(
                    TableName="t",
                    Key=key,
                    UpdateExpression="SET #s = :done, who = :who",
                    ConditionExpression="#s = :pending",
                    ExpressionAttributeNames={"#s": "status"},
                    ExpressionAttributeValues={
                        ":done": {"S": "DONE"},
                        ":pending": {"S": "PENDING"},
                        ":who": {"N": str(who)},
                    },
                )
                winners.append(who)
            except ClientError as exc:
                assert exc.response["Error"]["Code"] == "ConditionalCheckFailedException"

        threads = [threading.Thread(target=decide, args=(n,)) for n in range(20)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(winners) == 1, f"trial {trial}: {len(winners)} winners"


def test_patch_2_a_missed_heartbeat_is_states_heartbeattimeout(aws):
    patches.set_lambda_invoker(lambda name, event: None)
    role = _role()
    _function("wait", role)

    def waiting(catchers: list[dict]) -> dict:
        return {
            "QueryLanguage": "JSONata",
            "StartAt": "Wait",
            "States": {
                "Wait": {
                    "Type": "Task",
                    "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
                    "Arguments": {"FunctionName": "wait", "Payload": {}},
                    "HeartbeatSeconds": 1,
                    "TimeoutSeconds": 30,
                    "Catch": catchers,
                    "End": True,
                },
                "Caught": {"Type": "Pass", "Output": "{% $states.input %}", "End": True},
            },
        }

    heartbeat_first = waiting(
        [
            {
                "ErrorEquals": ["States.HeartbeatTimeout"],
                "Next": "Caught",
                "Output": {"by": "heartbeat", "error": "{% $states.errorOutput.Error %}"},
            },
            {"ErrorEquals": ["States.Timeout"], "Next": "Caught", "Output": {"by": "timeout"}},
        ]
    )
    timeout_only = waiting(
        [
            {
                "ErrorEquals": ["States.Timeout"],
                "Next": "Caught",
                "Output": {"by": "timeout", "error": "{% $states.errorOutput.Error %}"},
            }
        ]
    )

    first = json.loads(_run(heartbeat_first, {}, role)["output"])
    second = json.loads(_run(timeout_only, {}, role)["output"])

    assert first == {"by": "heartbeat", "error": "States.HeartbeatTimeout"}
    # As on AWS, a catcher on States.Timeout also matches a heartbeat timeout.
    assert second == {"by": "timeout", "error": "States.HeartbeatTimeout"}


def test_patch_6_eventbridge_delivers_matching_events_to_a_lambda_target(aws):
    seen = []
    patches.set_lambda_invoker(lambda name, event: seen.append((name, event)))
    arn = _function("feed", _role())
    events = client("events")
    events.put_rule(
        Name="codepipeline",
        EventPattern=json.dumps({"source": ["aws.codepipeline"], "detail-type": ["X Changed"]}),
    )
    events.put_targets(Rule="codepipeline", Targets=[{"Id": "1", "Arn": arn}])

    events.put_events(
        Entries=[
            {
                "Source": "aws.codepipeline",
                "DetailType": "X Changed",
                "Detail": '{"state": "STARTED"}',
            },
            {"Source": "aws.codepipeline", "DetailType": "Y Changed", "Detail": "{}"},
            {"Source": "custom", "DetailType": "X Changed", "Detail": "{}"},
        ]
    )

    # Delivered asynchronously, as EventBridge does: PutEvents does not wait for the target.
    assert patches.wait_for_events(timeout=10)
    assert len(seen) == 1
    name, event = seen[0]
    assert name == "feed"
    assert event["source"] == "aws.codepipeline"
    assert event["detail-type"] == "X Changed"
    assert event["detail"] == {"state": "STARTED"}


def test_patch_6_a_lambda_target_gets_the_event_aws_documents(aws):
    """CodePipeline's user guide shows `time` as ISO 8601 to the second and no
    `ingestion-time`; moto's own event has epoch seconds and an ingestion time."""
    seen = []
    recorded = []
    patches.set_lambda_invoker(lambda name, event: seen.append(event))
    patches.set_delivery_recorder(lambda *delivery: recorded.append(delivery))
    try:
        arn = _function("feed", _role())
        events = client("events")
        events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.codepipeline"]}))
        events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": arn}])
        before = datetime.now(UTC).replace(microsecond=0)

        events.put_events(
            Entries=[
                {
                    "Source": "aws.codepipeline",
                    "DetailType": "CodePipeline Stage Execution State Change",
                    "Detail": '{"stage": "Build", "state": "STARTED"}',
                    "Resources": ["arn:aws:codepipeline:us-east-1:123456789012:web"],
                }
            ]
        )
        assert patches.wait_for_events(timeout=10)
    finally:
        patches.set_delivery_recorder(None)

    (event,) = seen
    assert list(event) == [
        "version",
        "id",
        "detail-type",
        "source",
        "account",
        "time",
        "region",
        "resources",
        "detail",
    ]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", event["time"])
    sent = datetime.fromisoformat(event["time"].replace("Z", "+00:00"))
    assert before <= sent <= datetime.now(UTC)
    assert event["version"] == "0" and event["account"] == "123456789012"
    assert event["resources"] == ["arn:aws:codepipeline:us-east-1:123456789012:web"]
    # what the sandbox records is exactly what the function received
    assert recorded == [("eventbridge", "feed", event)]


def test_patch_1b_and_6_each_delivery_is_recorded_as_the_function_receives_it(aws):
    seen = []
    recorded = []
    patches.set_lambda_invoker(lambda name, event: seen.append(event))
    patches.set_delivery_recorder(lambda *delivery: recorded.append(delivery))
    try:
        arn = _function("listener", _role())
        topic = client("sns").create_topic(Name="t")["TopicArn"]
        client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)
        client("sns").publish(TopicArn=topic, Message="one", Subject="hello")
    finally:
        patches.set_delivery_recorder(None)

    (event,) = seen
    assert recorded == [("sns", "listener", event)]
    assert event["Records"][0]["Sns"]["Message"] == "one"


def test_patch_8_dynamodb_answers_are_what_the_shape_walk_gives(aws):
    """Patch 8 skips moto's output-shape walk for DynamoDB answers; what boto3 reads must
    be exactly what it read before (nested maps, lists, sets, numbers, bools, null), and
    errors must still arrive as DynamoDB's."""
    from moto.dynamodb.responses import DynamoResult

    dynamodb = client("dynamodb")
    _create_table(dynamodb, key="k")
    item = {
        "k": {"S": "a"},
        "votes": {"M": {"U0ALICE": {"M": {"vote": {"S": "approve"}, "at": {"S": "2026"}}}}},
        "authors": {"L": [{"S": "alice@example.com"}, {"NULL": True}]},
        "groups": {"SS": ["S0ONE", "S0TWO"]},
        "reminders": {"N": "3"},
        "escalated": {"BOOL": False},
        "text": {"S": 'quotes " and \\ and ✓ and \n'},
    }
    dynamodb.put_item(TableName="t", Item=item)

    def calls() -> list[dict]:
        answers = [
            dynamodb.get_item(TableName="t", Key={"k": {"S": "a"}}, ConsistentRead=True),
            dynamodb.update_item(
                TableName="t",
                Key={"k": {"S": "a"}},
                UpdateExpression="SET reminders = reminders + :zero",
                ExpressionAttributeValues={":zero": {"N": "0"}},
                ReturnValues="ALL_NEW",
            ),
            dynamodb.query(
                TableName="t",
                KeyConditionExpression="k = :k",
                ExpressionAttributeValues={":k": {"S": "a"}},
            ),
            dynamodb.scan(TableName="t"),
        ]
        for answer in answers:
            answer.pop("ResponseMetadata")
        return answers

    fast = calls()
    patched = DynamoResult.execute_result
    DynamoResult.execute_result = patches.moto_dynamodb_execute_result
    try:
        walked = calls()
    finally:
        DynamoResult.execute_result = patched
    assert fast == walked
    assert fast[0]["Item"] == item

    with pytest.raises(ClientError) as failed:
        dynamodb.update_item(
            TableName="t",
            Key={"k": {"S": "a"}},
            UpdateExpression="SET reminders = :one",
            ConditionExpression="attribute_not_exists(k)",
            ExpressionAttributeValues={":one": {"N": "1"}},
        )
    assert failed.value.response["Error"]["Code"] == "ConditionalCheckFailedException"


def test_patch_6_put_events_does_not_wait_for_the_function(aws):
    """EventBridge answers PutEvents before its targets run; so does the sandbox, so a
    slow status feed never holds up the pipeline that emits the events."""
    release = threading.Event()
    delivered = []

    def slow(name, event):
        assert release.wait(timeout=10)
        delivered.append(event["detail"])

    patches.set_lambda_invoker(slow)
    arn = _function("feed", _role())
    events = client("events")
    events.put_rule(Name="r", EventPattern=json.dumps({"source": ["aws.codepipeline"]}))
    events.put_targets(Rule="r", Targets=[{"Id": "1", "Arn": arn}])

    for n in range(3):
        events.put_events(
            Entries=[{"Source": "aws.codepipeline", "DetailType": "X", "Detail": f'{{"n": {n}}}'}]
        )

    assert delivered == []  # PutEvents came back while the function was still blocked
    release.set()
    assert patches.wait_for_events(timeout=10)
    assert delivered == [{"n": 0}, {"n": 1}, {"n": 2}]  # one after another, in order


def test_patch_9_asl_parses_wait_for_each_other(aws):
    """moto's ASL preprocessor keeps its scope stack in a class attribute, shared by every
    parse (the reason for patch 9; this fails if moto changes that), so patch 9 makes a
    parse wait while another holds the parser."""
    from pathlib import Path

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser
    from moto.stepfunctions.parser.asl.parse.preprocessor import Preprocessor

    assert "_query_language_per_scope" in vars(Preprocessor)  # shared by all instances

    definition = (Path(__file__).parents[2] / "statemachine" / "approval.asl.json").read_text()
    parsed = threading.Event()

    def parse() -> None:
        AmazonStateLanguageParser.parse(definition)
        parsed.set()

    with patches._parse_lock:  # another parse in progress
        worker = threading.Thread(target=parse)
        worker.start()
        assert not parsed.wait(timeout=0.5)
    assert parsed.wait(timeout=30)
    worker.join(timeout=5)


def test_patch_10_a_task_callback_is_delivered_while_another_execution_starts(aws):
    """moto finds a task token by walking every RUNNING execution's environment, which is
    None until that execution's thread has parsed its definition: a SendTaskSuccess sent
    while another execution starts failed. Patch 10 skips executions not yet started."""
    seen = []

    def remember(name, event):
        seen.append(event)

    patches.set_lambda_invoker(remember)
    role = _role()
    arn = _function("waits", role)
    sfn = client("stepfunctions")
    definition = _waits_for_its_token(arn)
    # moto walks state machines in creation order: the one whose execution is still
    # starting comes first.
    starting = sfn.create_state_machine(
        name="starting", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    machine = sfn.create_state_machine(name="m", definition=json.dumps(definition), roleArn=role)[
        "stateMachineArn"
    ]
    first = sfn.start_execution(stateMachineArn=machine, name="first", input="{}")
    deadline = time.monotonic() + 10
    while not seen and time.monotonic() < deadline:
        time.sleep(0.02)
    token = seen[0]["token"]

    # Another execution that has not started evaluating (its parse still to come).
    with patches._parse_lock:
        sfn.start_execution(stateMachineArn=starting, name="second", input="{}")
        sfn.send_task_success(taskToken=token, output='{"ok": true}')

    assert _finished(sfn, first["executionArn"])["status"] == "SUCCEEDED"
    for execution in sfn.list_executions(stateMachineArn=starting)["executions"]:
        if execution["status"] == "RUNNING":
            sfn.stop_execution(executionArn=execution["executionArn"])


def test_patch_11_a_definition_is_parsed_once_and_each_execution_gets_its_own_program(
    aws, monkeypatch
):
    """moto parses the definition again for every execution (the reason for patch 11; this
    fails if moto changes that). Patch 11 parses it once and hands each execution a copy."""
    import inspect

    from moto.stepfunctions.parser.asl.parse.asl_parser import AmazonStateLanguageParser

    assert "AmazonStateLanguageParser.parse(" in inspect.getsource(
        patches.moto_get_evaluation_entrypoint
    )
    parses = []
    parse = AmazonStateLanguageParser.parse

    def counted(definition):
        parses.append(definition)
        time.sleep(0.1)  # a slow parse: executions starting together all miss the cache
        return parse(definition)

    monkeypatch.setattr(AmazonStateLanguageParser, "parse", staticmethod(counted))
    patches._parsed_program.cache_clear()
    role = _role()
    sfn = client("stepfunctions")
    definition = {
        "StartAt": "Count",
        "States": {
            "Count": {"Type": "Pass", "Parameters": {"seen.$": "$.n"}, "Next": "Done"},
            "Done": {"Type": "Succeed"},
        },
    }
    machine = sfn.create_state_machine(
        name="once", definition=json.dumps(definition), roleArn=role
    )["stateMachineArn"]
    validated = len(parses)  # creating the machine validates the definition (its own parse)
    arns = [
        sfn.start_execution(stateMachineArn=machine, name=f"run-{n}", input=json.dumps({"n": n}))[
            "executionArn"
        ]
        for n in range(3)
    ]
    outputs = []
    for arn in arns:
        described = _finished(sfn, arn)
        assert described["status"] == "SUCCEEDED"
        outputs.append(json.loads(described["output"]))
    assert outputs == [{"seen": 0}, {"seen": 1}, {"seen": 2}]  # each its own input
    assert len(parses) - validated == 1

    # Each execution gets its own program: nothing in one is shared with another.
    from moto.stepfunctions.parser.backend.execution_worker import ExecutionWorker

    worker = ExecutionWorker.__new__(ExecutionWorker)
    worker._evaluation_details = type(
        "Details",
        (),
        {"state_machine_details": type("M", (), {"definition": json.dumps(definition)})()},
    )()
    first, second = worker._get_evaluation_entrypoint(), worker._get_evaluation_entrypoint()
    assert type(first) is type(second) and first is not second
    assert vars(first).keys() == vars(second).keys()
    assert all(
        vars(first)[key] is not vars(second)[key]
        for key in vars(first)
        if not isinstance(vars(first)[key], (str, int, float, bool, type(None)))
    )


def test_patch_12_a_task_resumed_by_its_token_waits_at_the_background_gate(aws):
    """A SendTaskSuccess wakes the execution, which passes the sandbox's background gate
    before its next step, as a decision of that execution: while the gate holds (a Slack
    request in flight, another decision's turn), it waits. The execution's scope is entered
    around the whole execution and left when it ends (its turn passes on then)."""
    seen = []
    patches.set_lambda_invoker(lambda name, event: seen.append(event))
    at_gate = threading.Event()
    release = threading.Event()
    calls: list[tuple[bool, str | None]] = []
    scopes: list[tuple[str, str]] = []

    def gate(decision: bool = False, execution: str | None = None) -> None:
        calls.append((decision, execution))
        at_gate.set()
        assert release.wait(timeout=10)

    @contextlib.contextmanager
    def scope(execution: str) -> Iterator[None]:
        scopes.append(("entered", execution))
        yield
        scopes.append(("left", execution))

    patches.set_background_gate(gate, scope)
    try:
        role = _role()
        arn = _function("waits", role)
        sfn = client("stepfunctions")
        definition = _waits_for_its_token(arn)
        machine = sfn.create_state_machine(
            name="gated", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="one", input="{}")
        deadline = time.monotonic() + 10
        while not seen and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not at_gate.is_set()  # waiting for its token is not background work

        sfn.send_task_success(taskToken=seen[0]["token"], output='{"ok": true}')
        assert at_gate.wait(timeout=10)
        described = sfn.describe_execution(executionArn=execution["executionArn"])
        assert described["status"] == "RUNNING"  # held at the gate, after its token came

        assert calls == [(True, execution["executionArn"])]  # a decision, and whose
        assert scopes == [("entered", execution["executionArn"])]

        release.set()
        described = _finished(sfn, execution["executionArn"])
        assert described["status"] == "SUCCEEDED"
        assert json.loads(described["output"]) == {"ok": True}
        deadline = time.monotonic() + 10
        while len(scopes) < 2 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert scopes == [
            ("entered", execution["executionArn"]),
            ("left", execution["executionArn"]),
        ]
    finally:
        release.set()
        patches.set_background_gate(None)
        patches.set_lambda_invoker(None)


def test_patch_12_a_heartbeat_that_times_out_is_no_decision(aws):
    """A reminder cycle ends the wait with a heartbeat timeout, not a click: the execution
    takes no decision's turn (it would keep it, and the status feed waiting, until the
    approval is decided, and the click that decides it would then take none)."""
    patches.set_lambda_invoker(lambda name, event: None)
    calls: list[tuple[bool, str | None]] = []
    patches.set_background_gate(
        lambda decision=False, execution=None: calls.append((decision, execution))
    )
    try:
        role = _role()
        definition = _waits_for_its_token(_function("waits", role))
        definition["States"]["Wait"] |= {
            "HeartbeatSeconds": 1,
            "Catch": [{"ErrorEquals": ["States.HeartbeatTimeout"], "Next": "Remind"}],
        }
        definition["States"]["Wait"].pop("End")
        definition["States"]["Wait"]["Next"] = "Remind"
        definition["States"]["Remind"] = {"Type": "Pass", "End": True}
        sfn = client("stepfunctions")
        machine = sfn.create_state_machine(
            name="reminds", definition=json.dumps(definition), roleArn=role
        )["stateMachineArn"]
        execution = sfn.start_execution(stateMachineArn=machine, name="one", input="{}")
        described = _finished(sfn, execution["executionArn"])
        assert described["status"] == "SUCCEEDED"
        history = sfn.get_execution_history(executionArn=execution["executionArn"])["events"]
        assert any(e["type"] == "TaskTimedOut" for e in history)  # the heartbeat ran out
        assert (True, execution["executionArn"]) not in calls
    finally:
        patches.set_background_gate(None)
        patches.set_lambda_invoker(None)


def test_patch_13_a_response_class_lists_its_methods_once(aws):
    """moto lists the response class's methods on every request (the reason for patch 13;
    this fails if moto changes that); the patched lookup answers as moto's own does."""
    import inspect

    from moto.core import responses, utils
    from moto.dynamodb.responses import DynamoHandler

    assert "method_names_from_class(self.__class__)" in inspect.getsource(
        responses.BaseResponse.call_action
    )
    assert responses.method_names_from_class(DynamoHandler) == utils.method_names_from_class(
        DynamoHandler
    )
    before = responses.method_names_from_class.cache_info().hits
    dynamodb = client("dynamodb")
    dynamodb.list_tables()
    dynamodb.list_tables()
    assert responses.method_names_from_class.cache_info().hits > before


def test_patch_14_update_expressions_are_parsed_once_and_still_applied_exactly(aws):
    """moto parses each UpdateExpression twice per request, and its validators work on a
    deep copy of the parsed expression (why keeping the parsed one is safe; this fails if
    moto changes either). Repeated updates with one expression still do what they say."""
    import inspect

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import Validator
    from moto.dynamodb.responses import DynamoHandler

    assert "UpdateExpressionParser.make(" in inspect.getsource(DynamoHandler.update_item)
    backend_update = DynamoDBBackend.update_item.__kwdefaults__["__original"]  # under patch 7
    assert "UpdateExpressionParser.make(" in inspect.getsource(backend_update)
    assert "deepcopy(expression)" in inspect.getsource(Validator.__init__)

    expression = "SET #n = :n, tally = tally + :one ADD seen :seen REMOVE gone"
    assert UpdateExpressionParser.make(expression) is UpdateExpressionParser.make(expression)

    dynamodb = client("dynamodb")
    _create_table(dynamodb)
    for key in ("a", "b"):
        dynamodb.put_item(
            TableName="t", Item={"id": {"S": key}, "tally": {"N": "0"}, "gone": {"S": "x"}}
        )
        for n in range(3):
            dynamodb.update_item(
                TableName="t",
                Key={"id": {"S": key}},
                UpdateExpression=expression,
                ExpressionAttributeNames={"#n": "name"},
                ExpressionAttributeValues={
                    ":n": {"S": f"{key}{n}"},
                    ":one": {"N": "1"},
                    ":seen": {"SS": [f"e{n}"]},
                },
            )
        item = dynamodb.get_item(TableName="t", Key={"id": {"S": key}})["Item"]
        assert item == {
            "id": {"S": key},
            "name": {"S": f"{key}2"},
            "tally": {"N": "3"},
            "seen": {"SS": ["e0", "e1", "e2"]},
        }
    # A bad expression is still refused, every time (errors are never kept).
    for _ in range(2):
        with pytest.raises(ClientError, match="ValidationException"):
            dynamodb.update_item(
                TableName="t", Key={"id": {"S": "a"}}, UpdateExpression="SET = broken"
            )


def test_patch_15_a_callback_before_the_heartbeat_wait_still_wakes_it(aws):
    """moto sets up a task's heartbeat endpoint after invoking the function; an outcome
    that arrived before then woke nobody and the task slept out its heartbeat (the reason
    for patch 15; this fails if moto changes that)."""
    from moto.stepfunctions.parser.asl.eval.callback.callback import (
        CallbackEndpoint,
        CallbackOutcomeSuccess,
    )

    unpatched = CallbackEndpoint("token-1")
    unpatched.notify(CallbackOutcomeSuccess(callback_id="token-1", output="{}"))
    moto_endpoint = patches.moto_setup_heartbeat_endpoint(unpatched, heartbeat_seconds=3600)
    assert not moto_endpoint._next_heartbeat_event.is_set()

    early = CallbackEndpoint("token-2")
    early.notify(CallbackOutcomeSuccess(callback_id="token-2", output='{"ok": true}'))
    heartbeat = early.setup_heartbeat_endpoint(heartbeat_seconds=3600)
    started = time.monotonic()
    assert heartbeat.clear_and_wait() is True  # at once, not after an hour
    assert time.monotonic() - started < 1
    assert early.get_outcome().output == '{"ok": true}'

    # The usual order (endpoint first, outcome later) is unchanged.
    usual = CallbackEndpoint("token-3")
    heartbeat = usual.setup_heartbeat_endpoint(heartbeat_seconds=3600)
    assert not heartbeat._next_heartbeat_event.is_set()
    usual.notify(CallbackOutcomeSuccess(callback_id="token-3", output="{}"))
    assert heartbeat.clear_and_wait() is True


def test_patch_16_dynamodb_items_go_when_nothing_uses_them(aws):
    """moto keeps every model instance it creates in a class-wide list until the mock is
    reset (the reason for patch 16; this fails if moto changes that), so each read's and
    write's copies of an item lived forever. An Item is now freed once unused, and reads
    and writes answer as before."""
    import gc
    import inspect
    import weakref

    from moto.core.common_models import BaseModel
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.models.table import Table

    assert "instances_tracked.append(instance)" in inspect.getsource(BaseModel.__new__)
    assert Table.__new__ is BaseModel.__new__  # other models are still tracked

    dynamodb = client("dynamodb")
    _create_table(dynamodb)
    dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}, "n": {"N": "0"}})
    for _ in range(50):
        dynamodb.update_item(
            TableName="t",
            Key={"id": {"S": "a"}},
            UpdateExpression="SET n = n + :one",
            ConditionExpression="attribute_exists(id)",
            ExpressionAttributeValues={":one": {"N": "1"}},
            ReturnValues="ALL_NEW",
        )
        dynamodb.get_item(TableName="t", Key={"id": {"S": "a"}}, ConsistentRead=True)
    gc.collect()
    live = [o for o in gc.get_objects() if isinstance(o, Item)]
    assert len(live) <= 3  # the stored item (and its index copies), not 100 copies
    assert Item.instances_tracked == []
    stored = weakref.ref(live[0])
    del live
    answer = dynamodb.get_item(TableName="t", Key={"id": {"S": "a"}}, ConsistentRead=True)
    assert answer["Item"]["n"] == {"N": "50"}
    assert stored() is not None  # what the table holds is still there


def test_patch_17_requests_go_unsigned_only_while_a_sandbox_runs(aws):
    """moto answers an unsigned request in its default account, the sandbox's (why skipping
    the signature is safe; this fails if moto starts to need one). Outside a running
    sandbox, botocore signs as usual."""
    seen: list[dict[str, str]] = []
    dynamodb = client("dynamodb")
    dynamodb.meta.events.register(
        "before-send.dynamodb.*", lambda request, **_: seen.append(dict(request.headers))
    )

    dynamodb.list_tables()
    assert "Authorization" in seen[-1]

    patches.set_lambda_invoker(lambda name, event: None)  # as Sandbox.start does
    try:
        _create_table(dynamodb)
        assert "Authorization" not in seen[-1]
        arn = dynamodb.describe_table(TableName="t")["Table"]["TableArn"]
        assert arn == "arn:aws:dynamodb:us-east-1:123456789012:table/t"
    finally:
        patches.set_lambda_invoker(None)
    assert "Authorization" not in seen[-1]
    dynamodb.describe_table(TableName="t")  # the same account, signed or not
    assert "Authorization" in seen[-1]


def test_patch_18_tasks_reuse_one_client_per_service(aws):
    """moto builds a new boto3 client for every task it runs, from nothing but the region
    and the service (the reason for patch 18, and why sharing one is safe; this fails if
    moto changes either). Tasks now share one per service, and each still reaches its
    own function with its own payload."""
    import inspect

    from moto.stepfunctions.parser.asl.component.state.exec.state_task import lambda_eval_utils
    from moto.stepfunctions.parser.asl.utils import boto_client

    assert patches.moto_boto_client_for("us-east-1", "lambda") is not (
        patches.moto_boto_client_for("us-east-1", "lambda")
    )
    source = inspect.getsource(patches.moto_boto_client_for)
    assert source.count("state_credentials") == 1  # in the signature only: never used
    assert lambda_eval_utils.boto_client_for is boto_client.boto_client_for
    shared = boto_client.boto_client_for("us-east-1", "lambda")
    assert boto_client.boto_client_for("us-east-1", "lambda") is shared
    assert boto_client.boto_client_for("eu-west-1", "lambda") is not shared

    seen: list[tuple[str, Any]] = []
    patches.set_lambda_invoker(lambda name, event: seen.append((name, event)) or event)
    try:
        role = _role()
        first, second = _function("first", role), _function("second", role)
        definition = {
            "StartAt": "One",
            "States": {
                "One": {
                    "Type": "Task",
                    "Resource": first,
                    "Parameters": {"n": 1},
                    "ResultPath": "$.one",
                    "Next": "Two",
                },
                "Two": {"Type": "Task", "Resource": second, "Parameters": {"n": 2}, "End": True},
            },
        }
        described = _run(definition, {}, role)
    finally:
        patches.set_lambda_invoker(None)
    assert described["status"] == "SUCCEEDED"
    assert seen == [("first", {"n": 1}), ("second", {"n": 2})]


def test_patch_19_update_validation_answers_each_node_class_once_and_still_refuses(aws):
    """moto's validators ask isinstance against abstract classes at every node of every
    walk (the reason for patch 19; this fails if moto changes that). With the answers
    kept per class, every check still refuses what DynamoDB refuses, and accepted updates
    (paths, functions, arithmetic) still write exactly what they say."""
    import inspect

    source = inspect.getsource(patches.moto_traverse_node_recursively)
    assert "isinstance(node, self.nodes_to_be_processed())" in source

    dynamodb = client("dynamodb")
    _create_table(dynamodb)
    dynamodb.put_item(
        TableName="t",
        Item={"id": {"S": "a"}, "n": {"N": "1"}, "votes": {"M": {}}, "entries": {"L": []}},
    )
    refused = {
        "SET id = :v": "part of the key",  # UpdateHashRangeKeyValidator
        "SET n = :v SET m = :v": "",  # ActionCountValidator (one SET clause)
        "SET n = :v, n = :v": "overlap",  # OverlappingPathsValidator
        "SET n = absent + :v": "does not exist",  # NoneExistingPathChecker
        "SET n = :v + :v": "",  # ExecuteOperations: a string is no number
    }
    for expression, says in refused.items():
        for _ in range(2):  # the second time answers from what was kept
            with pytest.raises(ClientError, match="ValidationException") as caught:
                dynamodb.update_item(
                    TableName="t",
                    Key={"id": {"S": "a"}},
                    UpdateExpression=expression,
                    ExpressionAttributeValues={":v": {"S": "x"}},
                )
            assert says in str(caught.value), (expression, str(caught.value))
    # The checks that read only the expression passed for these names once; other names
    # make it another request, checked afresh.
    for name, refused_now in (("n", False), ("id", True), ("n", False)):
        try:
            dynamodb.update_item(
                TableName="t",
                Key={"id": {"S": "a"}},
                UpdateExpression="SET #a = :n",
                ExpressionAttributeNames={"#a": name},
                ExpressionAttributeValues={":n": {"N": "1"}},
            )
            assert not refused_now, name
        except ClientError as exc:
            assert refused_now and "part of the key" in str(exc), (name, str(exc))
    for at in range(2):  # the same expression again: validated on a fresh copy
        dynamodb.update_item(
            TableName="t",
            Key={"id": {"S": "a"}},
            UpdateExpression=(
                "SET votes.#u = :vote, n = n + :one, entries = list_append(entries, :entry), "
                "opened = if_not_exists(opened, :at)"
            ),
            ConditionExpression="attribute_not_exists(votes.#u)",
            ExpressionAttributeNames={"#u": f"U{at}"},
            ExpressionAttributeValues={
                ":vote": {"M": {"vote": {"S": "approve"}}},
                ":one": {"N": "1"},
                ":entry": {"L": [{"S": f"e{at}"}]},
                ":at": {"S": f"t{at}"},
            },
        )
    item = dynamodb.get_item(TableName="t", Key={"id": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert item == {
        "id": {"S": "a"},
        "n": {"N": "3"},
        "votes": {
            "M": {"U0": {"M": {"vote": {"S": "approve"}}}, "U1": {"M": {"vote": {"S": "approve"}}}}
        },
        "entries": {"L": [{"S": "e0"}, {"S": "e1"}]},
        "opened": {"S": "t0"},
    }


def test_patch_20_a_condition_parsed_once_per_request_is_still_evaluated_afresh(aws):
    """moto parses a write's ConditionExpression in the response handler and again in the
    backend (the reason for patch 20; this fails if moto changes that). The second parse
    reuses the first only for the same request: the same expression with other values is
    a new condition, unused values are still refused, and each write is judged against
    the item as it is."""
    import inspect

    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.responses import DynamoHandler

    assert "condition_parser.parse()" in inspect.getsource(DynamoHandler.update_item)
    backend_update = DynamoDBBackend.update_item.__kwdefaults__["__original"]  # under patch 7
    assert "condition_expression_parser.parse()" in inspect.getsource(backend_update)

    dynamodb = client("dynamodb")
    _create_table(dynamodb)
    dynamodb.put_item(TableName="t", Item={"id": {"S": "a"}, "n": {"N": "0"}})

    def bump(expected: int, **extra: Any) -> bool:
        try:
            dynamodb.update_item(
                TableName="t",
                Key={"id": {"S": "a"}},
                UpdateExpression="SET n = n + :one",
                ConditionExpression="n = :expected",
                ExpressionAttributeValues={
                    ":one": {"N": "1"},
                    ":expected": {"N": str(expected)},
                    **extra,
                },
            )
        except dynamodb.exceptions.ConditionalCheckFailedException:
            return False
        return True

    assert bump(0) is True
    assert bump(0) is False  # same expression and values, the item has moved on
    assert bump(1) is True  # same expression, other values: a condition of its own
    assert bump(1) is False
    with pytest.raises(ClientError, match="unused in expressions"):
        bump(2, **{":spare": {"S": "x"}})
    item = dynamodb.get_item(TableName="t", Key={"id": {"S": "a"}}, ConsistentRead=True)["Item"]
    assert item["n"] == {"N": "2"}


def _slow_machine_copies(monkeypatch: pytest.MonkeyPatch, hold: Any) -> None:
    """moto deep-copies the state machine between checking a name and adding the execution;
    `hold()` runs inside that copy, so a test can keep a start in its window."""
    import copy

    from moto.stepfunctions.parser import models as parser_models

    class Copy:
        @staticmethod
        def deepcopy(*args: Any, **kwargs: Any) -> Any:
            hold()
            return copy.deepcopy(*args, **kwargs)

    monkeypatch.setattr(parser_models, "copy", Copy)


def _start_together(sfn: Any, machine: str, name: str, count: int) -> list[str]:
    """`count` StartExecution calls of one name and input, released at once; their ARNs."""
    ready = threading.Barrier(count)
    arns: list[str] = []

    def start() -> None:
        ready.wait(timeout=10)
        answer = sfn.start_execution(stateMachineArn=machine, name=name, input='{"a": 1}')
        arns.append(answer["executionArn"])

    threads = [threading.Thread(target=start) for _ in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    return arns


def test_patch_21_one_execution_per_name_when_starts_overlap(aws, monkeypatch):
    """Two deliveries of one approval notification start its workflow at the same moment.
    moto checks the name before a slow copy and adds the execution after it, so both run
    (the reason for patch 21; this fails if moto closes the window itself). With the patch
    there is one execution and every caller gets its ARN, as on Step Functions; a start
    with other input is still refused, and other names do not wait for a slow start."""
    from moto.stepfunctions.parser.models import StepFunctionsParserBackend

    sfn = client("stepfunctions")
    waits = {"StartAt": "W", "States": {"W": {"Type": "Wait", "Seconds": 30, "End": True}}}
    machine = sfn.create_state_machine(name="m", definition=json.dumps(waits), roleArn=_role())[
        "stateMachineArn"
    ]

    def named(name: str) -> list[dict]:
        return [
            e
            for e in sfn.list_executions(stateMachineArn=machine)["executions"]
            if e["name"] == name
        ]

    _slow_machine_copies(monkeypatch, lambda: time.sleep(0.2))
    with monkeypatch.context() as unpatched:
        unpatched.setattr(
            StepFunctionsParserBackend, "start_execution", patches.moto_start_execution
        )
        _start_together(sfn, machine, "moto", 3)
    assert len(named("moto")) > 1

    arns = _start_together(sfn, machine, "once", 3)
    assert len(named("once")) == 1
    assert arns == [named("once")[0]["executionArn"]] * 3
    with pytest.raises(ClientError, match="ExecutionAlreadyExists"):
        sfn.start_execution(stateMachineArn=machine, name="once", input='{"a": 2}')

    held, release = threading.Event(), threading.Event()

    def hold_the_first() -> None:
        if not held.is_set():
            held.set()
            release.wait(timeout=10)

    _slow_machine_copies(monkeypatch, hold_the_first)
    slow = threading.Thread(
        target=sfn.start_execution, kwargs={"stateMachineArn": machine, "name": "slow"}
    )
    slow.start()
    assert held.wait(timeout=10)
    try:
        sfn.start_execution(stateMachineArn=machine, name="other")  # while "slow" is held
        assert len(named("other")) == 1 and not named("slow")
    finally:
        release.set()
        slow.join(timeout=10)
    assert len(named("slow")) == 1


# --- Patch 22: each function logs as itself ---------------------------------------------------


def _context(function_name: str) -> Any:
    """The attributes of Lambda's context object that Powertools reads."""
    return SimpleNamespace(
        function_name=function_name,
        memory_limit_in_mb=128,
        invoked_function_arn=f"arn:aws:lambda:{REGION}:123456789012:function:{function_name}",
        aws_request_id=str(uuid.uuid4()),
    )


def _log_lines(stream: io.StringIO) -> dict[str, dict[str, Any]]:
    return {line["message"]: line for line in map(json.loads, stream.getvalue().splitlines())}


def _two_functions_at_once(inject: Callable[..., Any]) -> dict[str, dict[str, Any]]:
    """Two handlers, decorated by `inject`, with loggers of one service (as the gate's
    functions in the sandbox), run at once on two threads: the first logs, the second
    runs whole, the first logs again."""
    stream = io.StringIO()
    service = f"patch-22-{uuid.uuid4()}"
    first, second = Logger(service=service, stream=stream), Logger(service=service, stream=stream)
    first_logged, second_done = threading.Event(), threading.Event()

    def start_approval(event: Any, context: Any) -> None:
        first.append_keys(approval_id="A")
        first.info("first, before")
        first_logged.set()
        second_done.wait(timeout=10)
        first.info("first, after")

    def pipeline_events(event: Any, context: Any) -> None:
        first_logged.wait(timeout=10)
        second.append_keys(approval_id="B")
        second.info("second")
        second_done.set()

    threads = [
        threading.Thread(target=inject(first, start_approval), args=({}, _context("Start"))),
        threading.Thread(target=inject(second, pipeline_events), args=({}, _context("Events"))),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    return _log_lines(stream)


def test_functions_running_at_once_each_log_as_themselves() -> None:
    patches.apply()
    shared = _two_functions_at_once(patches.powertools_inject_lambda_context)
    assert (shared["first, after"]["function_name"], shared["first, after"]["approval_id"]) == (
        "Events",
        "B",
    )  # Powertools alone: one set of keys for every function in the process

    lines = _two_functions_at_once(Logger.inject_lambda_context)

    named = {m: (line["function_name"], line["approval_id"]) for m, line in lines.items()}
    assert named == {
        "first, before": ("Start", "A"),
        "second": ("Events", "B"),
        "first, after": ("Start", "A"),
    }


def test_a_warm_function_keeps_its_keys_as_on_lambda() -> None:
    """Not kinder than AWS: the next invocation of a function finds the keys the last one
    left (only clear_state drops them); a cold one starts from those set at import."""
    patches.apply()
    stream = io.StringIO()
    logger = Logger(service=f"patch-22-{uuid.uuid4()}", stream=stream)
    logger.append_keys(stage="import")

    def labels(event: Any, context: Any) -> None:
        if event:
            logger.append_keys(approval_id=event)
        logger.info(f"with {event or 'nothing'}")

    handler = logger.inject_lambda_context(labels)
    handler("A", _context("Fn"))
    handler(None, _context("Fn"))

    lines = _log_lines(stream)
    assert lines["with A"]["stage"] == "import"
    assert lines["with nothing"]["approval_id"] == "A"  # the warm container's
    assert "approval_id" not in logger.get_current_keys()  # not the whole process's


# --- Patch 1 (error names), 23 and 24: platform faults ------------------------------------


def _caught_error(function_arn: str, role: str) -> str:
    """Run a one-task machine invoking the function; the error name a catcher sees."""
    definition = {
        "StartAt": "Call",
        "States": {
            "Call": {
                "Type": "Task",
                "Resource": "arn:aws:states:::lambda:invoke",
                "Parameters": {"FunctionName": function_arn, "Payload": {}},
                "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "End": True},
        },
    }
    return str(json.loads(_run(definition, {}, role)["output"])["Error"])


def test_patch_1_a_function_error_without_error_type_is_lambda_unknown(aws):
    from sandbox.faults import FunctionTimedOut

    raised: list[Exception] = []

    def invoke(name, event):
        raise raised[-1]

    patches.set_lambda_invoker(invoke)
    role = _role()
    arn = _function("f", role)

    raised.append(FunctionTimedOut(1.0))
    timed_out = _caught_error(arn, role)
    raised.append(ValueError("boom"))
    typed = _caught_error(arn, role)

    assert timed_out == "Lambda.Unknown"
    assert typed == "ValueError"


@pytest.fixture
def aws_faults(aws) -> Iterator[Any]:
    from sandbox.faults import Faults

    faults = Faults()
    patches.set_aws_faults(faults.choose)
    yield faults
    patches.set_aws_faults(None)


def _indexed_table(dynamodb: Any) -> None:
    """Table "t" (hash key `id`) with index "by_group" on `group`, keys only."""
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "group", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_group",
                "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "KEYS_ONLY"},
            }
        ],
        BillingMode="PAY_PER_REQUEST",
    )


def test_patch_23_a_gate_call_meets_the_throttle_and_botocore_retries_it(aws_faults):
    from botocore.config import Config

    once = boto3.client(
        "dynamodb",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )
    retried = boto3.client(
        "dynamodb",
        region_name=REGION,
        config=Config(retries={"mode": "standard", "total_max_attempts": 5}),
    )
    _create_table(once)
    aws_faults.set("dynamodb", "GetItem", "throttled", 1, 1)
    key = {"id": {"S": "a"}}

    assert "Item" not in once.get_item(TableName="t", Key=key)  # not a gate call: no fault
    with patches.gate_calls("f"), pytest.raises(ClientError) as first:
        once.get_item(TableName="t", Key=key)
    with patches.gate_calls("f"), pytest.raises(ClientError) as second:
        once.get_item(TableName="t", Key=key)
    calls_before = aws_faults.snapshot()["calls"]["dynamodb"]["GetItem"]
    with patches.gate_calls("f"), pytest.raises(ClientError) as exhausted:
        retried.get_item(TableName="t", Key=key)

    assert first.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert second.value.response["Error"]["Code"] == "ThrottlingException"
    assert exhausted.value.response["ResponseMetadata"]["RetryAttempts"] == 4
    assert aws_faults.snapshot()["calls"]["dynamodb"]["GetItem"] == calls_before + 5
    aws_faults.set("dynamodb", "GetItem", "throttled", 0, 1)
    with patches.gate_calls("f"):
        assert "Item" not in retried.get_item(TableName="t", Key=key)


def test_patch_23_step_functions_calls_are_throttled_with_its_error(aws_faults):
    from botocore.config import Config

    sfn = boto3.client(
        "stepfunctions", region_name=REGION, config=Config(retries={"total_max_attempts": 1})
    )
    aws_faults.set("stepfunctions", "SendTaskSuccess", "throttled", 1, 1)
    with patches.gate_calls("f"), pytest.raises(ClientError) as throttled:
        sfn.send_task_success(taskToken="t" * 20, output="{}")
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"


def test_patch_23_an_index_hides_items_first_written_less_than_delay_ago(aws_faults):
    dynamodb = client("dynamodb")
    _indexed_table(dynamodb)
    # The queries below must all run within the lag of the new item's write: 1 s leaves
    # room on a busy machine (0.3 s did not, under the parallel suite).
    lag = 1.0
    aws_faults.set("dynamodb", "Query", "index_lag", 1, 1, delay=lag)
    old = {"id": {"S": "old"}, "group": {"S": "g"}}
    dynamodb.put_item(TableName="t", Item=old)
    written = time.monotonic()
    while time.monotonic() - written < lag:  # bounded: the old item's lag runs out
        time.sleep(0.01)
    dynamodb.put_item(TableName="t", Item={"id": {"S": "new"}, "group": {"S": "g"}})
    query = {
        "TableName": "t",
        "IndexName": "by_group",
        "KeyConditionExpression": "#g = :g",
        "ExpressionAttributeNames": {"#g": "group"},
        "ExpressionAttributeValues": {":g": {"S": "g"}},
    }

    with patches.gate_calls("f"):
        lagging = dynamodb.query(**query)
        dynamodb.update_item(  # a later write to the old item shows at once
            TableName="t",
            Key={"id": {"S": "old"}},
            UpdateExpression="SET n = :n",
            ExpressionAttributeValues={":n": {"N": "1"}},
        )
        after_update = dynamodb.query(**query)
        table = dynamodb.query(
            TableName="t",
            KeyConditionExpression="id = :id",
            ExpressionAttributeValues={":id": {"S": "new"}},
        )
    outside = dynamodb.query(**query)  # not a gate call

    assert [i["id"]["S"] for i in lagging["Items"]] == ["old"]
    assert lagging["Count"] == 1
    assert [i["id"]["S"] for i in after_update["Items"]] == ["old"]
    assert [i["id"]["S"] for i in table["Items"]] == ["new"]  # the table itself never lags
    assert sorted(i["id"]["S"] for i in outside["Items"]) == ["new", "old"]


def test_patch_24_a_failed_async_invocation_is_retried_twice_then_dead_lettered(aws, caplog):
    attempts: list[float] = []
    fail_times = {"first": 1, "always": 99}
    failing: list[str] = []

    def invoke(name, event):
        attempts.append(time.monotonic())
        if len(attempts) <= fail_times[failing[-1]]:
            raise RuntimeError("down")
        return None

    patches.set_lambda_invoker(invoke)
    arn = _function("listener", _role())
    topic = client("sns").create_topic(Name="t")["TopicArn"]
    client("sns").subscribe(TopicArn=topic, Protocol="lambda", Endpoint=arn)

    failing.append("first")
    client("sns").publish(TopicArn=topic, Message="one")
    assert patches.wait_for_retries(timeout=10)
    recovered = list(attempts)
    attempts.clear()
    failing.append("always")
    with caplog.at_level("WARNING"):
        client("sns").publish(TopicArn=topic, Message="two")
        assert patches.wait_for_events(timeout=10)

    assert len(recovered) == 2
    assert recovered[1] - recovered[0] >= patches.ASYNC_RETRY_DELAYS[0]
    assert len(attempts) == 3
    assert attempts[1] - attempts[0] >= patches.ASYNC_RETRY_DELAYS[0]
    assert attempts[2] - attempts[1] >= patches.ASYNC_RETRY_DELAYS[1]
    assert "failed 3 times" in caplog.text and "dead-letter" in caplog.text


def _alarm(name: str) -> None:
    client("cloudwatch").put_metric_alarm(
        AlarmName=name,
        MetricName="Errors",
        Namespace="Test",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=1,
        ComparisonOperator="GreaterThanThreshold",
    )


def test_patch_25_describe_alarms_answers_by_pages_ordered_by_name(aws, monkeypatch):
    from moto.cloudwatch.responses import CloudWatchResponse

    names = [f"alarm-{n:03d}" for n in range(120)]
    for name in reversed(names):  # created out of order: pages still go by name
        _alarm(name)
    cloudwatch = client("cloudwatch")

    with monkeypatch.context() as unpatched:
        unpatched.setattr(CloudWatchResponse, "describe_alarms", patches.moto_describe_alarms)
        moto_answer = cloudwatch.describe_alarms(MaxRecords=10)
    assert len(moto_answer["MetricAlarms"]) == 120 and "NextToken" not in moto_answer

    first = cloudwatch.describe_alarms()
    assert [a["AlarmName"] for a in first["MetricAlarms"]] == names[:50]  # 50 by default
    pages = [first]
    while "NextToken" in pages[-1]:
        pages.append(cloudwatch.describe_alarms(MaxRecords=50, NextToken=pages[-1]["NextToken"]))
    assert [len(page["MetricAlarms"]) for page in pages] == [50, 50, 20]
    assert [a["AlarmName"] for page in pages for a in page["MetricAlarms"]] == names

    # boto3's paginator follows the tokens; filters page the same way
    paginator = cloudwatch.get_paginator("describe_alarms")
    by_prefix = paginator.paginate(AlarmNamePrefix="alarm-1", PaginationConfig={"PageSize": 7})
    assert [a["AlarmName"] for page in by_prefix for a in page["MetricAlarms"]] == names[100:]
    by_name = cloudwatch.describe_alarms(AlarmNames=[*names[:3], "missing"], MaxRecords=2)
    assert [a["AlarmName"] for a in by_name["MetricAlarms"]] == names[:2]
    rest = cloudwatch.describe_alarms(
        AlarmNames=names[:3], MaxRecords=2, NextToken=by_name["NextToken"]
    )
    assert [a["AlarmName"] for a in rest["MetricAlarms"]] == names[2:3]
    assert "NextToken" not in rest

    # an alarm created between two calls neither repeats nor shifts what was read
    page_one = cloudwatch.describe_alarms(MaxRecords=100)
    _alarm("alarm-000a")  # sorts among the first page's names
    page_two = cloudwatch.describe_alarms(MaxRecords=100, NextToken=page_one["NextToken"])
    assert [a["AlarmName"] for a in page_two["MetricAlarms"]] == names[100:]

    with pytest.raises(ClientError, match="InvalidNextToken"):
        cloudwatch.describe_alarms(NextToken="not-a-token-of-ours")
    with pytest.raises(ClientError, match="ValidationError"):
        cloudwatch.describe_alarms(MaxRecords=101)


def _big_items_table(dynamodb: Any, projection: str) -> None:
    dynamodb.create_table(
        TableName="big",
        BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[
            {"AttributeName": "id", "AttributeType": "S"},
            {"AttributeName": "group", "AttributeType": "S"},
        ],
        GlobalSecondaryIndexes=[
            {
                "IndexName": "by_group",
                "KeySchema": [{"AttributeName": "group", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": projection},
            }
        ],
    )
    for n in range(30):  # 30 items of ~100 kB: 3 MB in the table, 30 short keys in the index
        item = {"id": {"S": f"i{n:02d}"}, "group": {"S": "g"}, "blob": {"S": "x" * 100_000}}
        dynamodb.put_item(TableName="big", Item=item)


@pytest.mark.parametrize(("projection", "pages"), [("KEYS_ONLY", (1, 1)), ("ALL", (3, 4))])
def test_patch_26_an_index_page_holds_1_mb_of_the_index_s_items(aws, projection, pages):
    """DynamoDB stops a page at 1 MB of what it read: a keys-only index's short items fit in
    one page, where the whole items (3 MB) need three or four."""
    dynamodb = client("dynamodb")
    _big_items_table(dynamodb, projection)
    query: dict[str, Any] = {
        "TableName": "big",
        "IndexName": "by_group",
        "KeyConditionExpression": "#g = :g",
        "ExpressionAttributeNames": {"#g": "group"},
        "ExpressionAttributeValues": {":g": {"S": "g"}},
    }
    seen, answered = [], 0
    while True:
        page = dynamodb.query(**query)
        answered += 1
        seen += [item["id"]["S"] for item in page["Items"]]
        if "LastEvaluatedKey" not in page:
            break
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    assert sorted(seen) == [f"i{n:02d}" for n in range(30)]
    assert pages[0] <= answered <= pages[1]
    if projection == "KEYS_ONLY":
        assert set(page["Items"][0]) == {"id", "group"}
