"""The Slack messages of an approval: valid Block Kit, within Slack's limits, no tokens,
no mentions smuggled in through CodePipeline's custom data or a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.messages import (
    ACTIONS_BLOCK,
    APPROVE,
    REJECT,
    closed_blocks,
    closed_text,
    request_blocks,
    request_text,
    slack_date,
)
from approval_gate.request import parse_approval_message
from approval_gate.store import APPROVED, DECIDED_ELSEWHERE, EXPIRED, REJECTED, Approval, Vote
from slack_sdk.models.blocks import Block

from tests.unit.events import SAMPLE_TOKEN, load_event
from tests.unit.fakes import FIXED, TASK_TOKEN, make_approval, make_rules

DECIDED_AT = FIXED + timedelta(minutes=25)
CLOSED_AT = FIXED + timedelta(minutes=26)
ALICE = Vote(user_id="U0ALICE", name="alice", vote="approve", at=DECIDED_AT)
BOB = Vote(user_id="U0BOB", name="bob", vote="reject", at=DECIDED_AT, reason="error rate up")


def sample_approval(**overrides: Any) -> Approval:
    """The sample SNS request, as the gate stores it."""
    body = load_event("sns_approval")["Records"][0]["Sns"]["Message"]
    request = parse_approval_message(body)
    values: dict[str, Any] = {
        "approval_id": request.approval_id,
        "pipeline": request.pipeline,
        "stage": request.stage,
        "action": request.action,
        "region": request.region,
        "token": request.token,
        "expires": request.expires,
        "custom_data": request.custom_data,
        "external_entity_link": request.external_entity_link,
        "console_link": request.console_link,
        "task_token": TASK_TOKEN,
        "channel": "C0DEPLOYS",
        "message_ts": "1796144402.000100",
    }
    values.update(overrides)
    return make_approval(**values)


def decided(status: str, **overrides: Any) -> Approval:
    defaults: dict[str, Any] = {"status": status, "decided_at": DECIDED_AT, "closed_at": CLOSED_AT}
    if status == APPROVED:
        defaults.update(votes=(ALICE,), decided_by=("U0ALICE",))
    elif status == REJECTED:
        defaults.update(votes=(BOB,), decided_by=("U0BOB",), reason="error rate up")
    elif status == EXPIRED:
        defaults.update(note="No decision within 1h: rejected by policy")
    else:
        defaults.update(note="Already decided in CodePipeline", decided_at=None)
    defaults.update(overrides)
    return sample_approval(**defaults)


ALL_STATUSES = [APPROVED, REJECTED, EXPIRED, DECIDED_ELSEWHERE]


def all_messages() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    yield "request", request_blocks(sample_approval())
    for status in ALL_STATUSES:
        yield status.lower(), closed_blocks(decided(status))


def texts(value: Any) -> Iterator[str]:
    """Every text a reader can see: the `text` of each text object, at any depth."""
    if isinstance(value, dict):
        if isinstance(value.get("text"), str):
            yield value["text"]
        for item in value.values():
            yield from texts(item)
    elif isinstance(value, list):
        for item in value:
            yield from texts(item)


def elements_of(blocks: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [e for b in blocks if b["type"] == "actions" for e in b["elements"] if e["type"] == kind]


def visible(blocks: list[dict[str, Any]]) -> str:
    return "\n".join(texts(blocks))


# --------------------------------------------------------------------------- Block Kit


@pytest.mark.parametrize(("name", "blocks"), list(all_messages()))
def test_blocks_round_trip_through_slack_sdk(name: str, blocks: list[dict[str, Any]]) -> None:
    parsed = Block.parse_all(blocks)
    assert all(block is not None for block in parsed)
    assert [block.to_dict() for block in parsed] == blocks


@pytest.mark.parametrize(("name", "blocks"), list(all_messages()))
def test_blocks_stay_within_slack_limits(name: str, blocks: list[dict[str, Any]]) -> None:
    assert 0 < len(blocks) <= 50
    for text in texts(blocks):
        assert len(text) <= 3000
    for block in blocks:
        if block["type"] == "header":
            assert len(block["text"]["text"]) <= 150


def test_the_longest_names_and_custom_data_still_fit() -> None:
    name = "p" * 100
    approval = sample_approval(pipeline=name, stage=name, action=name, custom_data="<&>" * 166)
    for blocks in (request_blocks(approval), closed_blocks(decided(APPROVED, pipeline=name))):
        Block.parse_all(blocks)
        assert all(len(text) <= 3000 for text in texts(blocks))


def test_a_rejection_reason_of_any_length_fits_the_closed_message() -> None:
    blocks = closed_blocks(decided(REJECTED, reason="why " * 2000))
    assert all(len(text) <= 3000 for text in texts(blocks))


def test_long_links_accepted_by_the_parser_still_fit_in_the_message() -> None:
    body = json.loads(load_event("sns_approval")["Records"][0]["Sns"]["Message"])
    body["consoleLink"] = "https://console.aws.amazon.com/" + "c" * 2000
    body["approval"]["externalEntityLink"] = "https://github.com/" + "e" * 2000
    request = parse_approval_message(json.dumps(body))  # accepted
    approval = sample_approval(
        console_link=request.console_link, external_entity_link=request.external_entity_link
    )
    assert all(len(text) <= 3000 for text in texts(request_blocks(approval)))


# --------------------------------------------------------------------------- the request


def test_the_request_has_approve_and_reject_buttons_carrying_the_approval_id() -> None:
    approval = sample_approval()
    blocks = request_blocks(approval)

    (actions,) = [b for b in blocks if b["type"] == "actions"]
    assert actions["block_id"] == ACTIONS_BLOCK
    buttons = elements_of(blocks, "button")
    assert [(b["action_id"], b["text"]["text"]) for b in buttons] == [
        (APPROVE, "Approve"),
        (REJECT, "Reject"),
    ]
    for button in buttons:
        assert button["value"] == approval.approval_id
        assert len(button["value"]) <= 2000
        assert len(button["text"]["text"]) <= 75


def test_the_request_says_what_where_and_until_when() -> None:
    approval = sample_approval()
    shown = visible(request_blocks(approval))

    assert "prod-web" in shown
    assert "Approve / ProductionGate" in shown
    assert "Release 1.42.0: check the canary dashboard" in shown
    assert (
        "<https://github.com/example-org/web/compare/v1.41.0...v1.42.0|Change to review>" in shown
    )
    assert "|Review in CodePipeline>" in shown
    assert slack_date(approval.deadline_at) in shown
    assert "it is *rejected* by policy" in shown
    assert request_text(approval) == "Approval needed: prod-web / Approve / ProductionGate"


def test_the_request_says_when_the_policy_approves_at_the_deadline() -> None:
    approval = sample_approval(rules=make_rules(on_deadline="approve"))
    assert "it is *approved* by policy" in visible(request_blocks(approval))


def test_slack_date_renders_in_the_readers_zone_with_a_utc_fallback() -> None:
    moment = FIXED + timedelta(hours=1)
    assert slack_date(moment) == (
        f"<!date^{int(moment.timestamp())}^{{date_short_pretty}} at {{time}}|2026-12-01 18:00 UTC>"
    )


def test_custom_data_cannot_mention_anyone() -> None:
    approval = sample_approval(custom_data="<!channel> <!here> <@U0BOB> <https://evil.example|ok>")
    shown = visible(request_blocks(approval))

    for markup in ("<!channel>", "<!here>", "<@U0BOB>", "<https://evil.example"):
        assert markup not in shown
    assert "&lt;!channel&gt; &lt;!here&gt; &lt;@U0BOB&gt;" in shown


def test_the_execution_link_points_at_the_pipeline_execution() -> None:
    shown = visible(request_blocks(sample_approval()))
    assert (
        "<https://us-east-2.console.aws.amazon.com/codesuite/codepipeline/pipelines/prod-web/"
        "executions/b7a0e5f2-3c41-4d8e-9a6b-1f2e3d4c5b6a/timeline?region=us-east-2"
        "|Execution b7a0e5f2>"
    ) in shown


def test_without_an_execution_id_there_is_no_execution_link() -> None:
    shown = visible(request_blocks(sample_approval(pipeline_execution_id=None)))
    assert "Execution" not in shown


# --------------------------------------------------------------------------- closed


@pytest.mark.parametrize("status", ALL_STATUSES, ids=str.lower)
def test_a_closed_request_has_no_buttons(status: str) -> None:
    blocks = closed_blocks(decided(status))
    assert [b for b in blocks if b["type"] == "actions"] == []
    assert "button" not in json.dumps(blocks)


def test_an_approved_request_shows_who_and_when() -> None:
    blocks = closed_blocks(decided(APPROVED))
    shown = visible(blocks)
    assert ":white_check_mark: *Approved* by <@U0ALICE> " + slack_date(DECIDED_AT) in shown
    assert "waited 25m" in shown
    assert blocks[0]["text"]["text"] == "Approved: prod-web / Approve / ProductionGate"


def test_a_rejected_request_shows_who_when_and_why() -> None:
    shown = visible(closed_blocks(decided(REJECTED)))
    assert ":no_entry: *Rejected* by <@U0BOB> " + slack_date(DECIDED_AT) in shown
    assert "\n>error rate up" in shown


def test_an_expired_request_shows_the_policy_outcome_and_when() -> None:
    shown = visible(closed_blocks(decided(EXPIRED)))
    assert "*No decision within 1h: rejected by policy* " + slack_date(DECIDED_AT) in shown


def test_a_request_decided_elsewhere_says_where() -> None:
    approval = decided(DECIDED_ELSEWHERE)
    shown = visible(closed_blocks(approval))
    assert "*Already decided in CodePipeline*" in shown
    assert closed_text(approval) == "Decided outside Slack: prod-web / Approve / ProductionGate"


def test_a_request_decided_elsewhere_says_when() -> None:
    shown = visible(closed_blocks(decided(DECIDED_ELSEWHERE)))
    assert slack_date(CLOSED_AT) in shown


def test_a_reason_cannot_mention_anyone() -> None:
    shown = visible(closed_blocks(decided(REJECTED, reason="<!channel> ping <@U0CAROL>")))
    assert "<!channel>" not in shown
    assert "<@U0CAROL>" not in shown
    assert "&lt;!channel&gt; ping &lt;@U0CAROL&gt;" in shown


# --------------------------------------------------------------------------- secrets


@pytest.mark.parametrize(("name", "blocks"), list(all_messages()))
def test_no_message_carries_a_token_or_the_review_link(
    name: str, blocks: list[dict[str, Any]]
) -> None:
    everything = json.dumps(blocks)
    assert SAMPLE_TOKEN not in everything
    assert SAMPLE_TOKEN.split("-")[0] not in everything
    assert "tAsKtOkEn" not in everything
    assert "/approve/" not in everything


def test_fixtures_use_the_sample_token() -> None:
    # The secrets test above is only meaningful if the approvals hold the real token.
    assert sample_approval().token == SAMPLE_TOKEN
    assert make_approval().token == SAMPLE_TOKEN
