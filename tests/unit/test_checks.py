"""Health checks (DESIGN §8.3, issue 21): alarms read from moto's CloudWatch (and, for
paging, a fake that pages, since moto 5.2.5 ignores MaxRecords and NextToken), check
functions through a fake invoker, and the results as the record and the summary see them."""

from __future__ import annotations

import io
import json
import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import boto3
import pytest
from approval_gate.checks import (
    CheckFunctionError,
    CheckResult,
    check_function_client_config,
    failing,
    lambda_invoker,
    run_checks,
    summary_of_failing,
)
from approval_gate.rules import Checks
from botocore.config import Config
from botocore.exceptions import ClientError, ConnectTimeoutError, ReadTimeoutError
from moto import mock_aws

NOW = datetime(2026, 12, 6, 7, 0, 0, 123000, tzinfo=UTC)
ARN = "arn:aws:lambda:us-east-1:123456789012:function:change-ticket-check"
SMOKE = "arn:aws:lambda:us-east-1:123456789012:function:smoke:live"
REQUEST = {
    "approval_id": "a1",
    "pipeline": "prod-web",
    "stage": "Deploy",
    "action": "Approve",
    "pipeline_execution_id": "e1",
    "revisions": [{"action": "Source", "revision_id": "abc"}],
    "channel": "C0DEPLOYS",  # not for the check function
}
REASON = (
    "Threshold Crossed: 1 out of the last 1 datapoints [12.0 (06/12/26 06:55:00)] was greater "
    "than the threshold (5.0) (minimum 1 datapoint for OK -> ALARM transition)."
)


def clock() -> datetime:
    return NOW


def no_functions(arn: str, payload: dict[str, Any]) -> Any:
    raise AssertionError("no function should be invoked")


