"""The two services the sandbox fakes, as the gate sees them on the wire.

The calls the gate makes to each (Slack's Web API methods, CodePipeline's operations), the
shape of a Web API answer and the error an AWS API answers. The fakes (``fake_slack``,
``fake_codepipeline``) answer these calls and the fault model (``faults``) chooses which
of them fail; both import this module, so the fault model never imports a fake.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "CODEPIPELINE_OPERATIONS",
    "DYNAMODB_OPERATIONS",
    "LAMBDA_OPERATIONS",
    "SLACK_METHODS",
    "STEPFUNCTIONS_OPERATIONS",
    "FakeAwsError",
    "Reply",
]

#: The Web API methods the fake Slack answers.
SLACK_METHODS = frozenset(
    {
        "chat.postMessage",
        "chat.update",
        "chat.postEphemeral",
        "chat.getPermalink",
        "views.open",
        "usergroups.users.list",
        "users.info",
        "users.lookupByEmail",
        "auth.test",
        # Called only after a post whose answer was lost, to find the request posted.
        "conversations.history",
        # Not called by the gate: for people and tools that look the workspace up.
        "conversations.list",
        "conversations.info",
    }
)

#: The CodePipeline operations the fake answers (``GetCommit`` is CodeCommit's).
CODEPIPELINE_OPERATIONS = frozenset(
    {
        "GetPipelineState",
        "PutApprovalResult",
        "ListActionExecutions",
        "GetPipelineExecution",
        # Not called by the gate: for the doctor (which topic each approval notifies).
        "ListPipelines",
        "GetPipeline",
    }
)

#: The DynamoDB operations a fault may name: the data-plane calls (moto answers them; the
#: fault model fails the gate's own).
DYNAMODB_OPERATIONS = frozenset(
    {
        "GetItem",
        "PutItem",
        "UpdateItem",
        "DeleteItem",
        "Query",
        "Scan",
        "BatchGetItem",
        "BatchWriteItem",
        "TransactGetItems",
        "TransactWriteItems",
    }
)

#: The Step Functions operations a fault may name.
STEPFUNCTIONS_OPERATIONS = frozenset(
    {
        "StartExecution",
        "DescribeExecution",
        "SendTaskSuccess",
        "SendTaskFailure",
        "SendTaskHeartbeat",
        "StopExecution",
    }
)

#: Lambda's one operation a fault may name: every invocation of a function.
LAMBDA_OPERATIONS = frozenset({"Invoke"})

#: A Web API answer: ``(HTTP status, extra headers, JSON body)``.
Reply = tuple[int, dict[str, str], dict[str, Any]]


class FakeAwsError(Exception):
    """An error an AWS API (CodePipeline, CodeCommit) would answer, by its error code.

    Patch 4 turns ``code`` into the error code botocore raises on the client side.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
