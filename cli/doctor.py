"""`approval-gate doctor` (DESIGN §8.7): is this gate set up right, and if not, what to do.

Eight checks, in this order, each one line with its fix: the stack's outputs, the Slack
secret, the bot token and its scopes, the bot in every channel the policy names, the
policy's user groups, every pipeline's manual approvals notifying the gate's topic, the
EventBridge rules, and the deployed policy. Each runs whatever the others found; one
that needs what an earlier one could not give (the bot token, the policy) says
"skipped" and which check to fix first. AWS and Slack failures inside a check fail that
check, in one line; only a gate that cannot be reached at all (cli.operations) exits 2.
The checks live in cli.doctor_aws and cli.doctor_slack.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TextIO

from cli.doctor_checks import Check, failed

if TYPE_CHECKING:
    from approval_gate.policy import Policy
    from approval_gate.slack import SlackCredentials

    from cli.target import Deployment

FORMATS = ("table", "json")
#: Exit codes: every check passed, or one failed (2, a usage error, is cli.errors').
EXIT_OK, EXIT_FAILED = 0, 1


@dataclass
class Facts:
    """What the checks learn, for the ones after them. The credentials stay here: no
    check's detail or fix shows them."""

    deployment: Deployment
    credentials: SlackCredentials | None = None
    #: A slack_sdk WebClient with the bot token, once auth.test answered.
    slack: Any = None
    bot_name: str | None = None
    policy: Policy | None = None
    policy_problem: str | None = None


def _checks() -> list[tuple[str, Callable[[Facts], Check]]]:
    from cli import doctor_aws as aws
    from cli import doctor_slack as slack

    return [
        (aws.OUTPUTS, aws.check_outputs),
        (aws.SECRET, aws.check_secret),
        (slack.SLACK_TOKEN, slack.check_token),
        (slack.CHANNELS, slack.check_channels),
        (slack.GROUPS, slack.check_groups),
        (aws.PIPELINES, aws.check_pipelines),
        (aws.RULES, aws.check_rules),
        (aws.POLICY, aws.check_policy),
    ]


def diagnose(deployment: Deployment) -> list[Check]:
    """Every check's result, in order. The policy is loaded first: three checks use it."""
    from cli.doctor_aws import load_deployed_policy

    facts = Facts(deployment)
    load_deployed_policy(facts)
    return [_run(name, check, facts) for name, check in _checks()]


def _run(name: str, check: Callable[[Facts], Check], facts: Facts) -> Check:
    """One check; an AWS or Slack failure it did not expect fails it, in one line."""
    from botocore.exceptions import BotoCoreError, ClientError
    from slack_sdk.errors import SlackClientError

    from cli.doctor_slack import slack_error
    from cli.errors import explain

    try:
        return check(facts)
    except (ClientError, BotoCoreError) as exc:
        return failed(
            name, str(explain(exc)), "check these credentials' access and run doctor again"
        )
    except SlackClientError as exc:
        return failed(name, slack_error(exc), "run doctor again once Slack answers")
    except (OSError, ValueError) as exc:
        return failed(name, f"{type(exc).__name__}: {exc}", "see the detail, then run doctor again")


def write_checks(checks: list[Check], fmt: str, out: TextIO) -> None:
    """``table``: one line per check, ✅ or ❌, the detail, and a failure's fix; ``json``:
    ``{ok, checks: [{name, ok, detail, fix}]}``."""
    if fmt == "json":
        document = {"ok": all(c.ok for c in checks), "checks": [c.as_json() for c in checks]}
        out.write(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
        return
    for check in checks:
        line = f"{'✅' if check.ok else '❌'} {check.name}: {check.detail}"
        if not check.ok and check.fix:
            line += f" → fix: {check.fix}"
        out.write(" ".join(line.split()) + "\n")


def run_doctor(deployment: Deployment, *, fmt: str, out: TextIO) -> int:
    """Run every check and write them; 0 when all passed, 1 otherwise."""
    checks = diagnose(deployment)
    write_checks(checks, fmt, out)
    return EXIT_OK if all(c.ok for c in checks) else EXIT_FAILED
