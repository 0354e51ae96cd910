"""The request as plain text for the fallback SNS topic, when Slack cannot be asked.

Unlike every Slack message, this text may carry CodePipeline's review link (it embeds the
approval token): it goes only to the topic's subscribers, never to Slack or a log.
"""

from __future__ import annotations

from urllib.parse import quote

from approval_gate.clock import iso
from approval_gate.messages import deadline_outcome
from approval_gate.records import Approval


def review_link(approval: Approval) -> str:
    """CodePipeline's own approval review page (as in its SNS notification). It carries the
    approval token, so it goes only to the fallback topic, never to Slack or a log."""
    region = approval.region
    return (
        f"https://{region}.console.aws.amazon.com/codesuite/codepipeline/pipelines/"
        f"{quote(approval.pipeline)}/view?region={region}#/{quote(approval.stage)}/"
        f"{quote(approval.action)}/approve/{approval.token}"
    )


def fallback_subject(approval: Approval) -> str:
    """An SNS subject: ≤ 100 printable ASCII characters, no newlines."""
    text = f"Approval needed (Slack unavailable): {approval.pipeline}/{approval.stage}"
    return "".join(c if " " <= c <= "~" else "?" for c in text)[:100]


def fallback_text(approval: Approval, slack_error: str) -> str:
    """The request as plain text for the fallback topic's subscribers (email, chat, pager)."""
    lines = [
        f"Approval Gate could not post this approval request to Slack ({slack_error}).",
        "It is still open: decide it in CodePipeline, or in Slack once the request appears",
        "there (the gate tries again at every reminder).",
        "",
        f"Pipeline: {approval.pipeline}",
        f"Stage / action: {approval.stage} / {approval.action}",
    ]
    if approval.change:
        lines.append(f"Change: {approval.change}")
    if approval.custom_data:
        lines.append(f"Notes: {approval.custom_data}")
    if approval.external_entity_link:
        lines.append(f"Change to review: {approval.external_entity_link}")
    lines += [
        f"Deadline: {iso(approval.deadline_at)} (then {deadline_outcome(approval)} by policy)",
        "",
        f"Review and decide in CodePipeline: {review_link(approval)}",
    ]
    return "\n".join(lines)
