"""`approval-gate pending`: the requests waiting on people now (open or held).

CodePipeline lets an approval wait at most 7 days, so the audit index over the last 8
days holds every open one. ``may_decide`` is who may act now: the users and groups of the
steps that take approvals now (and the escalation approvers once escalated); for a held
request, the policy's ``freeze_override`` approvers when a "deploy now" is offered.
``permalink`` is the Slack message's link, asked of Slack with the bot token from the
gate's Slack secret; null when there is no message or Slack cannot say.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any, TextIO

from approval_gate.clock import iso
from approval_gate.hold_messages import may_override
from approval_gate.records import PENDING, Approval
from approval_gate.steps import approvers_of, open_steps

from cli.output import Column, write_rows
from cli.records import approvals
from cli.target import Target

#: How far back open requests can be: CodePipeline expires an approval within 7 days.
LOOKBACK = timedelta(days=8)
#: Slack errors after which no further permalink is asked for.
_FATAL_SLACK_ERRORS = {"invalid_auth", "not_authed", "account_inactive", "token_revoked"}
#: How long one permalink request may take.
SLACK_TIMEOUT = 10

FIELDS = (
    "pipeline",
    "stage",
    "action",
    "approval_id",
    "status",
    "requested_at",
    "age_s",
    "deadline_at",
    "may_decide",
    "reminders",
    "held_until",
    "permalink",
)


def _who(value: Any) -> str:
    if not value:
        return "-"
    return ", ".join([*value["users"], *(f"@{g}" for g in value["groups"])]) or "-"


COLUMNS = (
    Column("pipeline", 20),
    Column("stage", 12),
    Column("action", 16),
    Column("approval_id", 32),
    Column("status", 7),
    Column("requested_at", 24),
    Column("age_s", 7),
    Column("deadline_at", 24),
    Column("may_decide", 26, _who),
    Column("reminders", 9),
    Column("held_until", 24),
    Column("permalink", 0),
)


def may_decide(approval: Approval) -> dict[str, list[str]]:
    """Who may act on the request now: ``{users, groups}`` (see the module's docstring)."""
    rules = approval.rules
    if approval.status != PENDING:
        override = rules.freeze_override if may_override(approval) else None
        listed = override.approvers if override else None
        return {
            "users": list(listed.users) if listed else [],
            "groups": list(listed.groups) if listed else [],
        }
    if rules.steps:
        users, groups = approvers_of(open_steps(rules, approval.steps))
    else:
        users, groups = rules.approvers.users, rules.approvers.groups
    every_user, every_group = list(users), list(groups)
    extra = rules.escalation.approvers
    if approval.escalated and extra is not None:
        every_user += [u for u in extra.users if u not in every_user]
        every_group += [g for g in extra.groups if g not in every_group]
    return {"users": every_user, "groups": every_group}


class Permalinks:
    """The Slack messages' links, asked with the gate's bot token (never shown); after a
    failure that says so once on stderr, and stops asking when Slack cannot answer at all."""

    def __init__(self, target: Target, err: TextIO) -> None:
        self._target = target
        self._err = err
        self._client: Any = None
        self._off = False
        self._warned = False

    def _warn(self, why: str) -> None:
        if not self._warned:
            self._err.write(f"approval-gate pending: no Slack permalinks ({why})\n")
            self._warned = True

    def _slack(self) -> Any:
        if self._client is None:
            from approval_gate.slack import SlackCredentials
            from slack_sdk import WebClient

            if not self._target.slack_secret_arn or self._target.secrets is None:
                raise LookupError("the gate's Slack secret is not known")
            try:
                secret = self._target.secrets.get_secret_value(
                    SecretId=self._target.slack_secret_arn
                )
                credentials = SlackCredentials.from_secret(json.loads(secret["SecretString"]))
            except Exception as exc:
                raise LookupError(
                    f"the Slack secret could not be read: {type(exc).__name__}"
                ) from None
            options: dict[str, Any] = {"token": credentials.bot_token, "timeout": SLACK_TIMEOUT}
            if self._target.slack_api_url:
                options["base_url"] = self._target.slack_api_url
            self._client = WebClient(**options)
        return self._client

    def link(self, approval: Approval) -> str | None:
        if self._off or not approval.channel or not approval.message_ts:
            return None
        from slack_sdk.errors import SlackApiError

        try:
            answer = self._slack().chat_getPermalink(
                channel=approval.channel, message_ts=approval.message_ts
            )
        except LookupError as exc:
            self._off = True
            self._warn(str(exc))
            return None
        except SlackApiError as exc:
            error = str(exc.response.get("error", "")) if exc.response is not None else ""
            self._off = error in _FATAL_SLACK_ERRORS
            self._warn(f"Slack answered {error or 'an error'}")
            return None
        except Exception as exc:
            self._off = True
            self._warn(f"Slack could not be reached: {type(exc).__name__}")
            return None
        link = answer.get("permalink")
        return str(link) if link else None


def pending_rows(target: Target, now: datetime, err: TextIO) -> Iterator[dict[str, Any]]:
    """The open and held requests, oldest first."""
    links = Permalinks(target, err)
    for approval in approvals(target, now - LOOKBACK, now, open_only=True):
        yield {
            "pipeline": approval.pipeline,
            "stage": approval.stage,
            "action": approval.action,
            "approval_id": approval.approval_id,
            "status": approval.status,
            "requested_at": iso(approval.requested_at),
            "age_s": max(0, int((now - approval.requested_at).total_seconds())),
            "deadline_at": iso(approval.deadline_at),
            "may_decide": may_decide(approval),
            "reminders": approval.reminders,
            "held_until": iso(approval.held.until)
            if approval.held and approval.status != PENDING
            else None,
            "permalink": links.link(approval),
        }


def run_pending(target: Target, *, now: datetime, fmt: str, out: TextIO, err: TextIO) -> int:
    write_rows(pending_rows(target, now, err), fmt, out, COLUMNS, FIELDS)
    return 0
