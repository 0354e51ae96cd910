"""The sandbox's page, in a browser: a person starts a run, clicks, and fills in modals."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Page, expect

from sandbox.client import wait_for
from sandbox.engine import BOT_TOKEN
from sandbox.server import SandboxServer
from tests.browser.conftest import BROWSER_TZ
from tests.conftest import Gate

pytestmark = pytest.mark.browser

NOT_EPOCH_SECONDS = "is a datetimepicker: give epoch seconds, an integer"
PIPELINE = "demo-web-app"  # the pipeline the page's "Start a pipeline run" starts


def start_run_from_the_page(page: Page, gate: Gate) -> tuple[dict[str, Any], dict[str, Any]]:
    """Click "Start a pipeline run"; the new approval's record and its request message."""
    before = {a["approval_id"] for a in gate.client.approvals()}
    page.get_by_role("button", name="Start a pipeline run").click()
    expect(page.locator("#status")).to_have_text(f"Started a run of {PIPELINE}")
    approval = wait_for(
        lambda: next(
            (
                a
                for a in gate.client.approvals()
                if a["pipeline"] == PIPELINE and a["approval_id"] not in before
            ),
            None,
        ),
        what="the run's approval",
    )
    return approval, gate.request_message(approval["approval_id"])


def decision_record(gate: Gate, approval_id: str) -> dict[str, Any]:
    """The approval's record once it has an outcome."""
    return wait_for(
        lambda: next(
            (
                a
                for a in gate.client.approvals()
                if a["approval_id"] == approval_id and a["outcome"]
            ),
            None,
        ),
        what="the decision record",
    )


def test_an_approver_rejects_from_the_page_with_a_reason(page: Page, gate: Gate) -> None:
    page.locator("#user").select_option("U0BOB")
    approval, message = start_run_from_the_page(page, gate)
    shown = page.locator(".msg", has=page.locator(".meta", has_text=message["ts"]))
    approve = shown.locator('button[data-action="approve"]')
    reject = shown.locator('button[data-action="reject"]')
    # the buttons render with Slack's styles
    expect(approve).to_have_class("primary")
    expect(reject).to_have_class("danger")

    reject.click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    modal.locator('textarea[data-block="reason"]').fill("The canary's error rate doubled.")
    modal.locator("#modal-submit").click()

    expect(modal).to_be_hidden()
    # the message, redrawn from its new blocks: closed as rejected, its buttons gone
    expect(shown).to_contain_text("Rejected")
    expect(shown.locator("button")).to_have_count(0)
    record = decision_record(gate, approval["approval_id"])
    assert record["outcome"] == "rejected"
    assert record["decided_by"] == ["U0BOB"]
    assert record["reason"] == "The canary's error rate doubled."


def test_the_gates_error_shows_under_the_input_and_the_modal_stays_open(
    page: Page, gate: Gate
) -> None:
    page.locator("#user").select_option("U0ALICE")
    _, message = start_run_from_the_page(page, gate)
    shown = page.locator(".msg", has=page.locator(".meta", has_text=message["ts"]))
    shown.locator('button[data-action="reject"]').click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    reason = modal.locator('textarea[data-block="reason"]')
    reason.fill("   ")  # not empty for the browser, no reason for the gate
    modal.locator("#modal-submit").click()

    expect(modal.locator('.error[data-error-for="reason"]')).to_contain_text("Say why")
    expect(modal).to_be_visible()
    reason.fill("Error budget spent.")
    modal.locator("#modal-submit").click()
    expect(modal).to_be_hidden()
    expect(shown).to_contain_text("Rejected")
    assert gate.wait_closed(message)


def test_a_datetimepicker_shows_in_the_browsers_zone_and_submits_epoch_seconds(
    page: Page, sandbox_server: SandboxServer, gate: Gate
) -> None:
    # No button of the gate opens such a modal yet: open one as the gate would, for U0BOB,
    # and let the page show it as it shows the gate's.
    slack = sandbox_server.sandbox.slack
    initial = 1_798_794_007  # 2027-01-01T09:00:07Z: seconds, which the picker keeps
    view = {
        "type": "modal",
        "callback_id": "approve_later",
        "title": {"type": "plain_text", "text": "Approve for later"},
        "submit": {"type": "plain_text", "text": "Approve"},
        "blocks": [
            {
                "type": "input",
                "block_id": "deploy_at",
                "label": {"type": "plain_text", "text": "Deploy at"},
                "element": {
                    "type": "datetimepicker",
                    "action_id": "deploy_at",
                    "initial_date_time": initial,
                },
            }
        ],
    }
    status, _, answer = slack.api(
        "views.open",
        {"trigger_id": slack.issue_trigger_id(user="U0BOB"), "view": view},
        f"Bearer {BOT_TOKEN}",
    )
    assert status == 200 and answer["ok"], answer
    # Over HTTP, a value the picker could not send is refused, and the view stays open
    for wrong in (str(initial), "2027-01-01T16:00", float(initial)):
        refused = gate.client.request(
            "POST",
            "/_sandbox/slack/submit",
            {
                "view_id": answer["view"]["id"],
                "user": "U0BOB",
                "values": {"deploy_at": {"deploy_at": wrong}},
            },
        )
        assert refused == (400, {"error": f"input deploy_at/deploy_at {NOT_EPOCH_SECONDS}"})
    page.locator("#user").select_option("U0BOB")
    page.evaluate("showModal()")

    picker = page.locator('#modal input[type="datetime-local"][data-block="deploy_at"]')
    zone = ZoneInfo(BROWSER_TZ)
    shown = datetime.fromtimestamp(initial, zone).strftime("%Y-%m-%dT%H:%M:%S")
    expect(picker).to_have_value(shown)  # 16:00:07 in Ho Chi Minh City
    picker.fill("2027-01-02T08:30:15")
    page.locator("#modal-submit").click()

    expected = int(datetime(2027, 1, 2, 8, 30, 15, tzinfo=zone).timestamp())
    submitted = wait_for(
        lambda: next(
            (
                i["payload"]
                for i in gate.client.interactions()
                if i["type"] == "view_submission"
                and i["payload"]["view"]["id"] == answer["view"]["id"]
            ),
            None,
        ),
        what="the submission",
    )
    assert submitted["view"]["state"]["values"] == {
        "deploy_at": {"deploy_at": {"type": "datetimepicker", "selected_date_time": expected}}
    }
