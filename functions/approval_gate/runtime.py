"""What every handler builds at import: settings, logger, table and Slack access.

Kept apart from the domain logic so unit tests can build the same pieces around fakes.
"""

from __future__ import annotations

import time
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from slack_sdk import WebClient

from approval_gate.settings import SERVICE, Settings
from approval_gate.slack import SlackCredentials, SlackCredentialsSource, web_client
from approval_gate.store import ApprovalStore


def logger() -> Logger:
    """The function's logger. Handlers decorate with `inject_lambda_context(clear_state=True)`.

    A handler labels its invocation's lines with `append_keys(approval_id=...)`, so every
    line, the domain's own included, names the approval. Those keys outlive the invocation
    in a warm container: without `clear_state`, the next one (a forged request refused
    before it is parsed, say) would log the previous approval's id. Keys passed per call
    (`extra=`) would not reach the lines the domain logs, hence clearing at each start.
    """
    return Logger(service=SERVICE)


def approval_store(settings: Settings) -> ApprovalStore:
    """The approvals table, through the function's own DynamoDB client."""
    return ApprovalStore(settings.table_name, boto3.client("dynamodb"), settings.retention_days)


#: CloudWatch namespace of the gate's own metrics (EMF log lines; template alarms on them).
METRICS_NAMESPACE = "ApprovalGate"


def metrics() -> Metrics:
    return Metrics(namespace=METRICS_NAMESPACE, service=SERVICE)


#: Time assumed left when no Lambda context says (unit tests, scripts).
DEFAULT_SECONDS_LEFT = 10.0


class SlackAccess:
    """The Slack secret (cached by Powertools) and one Web API client per bot token.

    `invocation(context)` at the start of each invocation tells the client how long the
    function has left, so a Retry-After is only waited out when there is time for it.
    """

    def __init__(self, settings: Settings, secrets_client: Any) -> None:
        self.settings = settings
        self.credentials = SlackCredentialsSource(settings.slack_secret_arn, secrets_client)
        self._clients: dict[str, WebClient] = {}
        self._ends_at = time.monotonic() + DEFAULT_SECONDS_LEFT

    def invocation(self, context: Any) -> None:
        remaining = getattr(context, "get_remaining_time_in_millis", None)
        seconds = remaining() / 1000 if callable(remaining) else DEFAULT_SECONDS_LEFT
        self._ends_at = time.monotonic() + seconds

    def seconds_left(self) -> float:
        return self._ends_at - time.monotonic()

    def client(self, credentials: SlackCredentials | None = None) -> WebClient:
        creds = credentials or self.credentials.get()
        client = self._clients.get(creds.bot_token)
        if client is None:
            client = web_client(
                creds.bot_token,
                self.settings.slack_api_url,
                timeout=self.settings.slack_timeout,
                seconds_left=self.seconds_left,
            )
            self._clients = {creds.bot_token: client}
        return client


def slack_access(settings: Settings) -> SlackAccess:
    """Slack access with the secret read through the function's own Secrets Manager client."""
    return SlackAccess(settings, boto3.client("secretsmanager"))
