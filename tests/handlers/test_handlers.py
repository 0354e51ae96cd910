"""Each handler called as Lambda calls it, with the sample events of tests/events/."""

from __future__ import annotations

import base64
import json
import time

from approval_gate.request import parse_approval_message

from sandbox.client import wait_for
from sandbox.fake_slack import signed_request
from tests.unit.events import SAMPLE_APPROVAL_ID, load_event


def _finish(gate, approval_id: str) -> dict:
    """These requests have no run in the fake pipeline: a click closes them as decided
    elsewhere (CodePipeline answers InvalidApprovalToken), which ends the execution."""
    message = gate.request_message(approval_id)
    assert gate.click(message, "U0ALICE", "approve") == 200
    return gate.wait_execution(approval_id)


def test_start_approval_starts_one_workflow_per_request_and_ignores_a_redelivery(gate):
    event = load_event("sns_approval")

    first = gate.server.sandbox.invoke("StartApprovalFunction", event)
    again = gate.server.sandbox.invoke("StartApprovalFunction", event)

    assert first == {"started": 1, "duplicates": 0, "rejected": 0}
    assert again == {"started": 0, "duplicates": 1, "rejected": 0}
    names = [e["name"] for e in gate.server.sandbox.executions()]
    assert sum(name.endswith(SAMPLE_APPROVAL_ID) for name in names) == 1
    execution = _finish(gate, SAMPLE_APPROVAL_ID)
    assert json.loads(execution["output"])["outcome"] == "decided_elsewhere"


def test_start_approval_handles_every_record_of_an_event(gate):
    event = load_event("sns_two_records")
    requests = [parse_approval_message(r["Sns"]["Message"]) for r in event["Records"]]

    result = gate.server.sandbox.invoke("StartApprovalFunction", event)

    assert result["started"] + result["duplicates"] == 2
    records = {a["approval_id"]: a for a in gate.client.approvals()}
    for request in requests:
        assert records[request.approval_id]["pipeline"] == request.pipeline
        if records[request.approval_id]["outcome"] is None:  # not one an earlier test closed
            _finish(gate, request.approval_id)
    assert all(request.token not in gate.logs() for request in requests)


def test_start_approval_rejects_a_message_that_is_not_an_approval_request(gate):
    before = len(gate.server.sandbox.executions())

    result = gate.server.sandbox.invoke("StartApprovalFunction", load_event("sns_not_approval"))

    assert result == {"started": 0, "duplicates": 0, "rejected": 1}
    assert len(gate.server.sandbox.executions()) == before
    assert "rejected a notification that is not a CodePipeline approval request" in gate.logs()


def test_a_captured_click_replayed_later_is_refused(gate):
    event = load_event("http_api_slack_interaction")

    answer = gate.server.sandbox.invoke("SlackInteractionsFunction", event)

    assert answer["statusCode"] == 401


def test_a_fresh_signature_on_a_click_for_an_unknown_request_gets_an_explanation(gate):
    event = load_event("http_api_slack_interaction")
    body = base64.b64decode(event["body"])
    approval_id = "f" * 32
    payload_body = body.replace(SAMPLE_APPROVAL_ID.encode(), approval_id.encode())
    event["body"] = base64.b64encode(payload_body).decode()
    event["headers"].update(
        {
            k.lower(): v
            for k, v in signed_request(payload_body, gate.secret, int(time.time())).items()
        }
    )

    answer = gate.server.sandbox.invoke("SlackInteractionsFunction", event)

    assert answer["statusCode"] == 200
    told = wait_for(lambda: gate.ephemerals("U0ALICE"), what="an ephemeral answer")
    assert "does not know this request" in told[-1]["text"]


_EVERY_LINE_KEYS = {
    "level",
    "location",
    "message",
    "timestamp",
    "service",
    "sampling_rate",
    "cold_start",
    "function_name",
    "function_memory_size",
    "function_arn",
    "function_request_id",
    "xray_trace_id",
}