class CountedCloudWatch:
    """A CloudWatch client that counts DescribeAlarms calls and keeps their arguments."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.meta = client.meta
        self.calls: list[dict[str, Any]] = []

    def describe_alarms(self, **kwargs: Any) -> Any:
        self.calls.append(kwargs)
        return self.client.describe_alarms(**kwargs)


@pytest.fixture
def cloudwatch(monkeypatch: pytest.MonkeyPatch) -> Iterator[CountedCloudWatch]:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(name, "testing")
    with mock_aws():
        yield CountedCloudWatch(boto3.client("cloudwatch", region_name="us-east-1"))


def put_alarm(
    cloudwatch: CountedCloudWatch, name: str, state: str = "OK", reason: str = ""
) -> None:
    cloudwatch.client.put_metric_alarm(
        AlarmName=name,
        Namespace="AWS/ApiGateway",
        MetricName="5XXError",
        Statistic="Sum",
        Period=60,
        EvaluationPeriods=1,
        Threshold=5.0,
        ComparisonOperator="GreaterThanThreshold",
    )
    if state != "OK" or reason:
        cloudwatch.client.set_alarm_state(
            AlarmName=name, StateValue=state, StateReason=reason or state
        )


def alarms_only(cloudwatch: Any, *alarms: str, states: tuple[str, ...] = ("ALARM",)) -> Any:
    checks = Checks(alarms=alarms, alarm_states=states)
    return run_checks(
        checks, cloudwatch=cloudwatch, invoke=no_functions, request={}, clock=clock, language="en"
    )


# --------------------------------------------------------------------------- alarms


def test_alarms_in_the_order_listed_failing_in_a_blocking_state(
    cloudwatch: CountedCloudWatch,
) -> None:
    put_alarm(cloudwatch, "prod-db-cpu")
    put_alarm(cloudwatch, "prod-api-5xx", "ALARM", REASON)
    results = alarms_only(cloudwatch, "prod-db-cpu", "prod-api-5xx")
    assert [(r.name, r.kind, r.passed, r.state) for r in results] == [
        ("prod-db-cpu", "alarm", True, "OK"),
        ("prod-api-5xx", "alarm", False, "ALARM"),
    ]
    assert results[0].summary == "Unchecked: Initial alarm creation"
    assert results[1].summary == REASON
    assert results[1].at == NOW
    assert results[1].url == (
        "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1"
        "#alarmsV2:alarm/prod-api-5xx"
    )
    assert len(cloudwatch.calls) == 1  # one batch of names
    assert cloudwatch.calls[0]["AlarmNames"] == ["prod-db-cpu", "prod-api-5xx"]
    assert cloudwatch.calls[0]["AlarmTypes"] == ["MetricAlarm", "CompositeAlarm"]


def test_alarm_states_say_which_states_block(cloudwatch: CountedCloudWatch) -> None:
    put_alarm(cloudwatch, "a", "INSUFFICIENT_DATA", "no data")
    put_alarm(cloudwatch, "b", "ALARM", "burning")
    (a, b) = alarms_only(cloudwatch, "a", "b")
    assert (a.passed, b.passed) == (True, False)
    (a, b) = alarms_only(cloudwatch, "a", "b", states=("INSUFFICIENT_DATA",))
    assert (a.passed, a.state, a.summary, b.passed) == (False, "INSUFFICIENT_DATA", "no data", True)


def test_an_alarm_cloudwatch_does_not_know_fails_and_is_logged(
    cloudwatch: CountedCloudWatch, gate_log: pytest.LogCaptureFixture
) -> None:
    put_alarm(cloudwatch, "prod-db-cpu")
    missing, present = alarms_only(cloudwatch, "prod-db-cpuu", "prod-db-cpu")
    assert (missing.name, missing.passed, missing.state, missing.summary) == (
        "prod-db-cpuu",
        False,
        "MISSING",
        "no such alarm",
    )
    assert present.passed
    (record,) = [r for r in gate_log.records if r.levelno == logging.WARNING]
    assert record.getMessage() == "a checked alarm does not exist"
    assert record.alarm == "prod-db-cpuu"  # type: ignore[attr-defined]


def test_a_prefix_gives_one_result_per_alarm_it_matches(cloudwatch: CountedCloudWatch) -> None:
    for name in ("prod-api-latency", "prod-api-5xx", "prod-db-cpu", "prod-apiary"):
        put_alarm(cloudwatch, name)
    put_alarm(cloudwatch, "prod-api-4xx", "ALARM", "clients failing")
    results = alarms_only(
        cloudwatch, "prod-db-cpu", "prod-api-latency", "prod-api-*", "prod-api-5xx"
    )
    # By name within the prefix; an alarm listed again (by name or prefix) is not repeated.
    assert [(r.name, r.passed) for r in results] == [
        ("prod-db-cpu", True),
        ("prod-api-latency", True),
        ("prod-api-4xx", False),
        ("prod-api-5xx", True),
    ]
    assert [call.get("AlarmNamePrefix") for call in cloudwatch.calls] == [None, "prod-api-"]


def test_a_prefix_matching_nothing_fails(
    cloudwatch: CountedCloudWatch, gate_log: pytest.LogCaptureFixture
) -> None:
    put_alarm(cloudwatch, "prod-db-cpu")
    (result,) = alarms_only(cloudwatch, "staging-*")
    assert (result.name, result.passed, result.state, result.summary) == (
        "staging-*",
        False,
        "MISSING",
        "no alarm starts with staging-",
    )
    assert "no checked alarm starts with the prefix" in gate_log.messages


def test_a_long_state_reason_is_cut_to_one_line(cloudwatch: CountedCloudWatch) -> None:
    put_alarm(cloudwatch, "noisy", "ALARM", "why\n" + "r" * 300)
    (result,) = alarms_only(cloudwatch, "noisy")
    assert result.summary == "why " + "r" * 195 + "…"


def test_composite_alarms_are_read_too() -> None:
    """moto 5.2.5 has no PutCompositeAlarm: a fake answers a composite alarm as CloudWatch
    does, in CompositeAlarms, and only when AlarmTypes asks for it."""

    class Composite(PagingCloudWatch):
        def describe_alarms(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            composite = {"AlarmName": "prod-health", "StateValue": "ALARM", "StateReason": "child"}
            wanted = "CompositeAlarm" in kwargs.get("AlarmTypes", ())
            return {"MetricAlarms": [], "CompositeAlarms": [composite] if wanted else []}

    (result,) = alarms_only(Composite([]), "prod-health")
    assert (result.passed, result.state, result.summary) == (False, "ALARM", "child")


def test_a_prefix_matching_150_alarms_in_moto_is_read_whole(cloudwatch: CountedCloudWatch) -> None:
    for index in range(150):
        put_alarm(cloudwatch, f"fleet-{index:03}", "ALARM" if index == 149 else "OK")
    results = alarms_only(cloudwatch, "fleet-*")
    assert [r.name for r in results] == [f"fleet-{index:03}" for index in range(150)]
    assert failing(results) == (results[149],)
    # Pages of 100: moto answers all in one unless the sandbox's patch 25 (process-wide,
    # once a sandbox ran in this process) pages it as CloudWatch does; either way each
    # call after the first asks for the page the one before pointed to.
    assert [call["MaxRecords"] for call in cloudwatch.calls] in ([100], [100, 100])
    assert all("NextToken" in call for call in cloudwatch.calls[1:])


def test_names_are_read_in_batches_of_100(cloudwatch: CountedCloudWatch) -> None:
    names = [f"alarm-{index:03}" for index in range(150)]
    for name in names:
        put_alarm(cloudwatch, name)
    results = alarms_only(cloudwatch, *names)
    assert [r.name for r in results] == names and all(r.passed for r in results)
    assert [len(call["AlarmNames"]) for call in cloudwatch.calls] == [100, 50]


class PagingCloudWatch:
    """DescribeAlarms as CloudWatch answers it: at most MaxRecords alarms a page, the rest
    behind NextToken (moto 5.2.5 answers every alarm in one page, tokens ignored)."""

    def __init__(self, names: list[str], *, fail_on: int | None = None) -> None:
        self.names = sorted(names)
        self.calls: list[dict[str, Any]] = []
        self.fail_on = fail_on

    def describe_alarms(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.fail_on == len(self.calls):
            error = {"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}
            raise ClientError(error, "DescribeAlarms")  # type: ignore[arg-type]
        if "AlarmNames" in kwargs:
            matching = [name for name in self.names if name in kwargs["AlarmNames"]]
        else:
            matching = [n for n in self.names if n.startswith(kwargs["AlarmNamePrefix"])]
        start = int(kwargs.get("NextToken", 0))
        page = matching[start : start + kwargs["MaxRecords"]]
        answer: dict[str, Any] = {
            "MetricAlarms": [
                {"AlarmName": name, "StateValue": "OK", "StateReason": "fine"} for name in page
            ],
            "CompositeAlarms": [],
        }
        if start + len(page) < len(matching):
            answer["NextToken"] = str(start + len(page))
        return answer


def test_a_prefix_matching_150_alarms_is_read_through_its_pages() -> None:
    fake = PagingCloudWatch([f"fleet-{index:03}" for index in range(150)] + ["other"])
    results = alarms_only(fake, "fleet-*")
    assert [r.name for r in results] == [f"fleet-{index:03}" for index in range(150)]
    assert [call.get("NextToken") for call in fake.calls] == [None, "100"]
    assert all(call["AlarmNamePrefix"] == "fleet-" for call in fake.calls)
    assert results[0].url is None  # no region known, no console link


def test_a_prefix_paging_without_end_fails_instead_of_looping() -> None:
    class Endless(PagingCloudWatch):
        def describe_alarms(self, **kwargs: Any) -> dict[str, Any]:
            self.calls.append(kwargs)
            return {"MetricAlarms": [], "NextToken": "again"}

    fake = Endless([])
    (result,) = alarms_only(fake, "fleet-*")
    assert (result.passed, result.state) == (False, "UNREADABLE")
    assert result.summary == "could not read the alarms: more than 1000 alarms match"
    assert len(fake.calls) == 10


def test_a_describe_alarms_error_fails_every_alarm_it_covered() -> None:
    names = [f"alarm-{index:03}" for index in range(150)]
    fake = PagingCloudWatch([*names, "fleet-1"], fail_on=2)  # the second batch of names
    results = alarms_only(fake, *names, "fleet-*")
    assert [r.passed for r in results] == [True] * 100 + [False] * 50 + [True]
    assert {(r.state, r.summary) for r in results[100:150]} == {
        ("UNREADABLE", "could not read the alarm: Throttling")
    }
    fake = PagingCloudWatch(["fleet-1"], fail_on=1)
    (result,) = alarms_only(fake, "fleet-*")
    assert (result.name, result.passed) == ("fleet-*", False)
    assert result.summary == "could not read the alarms: Throttling"


def test_any_error_reading_alarms_fails_them_and_never_raises() -> None:
    class Broken:
        def describe_alarms(self, **kwargs: Any) -> Any:
            raise ConnectionResetError("peer reset")

    results = alarms_only(Broken(), "a", "b-*")
    assert [(r.passed, r.summary) for r in results] == [
        (False, "could not read the alarm: ConnectionResetError"),
        (False, "could not read the alarms: ConnectionResetError"),
    ]


# --------------------------------------------------------------------------- functions


def functions_only(invoke: Any, *arns: str) -> tuple[CheckResult, ...]:
    return run_checks(
        Checks(functions=arns),
        cloudwatch=None,
        invoke=invoke,
        request=REQUEST,
        clock=clock,
        language="en",
    )


def test_a_check_function_gets_the_request_and_its_answer_decides() -> None:
    seen: list[tuple[str, dict[str, Any]]] = []
    answers = {
        ARN: {"passed": False, "summary": "no ticket", "url": "https://tickets.example/new"},
        SMOKE: {"passed": True, "summary": "smoke ok", "extra": 1},
    }

    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        seen.append((arn, payload))
        return answers[arn]

    ticket, smoke = functions_only(invoke, ARN, SMOKE)  # results in the policy's order
    assert sorted(arn for arn, _ in seen) == [ARN, SMOKE]
    assert dict(seen)[ARN] == {
        "approval_id": "a1",
        "pipeline": "prod-web",
        "stage": "Deploy",
        "action": "Approve",
        "pipeline_execution_id": "e1",
        "revisions": [{"action": "Source", "revision_id": "abc"}],
    }
    assert ticket == CheckResult(
        "change-ticket-check", "function", False, "FAILED", "no ticket", NOW,
        "https://tickets.example/new",
    )  # fmt: skip
    assert smoke == CheckResult("smoke:live", "function", True, "PASSED", "smoke ok", NOW, None)


def test_check_functions_are_invoked_at_once() -> None:
    """Twenty slow functions take one timeout, not twenty: each call here waits until all
    three are in flight (a one-at-a-time loop would break the barrier, failing them)."""
    arns = [f"arn:aws:lambda:us-east-1:123456789012:function:check-{n}" for n in range(3)]
    together = threading.Barrier(len(arns), timeout=5)

    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        together.wait()
        return {"passed": True, "summary": arn[-7:]}

    results = functions_only(invoke, *arns)

    assert [(r.passed, r.summary) for r in results] == [(True, f"check-{n}") for n in range(3)]


@pytest.mark.parametrize(
    ("answer", "summary"),
    [
        ({"passed": "yes", "summary": "ok"}, 'answered junk: {"passed": "yes", "summary": "ok"}'),
        ({"passed": True}, 'answered junk: {"passed": true}'),
        ({"passed": 1, "summary": "ok"}, 'answered junk: {"passed": 1, "summary": "ok"}'),
        ({"passed": True, "summary": 5}, 'answered junk: {"passed": true, "summary": 5}'),
        (
            {"passed": True, "summary": "ok", "url": "javascript:alert(1)"},
            'answered junk: {"passed": true, "summary": "ok", "url": "javascript:alert(1)"}',
        ),
        (None, "answered junk: null"),
        ("ok", 'answered junk: "ok"'),
        ([True], "answered junk: [true]"),
        ({"summary": "x" * 100}, 'answered junk: {"summary": "' + "x" * 66 + "…"),
    ],
)
def test_junk_answers_fail(answer: Any, summary: str) -> None:
    (result,) = functions_only(lambda arn, payload: answer, ARN)
    assert (result.passed, result.state, result.summary) == (False, "ERROR", summary)


def read_timeout() -> Exception:
    return ReadTimeoutError(endpoint_url="https://lambda.us-east-1.amazonaws.com/")


@pytest.mark.parametrize(
    ("error", "summary"),
    [
        (read_timeout(), "timed out after 5 s"),
        (ConnectTimeoutError(endpoint_url="https://lambda"), "timed out after 5 s"),
        (CheckFunctionError("Runtime.ExitError"), "raised: Runtime.ExitError"),
        (
            ClientError(
                {"Error": {"Code": "AccessDeniedException", "Message": "no"}},  # type: ignore[typeddict-item]
                "Invoke",
            ),
            "could not be invoked: AccessDeniedException",
        ),
        (RuntimeError("boom"), "could not be invoked: RuntimeError"),
        (json.JSONDecodeError("bad", "<", 0), "answered junk: not JSON"),
    ],
)
def test_a_function_that_gives_no_answer_fails_and_never_raises(
    error: Exception, summary: str, gate_log: pytest.LogCaptureFixture
) -> None:
    def invoke(arn: str, payload: dict[str, Any]) -> Any:
        raise error

    (result,) = functions_only(invoke, ARN)
    assert (result.passed, result.state, result.summary) == (False, "ERROR", summary)
    assert "a check function gave no answer" in gate_log.messages


def test_alarms_come_before_functions_and_each_keeps_its_order(
    cloudwatch: CountedCloudWatch,
) -> None:
    put_alarm(cloudwatch, "b")
    put_alarm(cloudwatch, "a")
    checks = Checks(alarms=("b", "a"), functions=(SMOKE, ARN))
    results = run_checks(
        checks,
        cloudwatch=cloudwatch,
        invoke=lambda arn, payload: {"passed": True, "summary": "ok"},
        request=REQUEST,
        clock=clock,
        language="en",
    )
    assert [r.name for r in results] == ["b", "a", "smoke:live", "change-ticket-check"]


# --------------------------------------------------------------------------- the invoker


class FakeLambda:
    def __init__(self, response: dict[str, Any], body: bytes) -> None:
        self.response, self.body = response, body
        self.calls: list[dict[str, Any]] = []

    def invoke(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        return {**self.response, "Payload": io.BytesIO(self.body)}


def test_lambda_invoker_invokes_and_answers_the_parsed_payload() -> None:
    client = FakeLambda({"StatusCode": 200}, b'{"passed": true, "summary": "ok"}')
    answer = lambda_invoker(client)(ARN, {"approval_id": "a1"})
    assert answer == {"passed": True, "summary": "ok"}
    (call,) = client.calls
    assert call["FunctionName"] == ARN and call["InvocationType"] == "RequestResponse"
    assert json.loads(call["Payload"]) == {"approval_id": "a1"}


def test_lambda_invoker_turns_a_function_error_into_its_error_type() -> None:
    body = b'{"errorMessage": "no", "errorType": "KeyError", "stackTrace": []}'
    client = FakeLambda({"StatusCode": 200, "FunctionError": "Unhandled"}, body)
    (result,) = functions_only(lambda_invoker(client), ARN)
    assert (result.passed, result.summary) == (False, "raised: KeyError")
    client = FakeLambda({"StatusCode": 200, "FunctionError": "Unhandled"}, b"not json")
    (result,) = functions_only(lambda_invoker(client), ARN)
    assert result.summary == "raised: Unhandled"


@pytest.mark.parametrize(
    ("body", "summary"),
    [
        (
            b'{"errorMessage": "2026-12-06T08:00:05.012Z 1f2e Task timed out after 5.00 seconds"}',
            "timed out after 5 s",
        ),
        (
            b'{"errorType": "Sandbox.Timedout", "errorMessage": "RequestId: 1f2e Error: '
            b'Task timed out after 3.00 seconds"}',
            "timed out after 3 s",
        ),
    ],
)
def test_a_check_function_stopped_by_its_own_timeout_reads_as_timed_out(
    body: bytes, summary: str
) -> None:
    client = FakeLambda({"StatusCode": 200, "FunctionError": "Unhandled"}, body)
    (result,) = functions_only(lambda_invoker(client), ARN)
    assert (result.passed, result.state, result.summary) == (False, "ERROR", summary)


def test_lambda_invoker_fails_on_a_payload_that_is_not_json() -> None:
    (result,) = functions_only(lambda_invoker(FakeLambda({}, b"<html>")), ARN)
    assert (result.passed, result.summary) == (False, "answered junk: not JSON")


def test_the_client_config_waits_5_s_once() -> None:
    config = check_function_client_config()
    assert (config.read_timeout, config.connect_timeout) == (5, 5)
    assert config.retries == {"total_max_attempts": 1, "mode": "standard"}


def test_a_real_read_timeout_from_botocore_counts_as_timed_out(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A Lambda endpoint on 127.0.0.1 that answers nothing: botocore's own ReadTimeoutError,
    with the config's no-retry, fails the check (a 0.3 s read timeout keeps the test short)."""
    stop = threading.Event()
    hits: list[str] = []

    class Silent(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            hits.append(self.path)
            stop.wait(5)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Silent)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    try:
        config = check_function_client_config().merge(Config(read_timeout=0.3))
        client = boto3.client(
            "lambda",
            region_name="us-east-1",
            endpoint_url=f"http://127.0.0.1:{server.server_address[1]}",
            config=config,
        )
        (result,) = functions_only(lambda_invoker(client), ARN)
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
    assert (result.passed, result.summary) == (False, "timed out after 5 s")
    assert len(hits) == 1  # not retried


