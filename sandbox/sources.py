"""The sources of the fake CodePipeline's runs (DESIGN §8.6 `sources`).

A run started with ``sources`` deploys one revision per source action: CodeCommit, the
CodeStar-connection providers (GitHub, GitLab, Bitbucket), S3 or ECR. GetPipelineExecution
shows them in ``artifactRevisions`` shaped as CodePipeline shapes them per provider:

- CodeCommit: the commit message as ``revisionSummary``, the console's commit page as
  ``revisionUrl``; GetCommit answers the commit (author, parent).
- GitHub, GitLab, Bitbucket (a connection): ``revisionSummary`` is a JSON document
  ``{"ProviderType": "GitHub", "CommitMessage": "..."}`` and ``revisionUrl`` the console's
  connection redirect, naming ``FullRepositoryId`` and ``Commit``.
- S3: the object's version id (the repository is ``bucket/key``), the object's
  ``codepipeline-artifact-revision-summary`` (the source's ``message``) as its summary.
- ECR: the image digest (``sha256:...``).

Successive runs of one repository chain their commits: each new commit's parent is the
previous run's commit of that repository (ids are generated when not given), so the gate's
compare link and CodeCommit commit count have a real history to show.
"""

from __future__ import annotations

import json
import re
import secrets
import threading
import time
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

PROVIDERS = ("CodeCommit", "GitHub", "GitLab", "Bitbucket", "S3", "ECR")
#: The providers reached through a CodeStar connection.
CONNECTION_PROVIDERS = ("GitHub", "GitLab", "Bitbucket")
GIT_PROVIDERS = ("CodeCommit", *CONNECTION_PROVIDERS)
MAX_SOURCES = 20
_COMMIT = re.compile(r"^[0-9a-f]{7,40}$")
_ACTION = re.compile(r"^[A-Za-z0-9.@\-_]{1,100}$")
_FIELDS = ("action", "provider", "repository", "branch", "commit", "message", "author")


@dataclass(frozen=True)
class Source:
    """One source revision of a run."""

    action: str
    provider: str
    repository: str
    branch: str
    commit: str  # the commit id, S3 version id or ECR image digest
    message: str | None
    author: str | None
    #: The previous run's commit of the same repository (git providers), if any.
    parent: str | None = None
    #: When the commit was made (epoch seconds), for GetCommit's dates.
    at: float = 0.0


def _text(entry: dict[str, Any], key: str, index: int) -> str | None:
    value = entry.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ValueError(f"sources[{index}].{key} must be a string")
    if len(value) > 2000:
        raise ValueError(f"sources[{index}].{key} is too long")
    return value


def validate(value: Any) -> list[dict[str, str | None]]:
    """The request's ``sources``, checked: ValueError (a 400) for what CodePipeline could
    not have produced."""
    if not isinstance(value, list) or not value:
        raise ValueError("sources must be a non-empty list of objects")
    if len(value) > MAX_SOURCES:
        raise ValueError(f"sources holds at most {MAX_SOURCES} sources")
    checked: list[dict[str, str | None]] = []
    for index, entry in enumerate(value):
        if not isinstance(entry, dict):
            raise ValueError(f"sources[{index}] must be an object")
        unknown = sorted(set(entry) - set(_FIELDS))
        if unknown:
            raise ValueError(f"sources[{index}] has unknown fields: {', '.join(unknown)}")
        fields = {key: _text(entry, key, index) for key in _FIELDS}
        provider = fields["provider"]
        if provider not in PROVIDERS:
            raise ValueError(f"sources[{index}].provider must be one of {', '.join(PROVIDERS)}")
        if not fields["repository"]:
            raise ValueError(f"sources[{index}].repository is required")
        action = fields["action"] or ("Source" if index == 0 else f"Source{index + 1}")
        if not _ACTION.match(action):
            raise ValueError(f"sources[{index}].action is not a valid action name")
        if any(action == earlier["action"] for earlier in checked):
            raise ValueError(f"sources[{index}].action {action} is named twice")
        commit = fields["commit"]
        if commit is not None and provider in GIT_PROVIDERS and not _COMMIT.match(commit):
            raise ValueError(f"sources[{index}].commit must be 7 to 40 lowercase hex digits")
        checked.append({**fields, "action": action})
    return checked


