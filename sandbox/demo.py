"""`approval-gate demo`: one pipeline run to its approval and back, on the sandbox.

Everything goes over HTTP as it would for real: CodePipeline's notification starts the
workflow, the request appears in the fake Slack, an approver's click is signed exactly as
Slack signs it, and the demo exits 0 only when CodePipeline recorded the expected result.

With ``language="vi"`` the demo's policy speaks Vietnamese (``defaults.language``, DESIGN
§8.5): what it shows from Slack and CodePipeline's summary are then Vietnamese, while its
own narration stays English. It finds the status feed's message by the run's execution id
and the state's emoji, not by its words, so that it works in either language.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sandbox.client import SandboxClient, has_buttons, request_message, wait_for
from sandbox.fake_slack import view_submission_payload
from sandbox.server import SandboxServer, send_interaction

DEMO_POLICY = Path(__file__).with_name("demo_policy.yaml")
PIPELINE = "demo-web-app"
APPROVER = "U0ALICE"
#: What the demo's people type (the pipeline's approval text, the approver's reason or
#: comment), in the demo's language: data, not the gate's texts, so not in its catalog.
TYPED = {
    "en": {
        "custom_data": "Release 2.4.0: new checkout flow. Check the canary dashboard first.",
        "reject": "Checkout errors on the canary",
        "approve": "Looks good",
    },
    "vi": {
        "custom_data": "Bản phát hành 2.4.0: luồng thanh toán mới. Xem dashboard canary trước.",
        "reject": "Canary báo lỗi ở bước thanh toán",
        "approve": "Ổn rồi",
    },
}
#: The status feed's emoji of a run still going, and of a run that ended (feed/render.py).
RUNNING = ("▶️", "⏳")
ENDED = ("✅", "❌")


def run_demo(
    decision: str = "approve",
    out: Callable[[str], None] = print,
    port: int = 0,
    language: str = "en",
) -> int:
    expected = {"approve": "Approved", "reject": "Rejected"}[decision]
    typed = TYPED[language]
    started = time.monotonic()

    def say(text: str) -> None:
        out(f"[{time.monotonic() - started:6.2f}s] {text}")

    with SandboxServer(policy_file=DEMO_POLICY, port=port, language=language) as server:
        client = SandboxClient(server.url)
        say(f"sandbox ready on {server.url}")
        run = client.start_run(
            PIPELINE,
            customData=typed["custom_data"],
            externalEntityLink="https://example.com/releases/2.4.0",
            author="carol@example.com",
            commit={"id": "9f2c1e7a", "message": "Add the new checkout flow"},
        )
        token = run["approvalToken"]
        execution = run["pipelineExecutionId"]
        say(
            f"pipeline {PIPELINE} run {run['pipelineExecutionId'][:8]} waits at its manual "
            "approval; CodePipeline notified SNS"
        )
        first = wait_for(
            lambda: _status_message(client, execution, RUNNING + ENDED),
            what="the pipeline status message",
        )
        say(f'status feed in #{first["channel"]}: "{first["text"]}"')
        approval = wait_for(
            lambda: next((a for a in client.approvals() if a["pipeline"] == PIPELINE), None),
            what="the approval to be recorded",
        )
        approval_id = approval["approval_id"]
        message = wait_for(lambda: _open_request(client, approval_id), what="the request in Slack")
        say(
            f"Slack request posted in #{message['channel']} (ts {message['ts']}) "
            "with Approve / Reject"
        )

        workspace = server.sandbox.slack
        payload = server.click_payload(message, APPROVER, decision)
        status, _ = send_interaction(server.url, payload, server.sandbox.signing_secret)
        say(f"{APPROVER} clicked {decision.title()}; signed request answered HTTP {status}")
        view = _modal_for(server, approval_id)
        if view is not None:  # the policy asks a reason (or a comment): answer it
            reason = typed[decision]
            answer = view_submission_payload(
                workspace,
                view_id=view["id"],
                user_id=APPROVER,
                values={"reason": {"reason": reason}},
            )
            status, _ = send_interaction(server.url, answer, server.sandbox.signing_secret)
            say(f'{APPROVER} gave the reason "{reason}" in the modal; HTTP {status}')

        result = wait_for(
            lambda: next((r for r in client.approval_results() if r["token"] == token), None),
            what="CodePipeline to hear the decision",
        )
        say(
            f"CodePipeline PutApprovalResult recorded: {result['result']['status']} — "
            f'"{result["result"]["summary"]}"'
        )
        closed = wait_for(lambda: _closed(client, message), what="the Slack message to close")
        say(f'Slack message closed in place: "{closed["text"]}" (buttons gone)')
        record = wait_for(
            lambda: next(
                (a for a in client.approvals() if a["approval_id"] == approval_id and a["outcome"]),
                None,
            ),
            what="the decision record",
        )
        say(
            f"decision record: outcome={record['outcome']} decided_by={record['decided_by']} "
            f"decided_at={record['decided_at']}"
        )
        feed = wait_for(
            lambda: _status_message(client, execution, ENDED),
            what="the pipeline status message",
        )
        thread = [m for m in client.messages() if m["thread_ts"] == feed["ts"]]
        say(
            f'status feed in #{feed["channel"]}: "{feed["text"]}" '
            f"({len(thread)} thread messages: each stage and its actions)"
        )
        server.sandbox.wait_for_executions(timeout=10)
        ok = result["result"]["status"] == expected and result["source"] == "gate"
        out(
            f"CodePipeline recorded {result['result']['status']} by {APPROVER} "
            f"(expected {expected}): {'OK' if ok else 'MISMATCH'}"
        )
        return 0 if ok else 1


def _status_message(
    client: SandboxClient, execution_id: str, symbols: tuple[str, ...]
) -> dict[str, Any] | None:
    """The status feed's message for the run, once its text shows one of `symbols`: the
    run's state, whatever the message's language. Its blocks link to the execution, as the
    request's do; the request's also carry its approval id (read after the messages: an
    approval is recorded before its request is posted)."""
    messages = client.messages()
    approval_ids = [a["approval_id"] for a in client.approvals()]
    for message in messages:
        if message["thread_ts"] is not None or message.get("ephemeral_user"):
            continue
        blocks = json.dumps(message.get("blocks") or [])
        about = f"/executions/{execution_id}/" in blocks
        request = any(approval_id in blocks for approval_id in approval_ids)
        text = message["text"] or ""
        if about and not request and any(symbol in text for symbol in symbols):
            return message
    return None


def _modal_for(server: SandboxServer, approval_id: str) -> dict[str, Any] | None:
    """The modal the gate opened for this approval, if it opened one (views.open is
    synchronous, so it exists by the time the click was answered)."""
    views = [
        v for v in server.sandbox.slack.views() if v["view"].get("private_metadata") == approval_id
    ]
    return views[-1] if views else None


def _open_request(client: SandboxClient, approval_id: str) -> dict[str, Any] | None:
    message = request_message(client.messages(), approval_id)
    return message if message and has_buttons(message) else None


def _closed(client: SandboxClient, request: dict[str, Any]) -> dict[str, Any] | None:
    """The request message, once updated in place without its buttons."""
    for message in client.messages():
        if (message["channel"], message["ts"]) == (request["channel"], request["ts"]):
            return None if has_buttons(message) else message
    return None
