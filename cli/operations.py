"""The read-only operations commands (DESIGN §8.7): `audit`, `pending`, `stats` and `doctor`.

Their arguments, where the gate is (``--stack`` or ``--sandbox``), and the one-line errors:
every failure a user can meet prints one line on stderr and exits 2, never a traceback.
The work is in cli.audit, cli.pending, cli.stats and cli.doctor, imported when a command
runs.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime
from typing import Any, TextIO

from approval_gate.clock import Clock, utc_now

from cli.errors import EXIT_ERROR, CliError, explain
from cli.output import FORMATS

#: What `audit --outcome` takes: the record's outcomes, and ``pending`` (open or held).
OUTCOMES = ("approved", "rejected", "expired", "decided_elsewhere", "pending")

AUDIT_HELP = """\
Decision records (who decided what, when and why), oldest first by requested_at, each
with the execution's console link; streamed, so any range runs in constant memory.
Only requests made since the stack has the audit index (by-requested-month) are listed."""

PENDING_HELP = """\
Open and held requests (the last 8 days: CodePipeline expires approvals within 7), with
their age in seconds, who may decide now (the users and groups of the steps that take
approvals now, and the escalation approvers once escalated; for a hold, the policy's
freeze_override approvers when "deploy now" is offered) and the Slack message's link
(null without a message, or when Slack cannot say; stderr says why, once)."""

STATS_HELP = """\
One row per pipeline over the approvals requested in the range (open ones included):
  approved, rejected, expired, decided_elsewhere  how many ended so
  median_s, p90_s   seconds from the request to the decision, over the approvals people
                    decided (approved or rejected); p90 by nearest rank; null when none
  reminders         reminders sent per approval (mean, 2 decimals)
  escalations       approvals escalated
  held_s            seconds held in all, each hold from the approvers' decision to its
                    report to CodePipeline"""


DOCTOR_HELP = """\
Checks, each one line with ✅ or ❌ and, for a failure, its fix: the stack's outputs, the
Slack secret (bot_token, signing_secret; never shown), the bot token's auth.test and
scopes (slack-app-manifest.yaml), the bot in every channel the policy names, the policy's
user groups, every pipeline's manual approval actions notifying the gate's topic, the
EventBridge rules, and the deployed policy. Exit 0 when all pass, 1 when any fails, 2
when the gate cannot be reached."""

#: `doctor --format`: a line per check, or one JSON document.
DOCTOR_FORMATS = ("table", "json")


def add_operations(commands: Any) -> None:
    """The `audit`, `pending`, `stats` and `doctor` subcommands, on the parser's subcommands."""
    where = argparse.ArgumentParser(add_help=False)
    gate = where.add_argument_group("where the gate is (one of)")
    gate.add_argument("--stack", help="the CloudFormation stack's name")
    gate.add_argument("--region", help="its AWS region (default: the profile's)")
    gate.add_argument("--profile", help="the AWS profile to use")
    gate.add_argument("--sandbox", metavar="URL", help="a running sandbox, http://127.0.0.1:PORT")
    listing = argparse.ArgumentParser(add_help=False, parents=[where])
    listing.add_argument("--format", choices=FORMATS, default="table", help="default: table")
    since = argparse.ArgumentParser(add_help=False)
    since.add_argument(
        "--since", default="30d", help="Nd, Nh or an ISO date/time, UTC unless given (default 30d)"
    )
    since.add_argument("--until", help="ISO date/time, UTC unless given (default: now)")
    raw = argparse.RawDescriptionHelpFormatter

    audit = commands.add_parser(
        "audit",
        parents=[listing, since],
        help="decision records, oldest first",
        description=AUDIT_HELP,
        formatter_class=raw,
    )
    audit.add_argument("--pipeline", metavar="GLOB", help="only pipelines matching (prod-*)")
    audit.add_argument("--outcome", choices=OUTCOMES, help="pending: open or held")
    audit.set_defaults(operation="audit")

    pending = commands.add_parser(
        "pending",
        parents=[listing],
        help="open and held requests",
        description=PENDING_HELP,
        formatter_class=raw,
    )
    pending.set_defaults(operation="pending")

    stats = commands.add_parser(
        "stats",
        parents=[listing, since],
        help="per pipeline: outcomes, time to decision, reminders, holds",
        description=STATS_HELP,
        formatter_class=raw,
    )
    stats.set_defaults(operation="stats")

    doctor = commands.add_parser(
        "doctor",
        parents=[where],
        help="check the gate's setup, one line per check with its fix",
        description=DOCTOR_HELP,
        formatter_class=raw,
    )
    doctor.add_argument("--format", choices=DOCTOR_FORMATS, default="table", help="default: table")
    doctor.set_defaults(operation="doctor")


def _where(args: argparse.Namespace) -> None:
    if args.stack and args.sandbox:
        raise CliError("give --stack or --sandbox, not both")
    if not (args.stack or args.sandbox):
        raise CliError("say where the gate is: --stack NAME or --sandbox URL")


def _target(args: argparse.Namespace) -> Any:
    from cli.target import from_sandbox, from_stack

    _where(args)
    if args.sandbox:
        return from_sandbox(args.sandbox)
    return from_stack(args.stack, region=args.region, profile=args.profile)


def _deployment(args: argparse.Namespace) -> Any:
    from cli.target import describe_sandbox, describe_stack

    _where(args)
    if args.sandbox:
        return describe_sandbox(args.sandbox)
    return describe_stack(args.stack, region=args.region, profile=args.profile)


def _range(args: argparse.Namespace, now: datetime) -> tuple[datetime, datetime]:
    from cli.records import parse_time

    since = parse_time(args.since, now, option="--since")
    until = parse_time(args.until, now, option="--until") if args.until else now
    if until < since:
        raise CliError(f"--until {args.until or 'now'} is before --since {args.since}")
    return since, until


def run_operation(
    args: argparse.Namespace,
    *,
    target: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Clock = utc_now,
) -> int:
    """Run `audit`, `pending`, `stats` or `doctor`; its exit code (2 with one line on any
    error; `doctor`: 1 when a check fails)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    try:
        if args.operation == "doctor":
            from cli.doctor import run_doctor

            return run_doctor(_deployment(args), fmt=args.format, out=out)
        now = clock()
        if args.operation == "pending":
            from cli.pending import run_pending

            return run_pending(target or _target(args), now=now, fmt=args.format, out=out, err=err)
        since, until = _range(args, now)
        if args.operation == "audit":
            from cli.audit import run_audit

            return run_audit(
                target or _target(args),
                since=since,
                until=until,
                pipeline=args.pipeline,
                outcome=args.outcome,
                fmt=args.format,
                out=out,
            )
        from cli.stats import run_stats

        return run_stats(
            target or _target(args), since=since, until=until, fmt=args.format, out=out
        )
    except BrokenPipeError:  # `| head`: the reader has what it wanted
        if out is sys.stdout:  # and Python's own flush at exit must not complain
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        err.write(f"approval-gate {args.operation}: {line}\n")
        return EXIT_ERROR
