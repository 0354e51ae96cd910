"""Who made the change a pipeline run deploys, for four-eyes.

CodePipeline's artifact revisions carry no author. Where the platform really has one:
the commit's author for a CodeCommit source (`codecommit:GetCommit`), and the IAM
principal of a run a person started (`GetPipelineExecution`'s trigger). Each is mapped to
a Slack user through the policy's `people` map, else by email (`users.lookupByEmail`).
Anything that cannot be found leaves the author unknown; the policy's `unknown_author`
then decides.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError
from slack_sdk.errors import SlackApiError, SlackClientError

from approval_gate.revisions import codecommit_commit, parse_revisions

LOG = logging.getLogger("approval-gate")

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


@dataclass(frozen=True)
class ChangeAuthors:
    identities: tuple[str, ...] = ()  # commit author emails and IAM principal ARNs
    slack_users: tuple[str, ...] = ()  # the Slack users they map to
    change: str | None = None  # "9f2c1e7 Add the new checkout flow", for the message

    @property
    def known(self) -> bool:
        return bool(self.identities)


def _session_email(arn: str) -> str | None:
    """The session name of an assumed-role ARN when it is an email (SSO users' usually is)."""
    if ":assumed-role/" not in arn:
        return None
    session = arn.rsplit("/", 1)[-1]
    return session if _EMAIL.match(session) else None


def find_identities(
    codepipeline: Any, codecommit: Any, pipeline: str, execution_id: str
) -> tuple[list[str], str | None]:
    """(author identities, change description) of a pipeline execution; ([], None) if unknown."""
    execution = codepipeline.get_pipeline_execution(
        pipelineName=pipeline, pipelineExecutionId=execution_id
    )["pipelineExecution"]
    identities: list[str] = []
    change = None
    revisions = parse_revisions(execution)
    if revisions:  # the first source revision is the change being deployed
        first = revisions[0]
        change = f"{first.short_id} {first.summary or ''}".strip()[:200]
        found = codecommit_commit(first)
        if found:
            try:
                commit = codecommit.get_commit(repositoryName=found[0], commitId=found[1])
            except ClientError as exc:  # the run's starter may still be known
                LOG.warning("could not read the commit's author", extra={"error": _code(exc)})
                commit = {}
            email = (((commit.get("commit") or {}).get("author")) or {}).get("email")
            if email:
                identities.append(str(email))
    trigger = execution.get("trigger") or {}
    detail = str(trigger.get("triggerDetail") or "")
    if trigger.get("triggerType") == "StartPipelineExecution" and detail.startswith("arn:"):
        identities.append(detail)
    return identities, change


def _code(exc: Exception) -> str:
    if isinstance(exc, ClientError):
        return str(exc.response.get("Error", {}).get("Code", "ClientError"))
    return type(exc).__name__


def slack_user_for(identity: str, people: dict[str, str], slack: Any) -> str | None:
    """The Slack user of an email or IAM principal ARN: the policy's map, else by email."""
    lowered = {key.lower(): value for key, value in people.items()}
    if identity.lower() in lowered:
        return lowered[identity.lower()]
    email = _session_email(identity) if identity.startswith("arn:") else identity
    if email is None or not _EMAIL.match(email):
        return None
    if email.lower() in lowered:
        return lowered[email.lower()]
    try:
        response = slack.users_lookupByEmail(email=email)
    except SlackApiError:
        return None  # users_not_found, or missing users:read.email
    user = response.get("user") or {}
    return str(user["id"]) if user.get("id") else None


def change_authors(
    *,
    codepipeline: Any,
    codecommit: Any,
    slack: Any,
    people: dict[str, str],
    pipeline: str,
    execution_id: str | None,
) -> ChangeAuthors:
    """Everything known about who made the change; an unknown author is not an error."""
    if not execution_id:
        return ChangeAuthors()
    try:
        identities, change = find_identities(codepipeline, codecommit, pipeline, execution_id)
    except (ClientError, BotoCoreError) as exc:
        LOG.warning("could not find the change's author", extra={"error": _code(exc)})
        return ChangeAuthors()
    users: list[str] = []
    for identity in identities:
        try:
            user = slack_user_for(identity, people, slack)
        except (SlackClientError, OSError) as exc:
            LOG.warning(
                "could not look the author up in Slack", extra={"error": type(exc).__name__}
            )
            user = None
        if user and user not in users:
            users.append(user)
    return ChangeAuthors(tuple(identities), tuple(users), change)
