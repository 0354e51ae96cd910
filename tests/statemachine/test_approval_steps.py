"""Approval steps (issue 19, DESIGN §8.1): "QA, then two of Release", over HTTP with
signed clicks as Slack sends them. Who may approve in which step, what each person is
told, what CodePipeline hears, and what the decision record and the execution keep."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

from reliability.observed import result_attempts
from sandbox.client import has_buttons, wait_for

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "steps.yaml"
PAGE = Path(__file__).parents[2] / "sandbox" / "page.html"
SLACK_FIXTURE = {
    "users": [
        {"id": "U0MALLORY", "name": "mallory", "email": "mallory@example.com"},
    ],
    "groups": [],
}


def _told(gate, user: str, count: int = 1) -> str:
    """The newest of `count` ephemeral answers to `user` (waits for them)."""
    answers = wait_for(
        lambda: (found := gate.ephemerals(user)) and len(found) >= count and found,
        what=f"{count} answer(s) to {user}",
    )
    return str(answers[-1]["text"])


def _steps(gate, token: str) -> list[dict[str, Any]]:
    """The decision record's `steps` as GET /_sandbox/approvals shows them now."""
    return list(gate.approval_for(token)["steps"])


def _approved_by(gate, token: str) -> dict[str, list[str]]:
    return {step["name"]: step["approved_by"] for step in _steps(gate, token)}


def _approve(gate, message, user: str) -> None:
    assert gate.click(message, user, "approve") == 200


def _attempts(gate, token: str) -> list[dict[str, Any]]:
    run = gate.server.sandbox.codepipeline.run_by_token(token)
    return result_attempts(gate.client.codepipeline_calls(), run.pipeline, run.stage)


def _finished(gate, approval) -> dict[str, Any]:
    """The execution's output: the decision record the workflow ends with."""
    return json.loads(gate.wait_execution(approval["approval_id"])["output"])


def _blocks_text(gate, message) -> str:
    return json.dumps(gate.message_at(message["channel"], message["ts"])["blocks"])


def test_sequence_refuses_an_early_release_click_then_qa_then_two_of_release_approve(gate):
    run, approval, message = gate.open_approval("seq-web")
    token = run["approvalToken"]
    assert _steps(gate, token) == [
        {"name": "QA", "required": 1, "approved_by": [], "completed_at": None},
        {"name": "Release", "required": 2, "approved_by": [], "completed_at": None},
    ]

    _approve(gate, message, "U0ALICE")  # Release's approver, before QA has approved

    told = _told(gate, "U0ALICE")
    assert "It is the *QA* step's turn" in told
    assert "<@U0DAN>" in told and "<@U0ERIN>" in told
    assert "Nothing was recorded" in told
    assert _approved_by(gate, token) == {"QA": [], "Release": []}
    assert gate.approval_for(token)["outcome"] is None
    assert has_buttons(gate.message_at(message["channel"], message["ts"]))

    _approve(gate, message, "U0DAN")
    assert "QA ✅ <@U0DAN> · Release 0 of 2" in _told(gate, "U0DAN")
    _approve(gate, message, "U0ALICE")  # her turn now: the same click counts
    assert "Release 1 of 2 (<@U0ALICE>)" in _told(gate, "U0ALICE", 2)
    assert gate.results_for(token) == []
    _approve(gate, message, "U0BOB")

    result = gate.wait_result(token)["result"]
    assert result["status"] == "Approved"
    output = _finished(gate, approval)
    record = gate.approval_for(token)
    assert [(s["name"], s["approved_by"]) for s in record["steps"]] == [
        ("QA", ["U0DAN"]),
        ("Release", ["U0ALICE", "U0BOB"]),
    ]
    assert record["decided_by"] == ["U0DAN", "U0ALICE", "U0BOB"]
    # The execution's output shows when each step completed: QA before Release, Release
    # at the decision.
    assert output["steps"] == record["steps"]
    qa, release = output["steps"]
    assert qa["completed_at"] and release["completed_at"]
    assert qa["completed_at"] <= release["completed_at"] == output["decided_at"]
    assert len(_attempts(gate, token)) == 1


