"""What the fakes answered and what the functions received, read over HTTP (DESIGN §8.6).

`GET /_sandbox/codepipeline/calls` gives each call's `response` (the fake's output before
any client parsed it) or `error`; `GET /_sandbox/events` every SNS message and EventBridge
event delivered to a function. Only plain HTTP here, as any script would use: the answers
are checked against botocore's models and the events against the documented shape.
"""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pytest

from tests.sandbox.botocore_shapes import call_problems

T = TypeVar("T")
#: The members of an event EventBridge delivers (CodePipeline's user guide, in order).
EVENT_MEMBERS = [
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
ISO_SECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")
ISO_MILLISECOND = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")
THROTTLED = {
    "service": "codepipeline",
    "method": "GetPipelineExecution",
    "kind": "throttled",
    "rate": 1,
    "seed": 7,
}


class Http:
    """The sandbox's HTTP paths, through urllib alone."""

    def __init__(self, url: str) -> None:
        self.url = url

    def request(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(
            self.url + path, data=data, method=method, headers={"Content-Type": "application/json"}
        )
        try:
            # Long enough for a start whose every CodePipeline read is throttled: the
            # sandbox delivers SNS in the request, and botocore's standard retries back off
            # up to 1 + 2 + 4 + 8 s over the five attempts (AWS_MAX_ATTEMPTS in template.yaml).
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"null")

    def get(self, path: str) -> Any:
        status, body = self.request("GET", path)
        assert status == 200, (path, status, body)
        return body

    def post(self, path: str, body: Any = None) -> Any:
        status, answer = self.request("POST", path, body if body is not None else {})
        assert status == 200, (path, status, answer)
        return answer


def eventually(probe: Callable[[], T | None], what: str, timeout: float = 15.0) -> T:
    """Poll until ``probe`` gives something; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def http(gate: Any) -> Iterator[Http]:
    client = Http(gate.url)
    client.post("/_sandbox/reset")
    yield client
    client.post("/_sandbox/reset")  # forgets the faults too


def _decided(http: Http, token: str) -> dict[str, Any]:
    return eventually(
        lambda: next(
            (r for r in http.get("/_sandbox/codepipeline/approval-results") if r["token"] == token),
            None,
        ),
        "the approval's result in CodePipeline",
    )


def _pipeline_ended(http: Http, execution_id: str) -> list[dict[str, Any]]:
    """The events delivered so far, once the execution's last pipeline event is among them."""

    def probe() -> list[dict[str, Any]] | None:
        events = http.get("/_sandbox/events")
        ended = any(
            e["source"] == "eventbridge"
            and e["event"]["detail-type"] == "CodePipeline Pipeline Execution State Change"
            and e["event"]["detail"]["execution-id"] == execution_id
            and e["event"]["detail"]["state"] in ("SUCCEEDED", "FAILED")
            for e in events
        )
        return events if ended else None

    return eventually(probe, "the run's last event to be delivered")


def _approve_in_slack(http: Http, token: str) -> None:
    def request() -> dict[str, Any] | None:
        return next(
            (
                m
                for m in http.get("/_sandbox/slack/messages")
                if m["thread_ts"] is None
                and any(b.get("block_id") == "approval_gate_actions" for b in m["blocks"])
            ),
            None,
        )

    message = eventually(request, "the request in Slack")
    # U0BOB: the runs' author is alice@example.com, who may not approve her own change
    where = {"channel": message["channel"], "ts": message["ts"], "user": "U0BOB"}
    assert http.post("/_sandbox/slack/click", {**where, "action_id": "approve"})["status"] == 200
    _decided(http, token)


def test_codepipeline_calls_carry_what_the_fake_answered_and_it_fits_botocore(
    http: Http,
) -> None:
    approved = http.post("/_sandbox/pipelines/web/runs", {"author": "alice@example.com"})
    _approve_in_slack(http, approved["approvalToken"])
    failed = http.post("/_sandbox/pipelines/web/runs", {"fail_at": "Build"})
    assert failed["approvalToken"] is None
    _pipeline_ended(http, approved["pipelineExecutionId"])

    def looked_up_the_failure() -> list[dict[str, Any]] | None:
        calls = http.get("/_sandbox/codepipeline/calls")
        wanted = {"pipelineExecutionId": failed["pipelineExecutionId"]}
        if any(c["args"].get("filter") == wanted for c in calls):
            return calls
        return None

    calls = eventually(looked_up_the_failure, "the feed to read the failed action")

    assert all(("response" in c) != ("error" in c) for c in calls)
    assert call_problems(calls) == []
    methods = {c["method"] for c in calls}
    assert {
        "GetPipelineState",
        "GetPipelineExecution",
        "GetCommit",
        "PutApprovalResult",
        "ListActionExecutions",
    } <= methods
    # the answer as the fake gave it: epoch timestamps, the failure's errorDetails where
    # botocore keeps them
    [decided] = [c for c in calls if c["method"] == "PutApprovalResult"]
    assert isinstance(decided["response"]["approvedAt"], float)
    [listing] = [c for c in calls if c["args"].get("filter")]
    [build] = [
        d for d in listing["response"]["actionExecutionDetails"] if d["stageName"] == "Build"
    ]
    assert build["output"]["executionResult"]["errorDetails"]["code"] == "JobFailed"


def test_a_faulted_call_carries_its_error(http: Http) -> None:
    http.post("/_sandbox/faults", THROTTLED)
    run = http.post("/_sandbox/pipelines/short-web/runs", {"author": "alice@example.com"})

    def throttled() -> list[dict[str, Any]] | None:
        calls = http.get("/_sandbox/codepipeline/calls")
        return [c for c in calls if c.get("fault")] or None

    faulted = eventually(throttled, "a throttled GetPipelineExecution")
    http.post("/_sandbox/faults", {**THROTTLED, "rate": 0})
    _decided(http, run["approvalToken"])  # the 2-second deadline of short-* decides it

    assert faulted[0]["method"] == "GetPipelineExecution"
    assert faulted[0]["fault"] == "throttled"
    assert faulted[0]["error"] == {"code": "ThrottlingException", "message": "Rate exceeded"}
    assert "response" not in faulted[0]
    assert call_problems(http.get("/_sandbox/codepipeline/calls")) == []


def test_events_lists_each_delivery_as_the_function_received_it(http: Http) -> None:
    run = http.post("/_sandbox/pipelines/web/runs", {"customData": "Release 2.4"})
    _approve_in_slack(http, run["approvalToken"])
    events = _pipeline_ended(http, run["pipelineExecutionId"])

    assert all(set(e) == {"source", "target", "event", "at"} for e in events)
    assert all(ISO_MILLISECOND.fullmatch(e["at"]) for e in events)
    assert [e["at"] for e in events] == sorted(e["at"] for e in events)
    # the approval notification, as SNS hands it to start_approval
    [note] = [e for e in events if e["source"] == "sns"]
    assert note["target"] == "StartApprovalFunction"
    [record] = note["event"]["Records"]
    assert record["EventSource"] == "aws:sns"
    approval = json.loads(record["Sns"]["Message"])["approval"]
    assert approval["token"] == run["approvalToken"]
    assert approval["customData"] == "Release 2.4"
    # CodePipeline's events, as EventBridge hands them to the status feed
    delivered = [e for e in events if e["source"] == "eventbridge"]
    assert {e["target"] for e in delivered} == {"PipelineEventsFunction"}
    for entry in delivered:
        event = entry["event"]
        assert list(event) == EVENT_MEMBERS
        assert ISO_SECOND.fullmatch(event["time"]), event["time"]
        assert event["source"] == "aws.codepipeline"
    mine = [e["event"] for e in delivered]
    assert mine[0]["detail-type"] == "CodePipeline Pipeline Execution State Change"
    assert mine[0]["detail"]["state"] == "STARTED"
    assert (mine[-1]["detail-type"], mine[-1]["detail"]["state"]) == (
        "CodePipeline Pipeline Execution State Change",
        "SUCCEEDED",
    )

    http.post("/_sandbox/reset")
    assert http.get("/_sandbox/events") == []
