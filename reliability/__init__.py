"""Reliability checks (issue 8): fuzzing the gate's edges against its invariants.

`reliability.fuzz.run_fuzz(count, seed)` returns a `FuzzReport`; `make reliability`
prints it. The generators live in `reliability.generate`, the judges in
`reliability.oracles`.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
