"""approval_gate.revisions: artifactRevisions per provider, compare links, commit wording."""

from __future__ import annotations

import json

import pytest
from approval_gate.revisions import (
    CHANGED,
    COMPARED,
    FIRST,
    SAME,
    Revision,
    commits_words,
    compare_url,
    parse_revisions,
    since_last,
)

SHA_OLD = "1111111aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
SHA_NEW = "2222222bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
CONNECTION = "arn:aws:codestar-connections:eu-west-1:123456789012:connection/0d3e6f"


def redirect(repository: str, commit: str) -> str:
    return (
        "https://eu-west-1.console.aws.amazon.com/codesuite/settings/connections/redirect"
        f"?connectionArn={CONNECTION}&referenceType=COMMIT&FullRepositoryId={repository}"
        f"&Commit={commit}"
    )


def connection_entry(provider_type: str, repository: str, commit: str, message: str) -> dict:
    return {
        "name": "SourceOutput",
        "revisionId": commit,
        "revisionSummary": json.dumps({"ProviderType": provider_type, "CommitMessage": message}),
        "revisionUrl": redirect(repository, commit),
    }


def one(entry: dict) -> Revision:
    (revision,) = parse_revisions({"artifactRevisions": [entry]})
    return revision


@pytest.mark.parametrize(
    ("provider_type", "provider"),
    [
        ("GitHub", "GitHub"),
        ("GitLab", "GitLab"),
        ("Bitbucket", "Bitbucket"),
        ("GitHubEnterpriseServer", "GitHub Enterprise"),
    ],
)
def test_a_connection_revision_names_its_provider_repository_and_message(
    provider_type: str, provider: str
) -> None:
    entry = connection_entry(
        provider_type, "example-org/web", SHA_NEW, "Fix the login redirect\n\nLonger body."
    )
    assert one(entry) == Revision(
        action="SourceOutput",
        provider=provider,
        repository="example-org/web",
        revision_id=SHA_NEW,
        summary="Fix the login redirect",
        url=entry["revisionUrl"],
    )


def test_a_codecommit_revision_keeps_its_plain_summary_and_console_url() -> None:
    url = (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/shop/"
        f"commit/{SHA_NEW}?region=eu-west-1"
    )
    revision = one(
        {
            "name": "Src",
            "revisionId": SHA_NEW,
            "revisionSummary": "Add checkout",
            "revisionUrl": url,
        }
    )
    assert (revision.provider, revision.repository, revision.summary) == (
        "CodeCommit",
        "shop",
        "Add checkout",
    )
    assert revision.short_id == SHA_NEW[:7]


def test_s3_and_ecr_revisions_show_the_version_and_the_digest() -> None:
    digest = "sha256:" + "ab" * 32
    s3, ecr = parse_revisions(
        {
            "artifactRevisions": [
                {
                    "name": "Config",
                    "revisionId": "3sL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY",
                    "revisionSummary": "prod config 42",
                    "revisionUrl": "https://s3.console.aws.amazon.com/s3/object/web-config"
                    "?region=eu-west-1&prefix=prod.zip",
                },
                {"name": "Image", "revisionId": digest},
            ]
        }
    )
    assert (s3.provider, s3.repository, s3.summary, s3.short_id) == (
        "S3",
        "web-config/prod.zip",
        "prod config 42",
        "3sL4kqtJlcpX",
    )
    assert (ecr.provider, ecr.short_id) == ("ECR", digest[:19])


def test_entries_without_a_revision_id_are_left_out() -> None:
    assert parse_revisions({"artifactRevisions": [{"name": "A"}, "junk"]}) == []
    assert parse_revisions({}) == []


def git(provider: str, repository: str, commit: str, url: str | None = None) -> Revision:
    return Revision("Source", provider, repository, commit, None, url)


