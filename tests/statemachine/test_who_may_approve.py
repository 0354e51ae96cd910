"""Who may approve: user groups, four-eyes, unknown authors, quorum and reasons — through
the sandbox over HTTP, with signed requests, as Slack sends them."""

from __future__ import annotations

import json
from pathlib import Path

from sandbox.client import has_buttons, wait_for
from sandbox.fake_slack import view_submission_payload

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "approvers.yaml"
SLACK_FIXTURE = {
    "users": [
        {"id": "U0CAROL", "name": "carol", "email": "carol@example.com"},
        {"id": "U0MALLORY", "name": "mallory", "email": "mallory@example.com"},
    ],
    "groups": [{"id": "S0RELEASE", "handle": "release", "users": ["U0CAROL"]}],
}


def _told(gate, user):
    return wait_for(lambda: gate.ephemerals(user), what=f"an answer to {user}")[-1]["text"]


def _finish(gate, approval, message, user="U0BOB"):
    assert gate.click(message, user, "approve") == 200
    gate.wait_execution(approval["approval_id"])


def test_a_group_member_approves_and_a_non_member_is_refused(gate):
    run, approval, message = gate.open_approval("groups-web", author="dev@example.com")

    assert gate.click(message, "U0MALLORY", "approve") == 200
    assert "not an approver" in _told(gate, "U0MALLORY")
    assert gate.click(message, "U0CAROL", "approve") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["status"] == "Approved"
    assert "carol (U0CAROL)" in result["result"]["summary"]
    gate.wait_execution(approval["approval_id"])


def test_when_slack_cannot_list_a_group_the_click_is_refused_with_the_reason(gate):
    run, approval, message = gate.open_approval("broken-group-web")
    slack = gate.server.sandbox.slack
    original = slack.api

    def plan_required(method, args, authorization):
        if method == "usergroups.users.list":
            return 200, {}, {"ok": False, "error": "plan_upgrade_required"}
        return original(method, args, authorization)

    slack.api = plan_required
    try:
        assert gate.click(message, "U0CAROL", "approve") == 200
        told = _told(gate, "U0CAROL")
    finally:
        slack.api = original

    assert "could not check whether you are in <!subteam^S0BROKEN>" in told
    assert "plan_upgrade_required" in told
    assert has_buttons(gate.message_at(message["channel"], message["ts"]))
    assert gate.results_for(run["approvalToken"]) == []
    assert "could not read an approver group" in gate.logs() and "S0BROKEN" in gate.logs()
    gate.client.post(
        f"/_sandbox/pipelines/broken-group-web/approvals/{run['approvalToken']}",
        {"status": "Approved", "summary": "by hand", "by": "ops@example.com"},
    )
    # U0ALICE is in S0BROKEN (the sandbox seeds policy users into policy groups); her
    # click reaches CodePipeline, which answers "already completed": decided elsewhere.
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])


def test_the_author_cannot_approve_their_own_change(gate):
    run, approval, message = gate.open_approval(
        "web", author="alice@example.com", commit={"id": "9f2c1e7a" * 5, "message": "Add checkout"}
    )
    assert "<@U0ALICE>" in json.dumps(message["blocks"])
    assert "may not approve it themselves" in json.dumps(message["blocks"])

    assert gate.click(message, "U0ALICE", "approve") == 200

    assert "You made this change" in _told(gate, "U0ALICE")
    assert gate.results_for(run["approvalToken"]) == []
    _finish(gate, approval, message, "U0BOB")
    assert gate.results_for(run["approvalToken"])[0]["result"]["status"] == "Approved"


def test_the_author_may_approve_when_the_policy_allows_it(gate):
    run, approval, message = gate.open_approval("self-ok-web", author="alice@example.com")

    assert gate.click(message, "U0ALICE", "approve") == 200

    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])


def test_an_author_found_by_email_in_slack_is_refused_too(gate):
    _, approval, message = gate.open_approval("web", author="bob@example.com")

    assert gate.click(message, "U0BOB", "approve") == 200

    assert "You made this change" in _told(gate, "U0BOB")
    _finish(gate, approval, message, "U0ALICE")


def test_an_unknown_author_is_said_plainly_and_allowed_by_default(gate):
    run, approval, message = gate.open_approval("web")
    assert "author unknown" in json.dumps(message["blocks"])
    assert "unknown_author: allow" in json.dumps(message["blocks"])

    assert gate.click(message, "U0ALICE", "approve") == 200

    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval["approval_id"])


