"""What a pipeline run deploys: its source revisions, and what changed since the last one.

Pure parsing and wording, no I/O (approval_gate.changes does the lookups). CodePipeline's
`artifactRevisions` differ by source provider: CodeCommit gives the commit message and a
console link; CodeStar connections (GitHub, GitHub Enterprise Server, GitLab, Bitbucket)
put a JSON document `{"ProviderType", "CommitMessage"}` in `revisionSummary` and a console
redirect naming `FullRepositoryId` and `Commit` in `revisionUrl`; S3 gives the object's
version id, ECR the image digest. This module is the one place that reads them.
"""

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qs, quote, urlsplit

#: How far the commit count walks back (DESIGN §8.4: "50+ commits" beyond).
MAX_COMMITS = 50

GITHUB = "GitHub"
GITHUB_ENTERPRISE = "GitHub Enterprise"
GITLAB = "GitLab"
BITBUCKET = "Bitbucket"
CODECOMMIT = "CodeCommit"
S3 = "S3"
ECR = "ECR"
#: A source the gate cannot name (a custom action, say).
UNKNOWN_PROVIDER = "Source"

#: CodeStar connections' ProviderType values, as the gate names the provider.
_CONNECTION_PROVIDERS = {
    "GitHub": GITHUB,
    "GitHubEnterpriseServer": GITHUB_ENTERPRISE,
    "GitLab": GITLAB,
    "GitLabSelfManaged": GITLAB,
    "Bitbucket": BITBUCKET,
}
#: The provider's own host, when a connection's redirect does not name one.
_PUBLIC_HOSTS = {GITHUB: "github.com", GITLAB: "gitlab.com", BITBUCKET: "bitbucket.org"}
_HOST_PROVIDERS = {"github.com": GITHUB, "gitlab.com": GITLAB, "bitbucket.org": BITBUCKET}

#: Patterns compiled on first use (re's cache), not at import: the click path imports
#: this module for the record's types and never parses a revision.
_CODECOMMIT_URL = (
    r"^https://(?:([a-z0-9-]+)\.)?console\.aws\.amazon\.com/codesuite/codecommit/"
    r"(?:repositories|repository)/([A-Za-z0-9._-]{1,100})/commit/([0-9a-f]{7,40})"
)
_CONNECTION_REDIRECT = r"^https://[^/]+/codesuite/settings/connections/redirect\?"
#: A provider's own commit page: /owner/repo/commit/<sha> (GitLab: /-/commit/, Bitbucket:
#: /commits/).
_COMMIT_PAGE = r"^/(.+?)(?:/-)?/commits?/([0-9a-f]{7,40})/?$"
_ECR_URL = r"/ecr/repositories/private/\d+/(.+?)/_/image/"
_DIGEST = r"^sha256:[0-9a-f]{64}$"


class Revision(NamedTuple):
    """One source revision of a run, as DESIGN §8.4's record names it (plus its author)."""

    action: str  # the source's output artifact, as artifactRevisions names it
    provider: str
    repository: str | None
    revision_id: str
    summary: str | None  # the commit message's first line, or the S3 object's summary
    url: str | None
    #: The commit's author, when the gate found it (CodeCommit's GetCommit); message only.
    author: str | None = None

    @property
    def short_id(self) -> str:
        if self.revision_id.startswith("sha256:"):
            return self.revision_id[:19]
        if self.provider in (S3, ECR, UNKNOWN_PROVIDER):
            return self.revision_id[:12]
        return self.revision_id[:7]

    def record(self) -> dict[str, Any]:
        """DESIGN §8.4's shape, for the decision record."""
        return {
            "action": self.action,
            "provider": self.provider,
            "repository": self.repository,
            "revision_id": self.revision_id,
            "summary": self.summary,
            "url": self.url,
        }

    def item(self) -> dict[str, Any]:
        """How the approvals table keeps it: the record and the author, when known."""
        return {k: v for k, v in {**self.record(), "author": self.author}.items() if v}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(
            action=str(item.get("action", "")),
            provider=str(item.get("provider", UNKNOWN_PROVIDER)),
            repository=item.get("repository"),
            revision_id=str(item.get("revision_id", "")),
            summary=item.get("summary"),
            url=item.get("url"),
            author=item.get("author"),
        )


