"""The soak at a small scale (issue 8): 15 approvals with Slack failing a fifth of the
gate's calls and CodePipeline a tenth; `make reliability` runs 300."""

from __future__ import annotations

import time

from bench.driver import Driver, button_value
from reliability.soak import SOAK_POLICY, run_soak

SANDBOX_POLICY = SOAK_POLICY


def test_fifteen_approvals_under_faults_each_end_once_and_nothing_answers_5xx(sandbox_server):
    started = time.monotonic()

    report = run_soak(15, 0.2, 0.1, seed=8, server=sandbox_server, budget=45)

    assert report.ok, report.summary()
    assert report.started == report.asked == 15, report.summary()
    assert sum(report.outcomes.values()) == 15
    assert sum(report.faults.values()) > 0, report.summary()
    assert time.monotonic() - started < 50


def test_a_click_is_answered_200_when_its_ephemeral_answer_times_out(sandbox_server):
    """Found by the soak: a Reject whose modal cannot open is told so by an ephemeral
    message; when that times out too, the click must still be answered, not 500."""
    driver = Driver(sandbox_server)
    message = driver.open(["soak-ephemeral-timeout"])["soak-ephemeral-timeout"]
    driver.client.set_fault("slack", "views.open", "server_error", 1, 1)
    driver.client.set_fault("slack", "chat.postEphemeral", "timeout", 1, 1, delay=1.2)
    try:
        status, _ = driver.send(*driver.click_body(message, "reject", "U0BOB"))
    finally:
        driver.client.set_fault("slack", "views.open", "server_error", 0, 1)
        driver.client.set_fault("slack", "chat.postEphemeral", "timeout", 0, 1)

    assert status == 200
    assert "could not tell the clicker" in "\n".join(sandbox_server.sandbox.logs.lines)
    driver.click(message, "approve")
    assert driver.wait_finished(button_value(message))["status"] == "SUCCEEDED"
