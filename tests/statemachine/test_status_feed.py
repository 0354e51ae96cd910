"""The pipeline status feed and approvals settled outside Slack, end to end in the
sandbox: the fake pipeline emits CodePipeline's EventBridge events as a real one does."""

from __future__ import annotations

import json
import time

from sandbox.client import has_buttons, wait_for


def _feed(gate, pipeline: str, approval_id: str | None = None) -> list[dict]:
    """Top-level messages about this pipeline that are not its approval request."""
    return [
        m
        for m in gate.client.messages()
        if m["thread_ts"] is None
        and m["ephemeral_user"] is None
        and pipeline in (m["text"] or "")
        and not (approval_id and approval_id in json.dumps(m["blocks"]))
        and not (m["text"] or "").startswith(
            ("Approval needed", "Approved:", "Rejected:", "Decided")
        )
    ]


def _thread(gate, message: dict) -> list[str]:
    return [m["text"] for m in gate.client.messages() if m["thread_ts"] == message["ts"]]


def test_a_successful_run_is_one_message_updated_to_succeeded_with_its_thread(gate):
    _, approval, message = gate.open_approval(
        "feed-ok", author="carol@example.com", commit={"id": "b" * 40, "message": "Fix checkout"}
    )
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])

    def finished():
        feed = _feed(gate, "feed-ok", approval["approval_id"])
        return feed if feed and "succeeded" in feed[0]["text"] else None

    (status,) = wait_for(finished, what="the status message to say succeeded")
    lines = _thread(gate, status)
    for stage in ("Source", "Build", "Approval", "Deploy"):
        assert any(f"Stage {stage} succeeded" in line for line in lines), stage
    assert "bbbbbbb" in json.dumps(status["blocks"])  # the short commit id


#: The status feed's Slack writes per run with the default `announce`, at most: two per
#: stage (the message moved on at its start, its thread message at its end) and two per
#: run (the message posted, and updated at the end).
WRITES_PER_STAGE, WRITES_PER_RUN = 2, 2
#: An approval decided with one click: its request posted, then closed in place.
WRITES_PER_APPROVAL = 2


def slack_writes(gate, message: dict) -> list[dict]:
    """The chat.postMessage and chat.update calls that made `message` or its thread, as
    the fake Slack answered them."""
    ts = message["ts"]
    return [
        call
        for call in gate.client.calls()
        if call["method"] in ("chat.postMessage", "chat.update")
        and ts
        in (
            (call.get("response") or {}).get("ts"),
            call["args"].get("ts"),
            call["args"].get("thread_ts"),
        )
    ]


def test_a_four_stage_run_with_an_approval_costs_two_writes_per_stage_and_two_per_run(gate):
    _, approval, message = gate.open_approval("feed-writes", author="carol@example.com")
    assert gate.click(message, "U0ALICE", "approve") == 200
    gate.wait_execution(approval["approval_id"])

    def finished():
        feed = _feed(gate, "feed-writes", approval["approval_id"])
        return feed if feed and "succeeded" in feed[0]["text"] else None

    (status,) = wait_for(finished, what="the status message to say succeeded")
    assert gate.server.sandbox.wait_for_events(timeout=10)

    writes = slack_writes(gate, status)
    assert len(writes) <= 4 * WRITES_PER_STAGE + WRITES_PER_RUN, [
        (w["method"], w["args"].get("text")) for w in writes
    ]
    assert all(w["status"] == 200 and w["response"]["ok"] for w in writes)
    assert len(slack_writes(gate, message)) == WRITES_PER_APPROVAL
    # Fewer writes, the same news: each stage's and action's end told once, in order.
    told = [line for text in _thread(gate, status) for line in text.split("\n")]
    assert told == [
        "✅ Stage Source succeeded",
        "✅ Action Source/Source succeeded",
        "✅ Stage Build succeeded",
        "✅ Action Build/Build succeeded",
        "✅ Stage Approval succeeded",
        "✅ Action Approval/Approve approved",
        "✅ Stage Deploy succeeded",
        "✅ Action Deploy/Deploy succeeded",
    ]
    assert gate.message_at(status["channel"], status["ts"])["text"].startswith(
        "✅ feed-writes succeeded"
    )


def test_a_failed_action_explains_itself_in_the_thread_and_asks_nobody(gate):
    run = gate.start_run("feed-broken", author="carol@example.com", fail_at="Build")

    assert run["approvalToken"] is None

    def failed():
        feed = _feed(gate, "feed-broken")
        return feed if feed and "failed" in feed[0]["text"] else None

    (status,) = wait_for(failed, what="the status message to say failed")
    lines = "\n".join(_thread(gate, status))
    assert "Build failed: exit status 2 in phase BUILD" in lines
    assert "log-group/feed-broken-build" in lines
    assert not any(
        m["text"].startswith("Approval needed: feed-broken") for m in gate.client.messages()
    )


def _closed_by(gate, message, approval, words: str) -> dict:
    started = time.monotonic()
    closed = gate.wait_closed(message, timeout=10)
    execution = gate.wait_execution(approval["approval_id"], timeout=10)
    assert time.monotonic() - started < 10
    assert words in json.dumps(closed["blocks"])
    assert execution["status"] == "SUCCEEDED"
    record = json.loads(execution["output"])
    assert record["outcome"] == "decided_elsewhere"
    assert record["decided_by"] == []
    return record


def test_a_console_approval_closes_the_open_request_without_a_report_from_the_gate(gate):
    run, approval, message = gate.open_approval("feed-console")

    gate.client.post(
        f"/_sandbox/pipelines/feed-console/approvals/{run['approvalToken']}",
        {"status": "Approved", "summary": "looked fine", "by": "ops@example.com"},
    )

    _closed_by(gate, message, approval, "Approved in the CodePipeline console")
    assert [r["source"] for r in gate.results_for(run["approvalToken"])] == ["console"]


def test_a_superseded_run_closes_its_open_request(gate):
    run, approval, message = gate.open_approval("feed-superseded")

    gate.client.post(
        f"/_sandbox/pipelines/feed-superseded/executions/{run['pipelineExecutionId']}/supersede"
    )

    _closed_by(gate, message, approval, "Superseded by a newer run")
    assert gate.results_for(run["approvalToken"]) == []


def test_a_stopped_run_closes_its_open_request_and_clicks_then_change_nothing(gate):
    run, approval, message = gate.open_approval("feed-stopped")

    gate.client.post(
        f"/_sandbox/pipelines/feed-stopped/executions/{run['pipelineExecutionId']}/stop"
    )

    _closed_by(gate, message, approval, "The pipeline run was stopped")
    assert not has_buttons(gate.message_at(message["channel"], message["ts"]))
    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.results_for(run["approvalToken"]) == []