def test_an_unknown_author_blocks_approval_when_the_policy_says_block(gate):
    run, approval, message = gate.open_approval("strict-web")
    assert "unknown_author: block" in json.dumps(message["blocks"])

    assert gate.click(message, "U0ALICE", "approve") == 200
    assert "could not be determined" in _told(gate, "U0ALICE")
    assert gate.results_for(run["approvalToken"]) == []

    assert gate.reject(message, "U0ALICE", "author unknown; rebuild from a tagged commit") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Rejected"
    gate.wait_execution(approval["approval_id"])


def test_quorum_of_two_counts_a_double_click_once_and_shows_a_live_tally(gate):
    run, approval, message = gate.open_approval("quorum-web")

    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.click(message, "U0ALICE", "approve") == 200

    def tallied():
        current = gate.message_at(message["channel"], message["ts"])
        return current if "Approvals: 1 of 2" in json.dumps(current["blocks"]) else None

    wait_for(tallied, what="the live tally")
    assert "does not count" in _told(gate, "U0ALICE")
    assert gate.results_for(run["approvalToken"]) == []
    assert gate.click(message, "U0BOB", "approve") == 200
    result = gate.wait_result(run["approvalToken"])
    assert result["result"]["summary"] == "Approved in Slack by alice (U0ALICE), bob (U0BOB)"
    gate.wait_execution(approval["approval_id"])
    assert len(gate.results_for(run["approvalToken"])) == 1


def test_a_rejection_reason_reaches_slack_the_record_and_codepipeline(gate):
    run, approval, message = gate.open_approval("web")

    assert gate.reject(message, "U0BOB", "Error budget spent for this week.") == 200

    result = gate.wait_result(run["approvalToken"])
    assert result["result"] == {
        "status": "Rejected",
        "summary": "Rejected in Slack by bob (U0BOB): Error budget spent for this week.",
    }
    record = json.loads(gate.wait_execution(approval["approval_id"])["output"])
    assert record["reason"] == "Error budget spent for this week."
    closed = gate.wait_closed(message)
    assert "Error budget spent for this week." in json.dumps(closed["blocks"])


def test_a_huge_hostile_reason_is_cut_and_neutralised(gate):
    run, approval, message = gate.open_approval("web")
    reason = "<!channel> see <https://evil.example/x|this> " + "word " * 1000

    assert gate.reject(message, "U0BOB", reason) == 200

    summary = gate.wait_result(run["approvalToken"])["result"]["summary"]
    assert len(summary) <= 512
    assert "<" not in summary and ">" not in summary and "@channel" not in summary
    assert "https://evil.example" not in summary
    assert summary.endswith("…")
    closed = gate.wait_closed(message)
    assert "<!channel>" not in json.dumps(closed["blocks"])
    gate.wait_execution(approval["approval_id"])


def test_a_reject_without_the_required_reason_is_refused_by_the_modal(gate):
    run, approval, message = gate.open_approval("web")
    assert gate.click(message, "U0BOB", "reject") == 200
    view = gate.opened_view(approval["approval_id"], "U0BOB")

    status, body = gate.submit_view(view, "U0BOB", None)

    assert status == 200
    assert json.loads(body)["response_action"] == "errors"
    assert "reason" in json.loads(body)["errors"]
    assert gate.results_for(run["approvalToken"]) == []
    assert gate.approval_for(run["approvalToken"])["outcome"] is None
    _finish(gate, approval, message, "U0ALICE")


def test_a_non_approver_cannot_submit_a_modal_either(gate):
    run, approval, message = gate.open_approval("web")
    assert gate.click(message, "U0BOB", "reject") == 200
    view = gate.opened_view(approval["approval_id"], "U0BOB")
    payload = view_submission_payload(
        gate.server.sandbox.slack,
        view_id=view["id"],
        user_id="U0BOB",
        values={"reason": {"reason": "let me in"}},
    )
    payload["user"]["id"] = "U0MALLORY"  # a tampered submission, correctly signed

    status, body = gate.post_interaction(payload)

    assert status == 200 and json.loads(body)["response_action"] == "errors"
    assert gate.results_for(run["approvalToken"]) == []
    _finish(gate, approval, message, "U0ALICE")


def test_an_optional_comment_on_approve_reaches_codepipeline(gate):
    run, approval, message = gate.open_approval("comment-web")
    assert gate.click(message, "U0ALICE", "approve") == 200
    view = gate.opened_view(approval["approval_id"], "U0ALICE")

    assert gate.submit_view(view, "U0ALICE", "Canary looks healthy.")[0] == 200

    result = gate.wait_result(run["approvalToken"])
    assert (
        result["result"]["summary"] == "Approved in Slack by alice (U0ALICE): Canary looks healthy."
    )
    gate.wait_execution(approval["approval_id"])
