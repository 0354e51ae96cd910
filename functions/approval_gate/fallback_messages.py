"""The request as plain text for the fallback SNS topic, when Slack cannot be asked.

Unlike every Slack message, this text may carry CodePipeline's review link (it embeds the
approval token): it goes only to the topic's subscribers, never to Slack or a log.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import quote

from approval_gate.clock import iso
from approval_gate.i18n import tr
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


def _ascii(text: str) -> str:
    """Letters without their accents (Vietnamese "phê duyệt" → "phe duyet"; đ → d), and
    "?" for anything else outside printable ASCII: an SNS subject allows nothing more."""
    text = text.replace("đ", "d").replace("Đ", "D")
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    return "".join(c if " " <= c <= "~" else "?" for c in text)


def fallback_subject(approval: Approval) -> str:
    """An SNS subject: ≤ 100 printable ASCII characters, no newlines (a translation loses
    its accents)."""
    # Translators: an email subject; SNS allows ASCII only, so the accents are removed
    # (keep it short: 100 characters with the names). %(pipeline)s/%(stage)s: names.
    text = tr(
        approval.rules.language,
        "Approval needed (Slack unavailable): %(pipeline)s/%(stage)s",
        pipeline=approval.pipeline,
        stage=approval.stage,
    )
    return _ascii(text)[:100]


def fallback_text(approval: Approval, slack_error: str) -> str:
    """The request as plain text for the fallback topic's subscribers (email, chat, pager)."""
    language = approval.rules.language
    lines = [
        # Translators: the fallback notification (plain text, by email or chat); %(error)s:
        # Slack's error code.
        tr(
            language,
            "Approval Gate could not post this approval request to Slack (%(error)s).",
            error=slack_error,
        ),
        # Translators: the fallback notification; the line break may move or go.
        tr(
            language,
            "It is still open: decide it in CodePipeline, or in Slack once the request appears\n"
            "there (the gate tries again at every reminder).",
        ),
        "",
        # Translators: the fallback notification; %(pipeline)s: the pipeline's name.
        tr(language, "Pipeline: %(pipeline)s", pipeline=approval.pipeline),
        # Translators: the fallback notification; the stage's and the action's names.
        tr(
            language,
            "Stage / action: %(stage)s / %(action)s",
            stage=approval.stage,
            action=approval.action,
        ),
    ]
    if approval.change:
        # Translators: the fallback notification; %(change)s: the commit or change made.
        lines.append(tr(language, "Change: %(change)s", change=approval.change))
    if approval.custom_data:
        # Translators: the fallback notification; %(notes)s: the pipeline's custom data.
        lines.append(tr(language, "Notes: %(notes)s", notes=approval.custom_data))
    if approval.external_entity_link:
        # Translators: the fallback notification; %(link)s: a link to the change.
        lines.append(tr(language, "Change to review: %(link)s", link=approval.external_entity_link))
    deadline = iso(approval.deadline_at)
    if approval.rules.on_deadline == "approve":
        # Translators: the fallback notification; %(deadline)s: an ISO 8601 time (UTC).
        outcome = tr(
            language, "Deadline: %(deadline)s (then approved by policy)", deadline=deadline
        )
    else:
        # Translators: the fallback notification; %(deadline)s: an ISO 8601 time (UTC).
        outcome = tr(
            language, "Deadline: %(deadline)s (then rejected by policy)", deadline=deadline
        )
    lines += [
        outcome,
        "",
        # Translators: the fallback notification; %(link)s: CodePipeline's review page.
        tr(language, "Review and decide in CodePipeline: %(link)s", link=review_link(approval)),
    ]
    return "\n".join(lines)
