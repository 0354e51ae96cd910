"""An example Approval Gate check function: no deploys while a hold is set.

The hold is one SSM parameter: ``/approval-gate/hold``, unless the environment variable
``APPROVAL_GATE_HOLD_PARAMETER`` names another. While it exists, the check fails and its
value, the reason a person gave, is the summary; delete it to lift the hold.

The gate invokes it before it asks, at every reminder and just before it reports an
approval, with ``{approval_id, pipeline, stage, action, pipeline_execution_id,
revisions}``, and reads back exactly ``{passed: bool, summary: str, url?: str}``
(docs/health-checks.md).

Every expected case answers: the parameter set, the parameter missing, and SSM refusing or
not answering in time (which fails the check: a hold nobody could read may be set). Only a
bug raises, and the gate counts that as failing too.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

LOG = logging.getLogger()
LOG.setLevel(logging.INFO)

#: The environment variable naming the hold parameter, and its default.
HOLD_PARAMETER_ENV = "APPROVAL_GATE_HOLD_PARAMETER"
DEFAULT_HOLD_PARAMETER = "/approval-gate/hold"
#: The gate keeps 200 characters of a summary and shows one line; say it in fewer.
MAX_REASON = 150

# The gate waits 5 s for the answer: two attempts of 1 s to connect and 1 s to read, with
# the standard mode's backoff (under 1 s) between them, still answer in time.
SSM = boto3.client(
    "ssm",
    config=Config(
        connect_timeout=1, read_timeout=1, retries={"total_max_attempts": 2, "mode": "standard"}
    ),
)


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    name = os.environ.get(HOLD_PARAMETER_ENV) or DEFAULT_HOLD_PARAMETER
    answer = hold_check(SSM, name)
    LOG.info(
        "answered %s for %s/%s/%s (approval %s)",
        "passed" if answer["passed"] else "failed",
        event.get("pipeline"),
        event.get("stage"),
        event.get("action"),
        event.get("approval_id"),
    )
    return answer


def hold_check(ssm: Any, name: str) -> dict[str, Any]:
    """The answer for the hold parameter `name`: passed while it does not exist."""
    try:
        parameter = ssm.get_parameter(Name=name)["Parameter"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "ClientError")
        if code == "ParameterNotFound":
            return {"passed": True, "summary": f"no deploy hold is set ({name})"}
        LOG.warning("could not read the hold parameter %s: %s", name, code)
        return {"passed": False, "summary": f"could not read the hold parameter {name}: {code}"}
    except BotoCoreError as exc:  # no answer in time, no connection
        LOG.warning("could not read the hold parameter %s: %s", name, type(exc).__name__)
        return {
            "passed": False,
            "summary": f"could not read the hold parameter {name}: {type(exc).__name__}",
        }
    # A SecureString's value comes back encrypted (no WithDecryption): do not show it.
    reason = _one_line(parameter.get("Value", "")) if parameter.get("Type") == "String" else ""
    return {
        "passed": False,
        "summary": f"deploys are on hold: {reason}" if reason else f"deploys are on hold ({name})",
        "url": _parameters_console(ssm.meta.region_name),
    }


def _one_line(text: str) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= MAX_REASON else line[: MAX_REASON - 1] + "…"


def _parameters_console(region: str) -> str:
    """Parameter Store in the console, where the hold is set and lifted."""
    if region.startswith("cn-"):
        host = f"{region}.console.amazonaws.cn"
    elif region.startswith("us-gov-"):
        host = f"{region}.console.amazonaws-us-gov.com"
    else:
        host = f"{region}.console.aws.amazon.com"
    return f"https://{host}/systems-manager/parameters?region={region}"
