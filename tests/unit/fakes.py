"""Builders and stand-ins shared by the unit tests: a fixed clock, approvals, and recording
fakes for Slack's Web API and Step Functions."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from approval_gate.policy import Approvers, Rules
from approval_gate.store import Approval
from botocore.exceptions import ClientError
from slack_sdk.errors import SlackApiError

REPO = Path(__file__).resolve().parents[2]

#: "Now" for every test: time is a parameter, never the wall clock.
FIXED = datetime(2026, 12, 1, 17, 0, tzinfo=UTC)
TOKEN = "5f2c8e1a-9b3d-4c7e-8a1f-2d6b9e0c4a71"
#: Step Functions task tokens are long opaque strings (up to 2,048 characters).
TASK_TOKEN = "AQCEAAAAKgAAAAMAAAAAAAAAAQ" + "tAsKtOkEn" * 100
APPROVAL_ID = "0123456789abcdef0123456789abcdef"
EXECUTION_ID = "b7a0e5f2-3c41-4d8e-9a6b-1f2e3d4c5b6a"


def clock_at(moment: datetime) -> Any:
    return lambda: moment


def make_rules(**overrides: Any) -> Rules:
    values: dict[str, Any] = {
        "channel": "C0DEPLOYS",
        "approvers": Approvers(users=("U0ALICE", "U0BOB")),
        "deadline": 3600,
    }
    values.update(overrides)
    return Rules(**values)


def make_approval(**overrides: Any) -> Approval:
    """An open request made at FIXED, decided by policy one hour later."""
    values: dict[str, Any] = {
        "approval_id": APPROVAL_ID,
        "pipeline": "prod-web",
        "stage": "Approve",
        "action": "ProductionGate",
        "pipeline_execution_id": EXECUTION_ID,
        "region": "us-east-2",
        "token": TOKEN,
        "rules": make_rules(),
        "requested_at": FIXED,
        "deadline_at": FIXED + timedelta(hours=1),
        "expires": datetime(2026, 12, 4, 18, 0, tzinfo=UTC),
        "custom_data": "Release 1.42.0: check the canary dashboard before approving.",
        "external_entity_link": "https://github.com/example-org/web/compare/v1.41.0...v1.42.0",
        "console_link": "https://console.aws.amazon.com/codepipeline/home?region=us-east-2#/view/prod-web",
    }
    values.update(overrides)
    return Approval(**values)


# --------------------------------------------------------------------------- DynamoDB


def approvals_table_properties() -> dict[str, Any]:
    """The ApprovalsTable properties of template.yaml (CloudFormation tags read as None)."""

    class TemplateLoader(yaml.SafeLoader):
        pass

    TemplateLoader.add_multi_constructor("!", lambda loader, suffix, node: None)
    with open(REPO / "template.yaml", encoding="utf-8") as handle:
        template = yaml.load(handle, Loader=TemplateLoader)  # noqa: S506 - SafeLoader subclass
    properties: dict[str, Any] = template["Resources"]["ApprovalsTable"]["Properties"]
    return properties


def create_approvals_table(client: Any, name: str) -> None:
    """The approvals table exactly as template.yaml declares it: keys, index, TTL."""
    properties = approvals_table_properties()
    client.create_table(
        TableName=name,
        BillingMode=properties["BillingMode"],
        AttributeDefinitions=properties["AttributeDefinitions"],
        KeySchema=properties["KeySchema"],
        GlobalSecondaryIndexes=properties["GlobalSecondaryIndexes"],
    )
    ttl = properties["TimeToLiveSpecification"]
    client.update_time_to_live(
        TableName=name,
        TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": ttl["Enabled"]},
    )


class SerialisedClient:
    """A boto3 client whose calls run one at a time.

    moto's DynamoDB conditional writes are not atomic across threads (DESIGN §5, patch 7:
    20 racing conditional UpdateItems gave two winners in 6 of 40 trials), while real
    DynamoDB serialises writes to one item. Without this lock a race test could fail on
    moto's behalf, or pass by luck; with it, exactly one winner proves the store's
    condition expression, which is what we mean to test.
    """

    def __init__(self, client: Any) -> None:
        self._client = client
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if not callable(attribute):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            with self._lock:
                return attribute(*args, **kwargs)

        return call


# --------------------------------------------------------------------------- Slack, SFN


class RecordingSlack:
    """The slack_sdk WebClient methods the gate calls, recorded; answers like Slack."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self._ts = 1796144402

    def _record(self, method: str, kwargs: dict[str, Any]) -> None:
        self.calls.append((method, kwargs))

    def chat_postMessage(self, **kwargs: Any) -> dict[str, Any]:
        self._record("chat_postMessage", kwargs)
        self._ts += 1
        return {"ok": True, "channel": kwargs["channel"], "ts": f"{self._ts}.000100"}

    def chat_update(self, **kwargs: Any) -> dict[str, Any]:
        self._record("chat_update", kwargs)
        return {"ok": True, "channel": kwargs["channel"], "ts": kwargs["ts"]}

    def chat_postEphemeral(self, **kwargs: Any) -> dict[str, Any]:
        self._record("chat_postEphemeral", kwargs)
        return {"ok": True, "message_ts": "1796144999.000200"}

    def chat_getPermalink(self, **kwargs: Any) -> dict[str, Any]:
        self._record("chat_getPermalink", kwargs)
        ts = str(kwargs["message_ts"]).replace(".", "")
        return {
            "ok": True,
            "permalink": f"https://example.slack.com/archives/{kwargs['channel']}/p{ts}",
        }

    def methods(self) -> list[str]:
        return [method for method, _ in self.calls]


