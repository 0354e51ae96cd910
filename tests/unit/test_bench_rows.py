"""The benchmark rows' own judgement (`make bench`, issue 18): a throughput row is MET only
when CodePipeline's call log shows each approval decided exactly once, as clicked.

The call logs here are fabricated in the fake CodePipeline's shape
(`GET /_sandbox/codepipeline/calls`): one entry per call, with `response` or `error`."""

from __future__ import annotations

from typing import Any

from bench.throughput import decision_problems, verdict

PIPELINES = ["load3r1-0", "load3r1-1", "load3r1-2"]


def put_result(pipeline: str, status: str = "Approved", error: str | None = None) -> dict[str, Any]:
    call: dict[str, Any] = {
        "method": "PutApprovalResult",
        "args": {
            "pipelineName": pipeline,
            "stageName": "Approval",
            "actionName": "Approve",
            "result": {"status": status, "summary": "Approved in Slack by alice (U0ALICE)"},
            "token": "<redacted>",
        },
        "at": "2026-12-06T03:00:00+00:00",
    }
    if error:
        call["error"] = {"code": error, "message": "refused"}
    else:
        call["response"] = {"approvedAt": "2026-12-06T03:00:00+00:00"}
    return call


def other_call(pipeline: str) -> dict[str, Any]:
    return {
        "method": "GetPipelineState",
        "args": {"name": pipeline},
        "at": "2026-12-06T03:00:00+00:00",
        "response": {},
    }


def test_one_accepted_result_each_with_the_clicked_status_is_met() -> None:
    calls = [other_call(p) for p in PIPELINES] + [put_result(p) for p in PIPELINES]

    problems = decision_problems(calls, PIPELINES)

    assert problems == []
    assert verdict(3, [problems, []]) == (True, "6 of 6 decided once, as clicked")


def test_a_doubled_put_approval_result_makes_the_row_missed() -> None:
    # The second attempt was refused by CodePipeline; it still counts: the gate tried twice.
    calls = [put_result(p) for p in PIPELINES]
    calls.append(put_result("load3r1-1", error="InvalidApprovalTokenException"))

    problems = decision_problems(calls, PIPELINES)
    met, detail = verdict(3, [[], problems])

    assert problems == [
        "load3r1-1 decided 2 times (Approved → accepted, Approved → InvalidApprovalTokenException)"
    ]
    assert met is False
    assert detail.startswith("1 of 2 rounds wrong: round 2: load3r1-1 decided 2 times")


def test_an_approval_never_decided_makes_the_row_missed() -> None:
    calls = [put_result(p) for p in PIPELINES[:2]]

    problems = decision_problems(calls, PIPELINES)

    assert problems == ["load3r1-2 not decided"]
    assert verdict(3, [problems])[0] is False


def test_a_decision_other_than_the_click_makes_the_row_missed() -> None:
    calls = [put_result(p) for p in PIPELINES[1:]] + [put_result("load3r1-0", "Rejected")]

    assert decision_problems(calls, PIPELINES) == ["load3r1-0 decided Rejected, clicked Approved"]


def test_a_single_attempt_the_service_refused_is_not_a_decision() -> None:
    calls = [put_result(p) for p in PIPELINES[1:]]
    calls.append(put_result("load3r1-0", error="ApprovalAlreadyCompletedException"))

    assert decision_problems(calls, PIPELINES) == [
        "load3r1-0: its PutApprovalResult was refused "
        "(Approved → ApprovalAlreadyCompletedException)"
    ]


def test_a_throttled_attempt_that_never_took_effect_is_not_counted() -> None:
    # A fault that refused the call before effect left the approval untouched: the retry
    # that followed is the one decision.
    throttled = put_result("load3r1-0", error="ThrottlingException")
    throttled["fault"] = "throttled"
    calls = [throttled] + [put_result(p) for p in PIPELINES]

    assert decision_problems(calls, PIPELINES) == []


def test_a_missed_row_names_the_first_problems_and_counts_the_rest() -> None:
    rounds = [["a not decided"], [], ["b not decided", "c decided 2 times (…)"]]

    met, detail = verdict(3, rounds)

    assert met is False
    assert detail == ("2 of 3 rounds wrong: round 1: a not decided; round 3: b not decided; 1 more")
