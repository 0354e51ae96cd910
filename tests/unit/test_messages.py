"""The Slack messages of an approval: valid Block Kit, within Slack's limits, no tokens,
no mentions smuggled in through CodePipeline's custom data or a reason."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.closed_messages import (
    closed_blocks,
    closed_text,
)
from approval_gate.messages import (
    ACTIONS_BLOCK,
    APPROVE,
    REJECT,
    decision_view,
    request_blocks,
    request_text,
    slack_date,
)
from approval_gate.reminder_messages import (
    escalation_note,
    escalation_text,
    reminder_text,
)
from approval_gate.request import parse_approval_message
from approval_gate.rules import Approvers, Escalation
from approval_gate.store import APPROVED, DECIDED_ELSEWHERE, EXPIRED, REJECTED, Approval, Vote
from approval_gate.votes import (
    already_decided_text,
    already_voted_text,
    not_an_approver_text,
    tally_text,
)
from slack_sdk.models.blocks import Block

from tests.unit.events import SAMPLE_TOKEN, load_event
from tests.unit.fakes import FIXED, TASK_TOKEN, make_approval, make_rules
from tests.unit.slack_limits_oracle import message_violations, view_violations

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


#: Pipeline, stage and action names as CodePipeline allows them ([A-Za-z0-9.@_-], at most
#: 100 characters each): all three at the longest, and with a shorter stage, so the
#: closed message's title has a word boundary just past the header's limit (a cut that
#: keeps whole words must still stop within it).
NAMES = {
    "longest names": ("p" * 100, "s" * 100, "a" * 100),
    "a 40-character stage": ("p" * 100, "s" * 40, "a" * 100),
    "a 10-character stage": ("p.p@p-p_p" * 11 + "p", "s" * 10, "a" * 100),
}
MANY_USERS = tuple(f"U0APPROVER{n:03}" for n in range(40))
MANY_GROUPS = tuple(f"S0GROUP{n:03}" for n in range(15))


def worst_case(
    status: str | None = None, names: str = "longest names", **overrides: Any
) -> Approval:
    """An approval as long in every part as the gate lets it be: 40 approvers and 15
    groups (every one of them approving), escalation to 20 more, a 3000-character custom
    summary of the characters whose escaping grows most, 2000-character links, ten long
    author identities, 99 reminders; decided with the longest reason and note."""
    rules = make_rules(
        approvers=Approvers(users=MANY_USERS, groups=MANY_GROUPS),
        required_approvals=len(MANY_USERS),
        escalation=Escalation(
            channel="C0ONCALL",
            mention_groups=MANY_GROUPS,
            approvers=Approvers(users=tuple(f"U0ONCALL{n:03}" for n in range(20))),
        ),
    )
    votes = tuple(
        Vote(user_id=user, name=user.lower(), vote="approve", at=DECIDED_AT) for user in MANY_USERS
    )
    pipeline, stage, action = NAMES[names]
    values: dict[str, Any] = {
        "pipeline": pipeline,
        "stage": stage,
        "action": action,
        "custom_data": "<&>" * 1000,  # a 3000-character custom summary
        "external_entity_link": "https://github.com/" + "e" * 2000,
        "console_link": "https://console.aws.amazon.com/" + "c" * 2000,
        "rules": rules,
        "votes": votes,
        "reminders": 99,
        "escalated": True,
        "authors": tuple(f"{'a' * 62}{n:02}@{'d' * 60}.example.com" for n in range(10)),
        "change": "f" * 40,  # a full commit id
    }
    if status is not None:
        values.update(status=status, decided_at=DECIDED_AT, closed_at=CLOSED_AT)
        values["decided_by"] = MANY_USERS if status == APPROVED else ("U0BOB",)
        values["reason"] = "&<> " * 3000 if status == REJECTED else None
        # A note may carry a console decision's summary: CodePipeline takes 512 characters.
        values["note"] = "& " * 256 if status in (EXPIRED, DECIDED_ELSEWHERE) else None
    values.update(overrides)
    return sample_approval(**values)


def _request(names: str, **overrides: Any) -> tuple[str, list[dict[str, Any]]]:
    approval = worst_case(names=names, **overrides)
    now = approval.requested_at + timedelta(minutes=1)
    return request_text(approval), request_blocks(approval, now)


def _closed(status: str) -> Any:
    def build(names: str) -> tuple[str, list[dict[str, Any]]]:
        approval = worst_case(status, names)
        return closed_text(approval), closed_blocks(approval)

    return build


#: Every message the gate posts or updates with blocks: (text, blocks) for a set of names.
MESSAGES: dict[str, Any] = {
    "request": _request,
    "request, authors known in Slack": lambda names: _request(
        names, author_users=MANY_USERS, authors=()
    ),
    "request, before any reminder": lambda names: (
        request_text(worst_case(names=names)),
        request_blocks(worst_case(names=names)),
    ),
    **{f"closed {status.lower()}": _closed(status) for status in ALL_STATUSES},
}


def _now(approval: Approval) -> Any:
    return approval.requested_at + timedelta(minutes=1)


#: Every message the gate sends as text alone (thread replies, escalation, ephemerals).
TEXTS: dict[str, Any] = {
    "reminder": lambda a: reminder_text(a, _now(a)),
    "escalation": lambda a: escalation_text(a, "https://slack.example/" + "p" * 500, _now(a)),
    "escalation note": escalation_note,
    "tally": tally_text,
    "already voted": already_voted_text,
    "not an approver": not_an_approver_text,
    **{
        f"already {status.lower()}": (lambda _open, s=status: already_decided_text(worst_case(s)))
        for status in ALL_STATUSES
    },
}


@pytest.mark.parametrize(("name", "blocks"), list(all_messages()))
def test_blocks_stay_within_slack_limits(name: str, blocks: list[dict[str, Any]]) -> None:
    assert message_violations(None, blocks) == []


@pytest.mark.parametrize("names", list(NAMES))
@pytest.mark.parametrize("message", list(MESSAGES))
def test_the_longest_messages_stay_within_slack_limits(message: str, names: str) -> None:
    text, blocks = MESSAGES[message](names)
    assert message_violations(text, blocks) == []


@pytest.mark.parametrize("message", list(TEXTS))
def test_the_longest_plain_messages_stay_within_slack_limits(message: str) -> None:
    assert message_violations(TEXTS[message](worst_case()), None) == []


@pytest.mark.parametrize("action", [APPROVE, REJECT])
def test_the_modals_stay_within_slack_limits(action: str) -> None:
    view = decision_view(worst_case(), action)
    assert view_violations(view) == []
    (reason,) = [b for b in view["blocks"] if b["type"] == "input"]
    assert reason["element"]["max_length"] <= 3000


def test_the_oracle_sees_a_broken_limit() -> None:
    """The oracle itself: each limit the builders must keep, broken once, is reported."""
    blocks = request_blocks(sample_approval())
    header = json.loads(json.dumps(blocks))
    header[0]["text"]["text"] = "h" * 151
    button = json.loads(json.dumps(blocks))
    button[-1]["elements"][0]["text"]["text"] = "b" * 76
    section = json.loads(json.dumps(blocks))
    section[2]["text"]["text"] = "s" * 3001
    field = json.loads(json.dumps(blocks))
    field[1]["fields"][0]["text"] = "f" * 2001
    for broken in (header, button, section, field, blocks * 10):
        assert message_violations(None, broken) != []
    assert message_violations("t" * 40_001, None) != []
    view = decision_view(sample_approval(), REJECT)
    view["title"]["text"] = "t" * 25
    assert view_violations(view) != []


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
    assert slack_date(approval.deadline_at, "en") in shown
    assert "it is *rejected* by policy" in shown
    assert request_text(approval) == "Approval needed: prod-web / Approve / ProductionGate"


def test_the_request_says_when_the_policy_approves_at_the_deadline() -> None:
    approval = sample_approval(rules=make_rules(on_deadline="approve"))
    assert "it is *approved* by policy" in visible(request_blocks(approval))


def test_slack_date_renders_in_the_readers_zone_with_a_utc_fallback() -> None:
    moment = FIXED + timedelta(hours=1)
    assert slack_date(moment, "en") == (
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
    assert ":white_check_mark: *Approved* by <@U0ALICE> " + slack_date(DECIDED_AT, "en") in shown
    assert "waited 25m" in shown
    assert blocks[0]["text"]["text"] == "Approved: prod-web / Approve / ProductionGate"


def test_a_rejected_request_shows_who_when_and_why() -> None:
    shown = visible(closed_blocks(decided(REJECTED)))
    assert ":no_entry: *Rejected* by <@U0BOB> " + slack_date(DECIDED_AT, "en") in shown
    assert "\n>error rate up" in shown


def test_an_expired_request_shows_the_policy_outcome_and_when() -> None:
    shown = visible(closed_blocks(decided(EXPIRED)))
    assert "*No decision within 1h: rejected by policy* " + slack_date(DECIDED_AT, "en") in shown


def test_a_request_decided_elsewhere_says_where() -> None:
    approval = decided(DECIDED_ELSEWHERE)
    shown = visible(closed_blocks(approval))
    assert "*Already decided in CodePipeline*" in shown
    assert closed_text(approval) == "Decided outside Slack: prod-web / Approve / ProductionGate"


def test_a_request_decided_elsewhere_says_when() -> None:
    shown = visible(closed_blocks(decided(DECIDED_ELSEWHERE)))
    assert slack_date(CLOSED_AT, "en") in shown


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
