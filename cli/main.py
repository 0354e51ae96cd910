"""The `approval-gate` command's arguments: each subcommand parses its flags here and
delegates to the function that does the work (``sandbox.run.run_sandbox``,
``sandbox.demo.run_demo``, cli.operations for `audit`, `pending`, `stats` and `doctor`),
whose return value is the exit code. The sandbox is imported only when it runs."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from approval_gate.clock import Clock, utc_now
from approval_gate.i18n import LANGUAGES

from cli.operations import add_operations, run_operation
from cli.setup import add_install, run_install

#: What `sandbox --help` says of the defaults; the sandbox (moto and all) is imported only
#: when it runs, so the other commands do not pay for it. tests/cli/test_doctor.py checks
#: these against sandbox.run.DEFAULT_POLICY and sandbox.engine.DEFAULT_SIGNING_SECRET.
DEFAULT_POLICY_HELP = "config/policy.yaml of this checkout"
DEFAULT_SIGNING_SECRET_HELP = "sandbox-signing-secret"  # noqa: S105 - the sandbox's, documented

#: What ``approval-gate --help`` says the command is for.
DESCRIPTION = (
    "The `approval-gate` command: run the sandbox, or the demo; read a gate's decisions "
    "(audit, pending, stats); check its setup (doctor); install it (setup) or remove it "
    "(teardown)."
)


def _sandbox(args: argparse.Namespace) -> int:
    from sandbox.engine import DEFAULT_SIGNING_SECRET
    from sandbox.run import DEFAULT_POLICY, run_sandbox

    return run_sandbox(
        policy=DEFAULT_POLICY if args.policy is None else args.policy,
        port=args.port,
        signing_secret=(
            DEFAULT_SIGNING_SECRET if args.signing_secret is None else args.signing_secret
        ),
        slack_fixture=args.slack_fixture,
        verbose=args.verbose,
        language=args.language,
    )


def _demo(args: argparse.Namespace) -> int:
    # Imported when asked for: the demo brings the sandbox's HTTP client and server.
    from sandbox.demo import run_demo

    return run_demo(decision=args.decision, port=args.port, language=args.language)


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
    sandbox.add_argument("--policy", help=f"policy YAML file (default: {DEFAULT_POLICY_HELP})")
    sandbox.add_argument(
        "--signing-secret",
        help=f"Slack signing secret to verify (default: {DEFAULT_SIGNING_SECRET_HELP})",
    )
    sandbox.add_argument("--slack-fixture", help="JSON file of extra Slack users and groups")
    sandbox.add_argument("--verbose", action="store_true", help="print the functions' logs")
    sandbox.add_argument(
        "--language",
        choices=LANGUAGES,
        help=(
            "the language of every text people read in Slack and of CodePipeline's summary: "
            "sets the policy's defaults.language, overriding the --policy file's own (a rule "
            "that sets its own language keeps it); default: the file's own, en when unset"
        ),
    )
    sandbox.set_defaults(run=_sandbox)

    demo = commands.add_parser("demo", help="run one approval end to end and print it")
    demo.add_argument("--decision", choices=("approve", "reject"), default="approve")
    demo.add_argument("--port", type=int, default=0, help="loopback port; 0 picks a free one")
    demo.add_argument(
        "--language",
        choices=LANGUAGES,
        default="en",
        help=(
            "the language of what Slack shows and CodePipeline's summary (the demo policy's "
            "defaults.language); the demo's own lines stay English (default: en)"
        ),
    )
    demo.set_defaults(run=_demo)

    # --- operations (DESIGN §8.7): audit, pending, stats, doctor ---
    add_operations(commands)
    # --- the guided install (DESIGN §8.7): setup, teardown ---
    add_install(commands)

    args = parser.parse_args(argv)
    if getattr(args, "install", None):
        return run_install(args, stdout=stdout, stderr=stderr)
    if getattr(args, "operation", None):
        return run_operation(args, target=target, stdout=stdout, stderr=stderr, clock=clock)
    return int(args.run(args))
