"""The independent oracles' rules (reliability/observed.py), edge by edge, without a
sandbox: what the clicks imply, which PutApprovalResult calls count as attempts, which
posts count as request messages with buttons."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from reliability.observed import (
    APPROVED,
    REJECTED,
    Counted,
    button_posts,
    expected_result,
    judge_result,
    live_message_problem,
    reported_again,
    result_attempts,
)


def _result(status: str, summary: str) -> list[dict[str, Any]]:
    return [{"result": {"status": status, "summary": summary}, "source": "gate"}]


def test_the_first_counted_reject_or_the_quorumth_approver_decides() -> None:
    clicks = [Counted("approve", "U1", 1.0), Counted("approve", "U1", 2.0)]
    assert expected_result(clicks, quorum=2).status == REJECTED  # one approver, twice
    clicks.append(Counted("approve", "U2", 3.0))
    assert expected_result(clicks, quorum=2).status == APPROVED
    assert expected_result(clicks, quorum=2).by == ("U1", "U2")
    clicks.insert(0, Counted("reject", "U3", 0.5))
    assert expected_result(clicks, quorum=2).status == REJECTED
    assert expected_result(clicks, quorum=2).by == ("U3",)


def test_a_click_after_the_deadline_does_not_count_and_one_near_it_may_lose() -> None:
    late = expected_result([Counted("approve", "U1", 20.0)], deadline=10.0)
    assert (late.status, late.by) == (REJECTED, ())
    near = expected_result([Counted("approve", "U1", 9.0)], deadline=10.0)
    assert near.status == APPROVED and REJECTED in near.alternatives
    early = expected_result([Counted("approve", "U1", 1.0)], deadline=10.0)
    assert early.alternatives == frozenset()


def test_a_counted_click_that_expired_is_judged_wrong_and_an_uncertain_one_is_allowed() -> None:
    counted = expected_result([Counted("approve", "U0ALICE", 1.0)], deadline=120.0)
    assert judge_result(counted, _result(APPROVED, "Approved in Slack by alice (U0ALICE)")) is None
    wrong = judge_result(counted, _result(REJECTED, "No decision within 2m"))
    assert wrong is not None and "Approved by U0ALICE" in wrong
    assert judge_result(counted, _result(APPROVED, "Approved in Slack by bob (U0BOB)"))
    assert "nothing" in str(judge_result(counted, []))
    uncertain = expected_result([], uncertain=["approve"])
    assert judge_result(uncertain, _result(APPROVED, "Approved in Slack by U0ALICE")) is None
    assert judge_result(uncertain, _result(REJECTED, "No decision")) is None
    assert judge_result(expected_result([]), _result(APPROVED, "Approved in Slack")) is not None


def _put(pipeline: str, **answer: Any) -> dict[str, Any]:
    return {
        "method": "PutApprovalResult",
        "args": {"pipelineName": pipeline, "stageName": "Approval", "token": "[redacted]"},
        "at": "2026-12-06T01:00:00+00:00",
        **answer,
    }


def test_every_attempt_counts_but_one_a_fault_refused_before_it_took_effect() -> None:
    calls = [
        _put("p", fault="throttled", error={"code": "ThrottlingException"}),
        _put("p", response={"approvedAt": 1.0}),
        _put("p", error={"code": "ApprovalAlreadyCompletedException"}),
        _put("p", fault="timeout_after_effect", response={"approvedAt": 1.0}),
        _put("other", response={"approvedAt": 1.0}),
        {"method": "GetPipelineState", "args": {"name": "p"}, "at": "x", "response": {}},
    ]
    assert len(result_attempts(calls, "p")) == 3
    assert len(result_attempts(calls, "p", "Approval")) == 3
    assert result_attempts(calls, "p", "Deploy") == []
    later = datetime(2026, 12, 6, 2, tzinfo=UTC)
    assert result_attempts(calls, "p", since=later) == []


def _attempt(at: str, status: str = "Approved", **answer: Any) -> dict[str, Any]:
    call = _put("p", **answer)
    call["at"] = f"2026-12-06T01:00:0{at}+00:00"
    call["args"]["result"] = {"status": status, "summary": "s"}
    return call


def test_a_retry_after_a_lost_answer_is_not_reported_again() -> None:
    """The soak strikes PutApprovalResult after it took effect: the gate's retry meets
    ApprovalAlreadyCompleted. It could not know, so that is no second decision."""
    attempts = [
        _attempt("1", fault="timeout_after_effect"),
        _attempt("2", error={"code": "ApprovalAlreadyCompletedException"}),
    ]
    assert reported_again(attempts) == []


def test_an_attempt_after_an_answered_acceptance_is_reported_again() -> None:
    accepted = _attempt("1", response={"approvedAt": 1.0})
    again = _attempt("2", error={"code": "ApprovalAlreadyCompletedException"})
    assert reported_again([again, accepted]) == [again]  # judged in the order they came


def test_another_status_after_a_lost_answer_is_reported_again() -> None:
    lost = _attempt("1", fault="reset_after_effect")
    changed = _attempt("2", status="Rejected", error={"code": "ApprovalAlreadyCompletedException"})
    assert reported_again([lost, changed]) == [changed]


def _post(blocks: Any, **answer: Any) -> dict[str, Any]:
    return {"method": "chat.postMessage", "args": {"channel": "C", "blocks": blocks}, **answer}


def test_posts_with_buttons_count_when_carried_out_and_blocks_may_be_a_json_string() -> None:
    buttons = [{"type": "actions", "elements": [{"action_id": "approve", "value": "A1"}]}]
    text_only = [{"type": "section", "text": {"type": "mrkdwn", "text": "A1"}}]
    calls = [
        _post(buttons, status=200, response={"ok": True}),
        _post('[{"type": "actions", "elements": [{"value": "A1"}]}]', response={"ok": True}),
        _post(buttons, fault="timeout_after_effect"),
        _post(buttons, fault="server_error", response={"ok": False}),
        _post(buttons, status=429, response={"ok": False, "error": "ratelimited"}),
        _post(text_only, response={"ok": True}),
    ]
    assert button_posts(calls, "A1") == 3
    assert button_posts(calls, "A2") == 0


def test_one_live_message_is_fine_until_the_decision() -> None:
    buttons = [{"type": "actions", "elements": [{"value": "A1"}]}]
    calls = [_post(buttons, response={"ok": True})]
    messages = [{"blocks": buttons}]
    assert live_message_problem(calls, messages, "A1", decided=False) is None
    assert "1 still live" in str(live_message_problem(calls, messages, "A1", decided=True))
    assert live_message_problem(calls, [{"blocks": []}], "A1", decided=True) is None
    assert "2 request" in str(live_message_problem(calls * 2, [], "A1", decided=True))
