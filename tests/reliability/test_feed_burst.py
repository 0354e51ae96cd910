"""The status feed in a busy channel under Slack's rate limits (issue 17): the burst of
reliability/feed_burst.py, smaller, so `make test` runs it; `make reliability` runs 20."""

from __future__ import annotations

import pytest
from approval_gate.feed import handle
from approval_gate.slack import rate_limit_waits

from reliability import feed_burst

SANDBOX_POLICY = feed_burst.BURST_POLICY


@pytest.mark.timeout(180)
def test_a_burst_of_runs_in_one_rate_limited_channel_keeps_every_message_and_line(
    sandbox_server,
):
    report = feed_burst.run_feed_burst(sandbox_server, runs=5)

    assert report.ok, report.summary()
    assert report.runs == report.messages_right == 5
    assert report.lines_landed == report.lines_expected == 5 * 8
    assert report.ratelimited > 0 and report.ratelimited_feed > 0
    assert report.function_errors == 0
    assert report.longest_invocation < report.function_timeout


@pytest.mark.timeout(180)
def test_the_burst_sees_a_feed_that_gives_up_on_a_429(sandbox_server, monkeypatch):
    """The deliberate break of docs/reliability.md: no wait and no deferral, every 429 goes
    up to Lambda (whose retries the sandbox leaves out), and the burst reports it."""

    monkeypatch.setattr(handle, "rate_limit_waits", lambda times: rate_limit_waits(0))
    monkeypatch.setattr(handle, "is_rate_limited", lambda exc: False)

    report = feed_burst.run_feed_burst(sandbox_server, runs=3)

    assert not report.ok
    assert report.function_errors > 0, report.summary()