class RecordingSfn:
    """Step Functions' SendTaskSuccess, recorded; optionally failing with an error code.

    As on AWS, a task token answers once: a second SendTaskSuccess with it fails with
    TaskTimedOut (and is recorded in `late`, not in `task_successes`).
    """

    def __init__(self, error_code: str | None = None) -> None:
        self.error_code = error_code
        self.task_successes: list[dict[str, Any]] = []
        self.late: list[dict[str, Any]] = []

    def send_task_success(self, *, taskToken: str, output: str) -> dict[str, Any]:
        call = {"taskToken": taskToken, "output": output}
        if self.error_code:
            self.task_successes.append(call)
            raise ClientError(
                {"Error": {"Code": self.error_code, "Message": "Task Timed Out"}},
                "SendTaskSuccess",
            )
        if any(done["taskToken"] == taskToken for done in self.task_successes):
            self.late.append(call)
            raise ClientError(
                {"Error": {"Code": "TaskTimedOut", "Message": "Task Timed Out"}},
                "SendTaskSuccess",
            )
        self.task_successes.append(call)
        return {}


class ActionExecutions:
    """ListActionExecutions of one pipeline execution: the approval action's execution
    (status and summary as given) among another action's, or an error."""

    def __init__(self, status: str, summary: str | None, error: str | None = None) -> None:
        self.status = status
        self.summary = summary
        self.error = error
        self.calls: list[dict[str, Any]] = []

    def list_action_executions(self, **kwargs: Any) -> dict[str, Any]:
        self.calls.append(kwargs)
        if self.error:
            raise ClientError(
                {"Error": {"Code": self.error, "Message": "no"}}, "ListActionExecutions"
            )
        result: dict[str, Any] = {"externalExecutionId": TOKEN}
        if self.summary is not None:
            result["externalExecutionSummary"] = self.summary
        return {
            "actionExecutionDetails": [
                {
                    "pipelineExecutionId": EXECUTION_ID,
                    "stageName": "Approve",
                    "actionName": "ProductionGate",
                    "status": self.status,
                    "output": {"executionResult": result},
                },
                {
                    "pipelineExecutionId": EXECUTION_ID,
                    "stageName": "Build",
                    "actionName": "Build",
                    "status": "Succeeded",
                    "output": {"executionResult": {}},
                },
            ]
        }


class GroupSlack:
    """usergroups.users.list: the members given, or Slack's error for every group."""

    def __init__(self, members: dict[str, list[str]] | None = None, error: str = "") -> None:
        self.members = members or {}
        self.error = error
        self.calls = 0

    def usergroups_users_list(self, *, usergroup: str) -> dict[str, Any]:
        self.calls += 1
        if self.error:
            raise SlackApiError(self.error, {"ok": False, "error": self.error})
        return {"ok": True, "users": self.members.get(usergroup, [])}
