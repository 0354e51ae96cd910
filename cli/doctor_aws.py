"""`doctor`'s AWS checks: the stack's outputs, the Slack secret, the pipelines' manual
approval actions, the EventBridge rules and the deployed policy.

The secret's values are read to see that they are there, never shown: a detail names the
missing key, not what the others hold.
"""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from typing import TYPE_CHECKING, Any

from cli.doctor_checks import Check, count, failed, passed, skipped
from cli.target import SLACK_SECRET_PARAMETER

if TYPE_CHECKING:
    from cli.doctor import Facts

#: The stack outputs the gate is used through (template.yaml's Outputs).
REQUIRED_OUTPUTS = (
    "ApprovalTopicArn",
    "ApprovalsTableName",
    "StateMachineArn",
    "SlackInteractivityUrl",
)
#: What the sandbox must list instead (it has no stack, so no outputs): by logical id.
SANDBOX_RESOURCES = ("ApprovalTopic", "ApprovalsTable", "ApprovalStateMachine")
#: The template's EventBridge rules (SAM names them function + event).
PIPELINE_RULE = "PipelineEventsFunctionPipelineStateChange"
ALARM_RULE = "AlarmEventsFunctionAlarmStateChange"
#: The layer that ships config/policy.yaml, and the file's name in it.
POLICY_LAYER = "PolicyLayer"
POLICY_FILE = "policy.yaml"
#: A policy layer is a few kilobytes; never read more than this.
LAYER_MAX_BYTES = 10 * 1024 * 1024
DOWNLOAD_TIMEOUT = 30.0
#: How a policy problem starts when the policy could not even be read.
UNREAD = "cannot read it"
DEPLOY = "sam build && sam deploy (docs/setup.md, step 4)"

OUTPUTS = "stack outputs"
SECRET = "signing secret set"  # noqa: S105 - a check's name
PIPELINES = "pipelines notify the gate's topic"
RULES = "EventBridge rules enabled"
POLICY = "the deployed policy loads"


def check_outputs(facts: Facts) -> Check:
    """The stack exists, is not a failed one, and has every output the gate needs."""
    deployment = facts.deployment
    if deployment.stack is None:
        missing = [r for r in SANDBOX_RESOURCES if not deployment.resource(r)]
        if missing:
            return failed(
                OUTPUTS,
                f"the sandbox lists no {', '.join(missing)}",
                "restart the sandbox (approval-gate sandbox)",
            )
        return passed(OUTPUTS, f"the sandbox lists {', '.join(SANDBOX_RESOURCES)}")
    status = deployment.status or "?"
    missing = [o for o in REQUIRED_OUTPUTS if not deployment.outputs.get(o)]
    if "FAILED" in status or status in ("ROLLBACK_COMPLETE", "ROLLBACK_IN_PROGRESS"):
        return failed(
            OUTPUTS,
            f"stack {deployment.stack} is {status}",
            f"see its events (aws cloudformation describe-stack-events --stack-name "
            f"{deployment.stack}), fix the cause and deploy again: {DEPLOY}",
        )
    if missing:
        return failed(
            OUTPUTS,
            f"stack {deployment.stack} ({status}) has no output {', '.join(missing)}",
            f"deploy this version of template.yaml to the stack: {DEPLOY}",
        )
    return passed(OUTPUTS, f"stack {deployment.stack} ({status}) has {', '.join(REQUIRED_OUTPUTS)}")


