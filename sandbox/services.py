"""The two services the sandbox fakes, as the gate sees them on the wire.

The calls the gate makes to each (Slack's Web API methods, CodePipeline's operations), the
shape of a Web API answer and the error an AWS API answers. The fakes (``fake_slack``,
``fake_codepipeline``) answer these calls and the fault model (``faults``) chooses which
of them fail; both import this module, so the fault model never imports a fake.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CODEPIPELINE_OPERATIONS", "SLACK_METHODS", "FakeAwsError", "Reply"]

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
    {"GetPipelineState", "PutApprovalResult", "ListActionExecutions", "GetPipelineExecution"}
)

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
