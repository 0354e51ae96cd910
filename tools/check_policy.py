"""Validate policy files before they ship: `python -m tools.check_policy config/policy.yaml`.

Exits 1 with the loader's error (key path and bad value) when a file is invalid.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "functions"))

from approval_gate.policy import PolicyError, load_policy_file


def main(paths: list[str]) -> int:
    failed = 0
    for path in paths:
        try:
            policy = load_policy_file(path)
        except PolicyError as exc:
            print(exc, file=sys.stderr)
            failed += 1
            continue
        print(f"ok: {path} ({len(policy.pipelines)} pipeline rules)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