def check_secret(facts: Facts) -> Check:
    """The Slack secret exists, is a JSON object, with a bot_token and a signing_secret."""
    from approval_gate.slack import SlackCredentials
    from botocore.exceptions import ClientError

    arn = facts.deployment.parameters.get(SLACK_SECRET_PARAMETER)
    create = "create it as docs/setup.md, step 3 says, and deploy with its ARN"
    if not arn:
        return failed(SECRET, f"the gate names no Slack secret ({SLACK_SECRET_PARAMETER})", create)
    put = (
        f"aws secretsmanager put-secret-value --secret-id {arn} --secret-string "
        "file://slack-secret.json (bot_token, signing_secret, team_id, app_id: docs/setup.md, "
        "step 3)"
    )
    try:
        value = facts.deployment.client("secretsmanager").get_secret_value(SecretId=arn)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "ResourceNotFoundException":
            return failed(SECRET, f"secret {arn} does not exist", create)
        raise
    text = value.get("SecretString")
    try:
        document = json.loads(text) if isinstance(text, str) else None
    except ValueError:
        document = None
    if not isinstance(document, dict):
        return failed(SECRET, f"secret {arn} is not a JSON object", put)
    try:
        facts.credentials = SlackCredentials.from_secret(document)
    except ValueError as exc:  # its words name the missing keys, never a value
        return failed(SECRET, f"secret {arn}: {exc}", put)
    return passed(SECRET, f"secret {arn} has bot_token and signing_secret")


def check_pipelines(facts: Facts) -> Check:
    """Every Manual approval action of every pipeline notifies the gate's approval topic."""
    from botocore.exceptions import ClientError

    deployment = facts.deployment
    if deployment.stack is None:
        topic = deployment.resource("ApprovalTopic")
    else:
        topic = deployment.outputs.get("ApprovalTopicArn")
    if not topic:
        return skipped(PIPELINES, "the gate's approval topic is not known", OUTPUTS)
    codepipeline = deployment.client("codepipeline")
    names = [
        summary["name"]
        for page in codepipeline.get_paginator("list_pipelines").paginate()
        for summary in page.get("pipelines", ())
    ]
    actions = 0
    wrong: list[str] = []
    for name in names:
        try:
            pipeline = codepipeline.get_pipeline(name=name)["pipeline"]
        except ClientError as exc:
            wrong.append(f"{name}: GetPipeline answered {exc.response['Error'].get('Code')}")
            continue
        for stage in pipeline.get("stages", ()):
            for action in stage.get("actions", ()):
                kind = action.get("actionTypeId") or {}
                if (kind.get("category"), kind.get("owner"), kind.get("provider")) != (
                    "Approval",
                    "AWS",
                    "Manual",
                ):
                    continue
                actions += 1
                notifies = (action.get("configuration") or {}).get("NotificationArn")
                if notifies != topic:
                    wrong.append(
                        f"{name}/{stage.get('name')}/{action.get('name')} → notifies "
                        f"{notifies or 'nothing'}"
                    )
    if wrong:
        return failed(
            PIPELINES,
            "; ".join(wrong),
            f"set each action's SNS topic to {topic} (console: Edit the pipeline → the stage "
            "→ the action → SNS topic ARN; CloudFormation: the action's "
            "Configuration.NotificationArn)",
        )
    return passed(
        PIPELINES,
        f"{count(len(names), 'pipeline')} checked: {count(actions, 'manual approval action')}, "
        f"each notifying {topic}",
    )


