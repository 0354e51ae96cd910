"""The `approval-gate` command: run the sandbox, or the demo."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from sandbox.engine import DEFAULT_SIGNING_SECRET, ROOT, make_domain_importable

DEFAULT_POLICY = ROOT / "config" / "policy.yaml"


def _sandbox(args: argparse.Namespace) -> int:
    make_domain_importable()
    from approval_gate.policy import PolicyError, load_policy_file

    from sandbox.server import SandboxServer

    try:
        load_policy_file(args.policy)
    except PolicyError as exc:
        print(f"approval-gate: the policy is invalid: {exc}", file=sys.stderr)
        return 2
    fixture = None
    if args.slack_fixture:
        fixture = json.loads(Path(args.slack_fixture).read_text(encoding="utf-8"))
    server = SandboxServer(
        policy_file=Path(args.policy),
        port=args.port,
        signing_secret=args.signing_secret,
        slack_fixture=fixture,
        echo_logs=args.verbose,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"sandbox ready on {server.url}", flush=True)
    try:
        stop.wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def _demo(args: argparse.Namespace) -> int:
    from sandbox.demo import run_demo

    return run_demo(decision=args.decision, port=args.port)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="approval-gate", description=__doc__)
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

    args = parser.parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
