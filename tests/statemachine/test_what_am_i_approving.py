"""What am I approving (issue 22 points 1, 2, 7; DESIGN §8.4, §8.6), over HTTP: the request
lists every source revision of the run and links the changes since the revision last
approved through the same stage and action, with CodeCommit's commit count; a first run
says first deployment; a failing ListActionExecutions leaves the request posted on time
with "unknown"; the decision record keeps the revisions."""

from __future__ import annotations

import json
import time
from typing import Any

from sandbox.client import wait_for

C1, C2, C3 = ("1a" * 20), ("2b" * 20), ("3c" * 20)
REGION = "us-east-1"


def changes(gate, message: dict[str, Any]) -> str:
    """The text of the request's Changes section, as Slack shows it now."""
    current = gate.message_at(message["channel"], message["ts"])
    for block in current["blocks"]:
        text = (block.get("text") or {}).get("text", "")
        if block["type"] == "section" and text.startswith("*Changes*"):
            return str(text)
    raise AssertionError(f"no Changes section in {json.dumps(current['blocks'])}")


def codecommit(repository: str, commit: str, message: str) -> list[dict[str, Any]]:
    return [
        {
            "provider": "CodeCommit",
            "repository": repository,
            "commit": commit,
            "message": message,
            "author": "Dana Dev",
        }
    ]


def approve(gate, run: dict[str, Any], message: dict[str, Any]) -> None:
    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_closed(message)


def compare(repository: str, old: str, new: str) -> str:
    return (
        f"https://{REGION}.console.aws.amazon.com/codesuite/codecommit/repositories/"
        f"{repository}/compare/{old}/.../{new}?region={REGION}"
    )


def test_each_run_links_the_changes_since_the_last_approved_one(gate):
    repo = "wai-shop"
    run1, approval1, message1 = gate.open_approval(
        "wai-chain", sources=codecommit(repo, C1, "Add the cart")
    )
    first = changes(gate, message1)
    assert f"CodeCommit {repo} <" in first and f"|{C1[:7]}> Add the cart — Dana Dev" in first
    assert "First deployment through this gate" in first
    approve(gate, run1, message1)
    closed = changes(gate, message1)  # the closed message keeps what was approved
    assert "Add the cart" in closed

    _, _, message2 = gate.open_approval(
        "wai-chain", sources=codecommit(repo, C2, "Fix the cart total")
    )
    assert f"Since the last deployment: <{compare(repo, C1, C2)}|1 commit>" in changes(
        gate, message2
    )
    assert gate.reject(message2, "U0BOB", "Not this week.") == 200
    gate.wait_closed(message2)

    # The rejected run deployed nothing: the third compares with the first, two commits on.
    run3, approval3, message3 = gate.open_approval(
        "wai-chain", sources=codecommit(repo, C3, "Show the cart badge")
    )
    assert f"Since the last deployment: <{compare(repo, C1, C3)}|2 commits>" in changes(
        gate, message3
    )
    approve(gate, run3, message3)
    record = json.loads(gate.wait_execution(approval3["approval_id"])["output"])
    url = (
        f"https://{REGION}.console.aws.amazon.com/codesuite/codecommit/repositories/{repo}"
        f"/commit/{C3}?region={REGION}"
    )
    assert record["revisions"] == [
        {
            "action": "Source",
            "provider": "CodeCommit",
            "repository": repo,
            "revision_id": C3,
            "summary": "Show the cart badge",
            "url": url,
        }
    ]
    assert [r["revision_id"] for r in record["previous_revisions"]] == [C1]
    assert record["compare_url"] == compare(repo, C1, C3)
    first_record = json.loads(gate.wait_execution(approval1["approval_id"])["output"])
    assert (first_record["previous_revisions"], first_record["compare_url"]) == (None, None)


def test_two_sources_are_both_shown_and_the_main_one_compared(gate):
    sources = [
        {
            "provider": "GitHub",
            "repository": "example-org/web",
            "message": "Fix the login redirect",
        },
        {
            "action": "Config",
            "provider": "S3",
            "repository": "web-config/prod.zip",
            "message": "prod settings 42",
        },
    ]
    run1, _, message1 = gate.open_approval("wai-two", sources=sources)
    text = changes(gate, message1)
    assert "GitHub example-org/web <" in text and "> Fix the login redirect" in text
    assert "S3 web-config/prod.zip <" in text and "> prod settings 42" in text
    assert "FullRepositoryId=example-org/web&amp;Commit=" in text  # escaped for mrkdwn
    assert "First deployment through this gate" in text
    approve(gate, run1, message1)
    old = json.loads(gate.wait_execution(button_of(message1))["output"])["revisions"][0]

    sources[0]["message"] = "Keep the return path"
    run2, _, message2 = gate.open_approval("wai-two", sources=sources)
    new = gate.approval_for(run2["approvalToken"])["revisions"][0]
    link = f"https://github.com/example-org/web/compare/{old['revision_id']}...{new['revision_id']}"
    assert f"Since the last deployment: <{link}|compare with {old['revision_id'][:7]}>" in (
        changes(gate, message2)
    )
    assert gate.reject(message2, "U0BOB", "Later.") == 200
    gate.wait_closed(message2)


def button_of(message: dict[str, Any]) -> str:
    for block in message["blocks"]:
        if block["type"] == "actions":
            return str(block["elements"][0]["value"])
    raise AssertionError("no buttons")


def test_a_failing_list_action_executions_leaves_the_request_on_time_and_unknown(gate):
    gate.client.set_fault("codepipeline", "ListActionExecutions", "throttled", 1, seed="wai")
    try:
        started = time.monotonic()
        run = gate.start_run("wai-faulty", sources=codecommit("wai-faulty-repo", C1, "One"))
        approval = gate.approval_for(run["approvalToken"])
        message = gate.request_message(approval["approval_id"])
        took = time.monotonic() - started
        text = changes(gate, message)
        assert "Changes since the last deployment: unknown" in text
        assert f"|{C1[:7]}> One" in text  # the run's own revision is still shown
        assert took < 3.0, f"the request took {took:.1f}s"
        assert wait_for(
            lambda: "changes since the last deployment: unknown" in gate.logs() or None,
            what="the reason in the logs",
        )
    finally:
        gate.server.sandbox.faults.reset()
    assert gate.reject(message, "U0BOB", "Cleaning up.") == 200
    gate.wait_closed(message)


def test_sources_the_fake_could_not_have_produced_are_refused(gate):
    path = "/_sandbox/pipelines/wai-invalid/runs"
    cases = [
        ({"sources": [{"provider": "SVN", "repository": "r"}]}, "sources[0].provider"),
        ({"sources": [{"provider": "GitHub"}]}, "sources[0].repository is required"),
        ({"sources": [{"provider": "GitHub", "repository": "o/r", "commit": "HEAD"}]}, "hex"),
        ({"sources": "GitHub"}, "sources must be a non-empty list"),
        (
            {"sources": [{"provider": "S3", "repository": "b/k", "author": 7}]},
            "sources[0].author must be a string",
        ),
        (
            {"author": "a@example.com", "sources": [{"provider": "S3", "repository": "b/k"}]},
            "not beside them",
        ),
    ]
    for body, error in cases:
        status, answer = gate.client.request("POST", path, body)
        assert status == 400, (body, answer)
        assert error in answer["error"], (body, answer)
