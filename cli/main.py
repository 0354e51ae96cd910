"""The `approval-gate` command's arguments: each subcommand parses its flags here and
delegates to the function that does the work (``sandbox.run.run_sandbox``,
``sandbox.demo.run_demo``, cli.operations for `audit`, `pending` and `stats`), whose
return value is the exit code."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from approval_gate.clock import Clock, utc_now

from cli.operations import add_operations, run_operation
from sandbox.engine import DEFAULT_SIGNING_SECRET
from sandbox.run import DEFAULT_POLICY, run_sandbox

#: What ``approval-gate --help`` says the command is for.
DESCRIPTION = (
    "The `approval-gate` command: run the sandbox, or the demo; read a gate's decisions "
    "(audit, pending, stats)."
)


def _sandbox(args: argparse.Namespace) -> int:
    return run_sandbox(
        policy=args.policy,
        port=args.port,
        signing_secret=args.signing_secret,
        slack_fixture=args.slack_fixture,
        verbose=args.verbose,
    )


def _demo(args: argparse.Namespace) -> int:
    # Imported when asked for: the demo brings the sandbox's HTTP client and server.
    from sandbox.demo import run_demo

    return run_demo(decision=args.decision, port=args.port)


def main(
    argv: list[str] | None = None,
    *,
    target: Any = None,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    clock: Clock = utc_now,
) -> int:
    """Parse ``argv`` (the process's arguments when ``None``), run the command, and return
    its exit code. ``target`` (a cli.target.Target), the streams and the clock stand in
    for ``--stack``/``--sandbox``, stdout, stderr and now in tests of the operations."""
    parser = argparse.ArgumentParser(prog="approval-gate", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)

    sandbox = commands.add_parser("sandbox", help="run the local sandbox until interrupted")
    sandbox.add_argument("--port", type=int, default=8400, help="loopback port; 0 picks a free one")
    sandbox.add_argument("--policy", default=str(DEFAULT_POLICY), help="policy YAML file")
    sandbox.add_argument(
        "--signing-secret", default=DEFAULT_SIGNING_SECRET, help="Slack signing secret to verify"
    )
    sandbox.add_argument("--slack-fixture", help="JSON file of extra Slack users and groups")
    sandbox.add_argument("--verbose", action="store_true", help="print the functions' logs")
    sandbox.set_defaults(run=_sandbox)

    demo = commands.add_parser("demo", help="run one approval end to end and print it")
    demo.add_argument("--decision", choices=("approve", "reject"), default="approve")
    demo.add_argument("--port", type=int, default=0, help="loopback port; 0 picks a free one")
    demo.set_defaults(run=_demo)

    # --- operations (DESIGN §8.7): audit, pending, stats ---
    add_operations(commands)

    args = parser.parse_args(argv)
    if getattr(args, "operation", None):
        return run_operation(args, target=target, stdout=stdout, stderr=stderr, clock=clock)
    return int(args.run(args))
