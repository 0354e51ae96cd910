"""A team that reads Vietnamese (issue 25): a sandbox run with `language: vi` (the request,
a reminder, the escalation, a refusal, a reject with its reason, the status feed, the
summary CodePipeline hears) shows no English text of the message catalog. The same run on an
English rule is the control: the oracle (tests/english.py) finds the catalog's English there.
"""

from __future__ import annotations

from pathlib import Path

from sandbox.client import wait_for
from sandbox.fake_codepipeline import AFTER_ACTIONS, SOURCE_ACTIONS
from tests.english import english_in, shown_texts

SANDBOX_POLICY = Path(__file__).parents[1] / "policies" / "vietnamese.yaml"
#: The methods whose arguments people read.
SHOWN = {
    "chat.postMessage",
    "chat.update",
    "chat.postEphemeral",
    "views.open",
    "views.update",
    "views.push",
}
REASON = "cấu hình sai ở môi trường staging"


def _run_every_kind_of_message(gate, pipeline: str) -> tuple[list[str], list[str]]:
    """Request, reminder, escalation, a refusal, a reject with its reason, the feed; the
    texts Slack was sent about this run and the summary CodePipeline heard, and the data the
    run was given (names, people, the reason)."""
    before = len(gate.client.calls())
    run, approval, message = gate.open_approval(pipeline)
    wait_for(
        lambda: [m for m in gate.client.messages() if m["channel"] == "C0ONCALL"] or None,
        timeout=15,
        what="the escalation post",
    )
    assert gate.click(message, "U0MALLORY", "approve") == 200  # not an approver: refused
    wait_for(lambda: gate.ephemerals("U0MALLORY") or None, timeout=10, what="the refusal")
    assert gate.reject(message, "U0BOB", REASON) == 200
    result = gate.wait_result(run["approvalToken"], timeout=15)
    assert result["result"]["status"] == "Rejected"
    gate.wait_closed(message)
    gate.wait_execution(approval["approval_id"])
    calls = [c for c in gate.client.calls()[before:] if c["method"] in SHOWN]
    texts = [text for call in calls for text in shown_texts(call["args"])]
    texts.append(result["result"]["summary"])
    names = [name for action in (*SOURCE_ACTIONS, *AFTER_ACTIONS) for name in action]
    data = [pipeline, approval["stage"], approval["action"], *names, REASON]
    return texts, data


def test_a_vietnamese_run_shows_no_english_text_of_the_catalog(gate):
    texts, data = _run_every_kind_of_message(gate, "web-app")

    assert english_in(texts, data) == []
    shown = "\n".join(texts)
    for words in ("Phê duyệt", "Từ chối", "người phê duyệt", "nhắc", "chuyển cấp", "lý do"):
        assert words.lower() in shown.lower(), words


def test_the_same_run_in_english_is_found_english_by_the_oracle(gate):
    texts, data = _run_every_kind_of_message(gate, "english-web")

    found = {fragment for fragment, _ in english_in(texts, data)}
    assert {"Reject", "Decide by", "Execution"} <= found, sorted(found)
