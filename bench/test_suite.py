"""Benchmark 9: `make test` wall time (lint included, sam build not). Runs once, last."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

from bench import ROOT, Row

TARGET = 5 * 60.0


def run(baseline: float, out: Callable[[str], None] = print) -> list[Row]:
    started = time.perf_counter()
    done = subprocess.run(["make", "test"], cwd=ROOT, capture_output=True, text=True)  # noqa: S607
    seconds = time.perf_counter() - started
    failed = done.returncode != 0
    if failed:  # say where it stopped: the figure is then not a suite time
        out((done.stdout + done.stderr)[-2000:])
    summary = (done.stdout.strip().splitlines() or [""])[-1]
    out(f"  make test: {seconds:.0f} s, exit {done.returncode} ({summary})")
    return [
        Row(
            figure="make test wall time" + (" (FAILED, see above)" if failed else ""),
            median=f"{seconds:.0f} s",
            spread="one run",
            target="≤ 300 s",
            met=seconds <= TARGET and not failed,
            ratio=f"{seconds / baseline:.0f}x boto3 floor" if baseline else "",
        )
    ]