def _json_lines(gate) -> list[dict]:
    """The sandbox's JSON log lines so far, oldest first."""
    found = []
    for line in list(gate.server.sandbox.logs.lines):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict):
            found.append(record)
    return found


def test_a_forged_request_after_a_click_logs_no_key_of_that_click(gate):
    """A warm container: one handler, a valid click for one approval, then a forged
    request refused (401) before it is parsed. Its lines carry none of the click's keys."""
    event = load_event("http_api_slack_interaction")
    body = base64.b64decode(event["body"])
    approval_id = "e" * 32
    payload_body = body.replace(SAMPLE_APPROVAL_ID.encode(), approval_id.encode())
    event["body"] = base64.b64encode(payload_body).decode()
    event["headers"].update(
        {
            k.lower(): v
            for k, v in signed_request(payload_body, gate.secret, int(time.time())).items()
        }
    )

    clicked = gate.server.sandbox.invoke("SlackInteractionsFunction", event)
    forged = gate.server.sandbox.invoke(
        "SlackInteractionsFunction", load_event("http_api_slack_interaction")
    )

    assert (clicked["statusCode"], forged["statusCode"]) == (200, 401)
    lines = _json_lines(gate)
    [at] = [
        i
        for i, line in enumerate(lines)
        if line["message"] == "handled a click" and line.get("approval_id") == approval_id
    ]
    click = lines[at]
    refusal = next(
        line
        for line in lines[at:]
        if line["message"] == "rejected a request with an invalid or stale Slack signature"
        and line["function_name"] == "SlackInteractionsFunction"
    )
    assert refusal["function_request_id"] != click["function_request_id"]
    # The keys every line has (Powertools' own and the Lambda context's), and no other.
    assert click["approval_id"] == approval_id
    assert set(refusal) <= _EVERY_LINE_KEYS, set(refusal) - _EVERY_LINE_KEYS
    assert refusal["cold_start"] is False


#: A message each function logs, and the function that logs it.
_LOGGED_BY = {
    "approval request started": "StartApprovalFunction",
    "asked approvers in Slack": "AskApproversFunction",
    "handled a click": "SlackInteractionsFunction",
    "approval closed": "CloseRequestFunction",
    "pipeline event handled": "PipelineEventsFunction",
}


def test_each_function_logs_as_itself_while_they_run_together(gate):
    """Two runs at once: their requests, clicks and pipeline events run side by side, and
    every line names the function that logged it; pipeline_events names no approval."""
    opened = [gate.open_approval() for _ in range(2)]
    for _, _, message in opened:
        assert gate.click(message, "U0ALICE", "approve") == 200
    for run, approval, _ in opened:
        gate.wait_result(run["approvalToken"])
        gate.wait_execution(approval["approval_id"])
    ids = {approval["approval_id"] for _, approval, _ in opened}

    lines = [line for line in _json_lines(gate) if line["message"] in _LOGGED_BY]
    for line in lines:
        assert line["function_name"] == _LOGGED_BY[line["message"]], line
        if line["function_name"] == "PipelineEventsFunction":
            assert "approval_id" not in line, line
    labelled = {line["message"] for line in lines if line.get("approval_id") in ids}
    assert labelled == set(_LOGGED_BY) - {"pipeline event handled"}


def test_alarm_events_rejects_a_malformed_event_with_a_logged_reason(gate):
    """A "CloudWatch Alarm State Change" without a state: logged with why, nothing raised
    (a retry could not help), nothing changed."""
    gate.server.sandbox.client("events").put_events(
        Entries=[
            {
                "Source": "aws.cloudwatch",
                "DetailType": "CloudWatch Alarm State Change",
                "Detail": json.dumps({"alarmName": "prod-api-5xx"}),
            }
        ]
    )
    rejected = wait_for(
        lambda: [
            r
            for r in _json_lines(gate)
            if r.get("message") == "rejected an alarm event"
            and r.get("function_name", "").endswith("AlarmEventsFunction")
        ],
        what="the rejection in the log",
    )
    assert rejected[0]["level"] == "ERROR" and rejected[0]["why"] == "the event has no detail.state"
