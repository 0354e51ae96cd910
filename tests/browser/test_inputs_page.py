"""Confirm and approver inputs on the sandbox's page (issue 22), as a person sees them:
Approve asks the confirm dialog first (Cancel sends nothing); with inputs, Approve opens a
modal whose invalid ticket is refused under its field, then a valid one approves. Each test
puts its policy in force through `POST /_sandbox/policy` and reloads the page. The page's
runs are Alice's changes, so Bob approves them."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.browser.conftest import ConfirmDialogs
from tests.browser.test_page import decision_record, start_run_from_the_page
from tests.conftest import Gate

pytestmark = pytest.mark.browser

INPUTS = [
    {"id": "ticket", "label": "Change ticket", "pattern": "^CHG[0-9]{6}$", "required": True},
    {"id": "rollout", "label": "Rollout", "options": ["10%", "50%", "100%"]},
]


def _use_policy(page: Page, gate: Gate, **rule: Any) -> None:
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            **rule,
        },
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer
    page.reload()
    page.locator("#user option").first.wait_for(state="attached")


def _request_as_bob(page: Page, gate: Gate) -> tuple[str, Locator]:
    page.locator("#user").select_option("U0BOB")
    approval, message = start_run_from_the_page(page, gate)
    shown = page.locator(".msg", has=page.locator(".meta", has_text=message["ts"]))
    expect(shown.locator('button[data-action="approve"]')).to_be_visible()
    return approval["approval_id"], shown


def _record(gate: Gate, approval_id: str) -> dict[str, Any]:
    return next(a for a in gate.client.approvals() if a["approval_id"] == approval_id)


def test_approve_asks_the_confirm_dialog_and_cancel_sends_nothing(
    page: Page, gate: Gate, confirm_dialogs: ConfirmDialogs
) -> None:
    _use_policy(page, gate)
    approval_id, shown = _request_as_bob(page, gate)
    confirm_dialogs.answers = [False, True]  # Cancel first, then Approve
    approve = shown.locator('button[data-action="approve"]')

    approve.click()
    expect(page.locator("#status")).to_have_text("Not sent: the confirm dialog was cancelled")
    (asked,) = confirm_dialogs.messages
    assert asked.startswith("Deploy?")
    assert re.search(r"Deploy demo-web-app [0-9a-f]{7} to \S+\?", asked), asked
    assert _record(gate, approval_id)["votes"] == []
    expect(approve).to_be_visible()

    approve.click()
    expect(shown.locator("button[data-action]")).to_have_count(0)  # approved and closed
    record = decision_record(gate, approval_id)
    assert (record["outcome"], record["decided_by"]) == ("approved", ["U0BOB"])
    assert len(confirm_dialogs.messages) == 2


def test_approve_with_inputs_refuses_a_bad_ticket_in_the_modal_then_approves(
    page: Page, gate: Gate
) -> None:
    _use_policy(page, gate, inputs=INPUTS)
    approval_id, shown = _request_as_bob(page, gate)

    shown.locator('button[data-action="approve"]').click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(page.locator("#modal-title")).to_have_text("Approve")
    modal.locator('textarea[data-block="ticket"]').fill("CHG12")
    modal.locator('select[data-block="rollout"]').select_option("50%")
    modal.locator("#modal-submit").click()

    expect(modal.locator('.error[data-error-for="ticket"]')).to_contain_text(
        "Must match ^CHG[0-9]{6}$"
    )
    expect(modal).to_be_visible()
    assert _record(gate, approval_id)["votes"] == []

    modal.locator('textarea[data-block="ticket"]').fill("CHG123456")
    modal.locator("#modal-submit").click()

    expect(modal).to_be_hidden()
    expect(shown.locator("button[data-action]")).to_have_count(0)
    expect(shown).to_contain_text("CHG123456")
    record = decision_record(gate, approval_id)
    assert record["outcome"] == "approved"
    (vote,) = record["votes"]
    assert (vote["user"], vote["inputs"]) == ("U0BOB", {"ticket": "CHG123456", "rollout": "50%"})
