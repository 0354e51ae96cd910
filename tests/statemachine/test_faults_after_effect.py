"""Faults that take effect (sandbox/faults.py's ``*_after_effect`` kinds), and what the gate
then does: Slack posted the request, or CodePipeline recorded the decision, and the answer
was lost (client timeout, dropped connection). The gate must neither leave a second live
request message in the channel nor misread its own decision as one made elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from sandbox.client import has_buttons, wait_for
from tests.conftest import Gate
from tests.statemachine.test_fault_outcomes import request_posts, wait_injected


@pytest.fixture(autouse=True)
def no_faults_after(gate: Gate) -> Iterator[None]:
    yield
    gate.server.sandbox.faults.reset()


def set_fault(
    gate: Gate, service: str, method: str, kind: str, rate: float, **options: Any
) -> None:
    gate.client.set_fault(service, method, kind, rate, seed="after-effect", **options)


def request_messages(gate: Gate, approval_id: str) -> list[dict[str, Any]]:
    """Every top-level message the gate posted for this approval (its blocks carry the id),
    with or without buttons."""
    return [
        m
        for m in gate.client.messages()
        if not m["thread_ts"] and not m["ephemeral_user"] and approval_id[:12] in str(m["blocks"])
    ]


@pytest.mark.parametrize(
    ("kind", "options"), [("timeout_after_effect", {"delay": 3.5}), ("reset_after_effect", {})]
)
def test_a_request_posted_but_unanswered_leaves_one_live_message_the_one_closed(
    gate: Gate, kind: str, options: dict[str, Any]
) -> None:
    set_fault(gate, "slack", "chat.postMessage", kind, 1, **options)
    run = gate.start_run()
    approval = gate.approval_for(run["approvalToken"])
    approval_id = approval["approval_id"]
    wait_for(
        lambda: [c for c in request_posts(gate, approval_id) if c.get("fault") == kind] or None,
        timeout=15,
        what=f"a {kind} fault on the request's post",
    )
    set_fault(gate, "slack", "chat.postMessage", kind, 0)

    message = gate.request_message(approval_id, timeout=30)
    assert gate.click(message, "U0ALICE", "approve") == 200
    assert gate.wait_result(run["approvalToken"])["result"]["status"] == "Approved"
    gate.wait_execution(approval_id, timeout=30)

    closed = gate.wait_closed(message)
    posted = request_messages(gate, approval_id)
    assert [m["ts"] for m in posted] == [message["ts"]], "a second request message was posted"
    assert not any(has_buttons(m) for m in gate.client.messages() if m in posted)
    assert "Approved" in str(closed["blocks"])


@pytest.mark.parametrize("kind", ["timeout_after_effect", "reset_after_effect"])
def test_a_decision_recorded_but_unanswered_is_the_gates_own_not_decided_elsewhere(
    gate: Gate, kind: str
) -> None:
    run, approval, message = gate.open_approval()
    set_fault(
        gate,
        "codepipeline",
        "PutApprovalResult",
        kind,
        1,
        **({"delay": 0.2} if kind.startswith("timeout") else {}),
    )

    assert gate.click(message, "U0ALICE", "approve") == 200
    wait_injected(gate, "codepipeline", "PutApprovalResult", kind)
    gate.wait_execution(approval["approval_id"], timeout=60)

    assert [r["result"]["status"] for r in gate.results_for(run["approvalToken"])] == ["Approved"]
    record = gate.approval_for(run["approvalToken"])
    assert record["outcome"] == "approved"
    assert record["decided_by"] == ["U0ALICE"]
    closed = gate.wait_closed(message)
    assert "decided in codepipeline" not in str(closed["blocks"]).lower()
