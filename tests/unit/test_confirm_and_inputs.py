"""Confirm on Approve and approver inputs (issue 22, DESIGN §8.4): the policy keys and
their errors, the confirm dialog on the Approve button, the modals' input blocks, the gate's
own check of a submission, and where the values go (the vote, the decision record, the
summary to CodePipeline, the closed request)."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
from approval_gate.answers import answer
from approval_gate.approver_inputs import checked_inputs, confirm_text
from approval_gate.closed_messages import (
    closed_blocks,
)
from approval_gate.hold_messages import approve_later_view
from approval_gate.interactions import BadRequest, parse_click, record_click
from approval_gate.messages import (
    APPROVE,
    APPROVE_LATER,
    REJECT,
    decision_view,
    request_blocks,
)
from approval_gate.policy import PolicyError, load_policy
from approval_gate.reporting import summary
from approval_gate.rules import ApproverInput, Rules
from approval_gate.store import APPROVED, PENDING, ApprovalStore, Vote
from approval_gate.text import MAX_SUMMARY
from approval_gate.votes import Click

from tests.unit.events import SAMPLE_APPROVAL_ID
from tests.unit.fakes import (
    FIXED,
    TASK_TOKEN,
    RecordingSfn,
    RecordingSlack,
    clock_at,
    make_approval,
    make_rules,
)
from tests.unit.slack_limits_oracle import message_violations, view_violations

TICKET = ApproverInput(id="ticket", label="Change ticket", pattern="^CHG[0-9]{6}$", required=True)
ROLLOUT = ApproverInput(id="rollout", label="Rollout", options=("10%", "50%", "100%"))
INPUTS = (TICKET, ROLLOUT)
CLICKED_AT = FIXED + timedelta(minutes=5)

# --------------------------------------------------------------------------- the policy

POLICY = """
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE]}
  inputs:
{inputs}
"""


def _policy(inputs: str) -> Rules:
    return load_policy(POLICY.replace("{inputs}", inputs)).resolve("web-app")


def test_the_documented_inputs_load_and_confirm_is_on_by_default() -> None:
    rules = _policy(
        """    - id: ticket
      label: Change ticket
      pattern: "^CHG[0-9]{6}$"
      required: true
    - id: rollout
      label: Rollout
      options: ["10%", "50%", "100%"]"""
    )
    assert rules.inputs == INPUTS
    assert rules.confirm_approve is True
    assert Rules.from_dict(json.loads(json.dumps(rules.to_dict()))) == rules


def test_a_rule_turns_confirm_off_and_replaces_the_inputs() -> None:
    policy = load_policy(
        """
defaults:
  channel: C0DEPLOYS
  approvers: {users: [U0ALICE]}
  inputs: [{id: ticket, label: Change ticket}]
pipelines:
  - match: "dev-*"
    confirm_approve: false
    inputs: []
