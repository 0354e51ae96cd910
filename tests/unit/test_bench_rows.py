"""The benchmark rows' own arithmetic and judgement (`make bench`, issue 18): a throughput
row is MET only when CodePipeline's call log shows each approval decided exactly once, as
clicked; the cost estimate bills Lambda, DynamoDB, API Gateway and SNS as AWS does; the
health checks' rows (issue 21) judge an alarm change's latency and the DescribeAlarms calls
per check point; the request-posted row (issue 22) measures from the SNS delivery to the
request's chat.postMessage, and counts a run only when its request shows the changes the
lookups should find; the cold start floor is the clients the handler creates.

The call logs here are fabricated in the fake CodePipeline's shape
(`GET /_sandbox/codepipeline/calls`): one entry per call, with `response` or `error`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bench import request_latency
from bench.cold_start import CLIENTS, floor_code, floor_mismatch, handler_clients
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


# ---------------------------------------------------------------------- request posted


def sns_delivery(token: str, at: str, target: str = "StartApprovalFunction") -> dict[str, Any]:
    message = {"approval": {"pipelineName": "bench-changes", "token": token}}
    return {
        "source": "sns",
        "target": target,
        "event": {"Records": [{"Sns": {"Message": json.dumps(message)}}]},
        "at": at,
    }


def slack_call(method: str, at: str, ts: str, ok: bool = True) -> dict[str, Any]:
    response = {"ok": ok, "channel": "C0DEPLOYS", "ts": ts} if ok else {"ok": False}
    return {"method": method, "args": {"channel": "C0DEPLOYS"}, "at": at, "response": response}


def test_the_sample_runs_from_the_sns_delivery_to_the_requests_post_message() -> None:
    deliveries = [
        {"source": "eventbridge", "target": "PipelineEventsFunction", "event": {}, "at": "x"},
        sns_delivery("other-token", "2026-12-06T09:00:00.000Z"),
        sns_delivery("t-1", "2026-12-06T09:00:01.250Z", target="SomeOtherFunction"),
        sns_delivery("t-1", "2026-12-06T09:00:01.300Z"),
        sns_delivery("t-1", "2026-12-06T09:00:05.000Z"),  # a retried delivery: not the first
    ]
    calls = [
        slack_call("chat.postMessage", "2026-12-06T09:00:01.310Z", "1.000001"),  # the feed's
        slack_call("chat.postMessage", "2026-12-06T09:00:01.320Z", "", ok=False),  # refused
        slack_call("chat.postMessage", "2026-12-06T09:00:01.342Z", "1.000002"),
        slack_call("chat.update", "2026-12-06T09:00:01.400Z", "1.000002"),
    ]

    sent = request_latency.delivered_at(deliveries, "t-1")
    shown = request_latency.posted_at(calls, "C0DEPLOYS", "1.000002")

    assert sent is not None and shown is not None
    assert shown - sent == pytest.approx(0.042, abs=1e-6)
    assert request_latency.delivered_at(deliveries, "never-sent") is None
    assert request_latency.posted_at(calls, "C0DEPLOYS", "1.000009") is None
    assert request_latency.posted_at(calls, "C0OTHER", "1.000002") is None


def test_measured_runs_alternate_so_each_walks_one_or_two_commits() -> None:
    planned = request_latency.plan(4)

    assert [(p.decision, p.commits) for p in planned] == [
        ("reject", 1),  # the warm-up run before it was approved
        ("approve", 2),  # the run before it was rejected: 2 commits since the warm-up
        ("reject", 1),
        ("approve", 2),
    ]
    sources = request_latency.sources(3)
    assert [(s["provider"], s["action"]) for s in sources] == [
        ("CodeCommit", "Source"),  # the main source: compared and counted
        ("GitHub", "App"),
    ]


def message_with_changes(last_line: str) -> dict[str, Any]:
    text = "*Changes*\nCodeCommit bench-shop <https://x|1a2b3c4> Benchmark change 3\n" + last_line
    return {
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": "Approval needed"}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text}},
        ]
    }


def test_a_run_counts_only_when_its_request_shows_the_commits_the_lookups_should_find() -> None:
    two = message_with_changes("Since the last deployment: <https://compare|2 commits>")
    one = message_with_changes("Since the last deployment: <https://compare|1 commit>")
    unknown = message_with_changes("Changes since the last deployment: unknown")

    assert request_latency.changes_problem(two, 2) is None
    assert request_latency.changes_problem(one, 1) is None
    assert request_latency.changes_problem(one, 2) == (
        "expected 2 commits since the last deployment, shows "
        "'Since the last deployment: <https://compare|1 commit>'"
    )
    assert "shows 'Changes since the last deployment: unknown'" in str(
        request_latency.changes_problem(unknown, 1)
    )
    assert request_latency.changes_problem({"blocks": []}, 1) == "no Changes section"


def test_the_request_posted_row_is_met_while_the_slowest_of_twenty_is_within_a_second() -> None:
    fast = [0.030 + i / 1000 for i in range(19)]

    met = request_latency.latency_row([*fast, 1.0], 20, lookups="GetCommit 2-3")
    missed = request_latency.latency_row([*fast, 1.001], 20)

    assert (met.met, met.median, met.spread, met.target) == (
        True,
        "39.0 ms",
        "p99 1000.0 ms",
        "p99 ≤ 1 s",
    )
    assert met.ratio.startswith("from the SNS delivery to StartApprovalFunction")
    assert "chat.postMessage" in met.ratio and met.ratio.endswith("GetCommit 2-3")
    assert (missed.met, missed.spread) == (False, "p99 1001.0 ms")


def test_a_series_that_stopped_makes_the_request_posted_row_missed_with_the_reason() -> None:
    stopped = request_latency.latency_row([0.03] * 4, 20, "run 5: no Changes section")
    none = request_latency.latency_row([], 20, "run 1's request not posted within 10 s")

    assert (stopped.met, stopped.spread, stopped.ratio) == (
        False,
        "4 of 20 measured",
        "run 5: no Changes section",
    )
    assert (none.met, none.median) == (False, "—")
    assert request_latency.latency_row([0.03] * 19, 20).ratio == "only 19 of 20 runs measured"


def test_the_lookup_calls_of_each_sample_are_counted_by_method() -> None:
    def call(method: str, at: str) -> dict[str, Any]:
        return {"method": method, "args": {}, "at": at}

    calls = [
        call("GetCommit", "2026-12-06T09:00:00.999000+00:00"),  # before the delivery
        call("GetPipelineExecution", "2026-12-06T09:00:01+00:00"),
        call("GetCommit", "2026-12-06T09:00:01.010000+00:00"),
        call("GetCommit", "2026-12-06T09:00:01.020000+00:00"),
        call("PutApprovalResult", "2026-12-06T09:00:01.030000+00:00"),  # no lookup
        call("GetCommit", "2026-12-06T09:00:01.100000+00:00"),  # after the post
    ]
    start = request_latency.seconds_of("2026-12-06T09:00:01.000Z")
    end = request_latency.seconds_of("2026-12-06T09:00:01.050Z")

    counted = request_latency.calls_between(calls, start, end)

    assert counted == {"GetPipelineExecution": 1, "GetCommit": 2}
    other = request_latency.calls_between(calls, end, end + 1)
    assert request_latency.calls_words([counted, other]) == (
        "GetPipelineExecution 0-1, GetCommit 1-2"
    )


# ---------------------------------------------------------------------- cold start floor


def test_the_start_approval_floor_creates_the_lookup_clients_with_their_config() -> None:
    code = floor_code("start_approval")

    assert code.count("boto3.client('codepipeline')") == 1
    assert "boto3.client('codepipeline', config=config)" in code
    assert "boto3.client('codecommit', config=config)" in code
    assert "connect_timeout=1, read_timeout=2" in code
    assert "config=" not in floor_code("pipeline_events")


def test_a_floor_that_differs_from_the_handlers_clients_says_how() -> None:
    assert floor_mismatch(("dynamodb", "sns"), ("sns", "dynamodb")) is None
    assert floor_mismatch(("dynamodb",), ("dynamodb", "dynamodb", "codepipeline:config")) == (
        "the floor lacks dynamodb, codepipeline:config"
    )
    assert floor_mismatch(("dynamodb", "sns"), ("dynamodb",)) == ("the handler does not create sns")


def test_the_start_approval_floor_is_what_its_handler_creates_at_import() -> None:
    assert handler_clients("start_approval") == CLIENTS["start_approval"]


def test_the_vietnamese_cold_start_renders_a_text_from_the_catalog() -> None:
    """The figure times a real catalog read: its first text is a catalog message whose
    Vietnamese differs from the English, and the process reports both timings."""
    from bench import cold_start

    scope: dict[str, object] = {}
    exec(cold_start.VIETNAMESE_FIRST_TEXT.replace("tr('vi'", "shown = tr('vi'"), scope)  # noqa: S102
    assert scope["shown"] == "5 phút"
    lines = cold_start._lines(
        cold_start.vietnamese_code("slack_interactions"),
        cold_start._environment("slack_interactions"),
    )
    catalog, whole = (float(line) for line in lines[-2:])
    assert 0 < catalog < whole


def test_the_third_party_floor_imports_what_the_handler_imports_but_none_of_ours() -> None:
    """`python -m bench.cold_start --third-party` charges the gate's own code with the gap
    between the handler and this process: it must import the handler's third-party modules
    (so they are not charged to us) and nothing of the gate's (so none of ours is hidden)."""
    from bench import cold_start

    function = "slack_interactions"
    code = cold_start.third_party_code(function)
    env = cold_start._environment(function)
    loaded = cold_start._lines(f"{code}; {cold_start._MODULES}", env)
    modules = set(json.loads(loaded[-1]))
    assert float(loaded[-2]) > 0
    assert {"slack_sdk.web.client", "slack_sdk.signature", "aws_lambda_powertools"} <= modules
    assert not {m for m in modules if m == "app" or m.startswith("approval_gate")}
    handler = set(
        json.loads(
            cold_start._lines(
                cold_start._prelude(function) + "import app; " + cold_start._MODULES, env
            )[-1]
        )
    )
    assert {m for m in handler if not m.startswith("approval_gate") and m != "app"} <= modules
