"""The operations commands' one-line errors: what went wrong, never a traceback.

Each failure a user can cause or meet (no credentials, an unknown stack, an older stack
without the audit index, a sandbox that does not answer, a malformed time) becomes one
line on stderr and exit code 2. AWS and the sandbox never see a Slack token, so their
messages can be shown as they are.
"""

from __future__ import annotations

from approval_gate.approval_items import AUDIT_INDEX
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    NoCredentialsError,
    NoRegionError,
    ProfileNotFound,
)

#: The exit code of every error this module explains.
EXIT_ERROR = 2


class CliError(Exception):
    """A failure the command explains in one line (its message)."""


def explain(exc: BaseException) -> str | None:
    """The one line that says what went wrong; None for a failure nobody foresaw."""
    if isinstance(exc, CliError):
        return str(exc)
    if isinstance(exc, NoCredentialsError):
        return "no AWS credentials: set a profile (--profile) or the AWS_* variables"
    if isinstance(exc, NoRegionError):
        return "no AWS region: give --region or set AWS_REGION"
    if isinstance(exc, ProfileNotFound):
        return f"AWS profile not found: {exc.kwargs.get('profile', '')}"
    if isinstance(exc, ClientError):
        return _client_error(exc)
    if isinstance(exc, BotoCoreError):
        return f"AWS could not be reached: {_first_line(str(exc))}"
    return None


def _client_error(exc: ClientError) -> str:
    error = exc.response.get("Error", {})
    code = str(error.get("Code", ""))
    message = _first_line(str(error.get("Message", "")))
    operation = exc.operation_name
    if code == "ValidationError" and "does not exist" in message:
        return f"{message} (check --stack and --region)"
    # DynamoDB says ValidationException ("The table does not have the specified index");
    # moto says ResourceNotFoundException ("Invalid index"): either way an older stack.
    if code in ("ValidationException", "ResourceNotFoundException") and "index" in message.lower():
        return (
            f"the approvals table has no index {AUDIT_INDEX}: the stack predates it; update "
            "the stack (requests made before the update are not in the index)"
        )
    if code == "ResourceNotFoundException":
        return f"{operation}: not found: {message}"
    if code in ("AccessDeniedException", "AccessDenied", "UnrecognizedClientException"):
        return f"{operation}: access denied: {message}"
    return f"{operation}: {code}: {message}"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else ""
