"""Races that must each end with exactly one outcome (issue 8): the scenarios live in
reliability/races.py, so `make reliability` runs the very same ones."""

from __future__ import annotations

import pytest

from reliability import races
from tests.reliability.breaks import reporting_each_decision_twice

SANDBOX_POLICY = races.RACES_POLICY


def _passes(result: races.RaceResult) -> None:
    assert result.ok, result.summary()
    assert result.outcomes, result.summary()


def test_fifty_clicks_from_five_approvers_decide_once_with_two_approvers(sandbox_server):
    result = races.click_storm(sandbox_server)

    _passes(result)
    assert result.outcomes == {"approved": 1}


def test_fifty_approve_and_reject_clicks_decide_once(sandbox_server):
    _passes(races.click_storm(sandbox_server, mixed=True))


def test_fifty_clicks_across_two_steps_decide_once_with_each_steps_approvers(sandbox_server):
    result = races.steps_storm(sandbox_server)

    _passes(result)
    assert result.outcomes == {"approved": 3}


def test_clicks_at_the_deadline_end_with_the_click_or_the_deadline_never_both(sandbox_server):
    result = races.clicks_at_the_deadline(sandbox_server)

    _passes(result)
    assert sum(result.outcomes.values()) == len(races.DEADLINE_OFFSETS)


def test_a_click_racing_a_console_decision_gives_codepipeline_one_result(sandbox_server):
    result = races.click_against_console(sandbox_server)

    _passes(result)
    assert sum(result.outcomes.values()) == 6


def test_a_duplicate_sns_delivery_starts_one_workflow_and_asks_once(sandbox_server):
    result = races.duplicate_sns_delivery(sandbox_server)

    _passes(result)
    assert result.outcomes == {"approved": 3}


@pytest.mark.timeout(60)
def test_duplicate_eventbridge_deliveries_post_and_settle_once(sandbox_server):
    result = races.duplicate_eventbridge_delivery(sandbox_server)

    _passes(result)
    assert result.outcomes == {"decided_elsewhere": 1}


def test_the_races_count_a_second_put_approval_result_attempt(sandbox_server):
    """The break "decided twice" is named after: the workflow reports each decision twice.
    The fake refuses the second report (ApprovalAlreadyCompletedException), so CodePipeline
    hears one result; the attempts in its call log still count it."""
    with reporting_each_decision_twice(sandbox_server):
        result = races.click_storm(sandbox_server)

    assert result.decided_twice == 1, result.summary()
    assert "2 PutApprovalResult attempts" in result.summary()


def test_cancel_around_the_hold_end_either_reopens_or_is_reported_approved_once(sandbox_server):
    result = races.cancel_at_the_hold_end(sandbox_server)

    _passes(result)
    assert sum(result.outcomes.values()) == len(races.HOLD_END_OFFSETS)


def test_deploy_now_racing_cancel_ends_one_way(sandbox_server):
    result = races.deploy_now_against_cancel(sandbox_server)

    _passes(result)
    assert sum(result.outcomes.values()) == 4


def test_two_overrides_at_once_report_one_approval(sandbox_server):
    result = races.overrides_at_once(sandbox_server)

    _passes(result)
    assert result.outcomes == {
        "approved, override by 2 of 2 needed": 2,
        "approved, override by 1 of 1 needed": 2,
    }
