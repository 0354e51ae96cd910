"""The request's "Changes" section: what the run deploys, what changed since last time.

One section (within Slack's 3,000 characters): a line per source revision, then what
changed since the revision last approved through the same stage and action. The closed
message keeps it, so the thread shows what was approved.
"""

from __future__ import annotations

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from approval_gate.records import Approval
from approval_gate.revisions import CHANGED, COMPARED, FIRST, SAME, Revision, main_pair
from approval_gate.text import cut_at_word, escape_mrkdwn, mrkdwn_link

#: Slack's limit for a section's text, less room for the "and N more" line.
_ROOM = 3000 - 40
#: Sources listed at most; the rest are counted.
MAX_SOURCES = 10


def revision_line(revision: Revision) -> str:
    """`GitHub example-org/web <url|a1b2c3d> Fix the login redirect — alice`."""
    where = escape_mrkdwn(f"{revision.provider} {revision.repository or revision.action}")
    short = escape_mrkdwn(revision.short_id)
    parts = [where, mrkdwn_link(revision.url, short) if revision.url else f"`{short}`"]
    if revision.summary:
        parts.append(escape_mrkdwn(cut_at_word(revision.summary, 150)))
    line = " ".join(parts)
    if revision.author:
        line += f" — {escape_mrkdwn(cut_at_word(revision.author, 60))}"
    return line


def since_line(approval: Approval) -> str | None:
    """What changed since the last deployment through this gate, in one line."""
    since = approval.since
    if since is None:
        return None
    if since.kind == FIRST:
        return "First deployment through this gate"
    if since.kind == SAME:
        return "Same revision as the last deployment"
    if since.kind == CHANGED:
        return f"Source changed from {escape_mrkdwn(since.detail or 'another source')}"
    if since.kind == COMPARED:
        pair = main_pair(approval.revisions, approval.previous_revisions or ())
        was = escape_mrkdwn(pair[0].short_id) if pair else "?"
        if approval.compare_url:
            label = escape_mrkdwn(since.detail) if since.detail else f"compare with {was}"
            return f"Since the last deployment: {mrkdwn_link(approval.compare_url, label)}"
        return f"Since the last deployment: a new revision (was `{was}`)"
    return "Changes since the last deployment: unknown"


def changes_text(approval: Approval) -> str | None:
    """The section's mrkdwn; None when the run names no revision and nothing is known."""
    since = since_line(approval)
    if not approval.revisions and since is None:
        return None
    lines = ["*Changes*"]
    used = len(lines[0]) + len(since or "") + 2
    shown = 0
    for revision in approval.revisions[:MAX_SOURCES]:
        line = revision_line(revision)
        if used + len(line) + 1 > _ROOM:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if shown < len(approval.revisions):
        lines.append(f"and {len(approval.revisions) - shown} more")
    if since:
        lines.append(since)
    return "\n".join(lines)


def changes_blocks(approval: Approval) -> list[Block]:
    text = changes_text(approval)
    return [SectionBlock(text=MarkdownTextObject(text=text))] if text else []