#: What a request says of the changes since the last deployment (Since.kind).
FIRST = "first"  # no earlier approved execution of this stage and action
COMPARED = "compared"  # same source: a compare link, and the commit count when known
SAME = "same"  # the same revision was approved last time
CHANGED = "changed"  # the main source's provider or repository changed
UNKNOWN = "unknown"  # a lookup failed or ran out of time


class Since(NamedTuple):
    """The changes since the last deployment, as the request words them."""

    kind: str
    #: ``1 commit``, ``N commits`` or ``50+ commits`` (COMPARED, when counted); the
    #: sources before and after (CHANGED); why (UNKNOWN, for the logs).
    detail: str | None = None

    def item(self) -> dict[str, Any]:
        return {"kind": self.kind, **({"detail": self.detail} if self.detail else {})}

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> Self:
        return cls(kind=str(item["kind"]), detail=item.get("detail"))


def _first_line(text: str) -> str | None:
    stripped = text.strip()
    return stripped.splitlines()[0].strip()[:300] if stripped else None


def _connection_summary(summary: str) -> tuple[str | None, str | None]:
    """(provider, commit message) of a connection's JSON summary; None for what it lacks."""
    if not summary.startswith("{"):
        return None, None
    try:
        document = json.loads(summary)
    except ValueError:
        return None, None
    if not isinstance(document, dict):
        return None, None
    provider = _CONNECTION_PROVIDERS.get(str(document.get("ProviderType")))
    message = document.get("CommitMessage")
    return provider, message if isinstance(message, str) else None


def parse_revision(entry: Mapping[str, Any]) -> Revision | None:
    """One `artifactRevisions` entry as a Revision; None when it names no revision."""
    revision_id = entry.get("revisionId")
    if not isinstance(revision_id, str) or not revision_id:
        return None
    action = str(entry.get("name") or "Source")
    raw_summary = entry.get("revisionSummary")
    summary_text = raw_summary if isinstance(raw_summary, str) else ""
    url = entry.get("revisionUrl") if isinstance(entry.get("revisionUrl"), str) else None
    provider, message = _connection_summary(summary_text)
    summary = _first_line(message if message is not None else summary_text)
    repository = None
    if url:
        parts = urlsplit(url)
        found = re.match(_CODECOMMIT_URL, url)
        if found:
            provider, repository = CODECOMMIT, found.group(2)
        elif re.match(_CONNECTION_REDIRECT, url):
            repository = (parse_qs(parts.query).get("FullRepositoryId") or [None])[0]
        elif parts.hostname and parts.hostname.startswith("s3.console."):
            bucket = parts.path.rsplit("/", 1)[-1]
            key = (parse_qs(parts.query).get("prefix") or [""])[0]
            provider, repository = S3, f"{bucket}/{key}" if key else bucket
        elif (ecr := re.search(_ECR_URL, parts.path)) is not None:
            provider, repository = ECR, ecr.group(1)
        elif (page := re.match(_COMMIT_PAGE, parts.path)) is not None:
            repository = page.group(1)
            host = (parts.hostname or "").lower()
            provider = provider or _HOST_PROVIDERS.get(host) or GITHUB_ENTERPRISE
    if provider is None:
        provider = ECR if re.match(_DIGEST, revision_id) else UNKNOWN_PROVIDER
    return Revision(action, provider, repository, revision_id, summary, url)


