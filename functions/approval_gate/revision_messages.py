"""The request's "Changes" section: what the run deploys, what changed since last time.

One section (within Slack's 3,000 characters): a line per source revision, then what
changed since the revision last approved through the same stage and action. The closed
message keeps it, so the thread shows what was approved.
"""

from __future__ import annotations

import re

from slack_sdk.models.blocks import Block, MarkdownTextObject, SectionBlock

from approval_gate.i18n import ntr, tr
from approval_gate.records import Approval
from approval_gate.revisions import (
    CHANGED,
    COMPARED,
    FIRST,
    MAX_COMMITS,
    SAME,
    UNKNOWN_PROVIDER,
    Revision,
    main_pair,
)
from approval_gate.text import cut_at_word, escape_mrkdwn, mrkdwn_link

#: Slack's limit for a section's text, less room for the "and N more" line.
_ROOM = 3000 - 40
#: Sources listed at most; the rest are counted.
MAX_SOURCES = 10
#: The commit count as approval_gate.changes stores it (revisions.commits_words, English
#: kept in the table): `1 commit`, `N commits`, `50+ commits`; worded again when shown.
_COMMITS = re.compile(r"(\d+)(\+?) commits?")


def source_shown(revision: Revision, language: str) -> str:
    """`GitHub example-org/web`: the provider (a word of ours when not known) and the
    repository, else the source action's name (mrkdwn escaped)."""
    provider = revision.provider
    if provider == UNKNOWN_PROVIDER:
        # Translators: stands for the provider of a source revision the gate cannot name,
        # before the source action's name ("Source MyArtifact").
        provider = tr(language, "Source")
    return escape_mrkdwn(f"{provider} {revision.repository or revision.action}")


def revision_line(revision: Revision, language: str) -> str:
    """`GitHub example-org/web <url|a1b2c3d> Fix the login redirect — alice`."""
    where = source_shown(revision, language)
    short = escape_mrkdwn(revision.short_id)
    parts = [where, mrkdwn_link(revision.url, short) if revision.url else f"`{short}`"]
    if revision.summary:
        parts.append(escape_mrkdwn(cut_at_word(revision.summary, 150)))
    line = " ".join(parts)
    if revision.author:
        line += f" — {escape_mrkdwn(cut_at_word(revision.author, 60))}"
    return line


def commits_shown(detail: str, language: str) -> str:
    """The stored commit count (``12 commits``, ``50+ commits``) in ``language``; any other
    detail as it is."""
    found = _COMMITS.fullmatch(detail)
    if found is None:
        return detail
    count = int(found.group(1))
    if found.group(2) or count >= MAX_COMMITS:
        # Translators: the label of the link comparing two revisions: at least this many.
        return tr(language, "%(count)d+ commits", count=MAX_COMMITS)
    # Translators: the label of the link comparing the revision deployed last time with
    # this one: how many commits lie between them.
    return ntr(language, "%(count)d commit", "%(count)d commits", count)


def _source_change(approval: Approval, language: str) -> str:
    """ "Source changed from GitHub a/web to CodeCommit web": worded from the revisions, the
    stored detail (English "X to Y") only when they are not at hand."""
    since = approval.since
    pair = main_pair(approval.revisions, approval.previous_revisions or ())
    if pair is not None:
        old, new = (source_shown(revision, language) for revision in pair)
        # Translators: the main source of the pipeline is another repository than last
        # time; %(old)s, %(new)s: provider and repository ("GitHub example-org/web").
        return tr(language, "Source changed from %(old)s to %(new)s", old=old, new=new)
    if since is not None and since.detail:
        # Translators: %(change)s: the sources before and after, as recorded.
        return tr(language, "Source changed from %(change)s", change=escape_mrkdwn(since.detail))
    return tr(language, "Source changed from another source")


def since_line(approval: Approval) -> str | None:
    """What changed since the last deployment through this gate, in one line."""
    since = approval.since
    if since is None:
        return None
    language = approval.rules.language
    if since.kind == FIRST:
        return tr(language, "First deployment through this gate")
    if since.kind == SAME:
        return tr(language, "Same revision as the last deployment")
    if since.kind == CHANGED:
        return _source_change(approval, language)
    if since.kind == COMPARED:
        pair = main_pair(approval.revisions, approval.previous_revisions or ())
        was = escape_mrkdwn(pair[0].short_id) if pair else "?"
        if approval.compare_url:
            if since.detail:
                label = escape_mrkdwn(commits_shown(since.detail, language))
            else:
                # Translators: a link's label; %(revision)s: the short commit id deployed
                # last time.
                label = tr(language, "compare with %(revision)s", revision=was)
            link = mrkdwn_link(approval.compare_url, label)
            # Translators: %(link)s: a link labelled "12 commits" or "compare with a1b2c3d".
            return tr(language, "Since the last deployment: %(link)s", link=link)
        # Translators: %(revision)s: the short commit id deployed last time (code span).
        return tr(
            language,
            "Since the last deployment: a new revision (was %(revision)s)",
            revision=f"`{was}`",
        )
    return tr(language, "Changes since the last deployment: unknown")


def changes_text(approval: Approval) -> str | None:
    """The section's mrkdwn; None when the run names no revision and nothing is known."""
    since = since_line(approval)
    if not approval.revisions and since is None:
        return None
    language = approval.rules.language
    # Translators: the title of the section listing the source revisions being deployed.
    title = tr(language, "Changes")
    lines = [f"*{title}*"]
    used = len(lines[0]) + len(since or "") + 2
    shown = 0
    for revision in approval.revisions[:MAX_SOURCES]:
        line = revision_line(revision, language)
        if used + len(line) + 1 > _ROOM:
            break
        lines.append(line)
        used += len(line) + 1
        shown += 1
    if shown < len(approval.revisions):
        # Translators: after the listed source revisions: how many more are not listed.
        lines.append(tr(language, "and %(count)d more", count=len(approval.revisions) - shown))
    if since:
        lines.append(since)
    return "\n".join(lines)


def changes_blocks(approval: Approval) -> list[Block]:
    text = changes_text(approval)
    return [SectionBlock(text=MarkdownTextObject(text=text))] if text else []