def test_the_summary_names_each_step_and_who_approved_it(gate):
    run, approval, message = gate.open_approval("summary-web")
    for user in ("U0ERIN", "U0CAROL", "U0BOB"):
        _approve(gate, message, user)

    summary = gate.wait_result(run["approvalToken"])["result"]["summary"]
    _finished(gate, approval)

    assert len(summary) <= 512
    assert re.fullmatch(
        r"Approved in Slack: QA by [^;]*erin[^;]*; Release by .*carol.*bob.*", summary
    ), summary


def test_any_order_completes_release_first_then_qa(gate):
    run, approval, message = gate.open_approval("any-web")
    token = run["approvalToken"]

    _approve(gate, message, "U0ALICE")
    _approve(gate, message, "U0BOB")
    wait_for(
        lambda: _approved_by(gate, token)["Release"] == ["U0ALICE", "U0BOB"],
        what="Release to complete",
    )
    assert "Release ✅" in _told(gate, "U0BOB")
    assert gate.results_for(token) == []
    _approve(gate, message, "U0DAN")

    assert gate.wait_result(token)["result"]["status"] == "Approved"
    output = _finished(gate, approval)
    qa, release = output["steps"]
    assert (qa["approved_by"], release["approved_by"]) == (["U0DAN"], ["U0ALICE", "U0BOB"])
    assert release["completed_at"] < qa["completed_at"] == output["decided_at"]
    assert gate.ephemerals("U0ALICE") and "turn" not in _told(gate, "U0ALICE")
    assert len(_attempts(gate, token)) == 1


def test_one_person_listed_in_both_steps_counts_once(gate):
    run, approval, message = gate.open_approval("both-web")
    token = run["approvalToken"]

    _approve(gate, message, "U0ALICE")  # listed in QA and Release: counts in QA
    _approve(gate, message, "U0ALICE")

    assert "already voted" in _told(gate, "U0ALICE", 2)
    assert _approved_by(gate, token) == {"QA": ["U0ALICE"], "Release": []}
    assert gate.approval_for(token)["outcome"] is None
    assert gate.results_for(token) == []
    _approve(gate, message, "U0BOB")

    assert gate.wait_result(token)["result"]["status"] == "Approved"
    output = _finished(gate, approval)
    assert [s["approved_by"] for s in output["steps"]] == [["U0ALICE"], ["U0BOB"]]
    assert output["decided_by"] == ["U0ALICE", "U0BOB"]


def test_a_later_steps_approver_rejects_while_qa_is_open(gate):
    run, approval, message = gate.open_approval("reject-web")
    token = run["approvalToken"]

    assert gate.reject(message, "U0CAROL", "Release notes are missing.") == 200

    result = gate.wait_result(token)["result"]
    assert result == {
        "status": "Rejected",
        "summary": "Rejected in Slack by carol (U0CAROL): Release notes are missing.",
    }
    output = _finished(gate, approval)
    assert output["outcome"] == "rejected" and output["decided_by"] == ["U0CAROL"]
    assert [s["approved_by"] for s in output["steps"]] == [[], []]
    assert [s["completed_at"] for s in output["steps"]] == [None, None]
    gate.wait_closed(message)
    assert len(_attempts(gate, token)) == 1


def test_an_escalation_approver_approves_for_the_step_whose_turn_it_is(gate):
    run, approval, message = gate.open_approval("escalate-web")
    token = run["approvalToken"]
    wait_for(
        lambda: any(m["channel"] == "C0ONCALL" for m in gate.client.messages()),
        what="the escalation in #C0ONCALL",
    )
    wait_for(lambda: gate.approval_for(token)["escalated"], what="the record to say escalated")

    _approve(gate, message, "U0OSCAR")  # listed in no step: approves for QA, the open one
    wait_for(lambda: _approved_by(gate, token)["QA"] == ["U0OSCAR"], what="QA by U0OSCAR")
    _approve(gate, message, "U0OSCAR")
    assert "already voted" in _told(gate, "U0OSCAR", 2)
    _approve(gate, message, "U0DAN")  # QA's own approver, QA already complete
    told = _told(gate, "U0DAN")
    assert "The steps you approve in are complete" in told and "*Release*" in told
    assert "Nothing was recorded" in told
    assert _approved_by(gate, token) == {"QA": ["U0OSCAR"], "Release": []}
    _approve(gate, message, "U0ALICE")

    assert gate.wait_result(token)["result"]["status"] == "Approved"
    output = _finished(gate, approval)
    assert [s["approved_by"] for s in output["steps"]] == [["U0OSCAR"], ["U0ALICE"]]
    assert output["escalated"] is True
    assert len(_attempts(gate, token)) == 1


