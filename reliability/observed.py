"""Independent oracles for the soak, the races and the workflow tests (issue 18): each
figure that must be 0 is judged from what the harness did (its clicks, and how the gate
answered them) and what an observer outside the gate saw (the fake CodePipeline's and the
fake Slack's call logs and messages), never from the gate's own decision records.

- `expected_result`: the result CodePipeline should have received, from the harness's
  counted clicks, the policy's quorum and the deadline; `judge_result` compares it with
  what CodePipeline received.
- `result_attempts`: the gate's `PutApprovalResult` attempts for one approval action, from
  `GET /_sandbox/codepipeline/calls`. "Decided twice" means the gate tried to report a
  decision twice: every attempt counts (accepted, refused by the service, or answered by a
  fault that struck after the call took effect) except one an injected fault refused
  before it took effect (a throttle): that left the approval untouched, and retrying it is
  the right thing to do. Where faults strike after the call took effect (the soak),
  `reported_again` keeps the attempts that are wrong whatever the faults: one made after
  CodePipeline had answered the gate that it accepted a result, or one carrying another
  status than an earlier attempt. Retrying after a lost answer is neither.
- `button_posts` and `live_buttons`: request messages with buttons, from
  `GET /_sandbox/slack/calls` and `GET /_sandbox/slack/messages`: at most one, ever, per
  approval, and none left once the approval is decided.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Fault kinds that answer after the call was carried out (DESIGN §8.6): the call counts.
AFTER_EFFECT_FAULTS = frozenset({"timeout_after_effect", "reset_after_effect"})
APPROVED = "Approved"
REJECTED = "Rejected"


@dataclass(frozen=True)
class Counted:
    """A decision the gate told the harness it took: an Approve click, or a Reject's
    reason form, answered 200. `at` is the harness's clock (seconds since the run began)."""

    decision: str  # approve | reject
    user: str
    at: float


@dataclass(frozen=True)
class Expected:
    """What CodePipeline should receive: its status and the clickers its summary must
    name (none when the deadline decides); `alternatives`, statuses the harness cannot
    rule out (the deadline, for a click answered too close to it to tell; a click the gate
    answered 5xx or not at all, which may still have counted)."""

    status: str
    by: tuple[str, ...] = ()
    alternatives: frozenset[str] = frozenset()


def expected_result(
    counted: Iterable[Counted],
    *,
    quorum: int = 1,
    deadline: float | None = None,
    margin: float = 5.0,
    on_deadline: str = REJECTED,
    uncertain: Iterable[str] = (),
) -> Expected:
    """The result the policy gives these counted clicks: the first Reject, or the `quorum`-th
    distinct approver's Approve, whichever came first before `deadline` (seconds on the
    same clock); otherwise the deadline's result (`on_deadline`). A deciding click within
    `margin` seconds of the deadline may lose to it. `uncertain`: the decisions (approve,
    reject) of clicks the gate did not answer 200, allowed when no counted click decides."""
    maybe = frozenset(APPROVED if d == "approve" else REJECTED for d in uncertain)
    approvers: list[str] = []
    for click in sorted(counted, key=lambda c: c.at):
        if deadline is not None and click.at > deadline + margin:
            break
        close = frozenset({on_deadline}) if deadline and click.at >= deadline - margin else None
        if click.decision == "reject":
            return Expected(REJECTED, (click.user,), close or frozenset())
        if click.user not in approvers:
            approvers.append(click.user)
        if len(approvers) >= quorum:
            return Expected(APPROVED, tuple(approvers), close or frozenset())
    return Expected(on_deadline, (), maybe)


def judge_result(expected: Expected, received: list[dict[str, Any]]) -> str | None:
    """What is wrong with the gate's results for one approval (`GET …/approval-results`
    entries of source "gate"), or None: exactly the expected status, naming the clickers."""
    if not received:
        return f"CodePipeline received nothing; the clicks say {expected.status}"
    result = received[0]["result"]
    named = all(user in result.get("summary", "") for user in expected.by)
    if (result["status"] == expected.status and named) or result["status"] in (
        expected.alternatives
    ):
        return None
    clicks = f" by {', '.join(expected.by)}" if expected.by else " (no click counted)"
    return (
        f"the clicks say {expected.status}{clicks}; CodePipeline received "
        f"{result['status']}: {result.get('summary', '')!r}"
    )


