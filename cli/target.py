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
from dataclasses import dataclass, field
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
    deployment = describe_stack(stack, region=region, profile=profile)
    table = deployment.outputs.get(TABLE_OUTPUT)
    if not table:
        raise CliError(f"stack {stack} has no output {TABLE_OUTPUT}: is it an Approval Gate?")
    return _target(deployment, table)


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
    deployment = describe_sandbox(url)
    table = deployment.resource(TABLE_RESOURCE)
    if not table:
        raise CliError(f"the sandbox at {url} lists no {TABLE_RESOURCE}")
    return _target(deployment, table)


def _target(deployment: Deployment, table: str) -> Target:
    """What the listing commands read of a deployment: its table and its Slack secret."""
    return Target(
        dynamodb=deployment.client("dynamodb"),
        table=table,
        secrets=deployment.client("secretsmanager"),
        slack_secret_arn=deployment.parameters.get(SLACK_SECRET_PARAMETER) or None,
        slack_api_url=deployment.slack_api_url,
    )


# --------------------------------------------------------------------------- what doctor reads


@dataclass
class Deployment:
    """A gate as deployed, for `doctor`: clients on its account (or the sandbox's
    endpoint), the stack's outputs and parameters, its resources by logical id and where
    its policy is. Nothing here holds a Slack secret."""

    #: ``stack NAME`` or ``sandbox URL``: what the messages call it.
    where: str
    session: Any
    #: The sandbox's AWS endpoint; None: AWS itself.
    endpoint_url: str | None
    #: The template parameters as deployed (SlackSecretArn, HealthCheckAlarmArns...).
    parameters: dict[str, str]
    #: The stack's outputs; empty for the sandbox (it has no stack).
    outputs: dict[str, str] = field(default_factory=dict)
    #: The stack's status (CREATE_COMPLETE...); None for the sandbox.
    status: str | None = None
    #: The stack's name; None for the sandbox.
    stack: str | None = None
    #: The Slack Web API base URL; None: Slack itself.
    slack_api_url: str | None = None
    #: The policy document in force (the sandbox says it); None: read the PolicyLayer.
    policy_text: str | None = None
    #: Logical id -> physical id; read from CloudFormation when first asked for a stack.
    resources: dict[str, str] | None = None

    def client(self, service: str) -> Any:
        """A boto3 client of ``service`` where the gate runs."""
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def all_resources(self) -> dict[str, str]:
        """Every resource's physical id by logical id (ListStackResources, every page)."""
        if self.resources is None:
            pages = self.client("cloudformation").get_paginator("list_stack_resources")
            self.resources = {
                summary["LogicalResourceId"]: summary.get("PhysicalResourceId", "")
                for page in pages.paginate(StackName=self.stack)
                for summary in page["StackResourceSummaries"]
            }
        return self.resources

    def resource(self, logical_id: str) -> str | None:
        """One resource's physical id, or None when the gate has none by that name."""
        return self.all_resources().get(logical_id) or None


def describe_stack(stack: str, *, region: str | None, profile: str | None) -> Deployment:
    """The stack ``stack`` as deployed (DescribeStacks); ClientError when there is none."""
    import boto3

    session = boto3.Session(profile_name=profile, region_name=region)
    found = session.client("cloudformation").describe_stacks(StackName=stack)["Stacks"]
    if not found:
        raise CliError(f"stack {stack} does not exist (check --stack and --region)")
    return Deployment(
        where=f"stack {stack}",
        session=session,
        endpoint_url=None,
        parameters={
            p["ParameterKey"]: p.get("ParameterValue", "") for p in found[0].get("Parameters", ())
        },
        outputs={o["OutputKey"]: o["OutputValue"] for o in found[0].get("Outputs", ())},
        status=found[0].get("StackStatus"),
        stack=stack,
    )


def describe_sandbox(url: str) -> Deployment:
    """The gate the sandbox at ``url`` runs, as its ``GET /_sandbox/aws`` says."""
    import boto3

    aws = sandbox_aws(url)
    session = boto3.Session(
        aws_access_key_id="sandbox",
        aws_secret_access_key="sandbox",  # noqa: S106 - moto's fake credentials
        region_name=str(aws.get("region") or "us-east-1"),
    )
    slack = aws.get("slack_api_url")
    policy = aws.get("policy")
    return Deployment(
        where=f"sandbox {url}",
        session=session,
        endpoint_url=str(aws["endpoint_url"]),
        parameters={str(k): str(v) for k, v in (aws.get("parameters") or {}).items()},
        slack_api_url=(str(slack).rstrip("/") + "/") if slack else None,
        policy_text=policy if isinstance(policy, str) else None,
        resources={str(k): str(v) for k, v in (aws.get("resources") or {}).items()},
    )