def check_rules(facts: Facts) -> Check:
    """The pipeline events rule is enabled; the alarm events rule is, when the policy checks
    alarms (the stack leaves it disabled without HealthCheckAlarmArns)."""
    from approval_gate.policy import policy_checks
    from botocore.exceptions import ClientError

    events = facts.deployment.client("events")
    shown: list[str] = []
    problems: list[str] = []
    fixes: list[str] = []
    for logical in (PIPELINE_RULE, ALARM_RULE):
        physical = facts.deployment.resource(logical)
        if not physical:
            problems.append(f"the gate has no rule {logical}")
            fixes.append(f"deploy this version of template.yaml: {DEPLOY}")
            continue
        bus, _, name = physical.rpartition("|")  # a rule on another bus is "bus|name"
        try:
            described = events.describe_rule(Name=name, **({"EventBusName": bus} if bus else {}))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise
            problems.append(f"the rule {name} does not exist")
            fixes.append(f"deploy this version of template.yaml: {DEPLOY}")
            continue
        state = str(described.get("State") or "?")
        shown.append(f"{name} {state}")
        if state == "ENABLED":
            continue
        if logical == PIPELINE_RULE:
            problems.append(f"{name} is {state}: pipeline events never reach the gate")
            fixes.append(f"aws events enable-rule --name {name}")
        elif facts.policy is None:
            problems.append(f"{name} is {state}; skipped whether it should be: no policy")
            fixes.append("fix “the deployed policy loads” first")
        elif alarms := policy_checks(facts.policy)[0]:
            problems.append(
                f"{name} is {state} but the policy checks alarms ({', '.join(alarms)}): open "
                "requests never hear of their changes"
            )
            fixes.append(
                "set the stack parameter HealthCheckAlarmArns to those alarms' ARNs and deploy "
                "(sam deploy --parameter-overrides HealthCheckAlarmArns=arn:…:alarm:NAME,…); "
                "the rule is enabled with it"
            )
        else:
            shown[-1] += " (the policy checks no alarms)"
    if problems:
        return failed(RULES, "; ".join(problems), "; ".join(dict.fromkeys(fixes)))
    return passed(RULES, ", ".join(shown))


def load_deployed_policy(facts: Facts) -> None:
    """The policy in force, on ``facts`` (``policy``, or ``policy_problem`` saying why not)."""
    from approval_gate.policy import PolicyError, load_policy
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        text = facts.deployment.policy_text
        if text is None:
            text = _layer_policy(facts)
        facts.policy = load_policy(text)
    except PolicyError as exc:
        facts.policy_problem = str(exc)
    except (ValueError, OSError, zipfile.BadZipFile) as exc:
        facts.policy_problem = f"{UNREAD}: {exc}"
    except (ClientError, BotoCoreError) as exc:
        from cli.errors import explain

        facts.policy_problem = f"{UNREAD}: {explain(exc)}"


def _layer_policy(facts: Facts) -> str:
    """policy.yaml of the stack's PolicyLayer version (its zip, downloaded over https)."""
    if facts.deployment.stack is None:
        raise ValueError("the sandbox did not say its policy")
    layer = facts.deployment.resource(POLICY_LAYER)
    if not layer:
        raise ValueError(f"the stack has no {POLICY_LAYER}")
    content = facts.deployment.client("lambda").get_layer_version_by_arn(Arn=layer)["Content"]
    location = str(content.get("Location") or "")
    if not location.startswith("https://"):
        raise ValueError(f"the layer {layer} has no https download location")
    with urllib.request.urlopen(location, timeout=DOWNLOAD_TIMEOUT) as response:  # noqa: S310 - https only, checked above
        data = response.read(LAYER_MAX_BYTES + 1)
    if len(data) > LAYER_MAX_BYTES:
        raise ValueError(f"the layer {layer} is larger than a policy layer can be")
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        try:
            return archive.read(POLICY_FILE).decode("utf-8")
        except KeyError:
            raise ValueError(f"the layer {layer} has no {POLICY_FILE}") from None


def check_policy(facts: Facts) -> Check:
    """What loading the policy in force said: how many rules, or the loader's error."""
    if facts.policy is None:
        problem = facts.policy_problem or "it did not load"
        if problem.startswith(UNREAD):
            fix = (
                f"let these credentials call lambda:GetLayerVersion on the stack's {POLICY_LAYER} "
                f"(a sandbox: restart it), or deploy again: {DEPLOY}"
            )
        else:
            fix = (
                "fix config/policy.yaml (the error names the key), run make test, then "
                f"deploy: {DEPLOY}"
            )
        return failed(POLICY, problem, fix)
    rules: Any = facts.policy.pipelines
    return passed(POLICY, f"{count(len(rules), 'pipeline rule')} besides the defaults")