def took_effect(call: dict[str, Any]) -> bool:
    """A call that may have been carried out: not refused by a fault before effect."""
    fault = call.get("fault")
    return fault is None or fault in AFTER_EFFECT_FAULTS


def result_attempts(
    calls: Iterable[dict[str, Any]],
    pipeline: str,
    stage: str | None = None,
    *,
    since: datetime | None = None,
) -> list[dict[str, Any]]:
    """The gate's `PutApprovalResult` calls for `pipeline` (and `stage`) that count as an
    attempt to report (see the module's docstring). The log redacts the token, so the
    harness gives each approval a pipeline of its own, or passes `since`, the run's start
    on the fake's clock, when one pipeline runs again (one approval at a time)."""
    return [
        call
        for call in calls
        if call.get("method") == "PutApprovalResult"
        and call["args"].get("pipelineName") == pipeline
        and (stage is None or call["args"].get("stageName") == stage)
        and (since is None or datetime.fromisoformat(call["at"]) >= since)
        and took_effect(call)
    ]


def reported_again(attempts: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Of one approval's attempts (`result_attempts`, oldest first), those that report a
    decision again: made after CodePipeline answered the gate that it accepted a result
    (the gate knew it was done), or carrying another status than an earlier attempt (the
    gate changed its decision). A retry after an answer lost in a fault is neither: the
    gate could not know the first attempt took effect."""
    again: list[dict[str, Any]] = []
    told = False
    first_status = None
    for call in sorted(attempts, key=lambda c: c["at"]):
        status = (call["args"].get("result") or {}).get("status")
        if told or (first_status is not None and status != first_status):
            again.append(call)
        first_status = first_status or status
        told = told or (call.get("fault") is None and call.get("error") is None)
    return again


def run_attempts(calls: Iterable[dict[str, Any]], run: Any) -> list[dict[str, Any]]:
    """`result_attempts` for one run of the fake pipeline (its `pipeline`, `stage` and
    `started_at`: `FakeCodePipeline.run_by_token`), for tests that run one pipeline again."""
    return result_attempts(calls, run.pipeline, run.stage, since=run.started_at)


def attempts_text(attempts: list[dict[str, Any]]) -> str:
    """Each attempt as "status → answer", for a problem's text."""
    parts = []
    for call in attempts:
        status = (call["args"].get("result") or {}).get("status")
        answer = call.get("fault") or (call.get("error") or {}).get("code") or "accepted"
        parts.append(f"{status} → {answer}")
    return ", ".join(parts)


def _carries_buttons(blocks: Any, approval_id: str) -> bool:
    if isinstance(blocks, str):  # Slack takes blocks as a JSON string too
        try:
            blocks = json.loads(blocks)
        except ValueError:
            return False
    if not isinstance(blocks, list):
        return False
    actions = [b for b in blocks if isinstance(b, dict) and b.get("type") == "actions"]
    return any(approval_id in json.dumps(block) for block in actions)


def button_posts(slack_calls: Iterable[dict[str, Any]], approval_id: str) -> int:
    """`chat.postMessage` calls that posted a message with buttons for `approval_id` (the
    fake answered ok, or a fault struck after the post took effect)."""
    posted = 0
    for call in slack_calls:
        if call.get("method") != "chat.postMessage" or not took_effect(call):
            continue
        if call.get("fault") is None and not (call.get("response") or {}).get("ok"):
            continue
        if _carries_buttons(call["args"].get("blocks"), approval_id):
            posted += 1
    return posted


def live_buttons(messages: Iterable[dict[str, Any]], approval_id: str) -> int:
    """Messages that show buttons for `approval_id` now."""
    return sum(1 for m in messages if _carries_buttons(m.get("blocks"), approval_id))


def live_message_problem(
    slack_calls: list[dict[str, Any]],
    messages: list[dict[str, Any]],
    approval_id: str,
    *,
    decided: bool,
) -> str | None:
    """At most one message with buttons per approval, ever, and none once it is decided."""
    posts = button_posts(slack_calls, approval_id)
    live = live_buttons(messages, approval_id) if decided else 0
    if posts <= 1 and live == 0:
        return None
    return f"{posts} request message(s) posted with buttons, {live} still live after the decision"
