"""The benchmark rows' own arithmetic and judgement (`make bench`, issue 18): a throughput
row is MET only when CodePipeline's call log shows each approval decided exactly once, as
clicked; the cost estimate bills Lambda, DynamoDB, API Gateway and SNS as AWS does; the
health checks' rows (issue 21) judge an alarm change's latency and the DescribeAlarms calls
per check point.

The call logs here are fabricated in the fake CodePipeline's shape
(`GET /_sandbox/codepipeline/calls`): one entry per call, with `response` or `error`."""

from __future__ import annotations

from typing import Any

import pytest

from bench.cost import (
    DynamoDBUse,
    LambdaUse,
    dynamodb_use,
    estimate,
    item_bytes,
    lambda_use,
)
from bench.health_checks import (
    calls_row,
    calls_verdict,
    expected_calls,
    latency_row,
    shows_approve,
)
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


# ---------------------------------------------------------------------- the cost estimate


def invocation(duration_ms: float, memory_mb: int = 512) -> dict[str, Any]:
    return {
        "function": "AskApproversFunction",
        "duration_ms": duration_ms,
        "memory_mb": memory_mb,
        "started_at": "2026-12-06T03:00:00.000Z",
    }


def test_lambda_bills_each_invocation_rounded_up_to_the_next_millisecond() -> None:
    used = lambda_use([invocation(1.0001, 1024), invocation(10.0)])

    # 2 ms at 1 GB, then 10 ms at 0.5 GB
    assert used.requests == 2
    assert used.gb_seconds == pytest.approx(0.002 + 0.005)
    assert used.dollars == pytest.approx(2 * 0.20 / 1e6 + 0.007 * 0.0000133334)


def test_item_size_counts_names_and_values() -> None:
    item = {
        "id": {"S": "abc"},  # 2 + 3
        "n": {"N": "1234"},  # 1 + (4 + 1) // 2 + 1
        "ok": {"BOOL": True},  # 2 + 1
        "votes": {"M": {"U1": {"S": "approve"}}},  # 5 + 3 + (2 + 7 + 1)
        "by": {"L": [{"S": "U1"}]},  # 2 + 3 + (2 + 1)
    }

    assert item_bytes(item) == 5 + 4 + 3 + 18 + 8


def test_a_click_path_costs_five_writes_and_a_read_per_interaction() -> None:
    # a 1.2 KB item: 2 write units a write, 1 read unit a read, 1 unit on the index at create
    assert dynamodb_use(
        interactions=1, reminders=0, escalated=False, deadline=False, size=1244
    ) == DynamoDBUse(writes=5, reads=3, write_units=11, read_units=3)
    assert dynamodb_use(
        interactions=2, reminders=0, escalated=False, deadline=False, size=900
    ) == DynamoDBUse(writes=5, reads=4, write_units=6, read_units=4)


def test_reminder_cycles_and_escalation_add_their_requests() -> None:
    reminded = dynamodb_use(interactions=1, reminders=1, escalated=False, deadline=False, size=900)
    escalated = dynamodb_use(interactions=1, reminders=1, escalated=True, deadline=False, size=900)

    assert (reminded.writes, reminded.reads) == (7, 4)
    assert (escalated.writes, escalated.reads) == (8, 4)


def test_the_deadline_path_counts_its_one_cycle_once() -> None:
    expired = dynamodb_use(interactions=0, reminders=1, escalated=False, deadline=True, size=900)

    assert (expired.writes, expired.reads) == (5, 4)


def test_the_estimate_adds_every_service() -> None:
    bill = estimate(
        transitions=3,
        lambdas=LambdaUse(requests=4, gb_seconds=0.1),
        dynamodb=DynamoDBUse(writes=5, reads=3, write_units=11, read_units=3),
        api_requests=1,
        publishes=1,
    )

    assert bill.step_functions == pytest.approx(3 * 0.025 / 1000)
    assert bill.lambda_ == pytest.approx(4 * 0.20 / 1e6 + 0.1 * 0.0000133334)
    assert bill.dynamodb == pytest.approx(11 * 0.625 / 1e6 + 3 * 0.125 / 1e6)
    assert bill.api_gateway == pytest.approx(1.00 / 1e6)
    assert bill.sns == pytest.approx(0.50 / 1e6)
    assert bill.total == pytest.approx(sum(bill))
    assert bill.parts().startswith("Step Functions $0.0750, Lambda $0.0021, DynamoDB $0.0073")


