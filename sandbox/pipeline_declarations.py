"""How the fake CodePipeline's pipelines are declared: GetPipeline's and ListPipelines' answers.

A pipeline of the sandbox exists once it has a run, and is declared as its newest run shows
it: a Source stage (one action per ``sources`` entry, or a CodeCommit action reading
``{pipeline}-repo``), a Build stage (CodeBuild), the run's approval stage with its Manual
approval action, and a Deploy stage (CodeDeploy). The approval action's
``configuration.NotificationArn`` is the topic it notifies: the run's ``notification_arn``
when it gave one, the gate's approval topic otherwise. Shapes follow botocore's
``PipelineDeclaration`` and ``PipelineSummary`` (tests/sandbox/botocore_shapes.py checks).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Protocol

from sandbox.sources import CONNECTION_PROVIDERS, Source, connection_arn


class DeclaredRun(Protocol):
    """What a declaration reads of a run (``sandbox.fake_codepipeline.Run``)."""

    pipeline: str
    stage: str
    action: str
    sources: list[Source]
    custom_data: str | None
    external_entity_link: str | None
    notification_arn: str | None


__all__ = ["NOTIFICATION_ARN", "declaration", "metadata", "summary", "topic_arn"]

#: An SNS topic ARN, as a Manual approval action's NotificationArn takes it.
NOTIFICATION_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}$")
#: ActionConfigurationValue's maximum length (botocore's model).
_CONFIGURATION_VALUE_MAX = 1000
PIPELINE_TYPE = "V2"
EXECUTION_MODE = "SUPERSEDED"
VERSION = 1


def topic_arn(value: Any) -> str | None:
    """A run's ``notification_arn``, checked: None when not given; ValueError when it is
    not an SNS topic ARN."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or not NOTIFICATION_ARN.match(value):
        raise ValueError("notification_arn must be an SNS topic ARN")
    return value


def _action(
    name: str,
    category: str,
    provider: str,
    configuration: dict[str, str],
    *,
    inputs: tuple[str, ...] = (),
    outputs: tuple[str, ...] = (),
) -> dict[str, Any]:
    action: dict[str, Any] = {
        "name": name,
        "actionTypeId": {
            "category": category,
            "owner": "AWS",
            "provider": provider,
            "version": "1",
        },
        "runOrder": 1,
        "configuration": {k: v[:_CONFIGURATION_VALUE_MAX] for k, v in configuration.items()},
    }
    if inputs:
        action["inputArtifacts"] = [{"name": artifact} for artifact in inputs]
    if outputs:
        action["outputArtifacts"] = [{"name": artifact} for artifact in outputs]
    return action


def _source_actions(run: DeclaredRun, region: str, account: str) -> list[dict[str, Any]]:
    if not run.sources:
        configuration = {
            "RepositoryName": f"{run.pipeline}-repo",
            "BranchName": "main",
            "PollForSourceChanges": "false",
        }
        return [
            _action("Source", "Source", "CodeCommit", configuration, outputs=("SourceArtifact",))
        ]
    actions = []
    for index, source in enumerate(run.sources):
        artifact = "SourceArtifact" if index == 0 else f"SourceArtifact{index + 1}"
        if source.provider in CONNECTION_PROVIDERS:
            provider = "CodeStarSourceConnection"
            configuration = {
                "ConnectionArn": connection_arn(region, account, source.provider),
                "FullRepositoryId": source.repository,
                "BranchName": source.branch,
            }
        elif source.provider == "S3":
            provider = "S3"
            bucket, _, key = source.repository.partition("/")
            configuration = {"S3Bucket": bucket, "S3ObjectKey": key or "source.zip"}
        elif source.provider == "ECR":
            provider = "ECR"
            configuration = {"RepositoryName": source.repository, "ImageTag": "latest"}
        else:
            provider = "CodeCommit"
            configuration = {"RepositoryName": source.repository, "BranchName": source.branch}
        actions.append(
            _action(source.action, "Source", provider, configuration, outputs=(artifact,))
        )
    return actions


def declaration(
    run: DeclaredRun, *, gate_topic: str | None, region: str, account: str
) -> dict[str, Any]:
    """GetPipeline's ``pipeline``: the pipeline as its newest run (``run``) shows it."""
    approval: dict[str, str] = {}
    notifies = run.notification_arn or gate_topic
    if notifies:
        approval["NotificationArn"] = notifies
    if run.custom_data:
        approval["CustomData"] = str(run.custom_data)
    if run.external_entity_link:
        approval["ExternalEntityLink"] = str(run.external_entity_link)
    stages = [
        {"name": "Source", "actions": _source_actions(run, region, account)},
        {
            "name": "Build",
            "actions": [
                _action(
                    "Build",
                    "Build",
                    "CodeBuild",
                    {"ProjectName": f"{run.pipeline}-build"},
                    inputs=("SourceArtifact",),
                    outputs=("BuildArtifact",),
                )
            ],
        },
        {"name": run.stage, "actions": [_action(run.action, "Approval", "Manual", approval)]},
        {
            "name": "Deploy",
            "actions": [
                _action(
                    "Deploy",
                    "Deploy",
                    "CodeDeploy",
                    {
                        "ApplicationName": run.pipeline,
                        "DeploymentGroupName": f"{run.pipeline}-production",
                    },
                    inputs=("BuildArtifact",),
                )
            ],
        },
    ]
    return {
        "name": run.pipeline,
        "roleArn": f"arn:aws:iam::{account}:role/{run.pipeline}-pipeline",
        "artifactStore": {"type": "S3", "location": f"codepipeline-{region}-{account}"},
        "stages": stages,
        "version": VERSION,
        "executionMode": EXECUTION_MODE,
        "pipelineType": PIPELINE_TYPE,
    }


def metadata(
    name: str, created: datetime, updated: datetime, region: str, account: str
) -> dict[str, Any]:
    """GetPipeline's ``metadata``."""
    return {
        "pipelineArn": f"arn:aws:codepipeline:{region}:{account}:{name}",
        "created": created.timestamp(),
        "updated": updated.timestamp(),
    }


def summary(name: str, created: datetime, updated: datetime) -> dict[str, Any]:
    """One of ListPipelines' ``pipelines``."""
    return {
        "name": name,
        "version": VERSION,
        "pipelineType": PIPELINE_TYPE,
        "executionMode": EXECUTION_MODE,
        "created": created.timestamp(),
        "updated": updated.timestamp(),
    }