"""
    )
    assert policy.resolve("dev-web").inputs == ()
    assert policy.resolve("dev-web").confirm_approve is False
    assert policy.resolve("web").inputs == (ApproverInput("ticket", "Change ticket"),)


def _bad(inputs: Any) -> str:
    doc = {"defaults": {"channel": "C0DEPLOYS", "approvers": {"users": ["U0ALICE"]}}}
    doc["defaults"]["inputs"] = inputs
    with pytest.raises(PolicyError) as raised:
        load_policy(json.dumps(doc))
    return str(raised.value)


@pytest.mark.parametrize(
    ("inputs", "error"),
    [
        ("ticket", "defaults.inputs: expected a list of inputs (each with id and label), got"),
        (
            [{"id": "Ticket", "label": "x"}],
            "defaults.inputs[0].id: expected an id of 1 to 30 lowercase letters, digits and _, "
            "starting with a letter, like ticket, got 'Ticket'",
        ),
        ([{"id": "t" * 31, "label": "x"}], "defaults.inputs[0].id: expected an id of 1 to 30"),
        (
            [{"id": "reason", "label": "x"}],
            "defaults.inputs[0].id: 'reason' is reserved (the gate's own modals use it); "
            "choose another id",
        ),
        ([{"id": "deploy_at", "label": "x"}], "defaults.inputs[0].id: 'deploy_at' is reserved"),
        (
            [{"id": "ticket", "label": "a"}, {"id": "ticket", "label": "b"}],
            "defaults.inputs[1].id: 'ticket' is already the id of defaults.inputs[0]; "
            "input ids must be unique",
        ),
        ([{"label": "x"}], "defaults.inputs[0]: missing id"),
        ([{"id": "ticket"}], "defaults.inputs[0]: missing label"),
        ([{"id": "ticket", "label": " "}], "defaults.inputs[0].label: expected a non-empty label"),
        (
            [{"id": "ticket", "label": "x" * 2001}],
            "defaults.inputs[0].label: a label is at most 2000 characters (Slack's limit), "
            "got 2001",
        ),
        (
            [{"id": "ticket", "label": "x", "pattern": "^CHG[0-9{6}$"}],
            "defaults.inputs[0].pattern: not a valid regular expression: "
            "unterminated character set at position 4",
        ),
        (
            [{"id": "r", "label": "x", "pattern": "a", "options": ["a"]}],
            "defaults.inputs[0]: set pattern (free text) or options (a choice), not both",
        ),
        (
            [{"id": "r", "label": "x", "options": []}],
            "defaults.inputs[0].options: the list is empty; list at least one choice, or leave "
            "options out for free text",
        ),
        (
            [{"id": "r", "label": "x", "options": "10%"}],
            "defaults.inputs[0].options: expected a list of 1 to 100 choices",
        ),
        (
            [{"id": "r", "label": "x", "options": [str(n) for n in range(101)]}],
            "defaults.inputs[0].options: at most 100 options (Slack's limit), got 101",
        ),
        (
            [{"id": "r", "label": "x", "options": ["o" * 76]}],
            "defaults.inputs[0].options[0]: an option is at most 75 characters (Slack's limit), "
            "got 76",
        ),
        (
            [{"id": "r", "label": "x", "options": ["10%", "10%"]}],
            "defaults.inputs[0].options[1]: '10%' is listed twice; options must be distinct",
        ),
        (
            [{"id": "r", "label": "x", "options": [10]}],
            "defaults.inputs[0].options[0]: expected a non-empty string, got 10",
        ),
        (
            [{"id": "r", "label": "x", "required": "yes"}],
            "defaults.inputs[0].required: expected true or false, got 'yes'",
        ),
        ([{"id": "r", "label": "x", "regex": "a"}], "defaults.inputs[0].regex: unknown key"),
        (
            [{"id": f"i{n}", "label": "x"} for n in range(11)],
            "defaults.inputs: at most 10 inputs, got 11",
        ),
    ],
)
def test_each_bad_input_is_refused_naming_its_path(inputs: Any, error: str) -> None:
    assert _bad(inputs).startswith(error)


def test_confirm_approve_must_be_a_boolean() -> None:
    doc = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE"]},
            "confirm_approve": "yes",
        }
    }
    with pytest.raises(PolicyError, match=r"defaults\.confirm_approve: expected true or false"):
        load_policy(json.dumps(doc))


def test_the_reserved_ids_are_the_ones_the_gate_uses() -> None:
    from approval_gate.messages import (
        ACTIONS_BLOCK,
        DEPLOY_AT_BLOCK,
        REASON_BLOCK,
    )
    from approval_gate.policy_inputs import RESERVED_IDS

    assert {REASON_BLOCK, DEPLOY_AT_BLOCK, ACTIONS_BLOCK} <= set(RESERVED_IDS)


# --------------------------------------------------------------------------- confirm


def _approve_button(approval: Any) -> dict[str, Any]:
    blocks = request_blocks(approval, FIXED)
    assert message_violations("x", blocks) == []
    (actions,) = [block for block in blocks if block["type"] == "actions"]
    return {element["action_id"]: element for element in actions["elements"]}


def test_approve_carries_slacks_confirm_dialog_by_default_and_reject_does_not() -> None:
    approval = make_approval(change="1e3c820 Update the application", pipeline="web-app")

    buttons = _approve_button(approval)

    assert buttons[APPROVE]["confirm"] == {
        "title": {"type": "plain_text", "text": "Deploy?"},
        "text": {"type": "plain_text", "text": "Deploy web-app 1e3c820 to Approve?"},
        "confirm": {"type": "plain_text", "text": "Approve"},
        "deny": {"type": "plain_text", "text": "Cancel"},
    }
    assert "confirm" not in buttons[REJECT]


def test_no_confirm_when_the_policy_turns_it_off_or_approve_asks_inputs() -> None:
    off = make_approval(rules=make_rules(confirm_approve=False))
    with_inputs = make_approval(rules=make_rules(inputs=INPUTS))

    assert "confirm" not in _approve_button(off)[APPROVE]
    assert "confirm" not in _approve_button(with_inputs)[APPROVE]


@pytest.mark.parametrize(
    ("change", "text"),
    [
        ("9f2c1e7 Add the new checkout flow", "Deploy prod-web 9f2c1e7 to Approve?"),
        ("v1.2.3 release", "Deploy prod-web to Approve?"),
        (None, "Deploy prod-web to Approve?"),
    ],
)
def test_the_confirm_text_names_the_revision_only_when_it_is_a_commit(
    change: str | None, text: str
) -> None:
    assert confirm_text(make_approval(change=change)) == text


def test_the_confirm_text_names_the_runs_first_source_revision() -> None:
    from approval_gate.revisions import Revision

    github = Revision("SourceOutput", "GitHub", "example-org/web", "a1b2c3d4e5f6", "Fix", None)
    approval = make_approval(change="9f2c1e7 older line", revisions=(github,))
    assert confirm_text(approval) == "Deploy prod-web a1b2c3d to Approve?"


def test_a_long_pipeline_name_is_cut_to_slacks_300_characters() -> None:
    approval = make_approval(pipeline="p" * 400, stage="S" * 100, change="1e3c820 x")
    text = confirm_text(approval)
    assert len(text) <= 300
    assert text.endswith(" 1e3c820 to " + "S" * 100 + "?")
    assert message_violations("x", request_blocks(approval, FIXED)) == []


# --------------------------------------------------------------------------- the modals


def test_approve_with_inputs_opens_a_modal_with_each_input_then_the_comment() -> None:
    view = decision_view(make_approval(rules=make_rules(inputs=INPUTS)), APPROVE)

    assert view_violations(view) == []
    assert (view["title"]["text"], view["submit"]["text"]) == ("Approve", "Approve")
    ticket, rollout, comment = view["blocks"][1:]
    assert (ticket["block_id"], ticket["element"]["action_id"]) == ("ticket", "ticket")
    assert ticket["element"]["type"] == "plain_text_input"
    assert ticket["label"]["text"] == "Change ticket"
    assert ticket["optional"] is False
    assert (rollout["block_id"], rollout["element"]["action_id"]) == ("rollout", "rollout")
    assert rollout["element"]["type"] == "static_select"
    assert [o["value"] for o in rollout["element"]["options"]] == ["10%", "50%", "100%"]
    assert rollout["optional"] is True
    assert (comment["block_id"], comment["optional"]) == ("reason", True)


def test_without_inputs_the_approve_modal_is_as_before() -> None:
    view = decision_view(make_approval(rules=make_rules(ask_comment_on_approve=True)), APPROVE)
    assert view["title"]["text"] == "Approve deployment"
    assert [block.get("block_id") for block in view["blocks"][1:]] == ["reason"]


def test_approve_for_later_asks_the_same_inputs() -> None:
    rules = make_rules(inputs=INPUTS, allow_scheduling=True)
    view = approve_later_view(make_approval(rules=rules), FIXED)
    ids = [block.get("block_id") for block in view["blocks"][1:]]
    assert ids == ["ticket", "rollout", "deploy_at"]


# --------------------------------------------------------------------------- a submission


@pytest.mark.parametrize(
    ("given", "errors"),
    [
        ({"ticket": "CHG12", "rollout": "50%"}, {"ticket": "Must match ^CHG[0-9]{6}$"}),
        ({"ticket": "xCHG123456"}, {"ticket": "Must match ^CHG[0-9]{6}$"}),  # fullmatch
        ({"ticket": "CHG123456", "rollout": "75%"}, {"rollout": "Choose one of: 10%, 50%, 100%"}),
        ({"rollout": "50%"}, {"ticket": "Change ticket is required"}),
        ({"ticket": "   "}, {"ticket": "Change ticket is required"}),
        ({"ticket": "CHG" + "1" * 300}, {"ticket": "At most 200 characters"}),
    ],
)
def test_the_gate_checks_each_value_itself(given: dict[str, str], errors: dict[str, str]) -> None:
    accepted, wrong = checked_inputs(make_rules(inputs=INPUTS), given)
    assert set(wrong) == set(errors)
    for block, words in errors.items():
        assert wrong[block].startswith(words)
    assert not set(accepted) & set(wrong)


def test_only_the_policys_inputs_are_kept_trimmed_in_its_order() -> None:
    given = {"rollout": "50%", "ticket": " CHG123456 ", "admin": "yes", "reason": "x"}
    accepted, wrong = checked_inputs(make_rules(inputs=INPUTS), given)
    assert wrong == {}
    assert list(accepted.items()) == [("ticket", "CHG123456"), ("rollout", "50%")]


def _submission(values: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": "U0ALICE", "name": "alice", "team_id": "T0SANDBOX"},
        "team": {"id": "T0SANDBOX"},
        "api_app_id": "A0SANDBOX",
        "view": {
            "callback_id": "approval_gate_approve",
            "private_metadata": SAMPLE_APPROVAL_ID,
            "state": {"values": values},
        },
    }


def test_a_submission_carries_each_text_and_chosen_option() -> None:
    click = parse_click(
        _submission(
            {
                "ticket": {"ticket": {"type": "plain_text_input", "value": "CHG123456"}},
                "rollout": {
                    "rollout": {"type": "static_select", "selected_option": {"value": "50%"}}
                },
                "empty": {"empty": {"type": "static_select", "selected_option": None}},
                "reason": {"reason": {"type": "plain_text_input", "value": "canary green"}},
            }
        )
    )
    assert click is not None
    assert (click.action, click.submitted, click.reason) == (APPROVE, True, "canary green")
    assert dict(click.inputs) == {"ticket": "CHG123456", "rollout": "50%"}


def test_a_value_that_is_not_text_is_a_bad_request() -> None:
    with pytest.raises(BadRequest):
        parse_click(_submission({"ticket": {"ticket": {"type": "plain_text_input", "value": 7}}}))


@pytest.fixture
def asked(store: ApprovalStore) -> ApprovalStore:
    rules = make_rules(inputs=INPUTS)
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, rules=rules))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)
    return store


def _approve(**changes: Any) -> Click:
    return Click(
        action=APPROVE,
        approval_id=SAMPLE_APPROVAL_ID,
        user_id="U0ALICE",
        user_name="alice",
        team_id="T0SANDBOX",
        app_id="A0SANDBOX",
        channel="C0DEPLOYS",
        trigger_id="trigger",
    )._replace(**changes)


def test_approve_opens_the_inputs_modal_and_records_nothing(asked: ApprovalStore) -> None:
    result = record_click(_approve(), store=asked, sfn=RecordingSfn(), clock=clock_at(CLICKED_AT))
    assert result.outcome == "modal"
    assert result.view is not None
    assert [b.get("block_id") for b in result.view["blocks"][1:]] == ["ticket", "rollout", "reason"]
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None and stored.votes == ()


def test_an_invalid_value_is_refused_inside_the_modal_and_nothing_is_recorded(
    asked: ApprovalStore,
) -> None:
    sfn = RecordingSfn()
    click = _approve(submitted=True, inputs={"ticket": "CHG12", "rollout": "50%"})

    result = record_click(click, store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))
    http = answer(result, click, slack=RecordingSlack(), store=asked, clock=clock_at(CLICKED_AT))

    assert result.outcome == "inputs_invalid"
    body = json.loads(http.body)
    assert body["response_action"] == "errors"
    assert list(body["errors"]) == ["ticket"]
    assert body["errors"]["ticket"].startswith("Must match ^CHG[0-9]{6}$")
    assert len(body["errors"]["ticket"]) <= 150
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert (stored.status, stored.votes, sfn.task_successes) == (PENDING, (), [])


def test_a_valid_submission_records_the_inputs_and_the_comment(asked: ApprovalStore) -> None:
    sfn = RecordingSfn()
    given = {"ticket": "CHG123456", "rollout": "50%", "admin": "yes"}
    click = _approve(submitted=True, reason="canary green", inputs=given)

    result = record_click(click, store=asked, sfn=sfn, clock=clock_at(CLICKED_AT))

    assert result.outcome == "recorded"
    stored = asked.get(SAMPLE_APPROVAL_ID)
    assert stored is not None and stored.status == APPROVED
    (vote,) = stored.votes
    assert dict(vote.inputs) == {"ticket": "CHG123456", "rollout": "50%"}
    assert stored.decision_record()["votes"] == [
        {
            "user": "U0ALICE",
            "vote": "approve",
            "inputs": {"ticket": "CHG123456", "rollout": "50%"},
            "comment": "canary green",
            "at": "2026-12-01T17:05:00.000Z",
        }
    ]
    output = json.loads(sfn.task_successes[0]["output"])
    assert output["summary"] == (
        "Approved in Slack by alice (U0ALICE): canary green; ticket=CHG123456 rollout=50%"
    )


def test_a_rejection_needs_no_inputs(asked: ApprovalStore) -> None:
    click = _approve(action=REJECT, submitted=True, reason="canary red")
    result = record_click(click, store=asked, sfn=RecordingSfn(), clock=clock_at(CLICKED_AT))
    assert result.outcome == "recorded"


# --------------------------------------------------------------------------- the record


ALICE = Vote(
    "U0ALICE",
    "alice",
    "approve",
    FIXED + timedelta(minutes=1),
    reason="looks good",
    inputs={"ticket": "CHG123456", "rollout": "50%"},
)
BOB = Vote("U0BOB", "bob", "approve", FIXED + timedelta(minutes=2), inputs={"ticket": "CHG654321"})


def test_the_record_lists_every_vote_oldest_first_with_inputs_and_comment() -> None:
    carol = Vote("U0CAROL", "carol", "reject", FIXED + timedelta(minutes=3), reason="no")
    approval = make_approval(votes=(ALICE, BOB, carol))
    assert approval.decision_record()["votes"] == [
        {
            "user": "U0ALICE",
            "vote": "approve",
            "inputs": {"ticket": "CHG123456", "rollout": "50%"},
            "comment": "looks good",
            "at": "2026-12-01T17:01:00.000Z",
        },
        {
            "user": "U0BOB",
            "vote": "approve",
            "inputs": {"ticket": "CHG654321"},
            "comment": None,
            "at": "2026-12-01T17:02:00.000Z",
        },
        {
            "user": "U0CAROL",
            "vote": "reject",
            "inputs": {},
            "comment": "no",
            "at": "2026-12-01T17:03:00.000Z",
        },
    ]


def test_the_inputs_are_stored_with_the_vote(store: ApprovalStore) -> None:
    store.create(make_approval(rules=make_rules(inputs=INPUTS)))
    voted = store.add_vote(make_approval().approval_id, ALICE)
    again = store.get(voted.approval_id)
    assert again is not None
    assert again.votes == (ALICE,)
    assert dict(again.votes[0].inputs) == {"ticket": "CHG123456", "rollout": "50%"}


def _approved(*votes: Vote, reason: str | None = None) -> Any:
    return make_approval(
        rules=make_rules(inputs=INPUTS, required_approvals=len(votes)),
        status=APPROVED,
        votes=votes,
        decided_by=tuple(vote.user_id for vote in votes),
        decided_at=votes[-1].at,
        reason=reason,
    )


def test_several_approvers_inputs_are_named_in_the_summary() -> None:
    text = summary(_approved(ALICE, BOB))
    assert text == (
        "Approved in Slack by alice (U0ALICE), bob (U0BOB); "
        "alice: ticket=CHG123456 rollout=50%; bob: ticket=CHG654321"
    )


def test_the_summary_keeps_the_inputs_within_512_characters() -> None:
    long = ALICE._replace(inputs={"ticket": "CHG123456", "note": "n " * 150}, reason="w " * 400)
    text = summary(_approved(long, reason=long.reason))
    assert len(text) <= MAX_SUMMARY
    assert "ticket=CHG123456" in text  # the comment yields its room, not the inputs


def test_the_closed_request_shows_what_each_approver_gave() -> None:
    blocks = closed_blocks(_approved(ALICE, BOB))
    assert message_violations("x", blocks) == []
    texts = [
        block["text"]["text"] for block in blocks if "text" in block and block["type"] == "section"
    ]
    assert (
        "<@U0ALICE>: Change ticket `CHG123456` · Rollout `50%`\n<@U0BOB>: Change ticket `CHG654321`"
    ) in texts


def test_approve_for_later_checks_and_records_the_inputs_too(store: ApprovalStore) -> None:
    rules = make_rules(inputs=INPUTS, allow_scheduling=True)
    store.create(make_approval(approval_id=SAMPLE_APPROVAL_ID, rules=rules))
    store.save_task_token(SAMPLE_APPROVAL_ID, TASK_TOKEN)
    later = _approve(
        action=APPROVE_LATER, submitted=True, deploy_at=CLICKED_AT + timedelta(minutes=30)
    )

    refused = record_click(
        later._replace(inputs={"ticket": "nope"}),
        store=store,
        sfn=RecordingSfn(),
        clock=clock_at(CLICKED_AT),
    )
    taken = record_click(
        later._replace(inputs={"ticket": "CHG123456"}),
        store=store,
        sfn=RecordingSfn(),
        clock=clock_at(CLICKED_AT),
    )

    assert refused.outcome == "inputs_invalid"
    assert refused.errors is not None and list(refused.errors) == ["ticket"]
    assert taken.outcome == "recorded"
    stored = store.get(SAMPLE_APPROVAL_ID)
    assert stored is not None
    assert [dict(vote.inputs) for vote in stored.votes] == [{"ticket": "CHG123456"}]
