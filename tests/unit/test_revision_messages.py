"""The request's Changes section: a line per source, the changes since last time, Slack's limits."""

from __future__ import annotations

from approval_gate.closed_messages import (
    closed_blocks,
)
from approval_gate.messages import (
    request_blocks,
)
from approval_gate.records import Approval
from approval_gate.revision_messages import changes_text
from approval_gate.revisions import Revision, Since
from approval_gate.store import APPROVED

from tests.unit.fakes import make_approval
from tests.unit.slack_limits_oracle import message_violations

SHA = "a1b2c3d4" * 5


def github(n: int = 0, summary: str = "Fix the login redirect") -> Revision:
    return Revision(
        f"Source{n}",
        "GitHub",
        "example-org/web",
        SHA,
        summary,
        "https://x.example/c?a=1&b=2",
        author="alice",
    )


def with_changes(**fields: object) -> Approval:
    return make_approval(**fields)


def section(blocks: list[dict]) -> str:
    return next(
        b["text"]["text"]
        for b in blocks
        if b["type"] == "section" and b.get("text", {}).get("text", "").startswith("*Changes*")
    )


def test_each_source_and_the_compare_link_are_shown_in_the_request_and_when_closed() -> None:
    approval = with_changes(
        revisions=(github(),),
        previous_revisions=(github()._replace(revision_id="0" * 40),),
        compare_url="https://github.com/example-org/web/compare/0...a",
        since=Since("compared", "12 commits"),
    )
    expected = (
        "*Changes*\n"
        "GitHub example-org/web <https://x.example/c?a=1&amp;b=2|a1b2c3d> "
        "Fix the login redirect — alice\n"
        "Since the last deployment: <https://github.com/example-org/web/compare/0...a|12 commits>"
    )
    assert section(request_blocks(approval)) == expected
    closed = approval._replace(status=APPROVED)
    assert section(closed_blocks(closed)) == expected


def test_first_changed_same_and_unknown_are_worded() -> None:
    one = (github(),)
    assert changes_text(with_changes(revisions=one, since=Since("first"))).endswith(
        "First deployment through this gate"
    )
    changed = Since("changed", "CodeCommit web-repo to GitHub example-org/web")
    assert changes_text(with_changes(revisions=one, since=changed)).endswith(
        "Source changed from CodeCommit web-repo to GitHub example-org/web"
    )
    assert changes_text(with_changes(revisions=one, since=Since("same"))).endswith(
        "Same revision as the last deployment"
    )
    assert changes_text(with_changes(revisions=one, since=Since("unknown", "x"))).endswith(
        "Changes since the last deployment: unknown"
    )
    assert changes_text(make_approval()) is None  # no revision, nothing looked up


def test_user_text_is_escaped() -> None:
    text = changes_text(
        with_changes(revisions=(github(summary="<!channel> & <@U1|x>"),), since=Since("first"))
    )
    assert text is not None
    assert "&lt;!channel&gt; &amp; &lt;@U1|x&gt;" in text


def test_many_sources_stay_within_the_section_limit() -> None:
    many = tuple(github(n, "word " * 40) for n in range(30))
    approval = with_changes(revisions=many, since=Since("first"))
    assert message_violations(None, request_blocks(approval)) == []
    text = changes_text(approval)
    assert text is not None
    assert len(text) <= 3000
    assert "and 20 more" in text  # ten listed at most
    assert text.endswith("First deployment through this gate")