def _new_id(provider: str) -> str:
    if provider == "ECR":
        return "sha256:" + secrets.token_hex(32)
    if provider == "S3":
        return secrets.token_urlsafe(24)
    return secrets.token_hex(20)


@dataclass
class SourceHistory:
    """Every repository's commits so far: the chain of heads and what GetCommit answers."""

    _heads: dict[tuple[str, str], Source] = field(default_factory=dict)
    _commits: dict[tuple[str, str, str], Source] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, checked: list[dict[str, str | None]]) -> list[Source]:
        """A run's sources, each commit chained to its repository's previous one."""
        sources = []
        with self._lock:
            for entry in checked:
                provider, repository = str(entry["provider"]), str(entry["repository"])
                key = (provider, repository)
                head = self._heads.get(key)
                commit = entry["commit"] or _new_id(provider)
                known = self._commits.get((*key, commit))
                if known is not None:  # the same commit again: its history is known
                    parent = known.parent
                else:
                    parent = head.commit if head is not None and provider in GIT_PROVIDERS else None
                source = Source(
                    action=str(entry["action"]),
                    provider=provider,
                    repository=repository,
                    branch=entry["branch"] or "main",
                    commit=commit,
                    message=entry["message"],
                    author=entry["author"],
                    parent=parent,
                    at=time.time(),
                )
                self._heads[key] = source
                self._commits.setdefault((*key, commit), source)
                sources.append(source)
        return sources

    def codecommit_commit(self, repository: str, commit_id: str) -> Source | None:
        with self._lock:
            return self._commits.get(("CodeCommit", repository, commit_id))

    def has_codecommit_repository(self, repository: str) -> bool:
        with self._lock:
            return ("CodeCommit", repository) in self._heads

    def reset(self) -> None:
        with self._lock:
            self._heads.clear()
            self._commits.clear()


def connection_arn(region: str, account: str, provider: str) -> str:
    """One stable connection per provider, as a team would have."""
    name = uuid.uuid5(uuid.NAMESPACE_URL, f"sandbox-connection:{provider}")
    return f"arn:aws:codestar-connections:{region}:{account}:connection/{name}"


def artifact_revision(source: Source, region: str, account: str) -> dict[str, Any]:
    """GetPipelineExecution's ``artifactRevisions`` entry for one source."""
    entry: dict[str, Any] = {"name": source.action, "revisionId": source.commit}
    message = source.message
    if source.provider == "CodeCommit":
        entry["revisionSummary"] = message or "Update the application"
        entry["revisionUrl"] = (
            f"https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/"
            f"{quote(source.repository)}/commit/{source.commit}?region={region}"
        )
    elif source.provider in CONNECTION_PROVIDERS:
        entry["revisionSummary"] = json.dumps(
            {"ProviderType": source.provider, "CommitMessage": message or "Update"},
            separators=(",", ":"),
        )
        arn = connection_arn(region, account, source.provider)
        entry["revisionUrl"] = (
            f"https://{region}.console.aws.amazon.com/codesuite/settings/connections/redirect"
            f"?connectionArn={arn}&referenceType=COMMIT"
            f"&FullRepositoryId={quote(source.repository, safe='/')}&Commit={source.commit}"
        )
    elif source.provider == "S3":
        bucket, _, key = source.repository.partition("/")
        if message:
            entry["revisionSummary"] = message
        entry["revisionUrl"] = (
            f"https://s3.console.aws.amazon.com/s3/object/{quote(bucket)}"
            f"?region={region}&prefix={quote(key, safe='')}"
        )
    else:  # ECR
        entry["revisionUrl"] = (
            f"https://{region}.console.aws.amazon.com/ecr/repositories/private/{account}/"
            f"{quote(source.repository, safe='/')}/_/image/{source.commit}/details?region={region}"
        )
    return entry
