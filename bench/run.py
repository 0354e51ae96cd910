"""`python -m bench.run` (`make bench`): every benchmark, then one table.

Exit 0 unless a benchmark crashes: targets are printed as MET / MISSED, never enforced.
"""

from __future__ import annotations

import sys
import time
import traceback
from collections.abc import Callable

from bench import (
    Row,
    audit_scale,
    click_ack,
    cold_start,
    cost,
    health_checks,
    package_size,
    request_latency,
    slack_writes,
    test_suite,
    throughput,
)


def table(rows: list[Row]) -> str:
    header = ("figure", "median", "p99 or min-max", "target", "met?", "vs baseline / detail")
    cells = [header] + [
        (
            r.figure,
            r.median,
            r.spread,
            r.target,
            "—" if r.met is None else ("MET" if r.met else "MISSED"),
            r.ratio,
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [
        "| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |"
        for row in cells
    ]
    lines.insert(1, "|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def main() -> int:
    rows: list[Row] = []
    crashed: list[str] = []
    baseline = 0.0

    def step(title: str, benchmark: Callable[[], list[Row]]) -> None:
        print(f"\n== {title}", flush=True)
        started = time.perf_counter()
        try:
            rows.extend(benchmark())
        except Exception:
            traceback.print_exc()
            crashed.append(title)
        print(f"   ({time.perf_counter() - started:.0f} s)", flush=True)

    def cold() -> list[Row]:
        nonlocal baseline
        found, baseline = cold_start.run()
        return found

    step("1. cold start per function (in-process import time, fresh processes)", cold)
    step("2. click to acknowledgement, warm", click_ack.run)
    step("3. cost per approval", cost.run)
    step("4. throughput and scale", throughput.run)
    step("5. package size", package_size.run)
    step("6. Slack writes per approval and per pipeline run", slack_writes.run)
    step("7. health checks: alarm change to request, DescribeAlarms calls", health_checks.run)
    step("8. SNS notification to request posted, with the lookups", request_latency.run)
    step("9. test suite time (make test, once)", lambda: test_suite.run(baseline))
    step("10. approval-gate audit over 1,000 and 10,000 decision records", audit_scale.run)
    print("\n" + table(rows))
    missed = [r.figure for r in rows if r.met is False]
    print(
        f"\n{len(rows) - len(missed)} of {len(rows)} figures met or informative; "
        f"missed: {', '.join(missed) or 'none'}"
    )
    if crashed:
        print(f"crashed: {', '.join(crashed)}")
    return 1 if crashed else 0


if __name__ == "__main__":
    sys.exit(main())