def test_an_escalation_during_release_lets_the_escalation_approver_complete_it(gate):
    run, approval, message = gate.open_approval("escalate-late-web")
    token = run["approvalToken"]
    _approve(gate, message, "U0DAN")
    wait_for(lambda: gate.approval_for(token)["escalated"], what="the record to say escalated")

    _approve(gate, message, "U0OSCAR")  # Release's turn: his approval counts there

    assert gate.wait_result(token)["result"]["status"] == "Approved"
    output = _finished(gate, approval)
    assert [s["approved_by"] for s in output["steps"]] == [["U0DAN"], ["U0OSCAR"]]
    assert len(_attempts(gate, token)) == 1


def test_four_eyes_holds_in_a_step(gate):
    run, approval, message = gate.open_approval("four-eyes-web", author="alice@example.com")
    token = run["approvalToken"]
    _approve(gate, message, "U0DAN")

    _approve(gate, message, "U0ALICE")  # Release's approver, but the change's author

    assert "You made this change" in _told(gate, "U0ALICE")
    assert _approved_by(gate, token) == {"QA": ["U0DAN"], "Release": []}
    _approve(gate, message, "U0BOB")
    assert gate.results_for(token) == []
    _approve(gate, message, "U0CAROL")
    assert gate.wait_result(token)["result"]["status"] == "Approved"
    output = _finished(gate, approval)
    assert [s["approved_by"] for s in output["steps"]] == [["U0DAN"], ["U0BOB", "U0CAROL"]]


def test_the_request_and_the_page_show_each_steps_progress(gate):
    run, approval, message = gate.open_approval("page-web")
    # The sandbox page clicks through /_sandbox/slack/click and renders the messages'
    # section and context blocks (sandbox/page.html's renderBlocks).
    where = {"channel": message["channel"], "ts": message["ts"], "action_id": "approve"}
    assert gate.client.post("/_sandbox/slack/click", {**where, "user": "U0DAN"})["status"] == 200
    assert gate.client.post("/_sandbox/slack/click", {**where, "user": "U0ALICE"})["status"] == 200

    def shown() -> dict[str, Any] | None:
        current = gate.message_at(message["channel"], message["ts"])
        rendered = [
            block
            for block in current["blocks"]
            if block["type"] in ("section", "context")
            and "QA ✅ <@U0DAN> · Release 1 of 2 (<@U0ALICE>)"
            in json.dumps(block, ensure_ascii=False)
        ]
        return current if rendered else None

    current = wait_for(shown, what="the request to show each step's progress")
    assert has_buttons(current)
    rendered = _page_renders(current)
    if rendered is not None:  # node is there to run the page's own rendering
        assert "QA ✅ @U0DAN · Release 1 of 2 (@U0ALICE)" in rendered
    _approve(gate, message, "U0BOB")
    gate.wait_result(run["approvalToken"])
    _finished(gate, approval)


def _page_renders(message: dict[str, Any]) -> str | None:
    """The HTML sandbox/page.html's renderBlocks makes of a message, run by node; None
    without node."""
    node = shutil.which("node")
    if node is None:
        return None
    page = PAGE.read_text()
    script = page[page.index("function esc(") : page.index("function renderMessage(")]
    program = f"{script}\nprocess.stdout.write(renderBlocks({json.dumps(message)}));"
    done = subprocess.run([node, "-e", program], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    return done.stdout
