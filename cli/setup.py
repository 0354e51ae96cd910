"""`approval-gate setup` and `approval-gate teardown` (DESIGN §8.7): their arguments, the
console they talk through, and the run of setup's steps.

Setup is a sequence of idempotent steps (cli.setup_steps), each printed as one line:
``✓ step: what was done or found``, ``→ step: would …`` under ``--dry-run``, or
``✗ step: why → fix: what to do``, after which it stops with exit 1; running it again
continues, since every step first looks (in AWS, in Slack) for its work already done.
The Slack tokens come from SLACK_BOT_TOKEN / SLACK_SIGNING_SECRET / SLACK_CONFIG_TOKEN
or a prompt without echo; they are never written to disk, to output, or to a child
process. The work is imported when a command runs.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

from cli.errors import EXIT_ERROR, CliError, explain

#: Exit codes: done, a step failed (2, a usage error, is cli.errors').
EXIT_OK, EXIT_FAILED = 0, 1
#: The stack `setup` deploys and `teardown` deletes unless told another.
DEFAULT_STACK = "approval-gate"
DEFAULT_POLICY_FILE = "config/policy.yaml"

SETUP_HELP = """\
The guided install: prerequisites, the Slack tokens (SLACK_BOT_TOKEN, SLACK_SIGNING_SECRET,
optionally SLACK_CONFIG_TOKEN; else asked without echo), the Slack secret, the channel and
approvers, the policy file, build and deploy, the interactivity URL, then doctor. Each step
prints one line (✓ done or found, → would, ✗ why and the fix) and is skipped when its work
is already there, so after a failure run it again. With every answer in flags and
variables it asks nothing. Exit 0 when done, 1 when a step failed."""

TEARDOWN_HELP = """\
Deletes the example pipeline's stack (STACK-example) if present, then the gate's stack,
waiting for each, and says what stays: the approvals table (retained: the audit trail), the
Slack secret and the Slack app, unless --delete-table / --delete-secret."""


class StepFailed(Exception):
    """A step could not do its work: why, and what the person should do."""

    def __init__(self, step: str, why: str, fix: str) -> None:
        super().__init__(f"{step}: {why}")
        self.step, self.why, self.fix = step, why, fix


class Console:
    """Where setup talks: its lines, and the questions it may ask. It asks only when its
    input is a terminal, and counts each answer and each Enter (the person's inputs)."""

    def __init__(
        self,
        out: TextIO,
        err: TextIO,
        *,
        interactive: bool,
        read_line: Callable[[], str] | None = None,
        read_secret: Callable[[str], str] | None = None,
    ) -> None:
        self.out, self.err = out, err
        self.interactive = interactive
        self.inputs = 0
        self._read_line = read_line or sys.stdin.readline
        # getpass reads from the terminal itself, without echo.
        self._read_secret = read_secret or getpass.getpass

    def line(self, mark: str, step: str, text: str) -> None:
        self.out.write(f"{mark} {step}: {' '.join(text.split())}\n")
        self.out.flush()

    def done(self, step: str, text: str) -> None:
        self.line("✓", step, text)

    def would(self, step: str, text: str) -> None:
        self.line("→", step, f"would {text}")

    def ask(self, question: str, *, secret: bool = False) -> str | None:
        """The answer (stripped), or None without a terminal. A secret is read without echo."""
        if not self.interactive:
            return None
        self.inputs += 1
        if secret:
            return self._read_secret(f"{question}: ").strip()
        self.out.write(f"{question}: ")
        self.out.flush()
        return self._read_line().strip()

    def wait_enter(self, prompt: str) -> bool:
        """Wait for Enter when a terminal; False (and nothing waited) otherwise."""
        if not self.interactive:
            return False
        self.inputs += 1
        self.out.write(f"{prompt} ")
        self.out.flush()
        self._read_line()
        return True


def add_install(commands: Any) -> None:
    """The `setup` and `teardown` subcommands, on the parser's subcommands."""
    raw = argparse.RawDescriptionHelpFormatter
    setup = commands.add_parser(
        "setup",
        help="the guided install: Slack secret, policy, deploy, interactivity URL, doctor",
        description=SETUP_HELP,
        formatter_class=raw,
    )
    setup.add_argument("--stack", help=f"the stack to deploy (default: {DEFAULT_STACK})")
    setup.add_argument("--region", help="its AWS region (default: the profile's)")
    setup.add_argument("--profile", help="the AWS profile to use")
    setup.add_argument("--channel", metavar="NAME", help="the Slack channel for requests")
    setup.add_argument(
        "--approvers", metavar="EMAIL,...", help="the approvers' Slack emails, comma-separated"
    )
    setup.add_argument(
        "--policy-file",
        default=DEFAULT_POLICY_FILE,
        help=f"the policy file to write (default: {DEFAULT_POLICY_FILE})",
    )
    setup.add_argument(
        "--language",
        choices=("en", "vi"),
        default="en",
        help="the language of every text people read in Slack (the policy's defaults.language; "
        "default: en)",
    )
    setup.add_argument(
        "--try",
        dest="trial",
        action="store_true",
        help="also deploy the example pipeline and start one run",
    )
    setup.add_argument("--dry-run", action="store_true", help="print each action; change nothing")
    setup.add_argument("--sandbox", metavar="URL", help="set up a running sandbox instead of AWS")
    setup.set_defaults(install="setup")

    teardown = commands.add_parser(
        "teardown",
        help="delete the gate's stack (and the example's), saying what stays",
        description=TEARDOWN_HELP,
        formatter_class=raw,
    )
    teardown.add_argument("--stack", required=True, help="the gate's stack")
    teardown.add_argument("--region", help="its AWS region (default: the profile's)")
    teardown.add_argument("--profile", help="the AWS profile to use")
    teardown.add_argument(
        "--delete-table", action="store_true", help="also delete the retained approvals table"
    )
    teardown.add_argument("--delete-secret", action="store_true", help="also delete the secret")
    teardown.add_argument(
        "--dry-run", action="store_true", help="print each action; change nothing"
    )
    teardown.add_argument("--sandbox", metavar="URL", help=argparse.SUPPRESS)
    teardown.set_defaults(install="teardown")


def run_install(
    args: argparse.Namespace,
    *,
    stdout: TextIO | None = None,
    stderr: TextIO | None = None,
    env: Mapping[str, str] | None = None,
    console: Console | None = None,
) -> int:
    """Run `setup` or `teardown`; its exit code (0 done, 1 a step failed, 2 a usage error)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    environ = os.environ if env is None else env
    try:
        if args.install == "teardown":
            if args.sandbox:
                raise CliError("the sandbox has nothing to tear down: stop it (Ctrl-C)")
            from cli.teardown import run_teardown

            return run_teardown(args, out=out)
        if args.sandbox and args.stack:
            raise CliError("give --stack or --sandbox, not both")
        talk = console or Console(out, err, interactive=_is_terminal())
        return run_setup(args, talk, environ)
    except StepFailed as failed:
        out.write(f"✗ {failed.step}: {failed.why} → fix: {failed.fix}\n")
        return EXIT_FAILED
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        err.write(f"approval-gate {args.install}: {line}\n")
        return EXIT_ERROR


def _is_terminal() -> bool:
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (AttributeError, ValueError):
        return False


def run_setup(args: argparse.Namespace, console: Console, env: Mapping[str, str]) -> int:
    """Every step in order; the first that fails stops the run (StepFailed)."""
    from cli.setup_steps import Setup, steps

    started = time.monotonic()
    setup = Setup.start(args, console, env)
    for step in steps():
        step(setup)
    seconds = time.monotonic() - started
    what = "dry run done: nothing was changed" if args.dry_run else "setup done"
    inputs = "input" if console.inputs == 1 else "inputs"
    console.out.write(f"{what} in {seconds:.1f} s, with {console.inputs} {inputs} from you\n")
    return EXIT_OK
