"""The health checks' stand-ins in the sandbox (DESIGN §8.3, §8.6; issue 21 point 7).

The alarms a policy names live in moto's CloudWatch, OK from the start; `POST
/_sandbox/alarms/{name}` sets one and emits CloudWatch's "CloudWatch Alarm State Change"
event to the default bus. Check functions are real functions in moto's Lambda, invoked
through it like the gate's own; `POST /_sandbox/checks/{name}` sets what one answers and
`GET` shows the payloads it received. Over HTTP, with boto3 against the sandbox's moto.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import pytest
from approval_gate.policy import Policy, policy_checks
from approval_gate.rules import Checks
from botocore.exceptions import ClientError

from sandbox.engine import sandbox_alarm_name
from sandbox.server import SandboxServer
from tests.conftest import POLICIES
from tests.sandbox.test_http_observability import Http, eventually

ACCOUNT_REGION = "arn:aws:lambda:us-east-1:123456789012:function:"
CHANGE_TICKET = ACCOUNT_REGION + "change-ticket-check"
LISTENER = ACCOUNT_REGION + "alarm-listener"
ALARM_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}\+0000")
ALARM_EVENTS = {"source": ["aws.cloudwatch"], "detail-type": ["CloudWatch Alarm State Change"]}


def _policy(**checks_by_rule: Any) -> Policy:
    """A policy as the loader makes it, with ``checks`` in defaults and rules."""
    defaults = {"channel": "C0DEPLOYS", "checks": checks_by_rule.pop("defaults")}
    pipelines = [({"match": match}, {"checks": checks}) for match, checks in checks_by_rule.items()]
    return Policy(defaults=defaults, pipelines=pipelines, people={})


@pytest.fixture
def server(gate: Any) -> Iterator[SandboxServer]:
    http = Http(gate.url)
    http.post("/_sandbox/reset")
    yield gate.server
    http.post("/_sandbox/reset")


@pytest.fixture
def http(server: SandboxServer) -> Http:
    return Http(server.url)


def _alarm(server: SandboxServer, name: str) -> dict[str, Any]:
    found = server.sandbox.client("cloudwatch").describe_alarms(AlarmNames=[name])
    assert len(found["MetricAlarms"]) == 1, name
    alarm: dict[str, Any] = found["MetricAlarms"][0]
    return alarm


def _invoke(server: SandboxServer, arn: str, payload: Any) -> tuple[str | None, Any]:
    answer = server.sandbox.client("lambda").invoke(FunctionName=arn, Payload=json.dumps(payload))
    return answer.get("FunctionError"), json.loads(answer["Payload"].read())


def test_every_rule_s_checks_are_read_and_a_prefix_gets_one_alarm_under_it():
    policy = _policy(
        defaults=Checks(alarms=("prod-api-*", "prod-db-cpu"), functions=(CHANGE_TICKET,)),
        **{"web-*": Checks(alarms=("web-5xx", "prod-db-cpu"), functions=(LISTENER,))},
    )
    assert policy_checks(policy) == (
        ("prod-api-*", "prod-db-cpu", "web-5xx"),
        (CHANGE_TICKET, LISTENER),
    )
    assert policy_checks(Policy(defaults={}, pipelines=[], people={})) == ((), ())
    assert sandbox_alarm_name("prod-api-*") == "prod-api-sandbox"
    assert sandbox_alarm_name("prod-api*") == "prod-api-sandbox"
    assert sandbox_alarm_name("prod-db-cpu") == "prod-db-cpu"


def test_the_alarms_the_policy_names_exist_ok_and_keep_their_state(server, http):
    sandbox = server.sandbox
    sandbox.set_up_checks(_policy(defaults=Checks(alarms=("prod-api-*", "prod-db-cpu"))))
    for name in ("prod-api-sandbox", "prod-db-cpu"):
        alarm = _alarm(server, name)
        assert alarm["StateValue"] == "OK"
        assert alarm["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:123456789012:alarm:{name}"
    by_prefix = sandbox.client("cloudwatch").describe_alarms(AlarmNamePrefix="prod-api-")
    assert [a["AlarmName"] for a in by_prefix["MetricAlarms"]] == ["prod-api-sandbox"]

    http.post("/_sandbox/alarms/prod-db-cpu", {"state": "ALARM", "reason": "CPU at 97 %"})
    sandbox.set_up_checks(_policy(defaults=Checks(alarms=("prod-db-cpu", "other"))))  # again
    assert _alarm(server, "prod-db-cpu")["StateValue"] == "ALARM"
    assert _alarm(server, "other")["StateValue"] == "OK"

    http.post("/_sandbox/reset")  # back as created, quietly
    assert _alarm(server, "prod-db-cpu")["StateValue"] == "OK"


def test_setting_an_alarm_emits_cloudwatch_s_state_change_event(server, http):
    sandbox = server.sandbox
    sandbox.ensure_alarms(["prod-api-*"])
    sandbox.ensure_check_functions([LISTENER])  # stands for the gate's rule: any function
    events = sandbox.client("events")
    events.put_rule(Name="alarm-listener", EventPattern=json.dumps(ALARM_EVENTS))
    events.put_targets(Rule="alarm-listener", Targets=[{"Id": "1", "Arn": LISTENER}])
    try:
        answer = http.post(
            "/_sandbox/alarms/prod-api-sandbox", {"state": "ALARM", "reason": "5xx above 2 %"}
        )
        assert answer == {
            "alarm": "prod-api-sandbox",
            "state": "ALARM",
            "previous_state": "OK",
            "emitted": True,
        }
        alarm = _alarm(server, "prod-api-sandbox")
        assert (alarm["StateValue"], alarm["StateReason"]) == ("ALARM", "5xx above 2 %")

        delivered = eventually(
            lambda: [e for e in http.get("/_sandbox/events") if e["target"] == "alarm-listener"],
            "the alarm's event at the listener",
        )
        assert len(delivered) == 1 and delivered[0]["source"] == "eventbridge"
        event = delivered[0]["event"]
        assert http.get("/_sandbox/checks/alarm-listener")["calls"] == [event]
        assert event["source"] == "aws.cloudwatch"
        assert event["detail-type"] == "CloudWatch Alarm State Change"
        assert event["resources"] == [alarm["AlarmArn"]]
        assert (event["account"], event["region"]) == ("123456789012", "us-east-1")
        detail = event["detail"]
        assert detail["alarmName"] == "prod-api-sandbox"
        assert detail["state"]["value"] == "ALARM"
        assert detail["state"]["reason"] == "5xx above 2 %"
        assert detail["previousState"]["value"] == "OK"
        for state in (detail["state"], detail["previousState"]):
            assert ALARM_TIMESTAMP.fullmatch(state["timestamp"]), state
        (metric,) = detail["configuration"]["metrics"]
        assert metric["metricStat"]["metric"]["dimensions"] == {"Alarm": "prod-api-sandbox"}
        assert metric["returnData"] is True

        # The same state again changes nothing CloudWatch would announce: no event.
        again = http.post("/_sandbox/alarms/prod-api-sandbox", {"state": "ALARM"})
        assert again["emitted"] is False
        http.post("/_sandbox/alarms/prod-api-sandbox", {"state": "OK", "reason": "recovered"})
        assert sandbox.wait_for_events(timeout=10)
        states = [
            (e["event"]["detail"]["previousState"]["value"], e["event"]["detail"]["state"]["value"])
            for e in http.get("/_sandbox/events")
            if e["target"] == "alarm-listener"
        ]
        assert states == [("OK", "ALARM"), ("ALARM", "OK")]
    finally:
        events.remove_targets(Rule="alarm-listener", Ids=["1"])
        events.delete_rule(Name="alarm-listener")


def test_an_unknown_alarm_or_a_bad_body_is_refused(server, http):
    server.sandbox.ensure_alarms(["prod-db-cpu"])
    assert http.request("POST", "/_sandbox/alarms/no-such-alarm", {"state": "OK"})[0] == 404
    for body in (
        {"state": "BROKEN"},
        {"reason": "no state"},
        {"state": "OK", "reason": 3},
        {"state": "OK", "colour": "red"},
        ["OK"],
    ):
        status, answer = http.request("POST", "/_sandbox/alarms/prod-db-cpu", body)
        assert status == 400, body
        assert answer["error"]
    assert _alarm(server, "prod-db-cpu")["StateValue"] == "OK"


def test_a_check_function_answers_what_it_was_told_through_moto_s_lambda(server, http):
    server.sandbox.ensure_check_functions([CHANGE_TICKET])
    path = "/_sandbox/checks/change-ticket-check"
    payload = {
        "approval_id": "a-1",
        "pipeline": "web",
        "stage": "Deploy",
        "action": "Approve",
        "pipeline_execution_id": "e-1",
        "revisions": [],
    }

    assert _invoke(server, CHANGE_TICKET, payload) == (None, {"passed": True, "summary": "ok"})

    failing = {"passed": False, "summary": "CHG000123 not approved", "url": "https://t/123"}
    assert http.post(path, failing)["answer"] == failing
    assert _invoke(server, CHANGE_TICKET, {**payload, "approval_id": "a-2"}) == (None, failing)

    http.post(path, {"passed": "yes"})  # answered verbatim: the gate must judge it
    assert _invoke(server, CHANGE_TICKET, payload) == (None, {"passed": "yes"})

    http.post(path, {"error": "ticket system down"})
    assert _invoke(server, CHANGE_TICKET, payload) == (
        "Unhandled",
        {"errorType": "CheckFunctionError", "errorMessage": "ticket system down"},
    )

    seen = http.get(path)
    assert seen["answer"] == {"error": "ticket system down"}
    assert [call["approval_id"] for call in seen["calls"]] == ["a-1", "a-2", "a-1", "a-1"]
    assert seen["calls"][1] == {**payload, "approval_id": "a-2"}

    http.post("/_sandbox/reset")
    assert http.get(path) == {"answer": {"passed": True, "summary": "ok"}, "calls": []}


def test_a_check_function_told_to_time_out_fails_as_lambda_fails_it(server, http):
    arn = ACCOUNT_REGION + "slow-check"
    server.sandbox.ensure_check_functions([arn], timeout=1)
    http.post("/_sandbox/checks/slow-check", {"timeout": True})
    started = time.monotonic()
    error, answer = _invoke(server, arn, {})
    assert time.monotonic() - started >= 1
    assert error == "Unhandled"
    assert "errorType" not in answer
    assert answer["errorMessage"].endswith("Task timed out after 1.00 seconds")


def test_check_functions_outside_the_sandbox_or_unknown_are_refused(server, http, caplog):
    elsewhere = "arn:aws:lambda:eu-west-1:123456789012:function:elsewhere-check"
    with caplog.at_level("WARNING"):
        assert server.sandbox.ensure_check_functions([elsewhere]) == []
    assert "elsewhere-check" in caplog.text
    with pytest.raises(ClientError, match="ResourceNotFoundException"):
        server.sandbox.client("lambda").get_function(FunctionName="elsewhere-check")

    assert http.request("GET", "/_sandbox/checks/no-such-check")[0] == 404
    assert http.request("POST", "/_sandbox/checks/no-such-check", {"passed": True})[0] == 404
    server.sandbox.ensure_check_functions([CHANGE_TICKET])
    for body in ({"error": 3}, {"error": "x", "passed": False}, {"timeout": 1}, ["x"]):
        status, answer = http.request("POST", "/_sandbox/checks/change-ticket-check", body)
        assert status == 400, body
        assert answer["error"]


def test_a_policy_posted_with_checks_creates_its_alarms_and_functions(server, http):
    document = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            "checks": {"alarms": ["posted-api-*"], "functions": [ACCOUNT_REGION + "posted-check"]},
        }
    }
    status, answer = http.request("POST", "/_sandbox/policy", document)
    try:
        if status == 400 and "checks" in answer["error"]:
            pytest.skip("the policy loader does not take `checks` yet (issue 21 point 1)")
        assert status == 200, answer
        assert _alarm(server, "posted-api-sandbox")["StateValue"] == "OK"
        assert _invoke(server, ACCOUNT_REGION + "posted-check", {}) == (
            None,
            {"passed": True, "summary": "ok"},
        )
    finally:
        standard = (POLICIES / "standard.yaml").read_text(encoding="utf-8")
        server.sandbox.set_policy(standard)


def test_alarm_changes_posted_at_once_chain_their_states(server, http):
    """A flapping alarm set from many requests at once: each event's previousState is the
    state the one before it announced, and the last event's state is the alarm's."""
    sandbox = server.sandbox
    sandbox.ensure_alarms(["flappy"])
    sandbox.ensure_check_functions([LISTENER])
    events = sandbox.client("events")
    events.put_rule(Name="alarm-listener", EventPattern=json.dumps(ALARM_EVENTS))
    events.put_targets(Rule="alarm-listener", Targets=[{"Id": "1", "Arn": LISTENER}])
    states = ["ALARM", "OK", "INSUFFICIENT_DATA", "ALARM", "OK"] * 4
    try:
        with ThreadPoolExecutor(max_workers=4) as pool:
            answers = list(
                pool.map(lambda s: http.post("/_sandbox/alarms/flappy", {"state": s}), states)
            )
        assert sandbox.wait_for_events(timeout=10)
        chain = [
            (e["event"]["detail"]["previousState"]["value"], e["event"]["detail"]["state"]["value"])
            for e in http.get("/_sandbox/events")
            if e["target"] == "alarm-listener" and e["event"]["detail"]["alarmName"] == "flappy"
        ]
        assert len(chain) == sum(answer["emitted"] for answer in answers) > 0
        assert chain[0][0] == "OK"
        assert all(prev == before[1] for before, (prev, _) in pairwise(chain))
        assert chain[-1][1] == _alarm(server, "flappy")["StateValue"]
    finally:
        events.remove_targets(Rule="alarm-listener", Ids=["1"])
        events.delete_rule(Name="alarm-listener")
