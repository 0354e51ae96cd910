"""What every handler builds at import: settings, logger, table and Slack access.

Kept apart from the domain logic so unit tests can build the same pieces around fakes.
"""

from __future__ import annotations

import functools
from typing import Any

from aws_lambda_powertools import Logger
from slack_sdk import WebClient

from approval_gate.policy import Policy, load_policy_file
from approval_gate.settings import SERVICE, Settings
from approval_gate.slack import SlackCredentials, SlackCredentialsSource, web_client


@functools.cache
def shipped_policy(path: str) -> Policy:
    """The policy shipped with the functions (a layer), loaded on first use and kept."""
    return load_policy_file(path)


def logger() -> Logger:
    return Logger(service=SERVICE)


class SlackAccess:
    """The Slack secret (cached by Powertools) and one Web API client per bot token."""

    def __init__(self, settings: Settings, secrets_client: Any) -> None:
        self.settings = settings
        self.credentials = SlackCredentialsSource(settings.slack_secret_arn, secrets_client)
        self._clients: dict[str, WebClient] = {}

    def client(self, credentials: SlackCredentials | None = None) -> WebClient:
        creds = credentials or self.credentials.get()
        client = self._clients.get(creds.bot_token)
        if client is None:
            client = web_client(creds.bot_token, self.settings.slack_api_url)
            self._clients = {creds.bot_token: client}
        return client
