"""Where the gate runs: a deployed stack, or the local sandbox, as the clients the
operations commands read through.

``--stack NAME [--region R] [--profile P]``: a boto3 session, the stack's outputs (the
table) and parameters (the Slack secret) from CloudFormation. ``--sandbox URL``: the
sandbox's ``GET /_sandbox/aws`` (DESIGN §8.6) names its AWS endpoint, its resources, the
template parameters and the fake Slack's Web API; the clients get fake credentials.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any

from cli.errors import CliError

#: The stack output that names the approvals table (template.yaml).
TABLE_OUTPUT = "ApprovalsTableName"
#: The template's logical id of the table (the sandbox lists resources by it).
TABLE_RESOURCE = "ApprovalsTable"
#: The template parameter that names the Slack secret.
SLACK_SECRET_PARAMETER = "SlackSecretArn"  # noqa: S105 - a parameter name, no secret
#: How long the sandbox may take to say where its AWS APIs are.
SANDBOX_TIMEOUT = 10.0


@dataclass(frozen=True)
class Target:
    """The gate to read: its approvals table, and where its Slack secret lives."""

    dynamodb: Any
    table: str
    secrets: Any = None
    slack_secret_arn: str | None = None
    #: The Slack Web API base URL; None: Slack itself.
    slack_api_url: str | None = None
    #: Items per index page (None: DynamoDB's 1 MB pages); tests make pages small.
    page_size: int | None = None


def from_stack(stack: str, *, region: str | None, profile: str | None) -> Target:
    """The gate the CloudFormation stack ``stack`` deployed."""
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    cloudformation = session.client("cloudformation")
    found = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    if not found:
        raise CliError(f"stack {stack} does not exist (check --stack and --region)")
    outputs = {o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", ())}
    parameters = {
        p["ParameterKey"]: p.get("ParameterValue", "") for p in found[0].get("Parameters", ())
    }
    if TABLE_OUTPUT not in outputs:
        raise CliError(f"stack {stack} has no output {TABLE_OUTPUT}: is it an Approval Gate?")
    return Target(
        dynamodb=session.client("dynamodb"),
        table=outputs[TABLE_OUTPUT],
        secrets=session.client("secretsmanager"),
        slack_secret_arn=parameters.get(SLACK_SECRET_PARAMETER) or None,
    )


def sandbox_aws(url: str) -> dict[str, Any]:
    """The sandbox's ``GET /_sandbox/aws`` answer."""
    address = url.rstrip("/") + "/_sandbox/aws"
    if not address.startswith(("http://", "https://")):
        raise CliError(f"--sandbox wants an http:// URL, not {url!r}")
    try:
        with urllib.request.urlopen(address, timeout=SANDBOX_TIMEOUT) as response:  # noqa: S310 - http(s) only, checked above
            answer = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise CliError(f"the sandbox at {url} answered HTTP {exc.code} for /_sandbox/aws") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise CliError(f"the sandbox at {url} does not answer: {reason}") from None
    except ValueError:
        raise CliError(f"the sandbox at {url} did not answer JSON for /_sandbox/aws") from None
    if not isinstance(answer, dict) or "endpoint_url" not in answer:
        raise CliError(f"the sandbox at {url} did not say where its AWS APIs are")
    return answer


def from_sandbox(url: str) -> Target:
    """The gate the sandbox at ``url`` runs."""
    import boto3

    aws = sandbox_aws(url)
    session = boto3.Session(
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 - moto's fake credentials
        region_name=str(aws.get("region") or "us-east-1"),
    )
    endpoint = str(aws["endpoint_url"])
    table = (aws.get("resources") or {}).get(TABLE_RESOURCE)
    if not table:
        raise CliError(f"the sandbox at {url} lists no {TABLE_RESOURCE}")
    slack = aws.get("slack_api_url")
    return Target(
        dynamodb=session.client("dynamodb", endpoint_url=endpoint),
        table=str(table),
        secrets=session.client("secretsmanager", endpoint_url=endpoint),
        slack_secret_arn=(aws.get("parameters") or {}).get(SLACK_SECRET_PARAMETER) or None,
        slack_api_url=(str(slack).rstrip("/") + "/") if slack else None,
    )