# ---------------------------------------------------------------------- health checks


def request(*action_ids: str) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "section", "text": {"type": "mrkdwn", "text": "x"}}]
    if action_ids:
        elements = [{"type": "button", "action_id": a, "value": "a-1"} for a in action_ids]
        blocks.append({"type": "actions", "elements": elements})
    return {"channel": "C0DEPLOYS", "ts": "1.000001", "blocks": blocks}


def test_approve_shows_only_while_the_request_offers_its_button() -> None:
    assert shows_approve(request("approve", "reject")) is True
    assert shows_approve(request("reject")) is False  # a check fails: Approve hidden
    assert shows_approve(request()) is False  # closed: no buttons at all


def test_an_alarm_change_row_is_met_while_the_slowest_of_twenty_is_within_two_seconds() -> None:
    fast = [0.010 + i / 1000 for i in range(19)]

    met = latency_row([*fast, 1.999], 20)
    missed = latency_row([*fast, 2.001], 20)

    assert (met.met, met.median, met.spread) == (True, "19.0 ms", "p99 1999.0 ms")
    assert "in-process poll" in met.ratio
    assert (missed.met, missed.spread) == (False, "p99 2001.0 ms")


def test_an_alarm_change_that_never_showed_makes_the_row_missed_with_the_reason() -> None:
    stopped = latency_row([0.01, 0.02], 20, "change 5 (ALARM) not shown within 10 s")
    none = latency_row([], 20, "change 1 (ALARM) not shown within 10 s")
    short = latency_row([0.01] * 19, 20)

    assert (stopped.met, stopped.spread) == (False, "2 of 20 shown")
    assert stopped.ratio == "change 5 (ALARM) not shown within 10 s"
    assert (none.met, none.median, none.spread) == (False, "—", "0 of 20 shown")
    assert (short.met, short.ratio) == (False, "only 19 of 20 changes measured")


def test_describe_alarms_calls_are_one_per_hundred_names_and_one_per_page_per_prefix() -> None:
    assert expected_calls(3, [151, 1]) == 1 + 2 + 1
    assert expected_calls(3, [100, 101]) == 1 + 1 + 2
    assert expected_calls(100, []) == 1
    assert expected_calls(101, []) == 2
    assert expected_calls(0, [0]) == 1  # a prefix matching nothing still costs its call


def test_equal_calls_at_every_check_point_and_none_elsewhere_is_met() -> None:
    assert calls_verdict([4, 4, 4], 4, {}, 0) == (True, "")
    assert calls_verdict([4, 4, 4], 4, {"AlarmEventsFunction": 0}, 0) == (True, "")


def test_a_check_point_off_the_expected_count_makes_the_calls_row_missed() -> None:
    # each name read alone: 3 names + 2 + 1 pages
    met, problems = calls_verdict([4, 6, 4], 4, {}, 0)

    assert met is False
    assert problems == "check points off 4: #2: 6"


def test_calls_outside_a_check_point_or_while_alarms_change_make_the_row_missed() -> None:
    polled = calls_verdict([4, 4], 4, {"AlarmEventsFunction": 4, "CloseRequestFunction": 1}, 4)
    unseen = calls_verdict([], 4, {}, 0)

    assert polled == (
        False,
        "4 during the alarm changes; "
        "outside a check point: 4 by AlarmEventsFunction, 1 by CloseRequestFunction",
    )
    assert unseen == (False, "no check point seen")


def test_the_calls_row_says_what_a_check_point_is_and_what_was_counted() -> None:
    how = "3 names, bench-fleet-* (151 alarms)"
    row = calls_row([4, 4, 4], 4, {}, 0, 4, how)
    off = calls_row([4, 6], 4, {}, 0, 4, how)

    assert (row.met, row.median, row.spread) == (True, "4 calls", "3 check points")
    assert row.target.startswith("= 4 ")
    assert row.ratio.startswith("check point = each ask (the first request, each reminder)")
    assert "0 gate calls during 4 alarm changes, 0 outside check points" in row.ratio
    assert (off.met, off.median) == (False, "4-6 calls")
    assert off.ratio.startswith("check points off 4: #2: 6; check point = each ask")