def parse_revisions(execution: Mapping[str, Any]) -> list[Revision]:
    """Every source revision of a GetPipelineExecution's `pipelineExecution`, in order."""
    entries = execution.get("artifactRevisions")
    found = []
    for entry in entries if isinstance(entries, list) else []:
        if isinstance(entry, Mapping) and (revision := parse_revision(entry)) is not None:
            found.append(revision)
    return found


def codecommit_commit(revision: Revision) -> tuple[str, str] | None:
    """(repository, commit id) of a CodeCommit revision, for GetCommit; None otherwise."""
    if revision.provider != CODECOMMIT or not revision.repository:
        return None
    return revision.repository, revision.revision_id


def _region(url: str | None, default: str) -> str:
    found = re.match(_CODECOMMIT_URL, url or "")
    return found.group(1) if found and found.group(1) else default


def _web_host(revision: Revision) -> str | None:
    """The provider's web host: from a commit page URL, else the provider's public one."""
    parts = urlsplit(revision.url or "")
    redirect = re.match(_CONNECTION_REDIRECT, revision.url or "")
    if parts.hostname and not redirect and re.match(_COMMIT_PAGE, parts.path):
        return parts.hostname
    return _PUBLIC_HOSTS.get(revision.provider)


def compare_url(old: Revision, new: Revision, region: str) -> str | None:
    """The provider's page comparing two revisions of one repository; None when there is
    none (S3, ECR, an unknown host, another repository)."""
    if not same_source(old, new) or not new.repository or old.revision_id == new.revision_id:
        return None
    repo, before, after = new.repository, quote(old.revision_id), quote(new.revision_id)
    if new.provider == CODECOMMIT:
        where = _region(new.url, region)
        return (
            f"https://{where}.console.aws.amazon.com/codesuite/codecommit/repositories/"
            f"{quote(repo)}/compare/{before}/.../{after}?region={where}"
        )
    host = _web_host(new)
    if host is None:
        return None
    if new.provider in (GITHUB, GITHUB_ENTERPRISE):
        return f"https://{host}/{quote(repo)}/compare/{before}...{after}"
    if new.provider == GITLAB:
        return f"https://{host}/{quote(repo)}/-/compare/{before}...{after}"
    if new.provider == BITBUCKET:  # Bitbucket Cloud names the newer revision first
        return f"https://{host}/{quote(repo)}/branches/compare/{after}%0D{before}"
    return None


def same_source(old: Revision, new: Revision) -> bool:
    return (old.provider, old.repository) == (new.provider, new.repository)


def commits_words(count: int) -> str:
    """DESIGN §8.4's wording: `1 commit`, `N commits`, `50+ commits`."""
    if count >= MAX_COMMITS:
        return f"{MAX_COMMITS}+ commits"
    return "1 commit" if count == 1 else f"{count} commits"


def source_name(revision: Revision) -> str:
    return f"{revision.provider} {revision.repository or revision.action}"


def main_pair(
    current: Iterable[Revision], previous: Iterable[Revision]
) -> tuple[Revision, Revision] | None:
    """The main (first) source of the run and what the last deployment had for it: the
    previous revision of the same source action, else the previous main one."""
    now, before = list(current), list(previous)
    if not now or not before:
        return None
    main = now[0]
    old = next((r for r in before if r.action == main.action), before[0])
    return old, main


def since_last(
    current: Iterable[Revision], previous: Iterable[Revision] | None, region: str
) -> tuple[Since, str | None]:
    """What changed since the last deployment, and the compare link (no commit count:
    approval_gate.changes counts CodeCommit's commits)."""
    if previous is None:
        return Since(FIRST), None
    pair = main_pair(current, previous)
    if pair is None:
        return Since(UNKNOWN, "no source revision to compare"), None
    old, new = pair
    if not same_source(old, new):
        return Since(CHANGED, f"{source_name(old)} to {source_name(new)}"), None
    if old.revision_id == new.revision_id:
        return Since(SAME), None
    return Since(COMPARED), compare_url(old, new, region)
