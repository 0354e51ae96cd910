"""`approval-gate sandbox`: serve the local sandbox until interrupted.

The command-line front (``cli``) parses the flags and calls :func:`run_sandbox`; this
module checks the policy, starts :class:`~sandbox.server.SandboxServer`, prints the ready
line a script waits for, and stops the server cleanly on Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from pathlib import Path

from sandbox.engine import DEFAULT_SIGNING_SECRET, ROOT, make_domain_importable

__all__ = ["DEFAULT_POLICY", "run_sandbox"]

#: The deployed policy, which the sandbox serves unless told otherwise.
DEFAULT_POLICY = ROOT / "config" / "policy.yaml"


def run_sandbox(
    *,
    policy: str | os.PathLike[str],
    port: int,
    signing_secret: str = DEFAULT_SIGNING_SECRET,
    slack_fixture: str | os.PathLike[str] | None = None,
    verbose: bool = False,
    language: str | None = None,
) -> int:
    """Serve the sandbox on loopback ``port`` until SIGTERM or Ctrl-C; the exit code.

    2 when the policy is invalid (the reason goes to stderr), 0 after a clean stop.
    ``slack_fixture`` is a JSON file of extra Slack users and groups. ``language`` (``en``
    or ``vi``), when given, is set as the policy's ``defaults.language``, in place of the
    file's own: the texts people read, in that language (DESIGN §8.5).
    """
    # The domain is imported from the template's layers, as Lambda imports it.
    make_domain_importable()
    from approval_gate.policy import PolicyError, load_policy_file

    from sandbox.server import SandboxServer

    try:
        load_policy_file(policy)
    except PolicyError as exc:
        print(f"approval-gate: the policy is invalid: {exc}", file=sys.stderr)
        return 2
    fixture = None
    if slack_fixture:
        fixture = json.loads(Path(slack_fixture).read_text(encoding="utf-8"))
    server = SandboxServer(
        policy_file=Path(policy),
        port=port,
        signing_secret=signing_secret,
        slack_fixture=fixture,
        echo_logs=verbose,
        language=language,
    ).start()
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    print(f"sandbox ready on {server.url}", flush=True)
    try:
        # Wake now and then: the kernel may hand SIGTERM to any thread (the HTTP servers'
        # among them), and Python runs the handler only when the main thread next runs
        # bytecode; a wait without a timeout could then sleep through it for ever.
        while not stop.wait(timeout=0.2):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