def test_compare_urls_per_provider() -> None:
    cases = {
        "GitHub": f"https://github.com/o/r/compare/{SHA_OLD}...{SHA_NEW}",
        "GitLab": f"https://gitlab.com/o/r/-/compare/{SHA_OLD}...{SHA_NEW}",
        "Bitbucket": f"https://bitbucket.org/o/r/branches/compare/{SHA_NEW}%0D{SHA_OLD}",
    }
    for provider, expected in cases.items():
        old = git(provider, "o/r", SHA_OLD, redirect("o/r", SHA_OLD))
        new = git(provider, "o/r", SHA_NEW, redirect("o/r", SHA_NEW))
        assert compare_url(old, new, "eu-west-1") == expected
    old, new = git("CodeCommit", "shop", SHA_OLD), git("CodeCommit", "shop", SHA_NEW)
    assert compare_url(old, new, "eu-west-1") == (
        "https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/shop/"
        f"compare/{SHA_OLD}/.../{SHA_NEW}?region=eu-west-1"
    )


def test_github_enterprise_compares_on_the_host_of_its_revision_url() -> None:
    old = one(
        {"revisionId": SHA_OLD, "revisionUrl": f"https://git.corp.example/o/r/commit/{SHA_OLD}"}
    )
    new = one(
        {"revisionId": SHA_NEW, "revisionUrl": f"https://git.corp.example/o/r/commit/{SHA_NEW}"}
    )
    assert new.provider == "GitHub Enterprise"
    assert compare_url(old, new, "eu-west-1") == (
        f"https://git.corp.example/o/r/compare/{SHA_OLD}...{SHA_NEW}"
    )
    # Through a connection's redirect the server's host is unknown: no link rather than a
    # wrong one.
    old = git("GitHub Enterprise", "o/r", SHA_OLD, redirect("o/r", SHA_OLD))
    new = git("GitHub Enterprise", "o/r", SHA_NEW, redirect("o/r", SHA_NEW))
    assert compare_url(old, new, "eu-west-1") is None


def test_commit_count_wording() -> None:
    assert [commits_words(n) for n in (0, 1, 2, 49, 50, 51)] == [
        "0 commits",
        "1 commit",
        "2 commits",
        "49 commits",
        "50+ commits",
        "50+ commits",
    ]


def test_a_changed_repository_or_provider_is_said_not_linked() -> None:
    new = [git("GitHub", "example-org/web", SHA_NEW)]
    since, url = since_last(new, [git("CodeCommit", "web-repo", SHA_OLD)], "eu-west-1")
    assert (since.kind, since.detail, url) == (
        CHANGED,
        "CodeCommit web-repo to GitHub example-org/web",
        None,
    )
    since, url = since_last(new, [git("GitHub", "example-org/old-web", SHA_OLD)], "eu-west-1")
    assert (since.kind, url) == (CHANGED, None)


def test_first_same_and_compared() -> None:
    new = [git("GitHub", "o/r", SHA_NEW)]
    assert since_last(new, None, "eu-west-1")[0].kind == FIRST
    assert since_last(new, new, "eu-west-1") == (since_last(new, new, "eu-west-1")[0], None)
    assert since_last(new, new, "eu-west-1")[0].kind == SAME
    since, url = since_last(new, [git("GitHub", "o/r", SHA_OLD)], "eu-west-1")
    assert since.kind == COMPARED
    assert url == f"https://github.com/o/r/compare/{SHA_OLD}...{SHA_NEW}"


def test_the_previous_revision_of_the_same_action_is_compared() -> None:
    new = [
        Revision("App", "GitHub", "o/app", SHA_NEW, None, None),
        Revision("Lib", "GitHub", "o/lib", SHA_NEW, None, None),
    ]
    previous = [
        Revision("Lib", "GitHub", "o/lib", SHA_OLD, None, None),
        Revision("App", "GitHub", "o/app", SHA_OLD, None, None),
    ]
    since, url = since_last(new, previous, "eu-west-1")
    assert (since.kind, url) == (
        COMPARED,
        f"https://github.com/o/app/compare/{SHA_OLD}...{SHA_NEW}",
    )
