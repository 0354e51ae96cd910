"""Held requests on the sandbox's page (issue 20), as a person sees and clicks them: a held
approval says when it deploys and offers Cancel and Deploy now; Deploy now and Approve for
later ask in a modal. Each test puts its policy in force through `POST /_sandbox/policy`
(a freeze from now on, or scheduling allowed), then reloads the page, so the people that
policy names are among those the page can act as. The page's runs are Alice's changes, so
Bob approves them (the gate refuses a self-approval)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.sync_api import Locator, Page, expect

from sandbox.client import wait_for
from tests.browser.conftest import BROWSER_TZ
from tests.browser.test_page import start_run_from_the_page
from tests.conftest import Gate

pytestmark = pytest.mark.browser

APPROVERS = {"users": ["U0ALICE", "U0BOB"]}
OVERRIDERS = {"approvers": {"users": ["U0CAROL"]}}
FREEZE_REASON = "Year-end freeze"


def _use_policy(page: Page, gate: Gate, **rule: Any) -> None:
    """Alice and Bob approve every pipeline, with the hold keys of `rule`; the page reloaded."""
    policy = {
        "defaults": {"channel": "C0DEPLOYS", "approvers": APPROVERS, "deadline": "1h", **rule},
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer
    page.reload()
    page.locator("#user option").first.wait_for(state="attached")


def _freeze(seconds: float) -> dict[str, Any]:
    now = datetime.now(UTC)
    return {
        "from": (now - timedelta(seconds=2)).isoformat(timespec="seconds"),
        "to": (now + timedelta(seconds=seconds)).isoformat(timespec="seconds"),
        "reason": FREEZE_REASON,
    }


def _request_on_the_page(page: Page, gate: Gate, user: str) -> tuple[str, Locator]:
    """A run started from the page as `user`: its approval id and its request as shown."""
    page.locator("#user").select_option(user)
    approval, message = start_run_from_the_page(page, gate)
    shown = page.locator(".msg", has=page.locator(".meta", has_text=message["ts"]))
    expect(shown.locator('button[data-action="approve"]')).to_be_visible()
    return approval["approval_id"], shown


def _buttons(shown: Locator) -> Locator:
    return shown.locator("button[data-action]")


def _decided(gate: Gate, approval_id: str) -> dict[str, Any]:
    """The decision record, once it has an outcome (a hold can last a few seconds)."""
    return wait_for(
        lambda: next(
            (
                a
                for a in gate.client.approvals()
                if a["approval_id"] == approval_id and a["outcome"]
            ),
            None,
        ),
        timeout=30,
        what="the decision record",
    )


def test_an_override_approver_deploys_a_held_request_now_with_a_reason(
    page: Page, gate: Gate
) -> None:
    _use_policy(page, gate, freezes=[_freeze(120)], freeze_override=OVERRIDERS)
    approval_id, shown = _request_on_the_page(page, gate, "U0BOB")
    expect(shown).to_contain_text("Frozen until")

    shown.locator('button[data-action="approve"]').click()

    # held: who approved, when it deploys and why; Cancel and Deploy now, nothing else
    expect(shown).to_contain_text("deploys at")
    expect(shown).to_contain_text(FREEZE_REASON)
    expect(shown).not_to_contain_text(":double_vertical_bar:")  # drawn as Slack draws it
    expect(_buttons(shown)).to_have_text(["Cancel", "Deploy now"])
    expect(shown.locator('button[data-action="deploy_now"]')).to_have_class("danger")

    page.locator("#user").select_option("U0CAROL")
    shown.locator('button[data-action="deploy_now"]').click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    expect(page.locator("#modal-title")).to_have_text("Deploy now")
    reason = "Hotfix for the payment outage"
    modal.locator('textarea[data-block="reason"]').fill(reason)
    modal.locator("#modal-submit").click()

    expect(modal).to_be_hidden()
    expect(_buttons(shown)).to_have_count(0)  # closed
    expect(shown).to_contain_text("U0CAROL")
    record = _decided(gate, approval_id)
    assert record["outcome"] == "approved"
    assert record["override"] == {"by": ["U0CAROL"], "reason": reason}
    assert record["held"]["why"] == "freeze"


def test_cancel_opens_a_held_request_again_and_it_can_then_be_rejected(
    page: Page, gate: Gate
) -> None:
    _use_policy(page, gate, freezes=[_freeze(120)], freeze_override=OVERRIDERS)
    approval_id, shown = _request_on_the_page(page, gate, "U0BOB")
    shown.locator('button[data-action="approve"]').click()
    expect(_buttons(shown)).to_have_text(["Cancel", "Deploy now"])

    page.locator("#user").select_option("U0BOB")
    shown.locator('button[data-action="cancel_hold"]').click()

    # asked again, as if nobody had approved; the thread says who cancelled
    expect(_buttons(shown)).to_have_text(["Approve", "Reject"])
    expect(shown).to_contain_text("cancelled the hold")
    expect(shown).not_to_contain_text("deploys at")
    record = next(a for a in gate.client.approvals() if a["approval_id"] == approval_id)
    assert (record["outcome"], record["held"], record["decided_by"]) == (None, None, [])

    shown.locator('button[data-action="reject"]').click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    modal.locator('textarea[data-block="reason"]').fill("Wait for the freeze to end.")
    modal.locator("#modal-submit").click()

    expect(modal).to_be_hidden()
    expect(shown).to_contain_text("Rejected")
    expect(_buttons(shown)).to_have_count(0)
    record = _decided(gate, approval_id)
    assert record["outcome"] == "rejected"
    assert record["decided_by"] == ["U0BOB"]
    assert record["reason"] == "Wait for the freeze to end."
    assert record["override"] is None


def test_approve_for_later_picks_a_time_in_the_pages_zone_and_deploys_then(
    page: Page, gate: Gate
) -> None:
    _use_policy(page, gate, allow_scheduling=True)
    approval_id, shown = _request_on_the_page(page, gate, "U0BOB")
    expect(_buttons(shown)).to_have_text(["Approve", "Approve for later", "Reject"])

    shown.locator('button[data-action="approve_later"]').click()
    modal = page.locator("#modal")
    expect(modal).to_be_visible()
    picker = modal.locator('input[type="datetime-local"][data-block="deploy_at"]')
    # a few seconds ahead, written as a person in the browser's zone would read a clock
    at = (datetime.now(UTC) + timedelta(seconds=5)).replace(microsecond=0)
    picker.fill(at.astimezone(ZoneInfo(BROWSER_TZ)).strftime("%Y-%m-%dT%H:%M:%S"))
    modal.locator("#modal-submit").click()

    expect(modal).to_be_hidden()
    expect(shown).to_contain_text("deploys at")
    expect(_buttons(shown)).to_have_text(["Cancel"])  # no Deploy now for a chosen time
    # then it closes by itself, approved, once the time has come
    expect(_buttons(shown)).to_have_count(0, timeout=20_000)
    record = _decided(gate, approval_id)
    assert record["outcome"] == "approved"
    assert record["decided_by"] == ["U0BOB"]
    assert record["held"]["why"] == "schedule"
    assert datetime.fromisoformat(record["held"]["until"]) == at
    assert record["reported_at"] >= record["held"]["until"]
