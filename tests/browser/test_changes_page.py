"""What a request deploys, and the run's status feed, on the sandbox's page (issue 22): each
source revision is a link to its commit or object, the second run's "Since the last
deployment" links the compare view with its commit count, and the status feed's message is
redrawn in place as the run goes on. The runs are Alice's changes, so Bob approves them."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from sandbox.client import wait_for
from tests.browser.test_page import decision_record, start_run_from_the_page
from tests.conftest import Gate

pytestmark = pytest.mark.browser

SHOP = "shop-web"  # a pipeline of its own: its first run is the first deployment
SOURCES = [
    {
        "provider": "CodeCommit",
        "repository": "shop",
        "message": "Add the basket page",
        "author": "alice@example.com",
    },
    {"action": "Config", "provider": "S3", "repository": "shop-config/prod.zip"},
]
CODECOMMIT = "https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories"


def _shown(page: Page, message: dict[str, Any]) -> Locator:
    """The message as the page draws it (its replies are drawn inside it)."""
    return page.locator(".msg", has=page.locator(".meta", has_text=message["ts"])).first


def _request_of_a_run(gate: Gate, sources: list[dict[str, Any]]) -> tuple[dict, dict]:
    """A run of SHOP started over HTTP with `sources`: its record and its request."""
    run = gate.start_run(SHOP, sources=sources)
    approval = gate.approval_for(run["approvalToken"])
    return approval, gate.request_message(approval["approval_id"])


def _expect_revision_links(shown: Locator, revisions: list[dict[str, Any]]) -> None:
    """Each revision's short id (a commit's 7 characters, an S3 version's 12) is a link
    to its commit or object."""
    for revision in revisions:
        short = revision["revision_id"][: 12 if revision["provider"] == "S3" else 7]
        link = shown.get_by_role("link", name=short, exact=True)
        expect(link).to_have_attribute("href", revision["url"])


def test_the_request_links_each_revision_and_the_changes_since_the_last_deployment(
    page: Page, gate: Gate
) -> None:
    page.locator("#user").select_option("U0BOB")
    first, message = _request_of_a_run(gate, SOURCES)
    shown = _shown(page, message)
    expect(shown).to_contain_text("First deployment through this gate")
    expect(shown).to_contain_text("CodeCommit shop")
    expect(shown).to_contain_text("Add the basket page")
    expect(shown).to_contain_text("S3 shop-config/prod.zip")
    assert [r["provider"] for r in first["revisions"]] == ["CodeCommit", "S3"]
    _expect_revision_links(shown, first["revisions"])
    # The S3 link's URL has a query of two parameters: the whole of it is the href.
    assert "&prefix=" in first["revisions"][1]["url"]

    shown.locator('button[data-action="approve"]').click()  # the confirm dialog: OK
    expect(shown.locator("button[data-action]")).to_have_count(0)
    assert decision_record(gate, first["approval_id"])["outcome"] == "approved"

    second, message = _request_of_a_run(gate, [{**SOURCES[0], "message": "Fix the total"}])
    shown = _shown(page, message)
    _expect_revision_links(shown, second["revisions"])
    old, new = first["revisions"][0]["revision_id"], second["revisions"][0]["revision_id"]
    compare = f"{CODECOMMIT}/shop/compare/{old}/.../{new}?region=us-east-1"
    assert second["compare_url"] == compare
    expect(shown).to_contain_text("Since the last deployment: 1 commit")
    expect(shown.get_by_role("link", name="1 commit", exact=True)).to_have_attribute(
        "href", compare
    )

    shown.locator('button[data-action="reject"]').click()
    page.locator('#modal textarea[data-block="reason"]').fill("Not before the sale ends.")
    page.locator("#modal-submit").click()
    expect(shown).to_contain_text("Rejected")
    assert decision_record(gate, second["approval_id"])["outcome"] == "rejected"


def _feed_messages(gate: Gate, execution_id: str) -> list[dict[str, Any]]:
    """The status feed's messages of the pipeline execution (not the request, which links
    the execution too, under its header)."""
    found = []
    for message in gate.client.messages():
        first = (message["blocks"] or [{}])[0]
        text = (first.get("text") or {}).get("text", "")
        if first.get("type") == "section" and f"/executions/{execution_id}/" in text:
            found.append(message)
    return found


def test_the_status_feed_message_shows_the_stages_then_the_outcome(page: Page, gate: Gate) -> None:
    page.locator("#user").select_option("U0BOB")
    approval, request = start_run_from_the_page(page, gate)
    execution_id = approval["pipeline_execution_id"]
    (posted,) = wait_for(
        lambda: _feed_messages(gate, execution_id), what="the run's status feed message"
    )
    feed = _shown(page, posted)

    expect(feed).to_contain_text("\u25b6\ufe0f demo-web-app in progress")
    expect(feed.get_by_role("link", name="demo-web-app", exact=True)).to_have_attribute(
        "href", _execution_url(execution_id)
    )
    expect(feed).to_contain_text("\u2705 Source \u2192 \u2705 Build \u2192 \u25b6\ufe0f Approval")
    thread = feed.locator(".thread")
    expect(thread).to_contain_text("\u2705 Stage Build succeeded")

    _shown(page, request).locator('button[data-action="approve"]').click()

    # The same message, redrawn: the approval and the deploy, then the outcome.
    expect(feed).to_contain_text("\u2705 demo-web-app succeeded in")
    expect(feed).to_contain_text(
        "\u2705 Source \u2192 \u2705 Build \u2192 \u2705 Approval \u2192 \u2705 Deploy"
    )
    expect(thread).to_contain_text("\u2705 Action Approval/Approve approved")
    expect(thread).to_contain_text("\u2705 Stage Deploy succeeded")
    assert decision_record(gate, approval["approval_id"])["outcome"] == "approved"
    assert [m["ts"] for m in _feed_messages(gate, execution_id)] == [posted["ts"]]


def _execution_url(execution_id: str) -> str:
    return (
        "https://us-east-1.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"demo-web-app/executions/{execution_id}/timeline?region=us-east-1"
    )
