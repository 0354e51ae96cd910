"""Confirm on Approve and approver inputs (issue 22 points 3 and 4, DESIGN §8.4), over HTTP
with signed clicks and submissions as Slack sends them: the Approve button carries Slack's
confirm dialog unless the policy turns it off; with inputs, Approve opens a modal, an
invalid ticket is refused inside it and records nothing, a valid one approves; the values
reach the decision record's `votes` and CodePipeline's summary. Each test puts its policy
in force through `POST /_sandbox/policy`."""

from __future__ import annotations

from typing import Any

from sandbox.client import wait_for

COMMIT = "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"
INPUTS = [
    {"id": "ticket", "label": "Change ticket", "pattern": "^CHG[0-9]{6}$", "required": True},
    {"id": "rollout", "label": "Rollout", "options": ["10%", "50%", "100%"]},
]


def _use_policy(gate, **rule: Any) -> None:
    policy = {
        "defaults": {
            "channel": "C0DEPLOYS",
            "approvers": {"users": ["U0ALICE", "U0BOB"]},
            "deadline": "1h",
            **rule,
        }
    }
    status, answer = gate.client.request("POST", "/_sandbox/policy", policy)
    assert status == 200, answer


def _open(gate) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """A run of web-app with a CodeCommit commit by someone the policy does not map."""
    return gate.open_approval(
        "web-app",
        author="dana@example.com",
        commit={"id": COMMIT, "message": "Update the application"},
    )


def _approve_button(message: dict[str, Any]) -> dict[str, Any]:
    return next(
        element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "approve"
    )


def _submit(gate, view_id: str, user: str, values: dict[str, Any]) -> dict[str, Any]:
    status, answer = gate.client.request(
        "POST", "/_sandbox/slack/submit", {"view_id": view_id, "user": user, "values": values}
    )
    assert status == 200, answer
    return answer


def test_approve_asks_slacks_confirm_dialog_by_default(gate) -> None:
    _use_policy(gate)
    run, approval, message = _open(gate)

    confirm = _approve_button(message)["confirm"]

    assert confirm["title"]["text"] == "Deploy?"
    assert confirm["text"]["text"] == f"Deploy web-app {COMMIT[:7]} to {approval['stage']}?"
    assert (confirm["confirm"]["text"], confirm["deny"]["text"]) == ("Approve", "Cancel")
    assert all(
        "confirm" not in element
        for block in message["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
        if element["action_id"] == "reject"
    )
    assert gate.click(message, "U0ALICE", "approve") == 200  # confirmed: the click arrives
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"


def test_no_confirm_dialog_when_the_policy_turns_it_off(gate) -> None:
    _use_policy(gate, confirm_approve=False)
    run, _, message = _open(gate)

    assert "confirm" not in _approve_button(message)
    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"


def test_inputs_are_asked_checked_in_the_modal_and_recorded(gate) -> None:
    _use_policy(gate, inputs=INPUTS)
    run, approval, message = _open(gate)
    assert "confirm" not in _approve_button(message)  # the modal is the confirmation

    assert gate.click(message, "U0ALICE", "approve") == 200
    opened = gate.opened_view(approval["approval_id"], "U0ALICE")
    assert opened["view"]["title"]["text"] == "Approve"
    ids = [block.get("block_id") for block in opened["view"]["blocks"] if block["type"] == "input"]
    assert ids == ["ticket", "rollout", "reason"]

    refused = _submit(
        gate,
        opened["id"],
        "U0ALICE",
        {"ticket": {"ticket": "CHG12"}, "rollout": {"rollout": "50%"}},
    )
    assert refused["errors"] is not None, "the modal closed: the invalid ticket was taken"
    assert list(refused["errors"]) == ["ticket"]
    assert refused["errors"]["ticket"].startswith("Must match ^CHG[0-9]{6}$")
    record = gate.approval_for(run["approvalToken"])
    assert (record["outcome"], record["votes"]) == (None, [])
    assert gate.results_for(run["approvalToken"]) == []
    views = {view["id"]: view for view in gate.server.sandbox.slack.views()}
    assert not views[opened["id"]].get("closed")  # still open, for the approver to fix

    accepted = _submit(
        gate,
        opened["id"],
        "U0ALICE",
        {
            "ticket": {"ticket": "CHG123456"},
            "rollout": {"rollout": "50%"},
            "reason": {"reason": "Canary is green"},
        },
    )
    assert accepted["errors"] is None

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Approved"
    assert result["result"]["summary"] == (
        "Approved in Slack by alice (U0ALICE): Canary is green; ticket=CHG123456 rollout=50%"
    )
    record = wait_for(
        lambda: (found := gate.approval_for(run["approvalToken"]))["outcome"] and found,
        what="the decision record",
    )
    (vote,) = record["votes"]
    assert {k: vote[k] for k in ("user", "vote", "inputs", "comment")} == {
        "user": "U0ALICE",
        "vote": "approve",
        "inputs": {"ticket": "CHG123456", "rollout": "50%"},
        "comment": "Canary is green",
    }
    closed = gate.wait_closed(message)
    assert "Change ticket `CHG123456` · Rollout `50%`" in str(closed["blocks"])