# --------------------------------------------------------------------------- reporting


def test_record_has_the_design_fields_and_no_link() -> None:
    result = CheckResult("prod-api-5xx", "alarm", False, "ALARM", "burning", NOW, "https://x")
    assert result.record() == {
        "name": "prod-api-5xx",
        "kind": "alarm",
        "passed": False,
        "state": "ALARM",
        "summary": "burning",
        "at": "2026-12-06T07:00:00.123Z",
    }


def result(name: str, kind: str, passed: bool, state: str, summary: str) -> CheckResult:
    return CheckResult(name, kind, passed, state, summary, NOW)


def test_summary_of_failing_names_the_failing_checks_on_one_line() -> None:
    results = (
        result("prod-db-cpu", "alarm", True, "OK", "fine"),
        result("prod-api-5xx", "alarm", False, "ALARM", "Threshold\nCrossed"),
        result("prod-db-gone", "alarm", False, "MISSING", "no such alarm"),
        result("change-ticket-check", "function", False, "FAILED", "no ticket"),
    )
    assert failing(results) == results[1:]
    assert summary_of_failing(results, language="en") == (
        "prod-api-5xx ALARM: Threshold Crossed; prod-db-gone: no such alarm; "
        "change-ticket-check: no ticket"
    )
    assert summary_of_failing(results[:1], language="en") == ""


