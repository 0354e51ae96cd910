"""Health checks on the sandbox's page (issue 21): a request blocked by an alarm shows its
checks and no Approve; the alarm set OK from the page's alarm form reaches the gate as
CloudWatch's event, and the request, live, gets Approve back and a thread line saying why."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.test_page import decision_record, start_run_from_the_page
from tests.conftest import Gate

pytestmark = pytest.mark.browser

ALARM = "prod-api-5xx"


def test_an_alarm_set_ok_from_the_page_brings_approve_back_live(page: Page, gate: Gate) -> None:
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            "checks": {"alarms": [ALARM]},
        }
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer
    status, answer = gate.client.request(
        "POST", f"/_sandbox/alarms/{ALARM}", {"state": "ALARM", "reason": "5xx rate 7% > 2%"}
    )
    assert status == 200, answer
    page.reload()
    page.locator("#user option").first.wait_for(state="attached")
    page.locator("#user").select_option("U0BOB")

    approval, message = start_run_from_the_page(page, gate)
    shown = page.locator(".msg", has=page.locator(".meta", has_text=message["ts"])).first
    expect(shown).to_contain_text("\u274c prod-api-5xx ALARM: 5xx rate 7% > 2%")
    expect(shown).to_contain_text("Approve is blocked while prod-api-5xx is ALARM")
    expect(shown.locator('button[data-action="approve"]')).to_have_count(0)
    expect(shown.locator('button[data-action="reject"]')).to_be_visible()

    # The page offers the alarms the requests check; setting it OK is CloudWatch's event.
    expect(page.locator(f'#alarm-names option[value="{ALARM}"]')).to_have_count(1)
    page.locator("#alarm-name").fill(ALARM)
    page.locator("#alarm-state").select_option("OK")
    page.get_by_role("button", name="Set").click()
    expect(page.locator("#status")).to_have_text(f"{ALARM} is OK")

    expect(shown.locator('button[data-action="approve"]')).to_be_visible()
    expect(shown.locator(".thread")).to_contain_text(
        "\u2705 prod-api-5xx is OK again: Approve is back"
    )

    shown.locator('button[data-action="approve"]').click()
    expect(shown).to_contain_text("Approved")
    record = decision_record(gate, approval["approval_id"])
    assert record["outcome"] == "approved"
    assert [(c["name"], c["state"]) for c in record["checks"]] == [(ALARM, "OK")]
