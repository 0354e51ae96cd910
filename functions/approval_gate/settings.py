"""Environment variable names, defined once, and the settings a handler reads at import."""

import os
from collections.abc import Mapping
from typing import NamedTuple, Self

TABLE_NAME = "APPROVAL_GATE_TABLE_NAME"
STATE_MACHINE_ARN = "APPROVAL_GATE_STATE_MACHINE_ARN"
SLACK_SECRET_ARN = "APPROVAL_GATE_SLACK_SECRET_ARN"  # noqa: S105 - a variable name
SLACK_API_URL = "APPROVAL_GATE_SLACK_API_URL"
POLICY_FILE = "APPROVAL_GATE_POLICY_FILE"
RETENTION_DAYS = "APPROVAL_GATE_RETENTION_DAYS"
SLACK_TIMEOUT = "APPROVAL_GATE_SLACK_TIMEOUT"
FALLBACK_TOPIC_ARN = "APPROVAL_GATE_FALLBACK_TOPIC_ARN"

DEFAULT_SLACK_API_URL = "https://slack.com/api/"
DEFAULT_POLICY_FILE = "/opt/policy.yaml"
#: Slack's Web API answers in well under a second; never wait 30 s (the SDK's default).
DEFAULT_SLACK_TIMEOUT = 5.0


class Settings(NamedTuple):
    """A function's configuration, read once from its environment at import.

    A NamedTuple, as the records on the click's import path are: immutable, compared by
    value, and built without the ~1 ms of generated code a frozen dataclass costs every
    cold start (docs/performance.md, "Cold start")."""

    table_name: str = ""
    state_machine_arn: str = ""
    slack_secret_arn: str = ""
    slack_api_url: str = DEFAULT_SLACK_API_URL
    policy_file: str = DEFAULT_POLICY_FILE
    retention_days: int = 400
    slack_timeout: float = DEFAULT_SLACK_TIMEOUT
    #: Where a request goes when Slack cannot be asked (functions/ask_approvers).
    fallback_topic_arn: str = ""

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Self:
        env = os.environ if environ is None else environ
        return cls(
            table_name=env.get(TABLE_NAME, ""),
            state_machine_arn=env.get(STATE_MACHINE_ARN, ""),
            slack_secret_arn=env.get(SLACK_SECRET_ARN, ""),
            slack_api_url=env.get(SLACK_API_URL, DEFAULT_SLACK_API_URL),
            policy_file=env.get(POLICY_FILE, DEFAULT_POLICY_FILE),
            retention_days=int(env.get(RETENTION_DAYS, "400")),
            slack_timeout=float(env.get(SLACK_TIMEOUT, str(DEFAULT_SLACK_TIMEOUT))),
            fallback_topic_arn=env.get(FALLBACK_TOPIC_ARN, ""),
        )


#: The Powertools service name, and so the logger name, of every function.
SERVICE = "approval-gate"