def test_summary_of_failing_stays_short() -> None:
    results = [result(f"alarm-{i:02}", "alarm", False, "ALARM", "x" * 200) for i in range(30)]
    line = summary_of_failing(results, limit=300, language="en")
    assert len(line) <= 300
    assert line.startswith("alarm-00 ALARM: " + "x" * 79 + "…; alarm-01 ALARM: ")
    assert line.endswith("; and 28 more")
    alone = summary_of_failing(
        [results[0], results[1]._replace(passed=True)], limit=40, language="en"
    )
    assert alone == "alarm-00 ALARM: " + "x" * 23 + "…"
    two = summary_of_failing(results[:2], limit=60, language="en")
    assert two.endswith("…; and 1 more") and len(two) <= 60


def test_the_aws_checker_gives_check_functions_the_runs_revisions(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from approval_gate import checks
    from approval_gate.revisions import Revision

    from tests.unit.fakes import make_approval, make_rules

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(checks, "run_checks", lambda *_, request, **__: seen.append(request) or ())
    monkeypatch.setattr("boto3.client", lambda *args, **kwargs: object())
    github = Revision(
        "SourceOutput", "GitHub", "example-org/web", "a1b2c3d4", "Fix it", "https://x"
    )
    approval = make_approval(rules=make_rules(checks=Checks(functions=(ARN,))), revisions=(github,))

    checks.aws_checker(region="us-east-1")(approval)

    assert seen[0]["revisions"] == [github.record()]
    assert seen[0]["pipeline"] == "prod-web"
