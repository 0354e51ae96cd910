"""Each must-be-zero figure of the soak turns red on the product break it is named after
(issue 18): the break is made with `monkeypatch` for one small soak, without faults, and
the figure must count it. The list, with the command for each, is in docs/reliability.md.

Each soak uses a seed of its own, so its pipelines (and approvals) are its own in the
module's shared sandbox.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from approval_gate import asking, closing, interactions
from approval_gate.clicks import Click, ClickResult
from approval_gate.messages import APPROVE

from reliability.soak import SoakReport, run_soak
from tests.reliability.breaks import reporting_each_decision_twice

SANDBOX_POLICY = Path(__file__).with_name("breaks.yaml")
#: The policy's deadline, in seconds.
DEADLINE = 8.0
APPROVALS = 8


def _soak(server: Any, seed: int, *, settle: bool = True) -> SoakReport:
    return run_soak(
        APPROVALS,
        0.0,
        0.0,
        seed=seed,
        server=server,
        at_once=APPROVALS,
        budget=40,
        deadline=DEADLINE,
        platform_faults=False,
        settle=settle,
    )


def test_without_a_break_every_figure_is_zero(sandbox_server):
    report = _soak(sandbox_server, 181)

    assert report.ok, report.summary()


def _break_one_approve_in_four(monkeypatch: Any, instead: Callable[[Click], ClickResult]) -> None:
    """Every fourth Approve button click (not a modal submission) gets `instead` in place of
    interactions.record_click; the others are recorded as usual."""
    clicks: list[Click] = []
    record_click = interactions.record_click

    def one_in_four(click: Click, **kwargs: Any) -> ClickResult:
        if click.action == APPROVE and not click.submitted:
            clicks.append(click)
            if len(clicks) % 4 == 1:
                return instead(click)
        return record_click(click, **kwargs)

    monkeypatch.setattr(interactions, "record_click", one_in_four)


def test_dropping_one_approve_click_in_four_counts_lost_and_wrong_results(
    sandbox_server, monkeypatch
):
    """Answer 200 and record nothing: the approval expires (Rejected by the deadline) while
    the harness saw its Approve accepted."""

    def drop(click: Click) -> ClickResult:
        return ClickResult("recorded")

    _break_one_approve_in_four(monkeypatch, drop)
    report = _soak(sandbox_server, 182)

    lost = [t for t in report.lost if t.what.startswith("a counted click lost")]
    assert len(lost) > 0, report.summary()
    assert len(report.wrong_result) > 0, report.summary()
    assert report.outcomes["expired"] > 0, report.summary()


def test_reporting_each_decision_twice_counts_decided_twice(sandbox_server):
    """The workflow sends PutApprovalResult twice: the fake refuses the second
    (ApprovalAlreadyCompletedException), so only the attempts in its call log show it."""
    with reporting_each_decision_twice(sandbox_server):
        report = _soak(sandbox_server, 183)

    assert len(report.decided_twice) == APPROVALS, report.summary()
    assert "2 PutApprovalResult attempts" in report.summary()


def test_posting_each_request_twice_counts_live_request_messages(sandbox_server, monkeypatch):
    post_request = asking.post_request

    def post_twice(*args: Any, **kwargs: Any) -> tuple[str, str]:
        post_request(*args, **kwargs)
        return post_request(*args, **kwargs)

    monkeypatch.setattr(asking, "post_request", post_twice)
    report = _soak(sandbox_server, 184)

    assert len(report.live_messages) == APPROVALS, report.summary()
    assert len(report.duplicate_requests) == APPROVALS, report.summary()


def test_a_click_that_raises_counts_5xx_responses(sandbox_server, monkeypatch):
    """One Approve click in four raises in slack_interactions: API Gateway answers 500."""

    def fail(click: Click) -> ClickResult:
        raise RuntimeError("a deliberate break")

    _break_one_approve_in_four(monkeypatch, fail)
    report = _soak(sandbox_server, 185)

    assert report.server_errors > 0, report.summary()


def test_requests_posted_without_buttons_count_never_asked(sandbox_server, monkeypatch):
    post_request = asking.post_request

    def without_buttons(*args: Any, blocks: list[Any], **kwargs: Any) -> tuple[str, str]:
        kept = [b for b in blocks if b.get("type") != "actions"]
        return post_request(*args, blocks=kept, **kwargs)

    monkeypatch.setattr(asking, "post_request", without_buttons)
    report = _soak(sandbox_server, 186)

    assert len(report.not_asked) == APPROVALS, report.summary()


def test_a_request_left_open_after_its_decision_counts_live_request_messages(
    sandbox_server, monkeypatch
):
    """Closing forgets to update the message: its buttons stay live after the decision."""
    monkeypatch.setattr(closing, "update_request", lambda *args, **kwargs: None)
    report = _soak(sandbox_server, 187)

    assert len(report.live_messages) == APPROVALS, report.summary()
    assert "0 still live" not in str(report.live_messages[0])


def test_a_close_step_that_fails_after_its_work_counts_workflows_failed(
    sandbox_server, monkeypatch
):
    """Closing does all its work (the record, the message) and then raises: every approval
    ends as the harness clicked, CodePipeline hears once, no buttons stay live, and only the
    workflow says something is wrong: the soak checks without waiting for the workflows,
    each still retrying its Close step (its retries would take a minute). Once the break
    is undone, their next retry succeeds, before the module's sandbox stops."""
    update_request = closing.update_request

    def then_raise(*args: Any, **kwargs: Any) -> None:
        update_request(*args, **kwargs)
        raise RuntimeError("closing fails after its work (a deliberate break)")

    monkeypatch.setattr(closing, "update_request", then_raise)
    report = _soak(sandbox_server, 188, settle=False)

    assert report.bad["workflows failed"] == APPROVALS, report.summary()
    assert not report.lost and not report.decided_twice and not report.live_messages, (
        report.summary()
    )
